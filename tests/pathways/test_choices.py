"""Choosing, approving, returning, starting, submitting and closing choices; unlocking steps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from lti_app.pathways import choices as ch
from lti_app.pathways import options, reviewing, services
from lti_app.pathways import unlocking as ul
from lti_app.pathways.errors import (
    ChoiceNotAllowedError,
    ChoiceNotFoundError,
    OptionNotFoundError,
    StepNotFoundError,
)
from lti_app.pathways.models import Choice, ChoiceStatus
from lti_app.pathways.options import OptionInput
from lti_app.pathways.text import InvalidUrlError
from lti_app.pathways.unlock import UnlockState
from tests.pathways.conftest import CountQueries, MakeCompetency

S = ChoiceStatus


@dataclass
class Setup:
    course: int
    pathway_id: int
    c3: int
    open_step: int
    locked_step: int
    free: int
    """An option of the open step that needs no approval."""
    approval: int
    """An option of the open step that needs approval."""
    locked_option: int


@pytest.fixture
def setup(session: Session, course: int, make_competency: MakeCompetency) -> Setup:
    c3 = make_competency(course, "C3", "Cell transport")
    pathway = services.create_pathway(session, context_id=course, title="Cells")
    open_step = services.create_step(session, context_id=course, pathway_id=pathway.id, title="1")
    locked = services.create_step(
        session, context_id=course, pathway_id=pathway.id, title="2", prerequisite_ids=[c3]
    )

    def option(step_id: int, title: str, approval: bool = False) -> int:
        data = OptionInput(title, requires_approval=approval)
        return options.create_option(session, context_id=course, step_id=step_id, data=data).id

    return Setup(
        course=course,
        pathway_id=pathway.id,
        c3=c3,
        open_step=open_step.id,
        locked_step=locked.id,
        free=option(open_step.id, "Free"),
        approval=option(open_step.id, "Needs approval", approval=True),
        locked_option=option(locked.id, "Later"),
    )


def choose(session: Session, s: Setup, person_id: int, option_id: int) -> Choice:
    return ch.choose_option(
        session, context_id=s.course, person_id=person_id, option_id=option_id, mastered_ids=set()
    )


def status_of(choice: Choice) -> ChoiceStatus:
    """Read the status afresh for the type checker, which narrows it after each assert."""
    return choice.status


# --- unlocking ----------------------------------------------------------------------------------


def test_unlock_states_for_student_uses_prerequisites(
    session: Session, setup: Setup, student: int
) -> None:
    states = ul.unlock_states_for_student(
        session,
        context_id=setup.course,
        pathway_id=setup.pathway_id,
        person_id=student,
        mastered_ids=set(),
    )
    assert states[setup.open_step].is_unlocked
    assert not states[setup.locked_step].is_unlocked
    assert states[setup.locked_step].reason == "Unlocks when you master C3 Cell transport"

    mastered = ul.unlock_states_for_student(
        session,
        context_id=setup.course,
        pathway_id=setup.pathway_id,
        person_id=student,
        mastered_ids={setup.c3},
    )
    assert mastered[setup.locked_step].is_unlocked


def test_unlock_states_ask_mastery_when_not_given(
    session: Session, setup: Setup, student: int, teacher: int
) -> None:
    from lti_app.mastery.models import EvidenceSource
    from lti_app.mastery.services import record_evidence

    def locked() -> bool:
        states = ul.unlock_states_for_student(
            session, context_id=setup.course, pathway_id=setup.pathway_id, person_id=student
        )
        return not states[setup.locked_step].is_unlocked

    assert locked()
    record_evidence(
        session,
        context_id=setup.course,
        competency_id=setup.c3,
        student_ids=[student],
        points=Decimal(4),
        source=EvidenceSource.TEACHER,
        note="",
        recorded_by_id=teacher,
    )
    assert not locked()


def test_archived_prerequisite_does_not_lock(session: Session, setup: Setup, student: int) -> None:
    from lti_app.competencies.models import Competency
    from lti_app.db import utcnow

    competency = session.get(Competency, setup.c3)
    assert competency is not None
    competency.archived_at = utcnow()
    session.flush()
    states = ul.unlock_states_for_student(
        session,
        context_id=setup.course,
        pathway_id=setup.pathway_id,
        person_id=student,
        mastered_ids=set(),
    )
    assert states[setup.locked_step].is_unlocked


def test_teacher_unlocks_a_step_for_some_students(
    session: Session, setup: Setup, student: int, other_student: int, teacher: int
) -> None:
    created = ul.unlock_step_for_students(
        session,
        context_id=setup.course,
        step_id=setup.locked_step,
        student_ids=[student, student],
        unlocked_by_id=teacher,
    )
    again = ul.unlock_step_for_students(
        session,
        context_id=setup.course,
        step_id=setup.locked_step,
        student_ids=[student],
        unlocked_by_id=teacher,
    )
    assert [u.person_id for u in created] == [student]
    assert again == []

    def state(person_id: int) -> UnlockState:
        return ul.unlock_states_for_student(
            session,
            context_id=setup.course,
            pathway_id=setup.pathway_id,
            person_id=person_id,
            mastered_ids=set(),
        )[setup.locked_step]

    assert state(student).reason == "Unlocked by your teacher"
    assert not state(other_student).is_unlocked
    assert choose(session, setup, student, setup.locked_option).status is S.CHOSEN

    removed = ul.relock_step_for_students(
        session, context_id=setup.course, step_id=setup.locked_step, student_ids=[student]
    )
    assert removed == 1
    assert not state(student).is_unlocked


def test_unlock_refuses_a_step_of_another_course(
    session: Session, setup: Setup, other_course: int, student: int, teacher: int
) -> None:
    with pytest.raises(StepNotFoundError):
        ul.unlock_step_for_students(
            session,
            context_id=other_course,
            step_id=setup.locked_step,
            student_ids=[student],
            unlocked_by_id=teacher,
        )


# --- choosing and changing one's mind -------------------------------------------------------------


def test_choosing_on_a_locked_step_is_refused(session: Session, setup: Setup, student: int) -> None:
    with pytest.raises(ChoiceNotAllowedError, match="Unlocks when you master C3"):
        choose(session, setup, student, setup.locked_option)


def test_choosing_unlocked_by_mastery(session: Session, setup: Setup, student: int) -> None:
    choice = ch.choose_option(
        session,
        context_id=setup.course,
        person_id=student,
        option_id=setup.locked_option,
        mastered_ids={setup.c3},
    )
    assert choice.step_id == setup.locked_step


def test_option_of_another_course_is_not_found(
    session: Session, setup: Setup, other_course: int, student: int
) -> None:
    with pytest.raises(OptionNotFoundError):
        ch.choose_option(
            session,
            context_id=other_course,
            person_id=student,
            option_id=setup.free,
            mastered_ids=set(),
        )


def test_archived_option_cannot_be_chosen(session: Session, setup: Setup, student: int) -> None:
    options.archive_option(session, context_id=setup.course, option_id=setup.free)
    # Said as such (a page from before the archiving offers it), not as "no such option".
    with pytest.raises(ChoiceNotAllowedError, match="off offer"):
        choose(session, setup, student, setup.free)


def test_student_may_change_mind_until_started(
    session: Session, setup: Setup, student: int, teacher: int
) -> None:
    first = choose(session, setup, student, setup.approval)
    reviewing.approve_choices(
        session, context_id=setup.course, choice_ids=[first.id], decided_by_id=teacher
    )
    assert first.status is S.APPROVED

    switched = choose(session, setup, student, setup.free)
    assert switched.id == first.id  # one current choice per student and step
    assert (switched.option_id, switched.status, switched.approved_at) == (
        setup.free,
        S.CHOSEN,
        None,
    )

    ch.start_choice(session, context_id=setup.course, person_id=student, choice_id=switched.id)
    with pytest.raises(ChoiceNotAllowedError, match="already started"):
        choose(session, setup, student, setup.approval)
    with pytest.raises(ChoiceNotAllowedError):
        ch.withdraw_choice(
            session, context_id=setup.course, person_id=student, choice_id=switched.id
        )


def test_choosing_the_same_option_again_keeps_the_approval(
    session: Session, setup: Setup, student: int, teacher: int
) -> None:
    choice = choose(session, setup, student, setup.approval)
    reviewing.approve_choices(
        session, context_id=setup.course, choice_ids=[choice.id], decided_by_id=teacher
    )
    assert choose(session, setup, student, setup.approval).status is S.APPROVED


def test_withdraw_before_start_removes_the_choice(
    session: Session, setup: Setup, student: int
) -> None:
    choice = choose(session, setup, student, setup.free)
    ch.withdraw_choice(session, context_id=setup.course, person_id=student, choice_id=choice.id)
    assert ch.choices_for_student(session, context_id=setup.course, person_id=student) == []


# --- the state machine ----------------------------------------------------------------------------


def test_full_path_with_approval(
    session: Session, setup: Setup, student: int, teacher: int
) -> None:
    choice = choose(session, setup, student, setup.approval)
    with pytest.raises(ChoiceNotAllowedError, match="approve"):
        ch.start_choice(session, context_id=setup.course, person_id=student, choice_id=choice.id)
    with pytest.raises(ChoiceNotAllowedError, match="approve"):
        ch.submit_choice(session, context_id=setup.course, person_id=student, choice_id=choice.id)

    reviewing.approve_choices(
        session, context_id=setup.course, choice_ids=[choice.id], decided_by_id=teacher
    )
    assert (choice.status, choice.decided_by_id) == (S.APPROVED, teacher)
    assert choice.approved_at is not None

    ch.start_choice(session, context_id=setup.course, person_id=student, choice_id=choice.id)
    assert choice.status is S.IN_PROGRESS
    assert choice.started_at is not None

    ch.submit_choice(
        session,
        context_id=setup.course,
        person_id=student,
        choice_id=choice.id,
        note="  My poster ",
        url="https://example.org/poster",
    )
    assert (choice.status, choice.submission_note, choice.submission_url) == (
        S.SUBMITTED,
        "My poster",
        "https://example.org/poster",
    )
    with pytest.raises(ChoiceNotAllowedError, match="already handed in"):
        ch.submit_choice(session, context_id=setup.course, person_id=student, choice_id=choice.id)

    reviewing.complete_choices(
        session,
        context_id=setup.course,
        choice_ids=[choice.id],
        closed_by_id=teacher,
        feedback="Great",
    )
    assert (choice.status, choice.teacher_feedback) == (S.DONE, "Great")
    assert choice.done_at is not None
    with pytest.raises(ChoiceNotAllowedError, match="already done"):
        ch.start_choice(session, context_id=setup.course, person_id=student, choice_id=choice.id)


def test_option_without_approval_starts_straight_away(
    session: Session, setup: Setup, student: int
) -> None:
    choice = choose(session, setup, student, setup.free)
    ch.submit_choice(
        session, context_id=setup.course, person_id=student, choice_id=choice.id, note="done"
    )
    assert choice.status is S.SUBMITTED
    assert choice.started_at is not None


def test_submission_url_must_be_http(session: Session, setup: Setup, student: int) -> None:
    choice = choose(session, setup, student, setup.free)
    with pytest.raises(InvalidUrlError):
        ch.submit_choice(
            session,
            context_id=setup.course,
            person_id=student,
            choice_id=choice.id,
            url="javascript:alert(1)",
        )
    assert choice.status is S.CHOSEN


def test_rejected_pick_means_choose_again(
    session: Session, setup: Setup, student: int, teacher: int
) -> None:
    choice = choose(session, setup, student, setup.approval)
    reviewing.return_choices(
        session,
        context_id=setup.course,
        choice_ids=[choice.id],
        decided_by_id=teacher,
        note="Pick something you can finish this week",
    )
    assert (choice.status, choice.teacher_feedback) == (
        S.REJECTED,
        "Pick something you can finish this week",
    )
    with pytest.raises(ChoiceNotAllowedError, match="pick an option again"):
        ch.start_choice(session, context_id=setup.course, person_id=student, choice_id=choice.id)
    with pytest.raises(ChoiceNotAllowedError):
        reviewing.approve_choices(
            session, context_id=setup.course, choice_ids=[choice.id], decided_by_id=teacher
        )
    again = choose(session, setup, student, setup.approval)
    assert (again.status, again.teacher_feedback) == (S.CHOSEN, "")


def test_returned_submission_goes_back_to_work(
    session: Session, setup: Setup, student: int, teacher: int
) -> None:
    choice = choose(session, setup, student, setup.free)
    ch.submit_choice(session, context_id=setup.course, person_id=student, choice_id=choice.id)
    reviewing.return_choices(
        session,
        context_id=setup.course,
        choice_ids=[choice.id],
        decided_by_id=teacher,
        note="Add your sources",
    )
    assert status_of(choice) is S.RETURNED
    with pytest.raises(ChoiceNotAllowedError):
        choose(session, setup, student, setup.approval)
    ch.start_choice(session, context_id=setup.course, person_id=student, choice_id=choice.id)
    assert status_of(choice) is S.IN_PROGRESS
    ch.submit_choice(session, context_id=setup.course, person_id=student, choice_id=choice.id)
    assert status_of(choice) is S.SUBMITTED


def test_return_needs_a_note_and_a_returnable_status(
    session: Session, setup: Setup, student: int, teacher: int
) -> None:
    choice = choose(session, setup, student, setup.free)
    with pytest.raises(ChoiceNotAllowedError, match="note"):
        reviewing.return_choices(
            session,
            context_id=setup.course,
            choice_ids=[choice.id],
            decided_by_id=teacher,
            note="  ",
        )
    ch.start_choice(session, context_id=setup.course, person_id=student, choice_id=choice.id)
    with pytest.raises(ChoiceNotAllowedError, match="in progress"):
        reviewing.return_choices(
            session,
            context_id=setup.course,
            choice_ids=[choice.id],
            decided_by_id=teacher,
            note="x",
        )


def test_approval_is_all_or_nothing(
    session: Session, setup: Setup, student: int, other_student: int, teacher: int
) -> None:
    waiting = choose(session, setup, student, setup.approval)
    started = choose(session, setup, other_student, setup.free)
    ch.start_choice(session, context_id=setup.course, person_id=other_student, choice_id=started.id)
    with pytest.raises(ChoiceNotAllowedError):
        reviewing.approve_choices(
            session,
            context_id=setup.course,
            choice_ids=[waiting.id, started.id],
            decided_by_id=teacher,
        )
    assert waiting.status is S.CHOSEN


def test_students_cannot_move_each_others_choices(
    session: Session, setup: Setup, student: int, other_student: int
) -> None:
    choice = choose(session, setup, student, setup.free)
    with pytest.raises(ChoiceNotFoundError):
        ch.start_choice(
            session, context_id=setup.course, person_id=other_student, choice_id=choice.id
        )


def test_teacher_of_another_course_cannot_approve(
    session: Session, setup: Setup, other_course: int, student: int, teacher: int
) -> None:
    choice = choose(session, setup, student, setup.approval)
    with pytest.raises(ChoiceNotFoundError):
        reviewing.approve_choices(
            session, context_id=other_course, choice_ids=[choice.id], decided_by_id=teacher
        )


def test_rejected_choice_cannot_be_completed(
    session: Session, setup: Setup, student: int, teacher: int
) -> None:
    choice = choose(session, setup, student, setup.approval)
    reviewing.return_choices(
        session, context_id=setup.course, choice_ids=[choice.id], decided_by_id=teacher, note="no"
    )
    with pytest.raises(ChoiceNotAllowedError):
        reviewing.complete_choices(
            session, context_id=setup.course, choice_ids=[choice.id], closed_by_id=teacher
        )


# --- evidence closes work ---------------------------------------------------------------------


def test_evidence_closes_submitted_work_of_the_assessed_competency(
    session: Session,
    course: int,
    student: int,
    other_student: int,
    teacher: int,
    make_competency: MakeCompetency,
) -> None:
    c1, c2 = make_competency(course, "C1"), make_competency(course, "C2")
    leads_to_c1 = services.create_pathway(
        session, context_id=course, title="P", competency_ids=[c1]
    )
    own = services.create_step(
        session, context_id=course, pathway_id=leads_to_c1.id, title="assesses C2", competency_id=c2
    )
    inherited = services.create_step(
        session, context_id=course, pathway_id=leads_to_c1.id, title="counts for the pathway"
    )
    ids = {}
    for step in (own, inherited):
        option = options.create_option(
            session, context_id=course, step_id=step.id, data=OptionInput("o")
        )
        for person in (student, other_student):
            choice = ch.choose_option(
                session,
                context_id=course,
                person_id=person,
                option_id=option.id,
                mastered_ids=set(),
            )
            ch.submit_choice(session, context_id=course, person_id=person, choice_id=choice.id)
            ids[(step.id, person)] = choice

    # What the overview announces before the click is what the evidence then closes.
    announced = reviewing.submitted_work_by_competency(
        session, context_id=course, person_ids=[student], competency_ids=[c1, c2]
    )
    assert announced == {
        (student, c1): [ids[(inherited.id, student)].id],
        (student, c2): [ids[(own.id, student)].id],
    }
    closed = reviewing.complete_choices_for_competency(
        session, context_id=course, person_ids=[student], competency_ids=[c1], closed_by_id=teacher
    )
    assert closed == [ids[(inherited.id, student)]]
    assert ids[(own.id, student)].status is S.SUBMITTED
    assert ids[(inherited.id, other_student)].status is S.SUBMITTED

    closed = reviewing.complete_choices_for_competency(
        session, context_id=course, person_ids=[student], competency_ids=[c2], closed_by_id=teacher
    )
    assert closed == [ids[(own.id, student)]]
    assert closed[0].status is S.DONE
    assert closed[0].decided_by_id == teacher


def test_evidence_leaves_unsubmitted_work_open(
    session: Session, setup: Setup, student: int, teacher: int, make_competency: MakeCompetency
) -> None:
    step = services.get_step(session, context_id=setup.course, step_id=setup.open_step)
    step.competency_id = setup.c3
    choice = choose(session, setup, student, setup.free)
    ch.start_choice(session, context_id=setup.course, person_id=student, choice_id=choice.id)
    closed = reviewing.complete_choices_for_competency(
        session,
        context_id=setup.course,
        person_ids=[student],
        competency_ids=[setup.c3],
        closed_by_id=teacher,
    )
    assert closed == []
    assert choice.status is S.IN_PROGRESS


# --- the teacher's queue ----------------------------------------------------------------------


def test_pending_for_teacher_lists_approvals_and_submissions_oldest_first(
    session: Session,
    setup: Setup,
    other_course: int,
    student: int,
    other_student: int,
    teacher: int,
) -> None:
    needs_ok = choose(session, setup, student, setup.approval)
    free = choose(session, setup, other_student, setup.free)  # needs nothing from the teacher
    needs_ok.chosen_at -= timedelta(days=2)
    ch.submit_choice(session, context_id=setup.course, person_id=other_student, choice_id=free.id)
    session.flush()

    pending = reviewing.pending_for_teacher(session, context_id=setup.course)
    assert [(p.kind, p.choice.id) for p in pending] == [
        ("approval", needs_ok.id),
        ("submission", free.id),
    ]
    assert (pending[0].pathway_title, pending[0].step_title, pending[0].option_title) == (
        "Cells",
        "1",
        "Needs approval",
    )
    assert reviewing.pending_for_teacher(session, context_id=other_course) == []

    reviewing.approve_choices(
        session, context_id=setup.course, choice_ids=[needs_ok.id], decided_by_id=teacher
    )
    assert [
        p.choice.id for p in reviewing.pending_for_teacher(session, context_id=setup.course)
    ] == [free.id]


def test_an_archived_pathway_asks_for_no_approval_but_keeps_work_to_look_at(
    session: Session, setup: Setup, student: int, other_student: int
) -> None:
    needs_ok = choose(session, setup, student, setup.approval)
    handed_in = choose(session, setup, other_student, setup.free)
    ch.submit_choice(
        session, context_id=setup.course, person_id=other_student, choice_id=handed_in.id
    )
    services.archive_pathway(session, context_id=setup.course, pathway_id=setup.pathway_id)

    pending = reviewing.pending_for_teacher(session, context_id=setup.course)
    assert [(p.kind, p.choice.id) for p in pending] == [("submission", handed_in.id)]
    # Restoring the pathway lets its student go on: the pick waits for the teacher again.
    services.restore_pathway(session, context_id=setup.course, pathway_id=setup.pathway_id)
    pending = reviewing.pending_for_teacher(session, context_id=setup.course)
    assert {p.choice.id for p in pending} == {needs_ok.id, handed_in.id}


def test_pending_for_teacher_uses_one_query(
    session: Session, setup: Setup, student: int, other_student: int, count_queries: CountQueries
) -> None:
    choose(session, setup, student, setup.approval)
    choose(session, setup, other_student, setup.approval)
    session.flush()
    with count_queries() as counter:
        assert len(reviewing.pending_for_teacher(session, context_id=setup.course)) == 2
    assert counter.count == 1


def test_students_locked_out_by_new_prerequisites_are_those_with_work_to_do(
    session: Session, setup: Setup, student: int, other_student: int, teacher: int
) -> None:
    from lti_app.mastery.models import EvidenceSource
    from lti_app.mastery.services import record_evidence

    working = choose(session, setup, student, setup.free)
    ch.start_choice(session, context_id=setup.course, person_id=student, choice_id=working.id)
    handed_in = choose(session, setup, other_student, setup.free)
    ch.submit_choice(
        session, context_id=setup.course, person_id=other_student, choice_id=handed_in.id
    )

    def locked_out(prerequisite_ids: list[int]) -> list[int]:
        return ul.students_locked_out_by(
            session,
            context_id=setup.course,
            step_id=setup.open_step,
            prerequisite_ids=prerequisite_ids,
        )

    # Work handed in waits for the teacher, not for the student: only `student` loses access.
    assert locked_out([setup.c3]) == [student]
    assert locked_out([]) == []
    # A teacher's unlock keeps the step open for them whatever it waits for.
    ul.unlock_step_for_students(
        session,
        context_id=setup.course,
        step_id=setup.open_step,
        student_ids=[student],
        unlocked_by_id=teacher,
    )
    assert locked_out([setup.c3]) == []
    ul.relock_step_for_students(
        session, context_id=setup.course, step_id=setup.open_step, student_ids=[student]
    )
    # An archived pathway's work takes no move, open or locked: nobody is locked out of it.
    services.archive_pathway(session, context_id=setup.course, pathway_id=setup.pathway_id)
    assert locked_out([setup.c3]) == []
    services.restore_pathway(session, context_id=setup.course, pathway_id=setup.pathway_id)
    assert locked_out([setup.c3]) == [student]
    # So does mastering what it is to wait for.
    record_evidence(
        session,
        context_id=setup.course,
        competency_id=setup.c3,
        student_ids=[student],
        points=Decimal(4),
        source=EvidenceSource.TEACHER,
        note="",
        recorded_by_id=teacher,
    )
    assert locked_out([setup.c3]) == []
