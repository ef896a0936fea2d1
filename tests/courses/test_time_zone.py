"""A course's dates are in its own time zone: the teacher's choice, else the zone Canvas sends
with a teacher's launch, else the school's default (UTC unless set)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from lti_app.courses import common
from lti_app.db import Database
from lti_app.demo.browser import follow_launch
from lti_app.demo.server import RunningPlatform
from lti_app.insights import views as insights_views
from lti_app.learners import views as learners_views
from lti_app.learners.goals_and_check_ins import add_goal
from lti_app.reports import views as reports_views
from lti_app.tool.models import Context, Person, Platform
from tests.conftest import Launched, LtiActions, ToolServer, registration_of
from tests.courses.frames import Frame, frame

EVENING_IN_LOS_ANGELES = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)
"""20:00 on 10 March in Los Angeles (daylight time, UTC-7); UTC is already on 11 March."""
GOAL = "Finish the osmosis lab write-up"


def _launch(lti: LtiActions, lms: RunningPlatform, sub: str, **custom: str) -> Launched:
    client = lti.browser()
    spec = lms.platform.make_launch(sub, custom=custom)
    return Launched(follow_launch(client, lms.platform.login_url(spec)), client)


def _ids(db: Database, lms: RunningPlatform, sub: str) -> tuple[int, int]:
    """(course, person) ids of this LMS's Biology 9 and one of its users."""
    with db.begin() as s:
        platform = registration_of(lms)
        course = s.scalars(
            select(Context.id)
            .join(Platform, Platform.id == Context.platform_id)
            .where(platform, Context.context_id == "course-bio9")
        ).one()
        person = s.scalars(
            select(Person.id)
            .join(Platform, Platform.id == Person.platform_id)
            .where(platform, Person.sub == sub)
        ).one()
        return course, person


def _stored(db: Database, course_id: int) -> tuple[str | None, str | None]:
    """The course's (teacher-chosen, LMS-sent) zones."""
    with db.begin() as s:
        row = s.execute(
            select(Context.time_zone, Context.lms_time_zone).where(Context.id == course_id)
        ).one()
        return row[0], row[1]


def _held_on_default(teacher: Frame, student_id: int) -> str:
    page = teacher.get(f"/course/students/{student_id}")
    assert page.status_code == 200, page.text[:500]
    found = re.search(r'name="held_on" value="([0-9-]+)"', page.text)
    assert found, "no check-in form"
    return found.group(1)


def _overdue(teacher: Frame) -> bool:
    page = teacher.get("/insights/attention")
    assert page.status_code == 200, page.text[:500]
    return GOAL in page.text


