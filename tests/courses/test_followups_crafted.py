"""Follow-ups on the teacher's overview that earlier reviews noted: students who left the course
(the roster sync marked them inactive) are labelled and kept apart, not shown as current."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from markupsafe import escape
from sqlalchemy import select, update

from lti_app.db import Database
from lti_app.pathways.choices import choose_option, submit_choice
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.services import create_pathway, create_step
from lti_app.tool.models import Membership, MembershipStatus, Person
from tests.courses.frames import Frame, Ids, unique


@contextmanager
def _left_the_course(db: Database, context_id: int, person_id: int) -> Iterator[str]:
    """The roster sync marks the student inactive for the test; the shared course gets them
    back afterwards. Yields the student's name as pages show it."""
    with db.begin() as s:
        name = s.get(Person, person_id).display_name  # type: ignore[union-attr]
        s.execute(
            update(Membership)
            .where(Membership.person_id == person_id, Membership.context_id == context_id)
            .values(status=MembershipStatus.INACTIVE)
        )
    try:
        yield str(escape(name))
    finally:
        with db.begin() as s:
            s.execute(
                update(Membership)
                .where(Membership.person_id == person_id, Membership.context_id == context_id)
                .values(status=MembershipStatus.ACTIVE)
            )


def _pending_row(html: str, note: str) -> str:
    """The overview's pending-table row that shows this hand-in note."""
    rows = re.findall(r"<tr>.*?</tr>", html, flags=re.S)
    return next(row for row in rows if note in row)


def test_a_student_who_left_is_labelled_on_the_overview(
    teacher: Frame, db: Database, ids: Ids, bio_students: tuple[str, ...]
) -> None:
    """A student hands work in and then leaves the course. On the overview their waiting work
    says "Left the course" beside the name, and they are not listed among the class's students
    but apart, as no longer active; a classmate's work carries no such label."""
    cid = ids.context()
    leaver, stayer = ids.person(bio_students[2]), ids.person(bio_students[3])
    note = unique("Left-note ")
    other_note = unique("Stayed-note ")
    with db.begin() as s:
        pathway = create_pathway(s, context_id=cid, title=unique("Leaving "))
        step = create_step(s, context_id=cid, pathway_id=pathway.id, title="Hand something in")
        option = create_option(s, context_id=cid, step_id=step.id, data=OptionInput("Poster"))
        for person, text in ((leaver, note), (stayer, other_note)):
            choice = choose_option(s, context_id=cid, person_id=person, option_id=option.id)
            submit_choice(s, context_id=cid, person_id=person, choice_id=choice.id, note=text)
    with _left_the_course(db, cid, leaver) as name:
        page = teacher.get("/course/")
        assert page.status_code == 200
        row = _pending_row(page.text, note)
        assert name in row
        assert "Left the course" in row
        assert "Left the course" not in _pending_row(page.text, other_note)
        students = page.text[
            page.text.index('id="students"') : page.text.index('id="competencies"')
        ]
        table, apart = students.split('id="students-left"')
        assert name not in table
        assert name in apart
        assert "No longer active in this course" in apart


def test_a_class_whose_students_all_left_does_not_say_no_students_yet(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    """Every student left the course in the LMS: the overview says no one is active and lists
    them apart, instead of "No students yet" above the very list of students."""
    cid = ids.context()
    with db.begin() as s:
        before = dict(
            s.execute(
                select(Membership.id, Membership.status).where(
                    Membership.context_id == cid, Membership.is_teacher.is_(False)
                )
            ).all()
        )
        s.execute(
            update(Membership)
            .where(Membership.id.in_(before))
            .values(status=MembershipStatus.INACTIVE)
        )
    try:
        page = teacher.get("/course/")
        assert page.status_code == 200
        students = page.text[
            page.text.index('id="students"') : page.text.index('id="competencies"')
        ]
        assert "No students yet" not in students
        assert "No active students" in students
        assert 'id="students-left"' in students
    finally:
        with db.begin() as s:
            for membership_id, status in before.items():
                s.execute(
                    update(Membership).where(Membership.id == membership_id).values(status=status)
                )
