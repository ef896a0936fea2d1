"""The competency editor as teachers really use it, and as hostile input meets it.

Stale pages and second tabs, double clicks on Add and on Copy, ids edited by hand, other
courses and other LMSs, archived parents and prerequisites, copying into a course that already
has part of the framework, and what archiving or moving a competency does to pathways and to
students' levels. Every test asserts what a teacher (or student) would notice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies import queries, services
from lti_app.competencies.errors import CompetencyCycleError, CompetencyNotFoundError
from lti_app.competencies.importing import copy_framework, export_csv, import_csv
from lti_app.competencies.models import Competency
from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from lti_app.mastery.models import EvidenceSource, StudentCompetencyLevel
from lti_app.mastery.services import record_evidence
from lti_app.pathways import services as pathways
from lti_app.pathways.copying import copy_pathways
from lti_app.pathways.models import Pathway
from lti_app.pathways.options import OptionInput, create_option
from lti_app.tool.models import Context, Membership, MembershipStatus, Person
from tests.competencies.conftest import competencies_by_code
from tests.conftest import ToolServer
from tests.courses.frames import Frame, Ids, ensure_launched, make_competency, unique
from tests.domain_fixtures import Course, make_course, make_platform
from tests.mastery.confirming import confirm_of

INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
HUGE = "9" * 25


# --- a browser's reading of a form ------------------------------------------------------------


@dataclass
class BrowserForm:
    """What a browser would post for one form, left as the page shows it."""

    action: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    options: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Each select's (value, label) choices, and each checkbox name's (value, label)."""


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[BrowserForm] = []
        self._form: BrowserForm | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen: str | None = None
        self._option: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = BrowserForm(a.get("action", ""))
            self.forms.append(self._form)
        if self._form is None:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in {"checkbox", "radio"}:
                self._form.options.setdefault(a["name"], []).append((a.get("value", "on"), ""))
                if "checked" in a:
                    self._form.fields.append((a["name"], a.get("value", "on")))
            elif kind not in {"submit", "button", "file"}:
                self._form.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._select_first, self._select_chosen = a.get("name"), None, None
        elif tag == "option" and self._select:
            value = a.get("value", "")
            self._option, self._text = value, ""
            if self._select_first is None:
                self._select_first = value
            if "selected" in a:
                self._select_chosen = value
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), ""

    def handle_data(self, data: str) -> None:
        self._text += data

    def handle_endtag(self, tag: str) -> None:
        if self._form is None:
            return
        if tag == "option" and self._select and self._option is not None:
            self._form.options.setdefault(self._select, []).append((self._option, self._text))
            self._option = None
        elif tag == "select" and self._select:
            chosen = self._select_chosen if self._select_chosen is not None else self._select_first
            self._form.fields.append((self._select, chosen or ""))
            self._select = None
        elif tag == "textarea" and self._textarea:
            # A browser drops one leading newline of a textarea's content.
            text = self._text[1:] if self._text.startswith("\n") else self._text
            self._form.fields.append((self._textarea, text))
            self._textarea = None
        elif tag == "form":
            self._form = None


def browser_form(html: str, path: str) -> BrowserForm:
    """The form of the page that posts to this path."""
    reader = _Reader()
    reader.feed(html)
    for found in reader.forms:
        if found.action.split("?")[0] == path:
            return found
    raise AssertionError(f"no form posting to {path!r}")


def submit(teacher: Frame, form: BrowserForm, **changes: str | list[str]) -> httpx.Response:
    """Post the form as the page left it, with these fields changed by the teacher."""
    fields: dict[str, Any] = {}
    for name, value in form.fields:
        fields.setdefault(name, []).append(value)
    fields.update({k: v if isinstance(v, list) else [v] for k, v in changes.items()})
    path = form.action.split("?")[0]
    return teacher.client.post(teacher.base + path, data=fields)


