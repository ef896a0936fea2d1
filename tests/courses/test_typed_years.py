"""A year slipped in a date field (Chrome's date field takes "26" typed for the year as the
year 26) is refused with the form kept, not saved as the oldest result or a goal in 0026."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from lti_app.db import Database
from lti_app.demo.browser import follow_launch, parse_forms
from lti_app.demo.server import RunningPlatform
from lti_app.learners.models import CheckIn, Goal
from lti_app.mastery.models import Evidence
from tests.conftest import Launched, LtiActions, ToolServer
from tests.courses.frames import Ids, frame, make_competency


def _launch(lti: LtiActions, lms: RunningPlatform, sub: str) -> Launched:
    client = lti.browser()
    spec = lms.platform.make_launch(sub)
    return Launched(follow_launch(client, lms.platform.login_url(spec)), client)


def _count(db: Database, model: type[Evidence] | type[CheckIn] | type[Goal], course: int) -> int:
    with db.begin() as s:
        return int(
            s.scalar(select(func.count()).select_from(model).where(model.context_id == course)) or 0
        )


def test_a_two_digit_year_is_refused_with_the_form_kept(
    lti: LtiActions, tool_server: ToolServer, fresh_lms: RunningPlatform, db: Database
) -> None:
    student_frame = frame(_launch(lti, fresh_lms, "user-s01"), tool_server.url)
    teacher = frame(_launch(lti, fresh_lms, "user-t01"), tool_server.url)
    ids = Ids.of(db, fresh_lms)
    course, student = ids.context(), ids.person("user-s01")
    with db.begin() as s:
        comp = make_competency(s, course, "Y1")
    typo = (datetime.now(UTC).date() - timedelta(days=2)).replace(year=26).isoformat()
    far = (datetime.now(UTC).date() + timedelta(days=366 * 30)).isoformat()

    evidence = teacher.post(
        f"/mastery/students/{student}/evidence",
        {"competency_id": str(comp), "points": "3", "observed_on": typo, "note": "lab"},
    )
    bulk = teacher.post(
        "/mastery/evidence/bulk",
        {"student": str(student), "competency_id": str(comp), "points": "3", "observed_on": typo},
    )
    check_in = teacher.post(
        f"/course/students/{student}/check-ins", {"held_on": typo, "note": "talked"}
    )
    goal = teacher.post(
        f"/course/students/{student}/goals", {"text": "Read two books", "target_date": typo}
    )
    far_goal = teacher.post(
        f"/course/students/{student}/goals", {"text": "Read two books", "target_date": far}
    )
    profile_forms = parse_forms(student_frame.get("/profile/").text)
    student_frame.csrf = next(
        f.fields["csrf_token"] for f in profile_forms if "csrf_token" in f.fields
    )
    own_goal = student_frame.post("/profile/goals", {"text": "Run 5 km", "target_date": typo})
    for name, response, typed in (
        ("evidence", evidence, typo),
        ("bulk evidence", bulk, typo),
        ("check-in", check_in, typo),
        ("teacher's goal", goal, typo),
        ("goal years ahead", far_goal, far),
        ("student's own goal", own_goal, typo),
    ):
        page = html.unescape(response.text)
        assert response.status_code == 400, (name, response.status_code)
        assert "please check the year" in page, (
            name,
            re.sub(r"\s+", " ", page.split("<main", 1)[-1])[:1500],
        )
        assert f'value="{typed}"' in page, f"{name}: the typed date was not kept"
    assert _count(db, Evidence, course) == 0
    assert _count(db, CheckIn, course) == 0
    assert _count(db, Goal, course) == 0


def test_date_fields_offer_only_plausible_dates(
    lti: LtiActions, tool_server: ToolServer, fresh_lms: RunningPlatform, db: Database
) -> None:
    """The browser's picker stops at the same limits, so most slips never reach the server."""
    student_frame = frame(_launch(lti, fresh_lms, "user-s01"), tool_server.url)
    teacher = frame(_launch(lti, fresh_lms, "user-t01"), tool_server.url)
    ids = Ids.of(db, fresh_lms)
    student = ids.person("user-s01")
    with db.begin() as s:
        make_competency(s, ids.context(), "Y2")  # the bulk form needs something to assess
    pages = {
        "student page": teacher.get(f"/course/students/{student}").text,
        "bulk": teacher.get("/mastery/evidence/bulk").text,
        "own profile": student_frame.get("/profile/").text,
    }
    for name, page in pages.items():
        fields = re.findall(r'<input type="date"[^>]*>|<input[^>]*type="date"[^>]*>', page)
        assert fields, name
        for field in fields:
            assert 'min="2000-01-01"' in field, (name, field)
            assert re.search(r'max="\d{4}-\d\d-\d\d"', field), (name, field)
