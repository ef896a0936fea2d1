"""Follow-ups to the competency editor reviews: a sub-competency added under a competency that
students already have evidence on."""

from __future__ import annotations

import html
from decimal import Decimal

from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from tests.competencies.test_editor_crafted import browser_form, level, submit
from tests.conftest import ToolServer
from tests.courses.frames import Frame, Ids, ensure_launched, make_competency, unique


def test_adding_a_sub_competency_under_one_with_evidence_warns_first_and_hides_nothing(
    teacher: Frame, db: Database, ids: Ids, lms: RunningPlatform, tool_server: ToolServer
) -> None:
    """A student showed Proficient on Essays. The editor's parent list marks Essays as having
    evidence and says, before saving, what adding a sub-competency under it does; after adding
    one, the page says so again, and the student's level on Essays is unchanged (still
    Proficient, mastered) instead of dropping to "no level" as a roll-up of an empty part."""
    ensure_launched(lms, tool_server, ("user-s01",))
    cid, code = ids.context(), unique("ESS")
    student, me = ids.person("user-s01"), ids.person("user-t01")
    with db.begin() as s:
        essays = make_competency(s, cid, code, title="Essays")
        record_evidence(
            s,
            context_id=cid,
            competency_id=essays,
            student_ids=[student],
            points=Decimal(3),
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=me,
        )
    page = teacher.get("/competencies/")
    text = html.unescape(page.text)
    assert f"{code} · Essays (has evidence from 1 student)" in text
    assert "keeps that evidence counting" in text

    form = browser_form(page.text, "/competencies/")
    answer = submit(
        teacher, form, code=f"{code}.1", title="Thesis", parent_id=str(essays), prerequisite_ids=[]
    )
    shown = html.unescape(teacher.follow(answer).text)
    assert "Its parent already had evidence from 1 student(s)" in shown
    assert level(db, cid, student, essays) == (Decimal(3), True)
