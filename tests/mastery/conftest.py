from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.scales import DEFAULT_LEVELS, update_scale
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import (
    Frame,
    Ids,
    ensure_launched,
    frame,
    lms_of_the_module,  # noqa: F401  (each module: an LMS of its own, see frames.py)
    second_lms,
)
from tests.domain_fixtures import Course, make_course, make_platform

LevelRow = tuple[str, Decimal, str, bool]
DEFAULT_SPECS: list[LevelRow] = [
    (spec.name, spec.points, spec.colour, spec.is_mastery) for spec in DEFAULT_LEVELS
]
STUDENTS = ("user-s01", "user-s02", "user-s03", "user-s10")
"""The students of the own LMS's biology course that the scale pages' tests launch."""


@pytest.fixture
def course(session: Session) -> Course:
    return make_course(session)


@pytest.fixture
def other_course(session: Session) -> Course:
    return make_course(session, make_platform(session))


# --- the teacher's scale page, on an LMS of the test module's own --------------------------


@pytest.fixture(scope="module")
def own_lms(tool_server: ToolServer, database_url: str) -> Iterator[RunningPlatform]:
    with second_lms(tool_server, database_url) as running:
        yield running


@pytest.fixture
def own_ids(db: Database, own_lms: RunningPlatform) -> Ids:
    return Ids.of(db, own_lms)


@pytest.fixture
def teacher(
    own_lms: RunningPlatform, tool_server: ToolServer, db: Database, own_ids: Ids
) -> Iterator[Frame]:
    """The teacher of the own LMS's biology course; the scale is back to the default after."""
    ensure_launched(own_lms, tool_server, STUDENTS)
    actions = LtiActions(own_lms, tool_server)
    try:
        yield frame(actions.launch("user-t01"), tool_server.url)
    finally:
        actions.close()
        with db.begin() as s:
            update_scale(
                s,
                context_id=own_ids.context(),
                method=CalculationMethod.DECAYING_AVERAGE,
                weight=65,
                n=3,
                counts_self_assessment=False,
                levels=DEFAULT_SPECS,
            )
