"""What a student is told when a dip in a level locks a step again: done work is passed over,
open steps further on stay in view, and started work is named."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices as ch
from lti_app.pathways import options, services
from lti_app.pathways.models import Option
from lti_app.pathways.options import OptionInput
from lti_app.pathways.reviewing import complete_choices
from lti_app.progress.services import next_actions, pathway_overview
from tests.pathways.conftest import MakeCompetency


def _step(
    session: Session, course: int, pathway_id: int, title: str, teaches: int, requires: list[int]
) -> int:
    step = services.create_step(
        session,
        context_id=course,
        pathway_id=pathway_id,
        title=title,
        competency_id=teaches,
        prerequisite_ids=requires,
    )
    options.create_option(session, context_id=course, step_id=step.id, data=OptionInput(title))
    return step.id


def _result(
    session: Session, course: int, competency: int, student: int, teacher: int, points: int
) -> None:
    record_evidence(
        session,
        context_id=course,
        competency_id=competency,
        student_ids=[student],
        points=Decimal(points),
        source=EvidenceSource.TEACHER,
        note="",
        recorded_by_id=teacher,
    )


def _choose(session: Session, course: int, student: int, step_id: int) -> int:
    option = session.scalars(select(Option).where(Option.step_id == step_id)).one()
    return ch.choose_option(session, context_id=course, person_id=student, option_id=option.id).id


def test_a_done_step_locked_again_hides_neither_itself_nor_the_open_next_step(
    session: Session, course: int, student: int, teacher: int, make_competency: MakeCompetency
) -> None:
    intro, a = make_competency(course, "INTRO"), make_competency(course, "A")
    pathway = services.create_pathway(session, context_id=course, title="Ecology")
    one = _step(session, course, pathway.id, "Step 1", a, [intro])
    two = _step(session, course, pathway.id, "Step 2", a, [])
    _result(session, course, intro, student, teacher, 3)
    choice = _choose(session, course, student, one)
    ch.submit_choice(session, context_id=course, person_id=student, choice_id=choice)
    complete_choices(session, context_id=course, choice_ids=[choice], closed_by_id=teacher)
    _result(session, course, intro, student, teacher, 2)  # the decaying average dips below 3

    overview = pathway_overview(session, context_id=course, person_id=student)
    assert not overview[0].steps[0].unlock.is_unlocked  # Step 1 is locked again...
    actions = next_actions(overview)
    # ...but it is done: the student is not sent back to it, and sees the open Step 2.
    assert [(a.text, a.step_id) for a in actions] == [("Choose an option for “Step 2”.", two)]


def test_work_started_on_a_step_locked_again_is_named_beside_the_open_step(
    session: Session, course: int, student: int, teacher: int, make_competency: MakeCompetency
) -> None:
    safe, lab = make_competency(course, "SAFE"), make_competency(course, "LAB")
    pathway = services.create_pathway(session, context_id=course, title="Chemistry")
    first = _step(session, course, pathway.id, "Lab", lab, [safe])
    later = _step(session, course, pathway.id, "Report", lab, [])
    waits = _step(session, course, pathway.id, "Field trip", lab, [lab])
    _result(session, course, safe, student, teacher, 3)
    choice = _choose(session, course, student, first)
    ch.start_choice(session, context_id=course, person_id=student, choice_id=choice)
    _result(session, course, safe, student, teacher, 1)

    actions = next_actions(pathway_overview(session, context_id=course, person_id=student))
    assert [a.step_id for a in actions] == [later, first]
    assert "“Lab” is locked again" in actions[1].text
    assert "work towards SAFE" in actions[1].text
    assert "your work is kept" in actions[1].text
    # With Report done too, the relocked work still comes before the next locked step's hint.
    report = _choose(session, course, student, later)
    ch.submit_choice(session, context_id=course, person_id=student, choice_id=report)
    actions = next_actions(pathway_overview(session, context_id=course, person_id=student))
    assert [a.step_id for a in actions] == [first]
    assert waits not in [a.step_id for a in actions]
