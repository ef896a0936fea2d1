from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.domain_fixtures import Course, make_course, make_platform


@pytest.fixture
def course(session: Session) -> Course:
    return make_course(session)


@pytest.fixture
def other_course(session: Session) -> Course:
    return make_course(session, make_platform(session))