def at_once(*calls: Any) -> list[httpx.Response]:
    """Run these requests at the same moment (a double click), in threads."""
    barrier = threading.Barrier(len(calls))
    answers: list[httpx.Response] = []

    def run(call: Any) -> None:
        barrier.wait()
        answers.append(call())

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return answers


def level(db: Database, context_id: int, person_id: int, competency_id: int) -> tuple[Any, ...]:
    with db.begin() as s:
        row = s.scalar(
            select(StudentCompetencyLevel).where(
                StudentCompetencyLevel.context_id == context_id,
                StudentCompetencyLevel.person_id == person_id,
                StudentCompetencyLevel.competency_id == competency_id,
            )
        )
        return (None, False) if row is None else (row.score, row.is_mastered)


# --- archive and restore ------------------------------------------------------------------------


def test_restoring_a_unit_does_not_bring_back_a_sub_competency_retired_on_its_own(
    session: Session, course: Course
) -> None:
    """A teacher retires one outdated sub-competency in January and archives the whole unit in
    May. Restoring the unit in September brings back what was archived with it in May, not the
    sub-competency retired on its own, which stays archived until restored by itself."""
    cid = course.context_id
    unit = make_competency(session, cid, "U")
    kept = make_competency(session, cid, "U.1", parent_id=unit)
    retired = make_competency(session, cid, "U.2", parent_id=unit)
    services.archive_competency(session, context_id=cid, competency_id=retired)
    services.archive_competency(session, context_id=cid, competency_id=unit)
    session.commit()
    session.expire_all()
    services.unarchive_competency(session, context_id=cid, competency_id=unit)
    session.commit()
    shown = [c.code for c in queries.list_competencies(session, context_id=cid)]
    assert shown == ["U", "U.1"]
    assert queries.get_competency(session, context_id=cid, competency_id=kept).parent_id == unit
    services.unarchive_competency(session, context_id=cid, competency_id=retired)
    assert [c.code for c in queries.list_competencies(session, context_id=cid)] == [
        "U",
        "U.1",
        "U.2",
    ]


def test_a_competency_cannot_be_its_own_parent_or_prerequisite_even_through_others(
    session: Session, course: Course
) -> None:
    cid = course.context_id
    a = make_competency(session, cid, "A")
    b = make_competency(session, cid, "B", parent_id=a, prerequisite_ids=[a])
    c = make_competency(session, cid, "C", parent_id=b, prerequisite_ids=[b])
    before = (
        queries.parent_map(session, context_id=cid),
        queries.prerequisite_map(session, context_id=cid),
    )
    for parent in (a, c):
        with pytest.raises(CompetencyCycleError):
            services.edit_competency(session, context_id=cid, competency_id=a, parent_id=parent)
    for prerequisites in ([a], [c], [b, c]):
        with pytest.raises(CompetencyCycleError):
            services.set_prerequisites(
                session, context_id=cid, competency_id=a, prerequisite_ids=prerequisites
            )
    session.expire_all()
    after = (
        queries.parent_map(session, context_id=cid),
        queries.prerequisite_map(session, context_id=cid),
    )
    assert after == before


