from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo import seed
from lti_app.demo.seed import STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.demo.server import RunningPlatform
from lti_app.roster import sync_lease
from lti_app.roster.client import NrpsClient
from lti_app.tool.client import TokenClient
from lti_app.tool.keys import KeyRing
from lti_app.tool.models import Context, Platform
from tests.conftest import ToolServer, registration_of

LAUNCH_TOKEN = re.compile(r"[?&]lt=([^\"&]+)")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_numbers = itertools.count(1)


@pytest.fixture
def nrps(db: Database, tool_server: ToolServer) -> Iterator[NrpsClient]:
    httpx.get(tool_server.url + "/.well-known/jwks.json", timeout=10).raise_for_status()
    http = httpx.Client(timeout=5)
    keyring = KeyRing(secret=tool_server.settings.effective_key_secret)
    yield NrpsClient(http, TokenClient(db, http, keyring))
    http.close()


@dataclass
class RosterCourse:
    lms_context_id: str
    context_id: int
    platform_id: int
    course: Course


@pytest.fixture
def make_roster_course(
    lms: RunningPlatform, db: Database, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., RosterCourse]]:
    def make(students: int = 12) -> RosterCourse:
        n = next(_numbers)
        lms_context_id = f"course-roster-{n}-{uuid.uuid4().hex[:6]}"
        course = Course(
            lms_context_id,
            f"R{n}",
            f"Roster test {n}",
            (
                Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
                *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS[:students]),
            ),
        )
        monkeypatch.setitem(seed.COURSES, lms_context_id, course)
        with db.begin() as session:
            registration = session.scalar(select(Platform).where(registration_of(lms)))
            assert registration is not None
            context = Context(platform_id=registration.id, context_id=lms_context_id)
            session.add(context)
            session.flush()
            sync_lease.remember_nrps_url(
                session,
                context_id=context.id,
                nrps_url=lms.platform.memberships_url(lms_context_id),
            )
            return RosterCourse(lms_context_id, context.id, registration.id, course)

    yield make
    lms.platform.reset_hooks()


def set_enrollments(course: RosterCourse, enrollments: tuple[Enrollment, ...]) -> None:
    seed.COURSES[course.lms_context_id] = Course(
        course.course.context_id, course.course.label, course.course.title, enrollments
    )
