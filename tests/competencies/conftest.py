from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.db import Database
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import (
    Frame,
    frame,
    lms_of_the_module,  # noqa: F401  (each module: an LMS of its own, see frames.py)
)
from tests.domain_fixtures import Course, make_course, make_platform


def competencies_by_code(db: Database, context_id: int, prefix: str) -> dict[str, Competency]:
    """The course's competencies whose code starts with `prefix` (each test uses its own)."""
    with db.begin() as s:
        rows = s.scalars(
            select(Competency).where(
                Competency.context_id == context_id, Competency.code.startswith(prefix)
            )
        )
        return {c.code: c for c in rows}


@pytest.fixture
def teacher(lti: LtiActions, tool_server: ToolServer) -> Frame:
    """The demo course's teacher, launched, with in-frame requests."""
    return frame(lti.launch("user-t01"), tool_server.url)


@pytest.fixture
def course(session: Session) -> Course:
    return make_course(session)


@pytest.fixture
def other_course(session: Session) -> Course:
    return make_course(session, make_platform(session))