def test_ids_of_another_courses_competencies_are_not_found_anywhere_in_the_editor(
    session: Session, course: Course, other_course: Course
) -> None:
    mine = make_competency(session, course.context_id, "MINE")
    theirs = make_competency(session, other_course.context_id, "THEIRS")
    cid = course.context_id
    attempts: list[Callable[[], object]] = [
        lambda: services.create_competency(
            session, context_id=cid, code="X", title="X", parent_id=theirs
        ),
        lambda: services.create_competency(
            session, context_id=cid, code="Y", title="Y", prerequisite_ids=[theirs]
        ),
        lambda: services.edit_competency(
            session, context_id=cid, competency_id=mine, parent_id=theirs
        ),
        lambda: services.edit_competency(
            session, context_id=cid, competency_id=theirs, title="Mine now"
        ),
        lambda: services.set_prerequisites(
            session, context_id=cid, competency_id=mine, prerequisite_ids=[theirs]
        ),
        lambda: services.archive_competency(session, context_id=cid, competency_id=theirs),
        lambda: services.unarchive_competency(session, context_id=cid, competency_id=theirs),
        lambda: services.reorder_competencies(
            session, context_id=cid, parent_id=None, ordered_ids=[theirs, mine]
        ),
    ]
    for attempt in attempts:
        savepoint = session.begin_nested()  # what the view's rollback does
        with pytest.raises(CompetencyNotFoundError):
            attempt()
        savepoint.rollback()
    session.expire_all()
    other = queries.list_competencies(session, context_id=other_course.context_id)
    assert [(c.code, c.title, c.is_archived) for c in other] == [("THEIRS", "Title THEIRS", False)]
    assert [c.code for c in queries.list_competencies(session, context_id=cid)] == ["MINE"]
    assert queries.prerequisite_map(session, context_id=cid) == {}


# --- copying into another course --------------------------------------------------------------


def _pathway_with_steps(session: Session, context_id: int, competency_ids: list[int]) -> int:
    pathway = pathways.create_pathway(
        session, context_id=context_id, title="Ecosystems", competency_ids=competency_ids
    )
    step = pathways.create_step(
        session,
        context_id=context_id,
        pathway_id=pathway.id,
        title="Food webs",
        competency_id=competency_ids[-1],
        prerequisite_ids=competency_ids[:1],
    )
    create_option(session, context_id=context_id, step_id=step.id, data=OptionInput("Pond survey"))
    return pathway.id


def _copy(session: Session, source: int, target: int) -> dict[int, int]:
    """What the Copy button does: the framework, then the pathways."""
    id_map = copy_framework(session, from_context_id=source, to_context_id=target)
    copy_pathways(session, from_context_id=source, to_context_id=target, competency_id_map=id_map)
    return id_map


def test_copying_twice_does_not_give_every_pathway_twice(session: Session, course: Course) -> None:
    """A teacher copies last year's course, then presses Copy again a week later (or in a
    second tab). The framework is matched by code; a pathway already copied, unchanged, must not
    appear a second time in the students' list. One the teacher has since changed is theirs to
    keep, and the source's version comes in beside it."""
    target = make_course(session, make_platform(session))
    src = course.context_id
    eco = make_competency(session, src, "ECO")
    web = make_competency(session, src, "ECO.1", parent_id=eco)
    _pathway_with_steps(session, src, [eco, web])
    _copy(session, src, target.context_id)
    _copy(session, src, target.context_id)
    titles = [p.title for p in pathways.list_pathways(session, context_id=target.context_id)]
    assert titles == ["Ecosystems"]
    [copied] = pathways.list_pathways(session, context_id=target.context_id)
    assert [
        s.title
        for s in pathways.list_steps(session, context_id=target.context_id, pathway_id=copied.id)
    ] == ["Food webs"]
    copied.title = "Ecosystems (my version)"
    session.flush()
    _copy(session, src, target.context_id)
    titles = [p.title for p in pathways.list_pathways(session, context_id=target.context_id)]
    assert sorted(titles) == ["Ecosystems", "Ecosystems (my version)"]


