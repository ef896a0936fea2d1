"""Follow-ups to the competency editor reviews: a sub-competency added (by the form, an import
or an unarchive) under a competency that students already have evidence on."""

from __future__ import annotations

import html
from decimal import Decimal
from typing import NamedTuple

from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from tests.competencies.conftest import competencies_by_code
from tests.competencies.test_editor_crafted import browser_form, level, submit
from tests.competencies.test_import_crafted import upload
from tests.conftest import ToolServer
from tests.courses.frames import Frame, Ids, ensure_launched, make_competency, unique


class EssaysCourse(NamedTuple):
    context_id: int
    code: str
    student_id: int
    essays_id: int


def _essays_with_evidence(
    db: Database, ids: Ids, lms: RunningPlatform, tool_server: ToolServer, prefix: str
) -> EssaysCourse:
    """Essays, a competency without parts yet, on which student s01 showed Proficient (3)."""
    ensure_launched(lms, tool_server, ("user-s01",))
    cid, code = ids.context(), unique(prefix)
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
    return EssaysCourse(cid, code, student, essays)


def test_adding_a_sub_competency_under_one_with_evidence_warns_first_and_hides_nothing(
    teacher: Frame, db: Database, ids: Ids, lms: RunningPlatform, tool_server: ToolServer
) -> None:
    """A student showed Proficient on Essays. The editor's parent list marks Essays as having
    evidence and says, before saving, what adding a sub-competency under it does; after adding
    one, the page says so again, and the student's level on Essays is unchanged (still
    Proficient, mastered) instead of dropping to "no level" as a roll-up of an empty part."""
    cid, code, student, essays = _essays_with_evidence(db, ids, lms, tool_server, "ESS")
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


def test_import_and_unarchive_that_give_parts_to_a_competency_with_evidence_say_so(
    teacher: Frame, db: Database, ids: Ids, lms: RunningPlatform, tool_server: ToolServer
) -> None:
    """The form warns before a sub-competency goes under Essays; an imported file or an
    unarchived sub-competency does it without a form, so the page says it after, and the
    student's level on Essays stays as it was."""
    cid, code, student, essays = _essays_with_evidence(db, ids, lms, tool_server, "ESI")
    said = "1 competencies that had evidence now have sub-competencies"

    unrelated = f"code,title\n{code}X,Unrelated\n".encode()
    shown = html.unescape(teacher.follow(upload(teacher, "other.csv", unrelated)).text)
    assert "Imported: 1 competencies created or changed." in shown
    assert "had evidence" not in shown

    part = f"code,title,parent_code\n{code}.1,Thesis,{code}\n".encode()
    shown = html.unescape(teacher.follow(upload(teacher, "parts.csv", part)).text)
    assert "Imported: 1 competencies created or changed." in shown
    assert said in shown
    assert level(db, cid, student, essays) == (Decimal(3), True)

    thesis = competencies_by_code(db, cid, code)[f"{code}.1"].id
    shown = html.unescape(teacher.follow(teacher.post(f"/competencies/{thesis}/archive")).text)
    assert "had evidence" not in shown
    shown = html.unescape(teacher.follow(teacher.post(f"/competencies/{thesis}/unarchive")).text)
    assert "The competency is back in the framework." in shown
    assert said in shown
    assert level(db, cid, student, essays) == (Decimal(3), True)