@pytest.fixture
def evening(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tool's clock at 03:00 UTC (the tool server runs in this process)."""
    for module in (common, insights_views, learners_views, reports_views):
        monkeypatch.setattr(module, "utcnow", lambda: EVENING_IN_LOS_ANGELES)


def test_a_us_course_at_03_utc_sees_its_own_date_once_canvas_sends_the_zone(
    lti: LtiActions,
    tool_server: ToolServer,
    fresh_lms: RunningPlatform,
    db: Database,
    evening: None,
) -> None:
    assert _launch(lti, fresh_lms, "user-s01").response.status_code == 200
    # An LMS that sends no zone: the school's default, UTC, as before.
    teacher = frame(_launch(lti, fresh_lms, "user-t01"), tool_server.url)
    course_id, student_id = _ids(db, fresh_lms, "user-s01")
    _, teacher_id = _ids(db, fresh_lms, "user-t01")
    with db.begin() as s:
        add_goal(
            s,
            context_id=course_id,
            person_id=student_id,
            text=GOAL,
            target_date=date(2026, 3, 10),
            created_by_id=teacher_id,
            editor_is_teacher=True,
        )
    assert _held_on_default(teacher, student_id) == "2026-03-11"
    assert _overdue(teacher)

    # Canvas fills the `timezone` custom field with the teacher's zone.
    teacher = frame(
        _launch(lti, fresh_lms, "user-t01", timezone="America/Los_Angeles"), tool_server.url
    )
    assert _held_on_default(teacher, student_id) == "2026-03-10"  # still the 10th there
    assert not _overdue(teacher)  # due today: not yet overdue
    assert _stored(db, course_id) == (None, "America/Los_Angeles")

    # A student's launch speaks for the student only; an unreplaced variable is no zone.
    _launch(lti, fresh_lms, "user-s01", timezone="Asia/Tokyo")
    _launch(lti, fresh_lms, "user-t01", timezone="$Person.address.timezone")
    assert _stored(db, course_id) == (None, "America/Los_Angeles")


def _goal_pages_saying_overdue(teacher: Frame, student: Frame, student_id: int) -> list[str]:
    """Which of the goal pages outside the teacher's student page mark GOAL "Overdue"."""
    pages = {
        "student's profile": student.get("/profile/"),
        "teacher's profile editor": teacher.get(f"/profile/students/{student_id}"),
        "family report": teacher.get(f"/reports/students/{student_id}"),
    }
    for name, page in pages.items():
        assert page.status_code == 200, (name, page.text[:500])
        assert GOAL in page.text, name
    return [name for name, page in pages.items() if "Overdue" in page.text]


def test_the_profile_and_family_report_call_a_goal_overdue_by_the_courses_date(
    lti: LtiActions,
    tool_server: ToolServer,
    fresh_lms: RunningPlatform,
    db: Database,
    evening: None,
) -> None:
    student = frame(_launch(lti, fresh_lms, "user-s01"), tool_server.url)
    teacher = frame(_launch(lti, fresh_lms, "user-t01"), tool_server.url)
    course_id, student_id = _ids(db, fresh_lms, "user-s01")
    _, teacher_id = _ids(db, fresh_lms, "user-t01")
    with db.begin() as s:
        add_goal(
            s,
            context_id=course_id,
            person_id=student_id,
            text=GOAL,
            target_date=date(2026, 3, 10),
            created_by_id=teacher_id,
            editor_is_teacher=True,
        )
    # No zone from the LMS: the course is on UTC, where the 10th has passed.
    assert _goal_pages_saying_overdue(teacher, student, student_id) == [
        "student's profile",
        "teacher's profile editor",
        "family report",
    ]

    # In Los Angeles it is still the evening of the 10th: the goal is due today, as the
    # teacher's student page and the attention list already said.
    teacher = frame(
        _launch(lti, fresh_lms, "user-t01", timezone="America/Los_Angeles"), tool_server.url
    )
    assert not _overdue(teacher)
    assert _goal_pages_saying_overdue(teacher, student, student_id) == []


def test_the_teachers_time_zone_is_checked_and_wins_over_the_lms(
    lti: LtiActions,
    tool_server: ToolServer,
    fresh_lms: RunningPlatform,
    db: Database,
    evening: None,
) -> None:
    assert _launch(lti, fresh_lms, "user-s01").response.status_code == 200
    teacher = frame(
        _launch(lti, fresh_lms, "user-t01", timezone="America/Los_Angeles"), tool_server.url
    )
    course_id, student_id = _ids(db, fresh_lms, "user-s01")
    scale = teacher.get("/mastery/scale").text
    assert "<strong>America/Los_Angeles</strong>, the time zone the LMS gave" in scale

    for bad in ("Mars/Olympus", "../../../etc/passwd", "America/Los_Angeles\x00"):
        refused = teacher.post("/mastery/scale/time-zone", {"time_zone": bad})
        assert refused.status_code == 400
        assert "Choose a time zone from the list" in refused.text
    assert _stored(db, course_id)[0] is None

    saved = teacher.post("/mastery/scale/time-zone", {"time_zone": "Asia/Tokyo"})
    assert saved.status_code == 303
    shown = teacher.follow(saved).text
    assert "The time zone is saved" in shown
    assert '<option value="Asia/Tokyo" selected>' in shown
    assert _held_on_default(teacher, student_id) == "2026-03-11"  # noon in Tokyo

    # Not chosen again: the LMS's zone.
    teacher.post("/mastery/scale/time-zone", {"time_zone": ""})
    assert _held_on_default(teacher, student_id) == "2026-03-10"

    # A form without the CSRF token changes nothing.
    teacher.csrf = "forged"
    forged = teacher.post("/mastery/scale/time-zone", {"time_zone": "Asia/Tokyo"})
    assert forged.status_code == 400
    assert _stored(db, course_id)[0] is None


def test_the_roster_shows_times_in_the_courses_zone(
    lti: LtiActions, tool_server: ToolServer, fresh_lms: RunningPlatform
) -> None:
    assert _launch(lti, fresh_lms, "user-s01").response.status_code == 200
    teacher = frame(
        _launch(lti, fresh_lms, "user-t01", timezone="America/Los_Angeles"), tool_server.url
    )
    page = teacher.get("/roster/").text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d P[DS]T", page), page
    assert " UTC" not in page