def test_copy_into_a_course_with_some_of_the_codes_updates_them_and_keeps_the_rest(
    session: Session, course: Course
) -> None:
    """The target's own competencies, its students' evidence and its own pathways stay; a code
    both courses use takes the source's wording (as the copy page says), keeps its id, and so
    keeps its evidence and the target's pathways that use it."""
    target = make_course(session, make_platform(session), students=1)
    src, tgt = course.context_id, target.context_id
    make_competency(session, src, "SHARED", title="From last year")
    make_competency(session, src, "NEW", title="Only in the source")
    shared = make_competency(session, tgt, "SHARED", title="Old wording")
    own = make_competency(session, tgt, "OWN", title="Only here", parent_id=shared)
    own_pathway = pathways.create_pathway(
        session, context_id=tgt, title="Mine", competency_ids=[shared]
    )
    record_evidence(
        session,
        context_id=tgt,
        competency_id=own,
        student_ids=target.student_ids,
        points=Decimal(3),
        source=EvidenceSource.TEACHER,
        note="",
        recorded_by_id=target.teacher_id,
    )
    id_map = _copy(session, src, tgt)
    found = {c.code: c for c in queries.list_competencies(session, context_id=tgt)}
    assert set(found) == {"SHARED", "OWN", "NEW"}
    assert found["SHARED"].id == shared
    assert found["SHARED"].title == "From last year"
    assert found["OWN"].parent_id == shared  # the target's own sub-competency stays under it
    assert set(id_map.values()) == {shared, found["NEW"].id}
    assert pathways.pathway_competency_ids(session, context_id=tgt, pathway_id=own_pathway.id) == [
        shared
    ]
    levels = session.scalars(
        select(StudentCompetencyLevel.competency_id).where(StudentCompetencyLevel.context_id == tgt)
    ).all()
    assert own in levels
    # And nothing went the other way.
    assert {c.code for c in queries.list_competencies(session, context_id=src)} == {
        "SHARED",
        "NEW",
    }


def test_importing_the_export_again_keeps_a_prerequisite_archived_for_now(
    session: Session, course: Course
) -> None:
    """The export leaves archived competencies out, so importing it back (after fixing a title
    in a spreadsheet) must not read their absence as "remove this prerequisite"."""
    cid = course.context_id
    old = make_competency(session, cid, "OLD")
    make_competency(session, cid, "NEXT", prerequisite_ids=[old])
    services.archive_competency(session, context_id=cid, competency_id=old)
    exported = export_csv(session, context_id=cid)
    summary = import_csv(session, context_id=cid, data=exported.replace("Title NEXT", "Fixed"))
    assert (summary.created, summary.updated) == (0, 1)
    found = {c.code: c for c in queries.list_competencies(session, context_id=cid)}
    assert found["NEXT"].title == "Fixed"
    assert queries.prerequisite_map(session, context_id=cid)[found["NEXT"].id] == {old}
    # A file that brings the archived one back says what its prerequisites are.
    import_csv(
        session, context_id=cid, data="code,title,prerequisite_codes\nOLD,Old,\nNEXT,Fixed,\n"
    )
    assert queries.prerequisite_map(session, context_id=cid) == {}


def test_after_moving_and_archiving_the_export_imports_back_as_no_change(
    session: Session, course: Course
) -> None:
    """Moving a competency to another unit, or archiving one, leaves its old siblings where
    they were; exporting and importing the framework again must then report nothing changed."""
    cid = course.context_id
    unit, other = make_competency(session, cid, "U"), make_competency(session, cid, "V")
    first = make_competency(session, cid, "U.1", parent_id=unit)
    make_competency(session, cid, "U.2", parent_id=unit)
    gone = make_competency(session, cid, "V.1", parent_id=other)
    make_competency(session, cid, "V.2", parent_id=other)
    services.edit_competency(session, context_id=cid, competency_id=first, parent_id=other)
    services.archive_competency(session, context_id=cid, competency_id=gone)
    before = [(c.code, c.parent_id) for c in queries.list_competencies(session, context_id=cid)]
    summary = import_csv(session, context_id=cid, data=export_csv(session, context_id=cid))
    assert (summary.created, summary.updated) == (0, 0)
    after = [(c.code, c.parent_id) for c in queries.list_competencies(session, context_id=cid)]
    assert after == before


