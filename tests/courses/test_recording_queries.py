"""Recording a level for many students at once runs the same statements for one student's
handed-in work as for a whole class's.

Each test uses a course of its own (a second LMS), so only its own handed-in work is waiting.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from lti_app.mastery.models import Evidence
from lti_app.pathways.choices import choose_option, start_choice, submit_choice
from lti_app.pathways.models import Choice, ChoiceStatus
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.services import create_pathway, create_step
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import (
    BIO_STUDENTS,
    Frame,
    Ids,
    counted,
    ensure_launched,
    frame,
    make_competency,
    unique,
)


@dataclass(frozen=True)
class Course:
    teacher: Frame
    ids: Ids
    students: list[int]


@dataclass(frozen=True)
class Work:
    competency_id: int
    choice_ids: list[int]
    option_id: int


def _course(lms: RunningPlatform, tool_server: ToolServer, db: Database) -> Course:
    ensure_launched(lms, tool_server, BIO_STUDENTS)
    teacher = frame(LtiActions(lms, tool_server).launch("user-t01"), tool_server.url)
    # The teacher's launch syncs the roster in the background: "all" means the synced roster.
    for thread in threading.enumerate():
        if thread.name.startswith("roster-sync-"):
            thread.join(30)
    ids = Ids.of(db, lms)
    return Course(teacher, ids, [ids.person(sub) for sub in BIO_STUDENTS])


def _handed_in(
    db: Database, course: Course, students: list[int], competency: int | None = None
) -> Work:
    """A step on a (new) competency, its work handed in by these students."""
    cid = course.ids.context()
    with db.begin() as s:
        competency = competency or make_competency(s, cid, unique("RQ"))
        pathway = create_pathway(s, context_id=cid, title=unique("Queries "))
        step = create_step(
            s, context_id=cid, pathway_id=pathway.id, title="Show it", competency_id=competency
        )
        option = create_option(s, context_id=cid, step_id=step.id, data=OptionInput("Poster"))
        choice_ids = []
        for person_id in students:
            choice = choose_option(s, context_id=cid, person_id=person_id, option_id=option.id)
            start_choice(s, context_id=cid, person_id=person_id, choice_id=choice.id)
            submit_choice(s, context_id=cid, person_id=person_id, choice_id=choice.id, note="")
            choice_ids.append(choice.id)
    return Work(competency, choice_ids, option.id)


def _statuses(db: Database, choice_ids: list[int]) -> set[ChoiceStatus]:
    with db.begin() as s:
        return set(s.scalars(select(Choice.status).where(Choice.id.in_(choice_ids))))


def _without_inserts(statements: list[str]) -> list[str]:
    return [s for s in statements if not s.startswith("INSERT")]


def _evidenced(db: Database, competency_id: int) -> list[int]:
    """The students with evidence on the competency, once per piece of evidence."""
    with db.begin() as s:
        query = select(Evidence.person_id).where(Evidence.competency_id == competency_id)
        return sorted(s.scalars(query))


def test_recording_for_the_whole_class_reads_the_handed_in_work_once(
    fresh_lms: RunningPlatform, tool_server: ToolServer, db: Database
) -> None:
    """Recording for every student closed each student's work in a query of its own, for
    every student with work handed in anywhere in the course (each a locked SELECT)."""
    course = _course(fresh_lms, tool_server, db)

    def record_for_all(work: Work, note: str) -> list[str]:
        form = {"all": "on", "competency_id": str(work.competency_id), "points": "3"}
        with counted(tool_server) as statements:
            response = course.teacher.post(
                "/mastery/evidence/bulk", {**form, "observed_on": "", "note": note}
            )
        assert response.status_code == 303, response.text[:2000]
        return statements

    record_for_all(_handed_in(db, course, []), "warm-up")  # the scale, the line items
    one = _handed_in(db, course, course.students[:1])
    with_one = record_for_all(one, "one student's work")
    everyone = _handed_in(db, course, course.students)
    with_all = record_for_all(everyone, "everyone's work")

    assert _statuses(db, one.choice_ids + everyone.choice_ids) == {ChoiceStatus.DONE}
    assert set(course.students) <= set(_evidenced(db, everyone.competency_id))
    choice_reads = [s for s in with_all if s.startswith("SELECT pathway_choice.id")]
    assert len(with_all) == len(with_one), choice_reads


def test_marking_the_class_work_done_with_a_level_records_it_in_the_same_statements(
    fresh_lms: RunningPlatform, tool_server: ToolServer, db: Database
) -> None:
    """Mark done with a level recorded each ticked item on its own: the scale, its levels and
    the whole framework read again, and the evidence and levels written, once per item."""
    course = _course(fresh_lms, tool_server, db)

    def mark_done(work: Work) -> list[str]:
        form: dict[str, object] = {"action": "done", "level": "3", "note": ""}
        form["choice"] = [str(i) for i in work.choice_ids]
        form.update({f"option-{i}": str(work.option_id) for i in work.choice_ids})
        with counted(tool_server) as statements:
            response = course.teacher.post("/course/pending", form)
        assert response.status_code == 303, response.text[:2000]
        return statements

    mark_done(_handed_in(db, course, course.students[:1]))  # the scale, the line items
    one = _handed_in(db, course, course.students[:1])
    with_one = mark_done(one)
    everyone = _handed_in(db, course, course.students)
    with_all = mark_done(everyone)

    assert _statuses(db, one.choice_ids + everyone.choice_ids) == {ChoiceStatus.DONE}
    assert _evidenced(db, everyone.competency_id) == sorted(course.students)
    # Row inserts aside: SQLite takes one INSERT per row, PostgreSQL a batch.
    reads_one, reads_all = _without_inserts(with_one), _without_inserts(with_all)
    assert len(reads_all) == len(reads_one), [s for s in reads_all if "FROM mastery_scale" in s]


def test_two_pieces_of_a_students_work_on_one_competency_each_get_their_evidence(
    fresh_lms: RunningPlatform, tool_server: ToolServer, db: Database
) -> None:
    """Recording the ticked work together keeps one evidence per piece of work, as recording
    each item on its own did, when a student handed in two steps on the same competency."""
    course = _course(fresh_lms, tool_server, db)
    first = _handed_in(db, course, course.students[:2])
    second = _handed_in(db, course, course.students[:1], first.competency_id)
    choice_ids = first.choice_ids + second.choice_ids
    response = course.teacher.post(
        "/course/pending",
        {
            "action": "done",
            "level": "3",
            "note": "Well argued",
            "choice": [str(i) for i in choice_ids],
        },
    )
    assert response.status_code == 303, response.text[:2000]
    assert _statuses(db, choice_ids) == {ChoiceStatus.DONE}
    people = _evidenced(db, first.competency_id)
    assert people == sorted([*course.students[:2], course.students[0]])
