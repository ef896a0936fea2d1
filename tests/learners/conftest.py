"""A course and its people for learner-profile tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from lti_app.demo.server import RunningPlatform
from lti_app.tool.models import Context, Person, Platform
from tests.conftest import ToolServer
from tests.courses.frames import lms_of_the_module, second_lms  # noqa: F401  (see frames.py)


@pytest.fixture
def platform(session: Session) -> Platform:
    row = Platform(
        issuer="https://lms.example.edu",
        client_id="learners-tests",
        auth_login_url="https://lms.example.edu/auth",
        token_url="https://lms.example.edu/token",
        jwks_url="https://lms.example.edu/jwks",
    )
    session.add(row)
    session.flush()
    return row


def _add(session: Session, row: Context | Person) -> int:
    session.add(row)
    session.flush()
    return row.id


@pytest.fixture
def course(session: Session, platform: Platform) -> int:
    return _add(session, Context(platform_id=platform.id, context_id="a"))


@pytest.fixture
def other_course(session: Session, platform: Platform) -> int:
    return _add(session, Context(platform_id=platform.id, context_id="b"))


@pytest.fixture
def teacher(session: Session, platform: Platform) -> int:
    return _add(session, Person(platform_id=platform.id, sub="teacher"))


@pytest.fixture
def student(session: Session, platform: Platform) -> int:
    return _add(session, Person(platform_id=platform.id, sub="student"))


@pytest.fixture
def other_student(session: Session, platform: Platform) -> int:
    return _add(session, Person(platform_id=platform.id, sub="classmate"))


@pytest.fixture
def fresh_lms(tool_server: ToolServer, database_url: str) -> Iterator[RunningPlatform]:
    """A second registered LMS: its courses and people are this test's alone."""
    with second_lms(tool_server, database_url) as running:
        yield running
