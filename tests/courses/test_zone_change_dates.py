"""The day a teacher types for evidence stays that day when the course's time zone changes
afterwards: on every page, the CSV and the family report."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from babel.dates import format_date
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo.browser import follow_launch
from lti_app.demo.server import RunningPlatform
from lti_app.mastery.models import Evidence
from tests.conftest import Launched, LtiActions, ToolServer
from tests.courses.frames import Frame, Ids, frame, make_competency


def _launch(lti: LtiActions, lms: RunningPlatform, sub: str) -> Launched:
    client = lti.browser()
    spec = lms.platform.make_launch(sub)
    return Launched(follow_launch(client, lms.platform.login_url(spec)), client)


def _dates_shown(teacher: Frame, evidence_id: int, student: int) -> dict[str, str]:
    """The evidence's date as each page, the CSV and the family report show it."""
    page = teacher.get(f"/mastery/evidence/{evidence_id}").text
    found = re.search(r'<dt>Observed</dt><dd><time datetime="[^"]+">([0-9-]+)</time>', page)
    assert found, page[:3000]
    student_page = teacher.get(f"/course/students/{student}").text
    listed = re.search(r'<td><time datetime="[^"]+">([0-9-]+)</time></td>', student_page)
    assert listed, student_page[:3000]
    rows = list(csv.DictReader(io.StringIO(teacher.get("/insights/evidence.csv").text)))
    report = teacher.get(f"/reports/students/{student}").text
    comment = re.search(r"<li>([^<]*) · <bdi[^>]*>Z1 ", report)
    assert comment, report[:3000]
    return {
        "evidence page": found.group(1),
        "student page": listed.group(1),
        "csv": rows[0]["observed_on"],
        "family report": comment.group(1).strip(),
    }


def test_evidence_date_typed_by_teacher_survives_choosing_the_courses_zone(
    lti: LtiActions, tool_server: ToolServer, fresh_lms: RunningPlatform, db: Database
) -> None:
    assert _launch(lti, fresh_lms, "user-s01").response.status_code == 200
    # An LMS that sends no zone (Moodle): the course starts on the school default, UTC.
    teacher = frame(_launch(lti, fresh_lms, "user-t01"), tool_server.url)
    ids = Ids.of(db, fresh_lms)
    course, student = ids.context(), ids.person("user-s01")
    with db.begin() as s:
        comp = make_competency(s, course, "Z1")
    typed = datetime.now(UTC).date() - timedelta(days=3)
    saved = teacher.post(
        f"/mastery/students/{student}/evidence",
        {
            "competency_id": str(comp),
            "points": "3",
            "observed_on": typed.isoformat(),
            "note": "Explained osmosis",
        },
    )
    assert saved.status_code == 303, saved.text[:800]
    with db.begin() as s:
        ev_id = s.scalars(select(Evidence.id).where(Evidence.context_id == course)).one()
    expected = {
        "evidence page": typed.isoformat(),
        "student page": typed.isoformat(),
        "csv": typed.isoformat(),
        "family report": format_date(typed, format="long", locale="en"),
    }
    assert _dates_shown(teacher, ev_id, student) == expected
    # The school is in New Zealand: the teacher sets the course's zone on the scale page.
    chosen = teacher.post("/mastery/scale/time-zone", {"time_zone": "Pacific/Auckland"})
    assert chosen.status_code == 303
    # The observation was made on the day typed; it read as the next day everywhere.
    assert _dates_shown(teacher, ev_id, student) == expected
    # Correcting only the note keeps the day too (the form offers the day as stored).
    form = teacher.get(f"/mastery/evidence/{ev_id}").text
    offered = re.search(r'name="observed_on" value="([0-9-]+)"', form)
    assert offered is not None
    assert offered.group(1) == typed.isoformat()