def test_export_without_archived_competencies_imports_into_an_empty_course(
    session: Session, course: Course, other_course: Course
) -> None:
    cid = course.context_id
    unit = make_competency(session, cid, "UNIT")
    old = make_competency(session, cid, "OLD", parent_id=unit)
    make_competency(session, cid, "NEXT", parent_id=unit, prerequisite_ids=[old])
    services.archive_competency(session, context_id=cid, competency_id=old)
    exported = export_csv(session, context_id=cid)
    assert "OLD" not in exported
    import_csv(session, context_id=other_course.context_id, data=exported)
    copied = queries.list_competencies(session, context_id=other_course.context_id)
    assert [c.code for c in copied] == ["UNIT", "NEXT"]
    assert queries.prerequisite_map(session, context_id=other_course.context_id) == {}


# --- pages: the edit form -------------------------------------------------------------------


def test_fixing_a_typo_in_an_archived_sub_competency_keeps_it_in_its_unit(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    """Saving the edit page unchanged but for the title must not move the competency to the
    top level: its archived unit is its parent still, and restoring the unit restores it."""
    cid, p = ids.context(), unique("ARCP")
    with db.begin() as s:
        unit = make_competency(s, cid, f"{p}.U")
        child = make_competency(s, cid, f"{p}.1", parent_id=unit)
    teacher.follow(teacher.post(f"/competencies/{unit}/archive"))
    page = teacher.get(f"/competencies/{child}/edit")
    assert page.status_code == 200
    form = browser_form(page.text, f"/competencies/{child}/edit")
    saved = submit(teacher, form, title="Photosynthesis (fixed typo)")
    teacher.follow(saved)
    stored = competencies_by_code(db, cid, p)[f"{p}.1"]
    assert stored.title == "Photosynthesis (fixed typo)"
    assert stored.parent_id == unit
    teacher.follow(teacher.post(f"/competencies/{unit}/unarchive"))
    assert not any(c.is_archived for c in competencies_by_code(db, cid, p).values())


def test_saving_a_competency_keeps_a_prerequisite_that_is_archived_for_now(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    """The teacher archives a prerequisite for a term, then renames the competency that needs
    it. The page must show that prerequisite (marked archived) and keep it unless unticked."""
    cid, p = ids.context(), unique("ARPR")
    with db.begin() as s:
        first = make_competency(s, cid, f"{p}.1")
        second = make_competency(s, cid, f"{p}.2", prerequisite_ids=[first])
    teacher.follow(teacher.post(f"/competencies/{first}/archive"))
    page = teacher.get(f"/competencies/{second}/edit")
    form = browser_form(page.text, f"/competencies/{second}/edit")
    offered = dict(form.options.get("prerequisite_ids", []))
    assert str(first) in offered
    teacher.follow(submit(teacher, form, title="Renamed"))
    with db.begin() as s:
        assert queries.prerequisite_map(s, context_id=cid).get(second) == {first}
    # Unticking it removes it.
    page = teacher.get(f"/competencies/{second}/edit")
    form = browser_form(page.text, f"/competencies/{second}/edit")
    form.fields = [(k, v) for k, v in form.fields if k != "prerequisite_ids"]
    teacher.follow(submit(teacher, form))
    with db.begin() as s:
        assert second not in queries.prerequisite_map(s, context_id=cid)


def test_a_refused_save_keeps_everything_the_teacher_typed(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    """A code already in use is refused; the page that says so must still hold the new title,
    description, kind, parent and ticked prerequisites, not the stored ones, or the teacher
    retypes everything. The same for the Add form."""
    cid, p = ids.context(), unique("KEEP")
    with db.begin() as s:
        taken = make_competency(s, cid, f"{p}.TAKEN")
        parent = make_competency(s, cid, f"{p}.P")
        pre = make_competency(s, cid, f"{p}.PRE")
        mine = make_competency(s, cid, f"{p}.MINE", title="Old title")
    typed = {
        "code": f"{p}.TAKEN",
        "title": "New title the teacher typed",
        "description": "Two paragraphs\nof careful wording",
        "kind": "non_academic",
        "parent_id": str(parent),
        "prerequisite_ids": [str(pre)],
    }
    refused = teacher.post(f"/competencies/{mine}/edit", typed)
    assert refused.status_code == 400
    assert "already used" in refused.text
    again = browser_form(refused.text, f"/competencies/{mine}/edit")
    shown = dict(again.fields)
    assert shown["title"] == typed["title"]
    assert shown["description"] == typed["description"]
    assert shown["code"] == typed["code"]
    assert shown["kind"] == "non_academic"
    assert shown["parent_id"] == str(parent)
    assert ("prerequisite_ids", str(pre)) in again.fields
    assert competencies_by_code(db, cid, p)[f"{p}.MINE"].title == "Old title"

    added = teacher.post("/competencies/", typed)
    assert added.status_code == 400
    add_form = browser_form(added.text, "/competencies/")
    assert dict(add_form.fields)["parent_id"] == str(parent)
    assert ("prerequisite_ids", str(pre)) in add_form.fields
    assert sorted(competencies_by_code(db, cid, p)) == [
        f"{p}.{c}" for c in ("MINE", "P", "PRE", "TAKEN")
    ]
    assert taken


def test_double_click_on_add_adds_the_competency_once_and_shows_no_error(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    """Two presses of Add (a double click, a slow frame) land on the framework with the new
    competency, once. An error page saying the code is taken would make the teacher think
    nothing was saved."""
    cid, p = ids.context(), unique("DBL")
    with db.begin() as s:
        parent = make_competency(s, cid, f"{p}.P")
    teacher.csrf_token()
    fields = {"code": f"{p}.1", "title": "Cells", "kind": "academic", "parent_id": str(parent)}
    answers = at_once(*[lambda: teacher.post("/competencies/", fields)] * 3)
    assert sorted(a.status_code for a in answers) == [303, 303, 303], [
        a.text[-400:] for a in answers
    ]
    assert sorted(competencies_by_code(db, cid, p)) == [f"{p}.1", f"{p}.P"]
    # Another competency with the same code is still refused.
    different = teacher.post("/competencies/", {**fields, "title": "Something else"})
    assert different.status_code == 400
    assert "already used" in different.text


def test_odd_and_hostile_values_get_plain_answers_and_change_nothing(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    cid, p = ids.context(), unique("ODD")
    with db.begin() as s:
        a = make_competency(s, cid, f"{p}.A")
    base = {"code": f"{p}.N", "title": "New", "kind": "academic"}
    tries: list[tuple[str, dict[str, Any]]] = [
        ("/competencies/", {**base, "kind": "robotic"}),
        ("/competencies/", {**base, "parent_id": "abc"}),
        ("/competencies/", {**base, "parent_id": HUGE}),
        ("/competencies/", {**base, "parent_id": "-1"}),
        ("/competencies/", {**base, "prerequisite_ids": [HUGE]}),
        ("/competencies/", {**base, "title": "Cells\x00"}),
        ("/competencies/", {**base, "code": "A;B"}),
        ("/competencies/", {**base, "code": "C" * 65}),
        ("/competencies/", {**base, "title": "   "}),
        (f"/competencies/{a}/edit", {**base, "code": f"{p}.A", "parent_id": str(a)}),
        (f"/competencies/{a}/edit", {**base, "code": f"{p}.A", "prerequisite_ids": [str(a)]}),
        (f"/competencies/{a}/edit", {**base, "code": f"{p}.A", "description": "x\x00y"}),
        (f"/competencies/{a}/move", {"direction": "sideways"}),
        (f"/competencies/{HUGE}/move", {"direction": "up"}),
        (f"/competencies/{HUGE}/archive", {}),
        ("/competencies/2147483648/unarchive", {}),
        ("/competencies/copy", {"source_context_id": HUGE}),
        ("/competencies/copy", {"source_context_id": "x"}),
    ]
    for path, data in tries:
        answer = teacher.post(path, data)
        assert answer.status_code in {400, 404}, (path, data, answer.status_code)
        assert "unexpected problem" not in answer.text, (path, data)
        assert "Traceback" not in answer.text
    assert competencies_by_code(db, cid, p)[f"{p}.A"].title == f"Title {p}.A"
    assert list(competencies_by_code(db, cid, p)) == [f"{p}.A"]
    for query in ({"notice": "copied", "n": "<b>x</b>"}, {"notice": "imported", "n": HUGE}):
        page = teacher.get("/competencies/", **query)
        assert page.status_code == 200
        assert "<b>x</b>" not in page.text


def test_teacher_and_lms_text_is_shown_as_text(teacher: Frame, db: Database, ids: Ids) -> None:
    cid, p = ids.context(), unique("ESC")
    evil = '<img src=x onerror="alert(1)">'
    me = ids.person("user-t01")
    with db.begin() as s:
        c = make_competency(s, cid, f"{p}.1", title=evil, description=evil)
        platform_id = s.scalar(select(Person.platform_id).where(Person.id == me))
        src = Context(platform_id=platform_id, context_id=unique("course-"), title=evil)
        s.add(src)
        s.flush()
        s.add(Membership(context_id=src.id, person_id=me, roles=[INSTRUCTOR], is_teacher=True))
    for path in ("/competencies/", f"/competencies/{c}/edit", "/competencies/copy"):
        page = teacher.get(path)
        assert page.status_code == 200
        assert evil not in page.text, path
        assert "&lt;img src=x" in page.text, path


# --- pages: copying from another course -----------------------------------------------------


def _course_taught_by(
    db: Database,
    person_id: int,
    *,
    platform_id: int | None = None,
    teacher: bool = True,
    status: MembershipStatus = MembershipStatus.ACTIVE,
) -> int:
    """A course on the teacher's LMS (or another) where this person has this membership."""
    with db.begin() as s:
        if platform_id is None:
            platform_id = s.scalar(select(Person.platform_id).where(Person.id == person_id))
        course = Context(
            platform_id=platform_id, context_id=unique("course-src-"), title=unique("Source ")
        )
        s.add(course)
        s.flush()
        s.add(
            Membership(
                context_id=course.id,
                person_id=person_id,
                roles=[INSTRUCTOR if teacher else LEARNER],
                is_teacher=teacher,
                is_learner=not teacher,
                status=status,
            )
        )
        return course.id


def _source_framework(db: Database, source: int, p: str) -> None:
    with db.begin() as s:
        unit = make_competency(s, source, f"{p}.U", title="Ecology")
        web = make_competency(s, source, f"{p}.1", title="Food webs", parent_id=unit)
        pathway = pathways.create_pathway(
            s, context_id=source, title=f"{p} pathway", competency_ids=[unit]
        )
        step = pathways.create_step(
            s, context_id=source, pathway_id=pathway.id, title="Survey", competency_id=web
        )
        create_option(s, context_id=source, step_id=step.id, data=OptionInput("Pond"))


def _pathway_titles(db: Database, context_id: int, p: str) -> list[str]:
    with db.begin() as s:
        return list(
            s.scalars(
                select(Pathway.title).where(
                    Pathway.context_id == context_id, Pathway.title.startswith(p)
                )
            )
        )


def test_double_click_on_copy_copies_the_framework_and_pathways_once(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    """Copying takes a moment; a second press (or the same page in a second tab) must land on
    the framework like the first, with each competency and each pathway there once."""
    cid, p = ids.context(), unique("CPY")
    source = _course_taught_by(db, ids.person("user-t01"))
    _source_framework(db, source, p)
    teacher.csrf_token()
    fields = {"source_context_id": str(source), "pathways": "on"}
    answers = at_once(*[lambda: teacher.post("/competencies/copy", fields)] * 2)
    assert [a.status_code for a in answers] == [303, 303], [a.text[-400:] for a in answers]
    assert sorted(competencies_by_code(db, cid, p)) == [f"{p}.1", f"{p}.U"]
    assert _pathway_titles(db, cid, p) == [f"{p} pathway"]
    again = teacher.post("/competencies/copy", fields)
    assert "Copied 2 competencies" in teacher.follow(again).text
    assert _pathway_titles(db, cid, p) == [f"{p} pathway"]


def test_copy_is_refused_from_courses_the_teacher_does_not_teach_on_this_lms(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    """Only courses where this very person (on this LMS) teaches now may be copied: not a
    course of another LMS whose teacher has the same user id, not one where they are a
    student, not one they no longer teach."""
    me = ids.person("user-t01")
    p = unique("NOPE")
    with db.begin() as s:
        other_platform = make_platform(s)
        twin = Person(platform_id=other_platform.id, sub="user-t01", name="Same id, other LMS")
        s.add(twin)
        s.flush()
        twin_id, other_platform_id = twin.id, other_platform.id
    elsewhere = _course_taught_by(db, twin_id, platform_id=other_platform_id)
    studied = _course_taught_by(db, me, teacher=False)
    dropped = _course_taught_by(db, me, status=MembershipStatus.DELETED)
    for source in (elsewhere, studied, dropped):
        _source_framework(db, source, p)
    listed = teacher.get("/competencies/copy").text
    for source in (elsewhere, studied, dropped, ids.context()):
        assert f'value="{source}"' not in listed
        answer = teacher.post(
            "/competencies/copy", {"source_context_id": str(source), "pathways": "on"}
        )
        assert answer.status_code == 404, source
    assert competencies_by_code(db, ids.context(), p) == {}
    assert _pathway_titles(db, ids.context(), p) == []


# --- what archiving or moving does to students' levels -----------------------------------------


def test_archiving_restoring_and_moving_a_sub_competency_updates_the_units_level(
    teacher: Frame, db: Database, ids: Ids, lms: RunningPlatform, tool_server: ToolServer
) -> None:
    """A unit's level is rolled up from its sub-competencies. A student strong on one and weak
    on the other has not mastered the unit; archiving the weak one leaves only the strong one,
    restoring it brings the weak one back, moving it elsewhere takes it out; the student's own
    evidence is never lost."""
    ensure_launched(lms, tool_server, ("user-s01",))
    cid, p = ids.context(), unique("ROLL")
    student, me = ids.person("user-s01"), ids.person("user-t01")
    with db.begin() as s:
        unit = make_competency(s, cid, f"{p}.U")
        strong = make_competency(s, cid, f"{p}.1", parent_id=unit)
        weak = make_competency(s, cid, f"{p}.2", parent_id=unit)
        for competency, points in ((strong, 4), (weak, 1)):
            record_evidence(
                s,
                context_id=cid,
                competency_id=competency,
                student_ids=[student],
                points=Decimal(points),
                source=EvidenceSource.TEACHER,
                note="",
                recorded_by_id=me,
            )
    assert level(db, cid, student, unit) == (Decimal("2.5"), False)
    teacher.follow(teacher.post(f"/competencies/{weak}/archive"))
    assert level(db, cid, student, unit) == (Decimal(4), True)
    # Restoring the weak part takes the unit's mastery away: the teacher is asked first.
    asked = teacher.post(f"/competencies/{weak}/unarchive")
    assert asked.status_code == 200
    assert f"no longer masters {p}.U" in asked.text
    assert level(db, cid, student, unit) == (Decimal(4), True)
    teacher.follow(teacher.post(f"/competencies/{weak}/unarchive", confirm_of(asked.text)))
    assert level(db, cid, student, unit) == (Decimal("2.5"), False)
    form = browser_form(
        teacher.get(f"/competencies/{strong}/edit").text, f"/competencies/{strong}/edit"
    )
    teacher.follow(submit(teacher, form, parent_id=""))
    assert level(db, cid, student, unit) == (Decimal(1), False)
    assert level(db, cid, student, strong) == (Decimal(4), True)
    with db.begin() as s:
        moved = s.get(Competency, strong)
        assert moved is not None
        assert moved.parent_id is None
