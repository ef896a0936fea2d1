"""Minimal courses, people and competencies for pathway tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.tool.models import Context, Person, Platform
from tests.conftest import LtiActions
from tests.courses.frames import lms_of_the_module  # noqa: F401  (see frames.py)

if TYPE_CHECKING:
    from tests.pathways.test_views import Built

MakeCompetency = Callable[..., int]


@pytest.fixture
def platform(session: Session) -> Platform:
    row = Platform(
        issuer="https://lms.example.edu",
        client_id="pathways-tests",
        auth_login_url="https://lms.example.edu/auth",
        token_url="https://lms.example.edu/token",
        jwks_url="https://lms.example.edu/jwks",
    )
    session.add(row)
    session.flush()
    return row


def _context(session: Session, platform: Platform, key: str) -> int:
    row = Context(platform_id=platform.id, context_id=key, title=f"Course {key}")
    session.add(row)
    session.flush()
    return row.id


def _person(session: Session, platform: Platform, sub: str) -> int:
    row = Person(platform_id=platform.id, sub=sub, name=sub.title())
    session.add(row)
    session.flush()
    return row.id


@pytest.fixture
def course(session: Session, platform: Platform) -> int:
    """The id of course A."""
    return _context(session, platform, "biology-a")


@pytest.fixture
def other_course(session: Session, platform: Platform) -> int:
    """The id of course B, which course A must never see into."""
    return _context(session, platform, "biology-b")


@pytest.fixture
def teacher(session: Session, platform: Platform) -> int:
    return _person(session, platform, "teacher")


@pytest.fixture
def student(session: Session, platform: Platform) -> int:
    return _person(session, platform, "student")


@pytest.fixture
def other_student(session: Session, platform: Platform) -> int:
    return _person(session, platform, "classmate")


@pytest.fixture
def make_competency(session: Session) -> MakeCompetency:
    """Insert a competency and return its id: make_competency(course, "C3", "Cell transport")."""

    def make(context_id: int, code: str, title: str = "") -> int:
        row = Competency(context_id=context_id, code=code, title=title or f"Competency {code}")
        session.add(row)
        session.flush()
        return row.id

    return make


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0
        self.statements: list[str] = []


CountQueries = Callable[[], AbstractContextManager[QueryCounter]]


@pytest.fixture
def count_queries(session: Session) -> CountQueries:
    """Count the SQL statements the session's connection runs inside a with block."""

    @contextmanager
    def counting() -> Iterator[QueryCounter]:
        counter = QueryCounter()
        engine = session.get_bind().engine

        def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            counter.count += 1
            counter.statements.append(statement)

        event.listen(engine, "before_cursor_execute", before)
        try:
            yield counter
        finally:
            event.remove(engine, "before_cursor_execute", before)

    return counting


@pytest.fixture
def built(lti: LtiActions, database_url: str) -> Built:
    """The demo course's pathway with its steps and options, the teacher and a classmate
    launched (tests/pathways/test_views.py builds it)."""
    from tests.pathways.test_views import CLASSMATE, TEACHER, build_pathway

    lti.launch(TEACHER)
    lti.launch(CLASSMATE)
    return build_pathway(database_url, lti.lms)
