"""Teacher mastery pages through real launches: bulk evidence, corrections, the scale."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.levels import current_levels
from lti_app.mastery.models import Evidence
from lti_app.mastery.scales import DEFAULT_LEVELS, update_scale
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import (
    BIO_STUDENTS,
    Frame,
    Ids,
    ensure_launched,
    frame,
    make_competency,
    unique,
)
from tests.mastery.confirming import confirm_of


@pytest.fixture
def teacher(lti: LtiActions, tool_server: ToolServer, lms: RunningPlatform) -> Frame:
    ensure_launched(lms, tool_server, BIO_STUDENTS)
    return frame(lti.launch("user-t01"), tool_server.url)


def test_bulk_evidence_for_three_students_updates_their_levels(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    cid = ids.context()
    with db.begin() as s:
        competency = make_competency(s, cid, unique("BULK"))
    page = teacher.get("/mastery/evidence/bulk").text
    assert 'data-select-all="student"' in page
    assert "Bobby &lt;b&gt;Tables&lt;/b&gt;" in page
    three = [ids.person(sub) for sub in ("user-s01", "user-s02", "user-s03")]
    response = teacher.post(
        "/mastery/evidence/bulk",
        {
            "student": [str(p) for p in three],
            "competency_id": str(competency),
            "points": "3.00",
            "note": "Lab practical",
            "observed_on": "",
        },
    )
    assert "Evidence recorded for 3 student(s)." in teacher.follow(response).text
    with db.begin() as s:
        for person_id in three:
            level = current_levels(s, context_id=cid, person_id=person_id)[competency]
            assert (level.level_name, level.is_mastered) == ("Proficient", True)
    # No student ticked: refused, nothing recorded.
    refused = teacher.post(
        "/mastery/evidence/bulk", {"competency_id": str(competency), "points": "2.00"}
    )
    assert refused.status_code == 400
    assert "Tick at least one student" in refused.text


def test_student_page_records_corrects_and_withdraws_evidence(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    cid, student = ids.context(), ids.person("user-s02")
    code = unique("EV")
    with db.begin() as s:
        competency = make_competency(s, cid, code)
    recorded = teacher.post(
        f"/mastery/students/{student}/evidence",
        {"competency_id": str(competency), "points": "2.00", "note": "Quiz <1>"},
    )
    page = teacher.follow(recorded).text
    assert "Evidence recorded." in page
    assert code in page
    assert "Developing" in page
    assert "Quiz &lt;1&gt;" in page
    assert "Amara Okafor" in page  # who recorded it
    with db.begin() as s:
        evidence = s.scalars(select(Evidence).where(Evidence.competency_id == competency)).one()
    detail = teacher.get(f"/mastery/evidence/{evidence.id}").text
    assert "Not changed since it was recorded." in detail
    assert "(2 points)</dd>" in detail
    assert ">Emerging (1 point)</option>" in detail  # not "1 points"
    corrected = teacher.post(
        f"/mastery/evidence/{evidence.id}/correct",
        {
            "points": "4.00",
            "note": "Quiz, regraded",
            "observed_on": str(evidence.observed_at.date()),
        },
    )
    assert "The evidence is corrected." in teacher.follow(corrected).text
    history = teacher.get(f"/mastery/evidence/{evidence.id}").text
    assert "Corrected" in history
    assert "Quiz, regraded" in history
    assert "<td>2 points, <time" in history  # the recorded 2.00, as the pickers word it
    # The 4 was the student's mastery: withdrawing it asks first.
    asked = teacher.post(f"/mastery/evidence/{evidence.id}/withdraw")
    assert "Not saved yet" in asked.text
    withdrawn = teacher.post(f"/mastery/evidence/{evidence.id}/withdraw", confirm_of(asked.text))
    assert "Withdrawn" in teacher.follow(withdrawn).text
    with db.begin() as s:
        level = current_levels(s, context_id=cid, person_id=student)[competency]
        assert level.level_name is None
        assert level.evidence_count == 0
    again = teacher.post(f"/mastery/evidence/{evidence.id}/withdraw")
    assert again.status_code == 400


def test_scale_change_shows_what_changed(
    lti: LtiActions, tool_server: ToolServer, lms: RunningPlatform, db: Database, ids: Ids
) -> None:
    ensure_launched(lms, tool_server, ("user-s01",), context_id="course-chem-club")
    chem = frame(lti.launch("user-t02", context_id="course-chem-club"), tool_server.url)
    cid, student = ids.context("course-chem-club"), ids.person("user-s01")
    code = unique("SC")
    with db.begin() as s:
        competency = make_competency(s, cid, code)
    chem.follow(
        chem.post(
            f"/mastery/students/{student}/evidence",
            {"competency_id": str(competency), "points": "2.00"},
        )
    )
    form = chem.get("/mastery/scale").text
    assert 'value="Developing"' in form
    levels = {
        "rows": "6",
        "method": "most_recent",
        "weight": "65",
        "n": "3",
        "mastery": "1",  # Developing becomes mastery
        "level-0-name": "Beginning",
        "level-0-points": "1",
        "level-0-colour": "#b42318",
        "level-1-name": "Developing",
        "level-1-points": "2",
        "level-1-colour": "#93370d",
        "level-2-name": "Proficient",
        "level-2-points": "3",
        "level-2-colour": "#067647",
        "level-3-name": "Advanced",
        "level-3-points": "4",
        "level-3-colour": "#175cd3",
    }
    try:
        bad = chem.post("/mastery/scale", {**levels, "level-2-points": "1.5"})
        assert bad.status_code == 400
        assert "rising points" in bad.text
        changed = chem.post("/mastery/scale", levels)
        assert changed.status_code == 200
        assert "What changed" in changed.text
        assert code in changed.text
        assert "Now mastered" in changed.text
        # The report answers the POST; its history entry gets the scale page's address
        # (frame.js), so Back or reload in the LMS frame opens the scale instead of the
        # browser's "Confirm form resubmission" or a second save.
        history = re.search(r'<body data-history-url="([^"]+)"', changed.text)
        assert history is not None, changed.text[:500]
        assert history.group(1).startswith("/mastery/scale?lt=")
        again = chem.client.get(chem.base + html.unescape(history.group(1)))
        assert again.status_code == 200
        assert "<h1>Mastery scale</h1>" in again.text
    finally:
        with db.begin() as s:
            update_scale(
                s,
                context_id=cid,
                method=CalculationMethod.DECAYING_AVERAGE,
                levels=[tuple(spec) for spec in DEFAULT_LEVELS],  # type: ignore[misc]
            )
    assert DEFAULT_LEVELS[1].points == Decimal(2)


def test_bulk_evidence_for_a_saved_group(teacher: Frame, db: Database, ids: Ids) -> None:
    from lti_app.insights.groups import create_group

    cid = ids.context()
    members = [ids.person(sub) for sub in ("user-s03", "user-s10")]
    with db.begin() as s:
        competency = make_competency(s, cid, unique("GRP"))
        group_id = create_group(
            s,
            context_id=cid,
            name=unique("Needs re-teaching"),
            person_ids=members,
            created_by_id=None,
        ).id
    page = teacher.get("/mastery/evidence/bulk").text
    assert 'name="group_id"' in page
    response = teacher.post(
        "/mastery/evidence/bulk",
        {
            "group_id": str(group_id),
            "competency_id": str(competency),
            "points": "2.00",
            "observed_on": "",
        },
    )
    assert "Evidence recorded for 2 student(s)." in teacher.follow(response).text
    with db.begin() as s:
        for person_id in members:
            level = current_levels(s, context_id=cid, person_id=person_id)[competency]
            assert level.level_name == "Developing"
    student_page = teacher.get(f"/course/students/{members[0]}").text
    assert "Needs re-teaching" in student_page
