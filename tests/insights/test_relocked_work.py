"""A student working on a step that locks again (a level dipped) is shown to the teacher as
blocked, with what the step waits for: in the step's group proposal and on the attention
list, in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from lti_app.competencies.services import create_competency
from lti_app.courses.recording import record_and_close
from lti_app.insights.attention import AttentionKind, attention_list
from lti_app.insights.proposals import propose_for_step
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices as ch
from lti_app.pathways import options, services
from lti_app.pathways.models import Option
from lti_app.pathways.options import OptionInput
from lti_app.pathways.unlocking import unlock_step_for_students
from lti_app.tool.models import Membership, MembershipStatus
from tests.domain_fixtures import Course, make_course

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@contextmanager
def count_queries(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = session.get_bind()

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _lab_in_progress(session: Session, students: int) -> tuple[Course, int, int]:
    """A course whose students all started on "Lab" (waits for SAFE), then each had a weak
    safety check: the step is locked for them all again. Returns the course, Lab and SAFE."""
    course = make_course(session, students=students)
    c = course.context_id
    for person in course.student_ids:
        session.add(
            Membership(
                context_id=c,
                person_id=person,
                roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
                status=MembershipStatus.ACTIVE,
                is_learner=True,
            )
        )
    safe = create_competency(session, context_id=c, code="SAFE", title="Lab safety").id
    lab = create_competency(session, context_id=c, code="LAB", title="Lab work").id
    pathway = services.create_pathway(session, context_id=c, title="Chemistry")
    step = services.create_step(
        session,
        context_id=c,
        pathway_id=pathway.id,
        title="Lab",
        competency_id=lab,
        prerequisite_ids=[safe],
    )
    options.create_option(session, context_id=c, step_id=step.id, data=OptionInput("Titration"))
    option = session.scalars(select(Option).where(Option.step_id == step.id)).one()
    for points in (3, None, 1):
        if points is None:
            for person in course.student_ids:
                choice = ch.choose_option(
                    session, context_id=c, person_id=person, option_id=option.id
                )
                ch.start_choice(session, context_id=c, person_id=person, choice_id=choice.id)
            continue
        record_evidence(
            session,
            context_id=c,
            competency_id=safe,
            student_ids=course.student_ids,
            points=Decimal(points),
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=course.teacher_id,
        )
    return course, step.id, safe


def test_the_step_proposal_shows_students_blocked_mid_work(session: Session) -> None:
    course, step, _ = _lab_in_progress(session, students=2)
    first, second = course.student_ids
    unlock_step_for_students(
        session,
        context_id=course.context_id,
        step_id=step,
        student_ids=[second],
        unlocked_by_id=course.teacher_id,
    )
    groups = {
        g.name: g.person_ids
        for g in propose_for_step(session, context_id=course.context_id, step_id=step)
    }
    assert groups == {
        "Working on step 1 “Lab” but locked: needs SAFE": (first,),
        # Unlocked by the teacher, the second can carry on.
        "Working on step 1 “Lab”": (second,),
    }


def test_the_attention_list_names_students_blocked_mid_work(session: Session) -> None:
    counts = []
    for size in (1, 6):
        course, _, _ = _lab_in_progress(session, students=size)
        with count_queries(session) as statements:
            items = attention_list(
                session, context_id=course.context_id, days=3650, now=NOW, today=NOW.date()
            )
        counts.append(len(statements))
        blocked = [i for i in items if i.kind is AttentionKind.LOCKED_OUT]
        assert sorted(i.person_id for i in blocked) == sorted(course.student_ids)
        assert blocked[0].detail == (
            "Working on “Lab” (Titration), but the step locked again: needs SAFE Lab safety"
        )
        assert "unlock the step for them by hand" in blocked[0].action
    assert counts[0] == counts[1], counts


def test_the_step_proposal_query_count_does_not_grow_with_the_class(session: Session) -> None:
    counts = []
    for size in (2, 7):
        course, step, _ = _lab_in_progress(session, students=size)
        unlock_step_for_students(
            session,
            context_id=course.context_id,
            step_id=step,
            student_ids=course.student_ids[1:],
            unlocked_by_id=course.teacher_id,
        )
        session.expire_all()
        with count_queries(session) as statements:
            groups = propose_for_step(session, context_id=course.context_id, step_id=step)
        counts.append(len(statements))
        assert {g.name: len(g.person_ids) for g in groups} == {
            "Working on step 1 “Lab” but locked: needs SAFE": 1,
            "Working on step 1 “Lab”": size - 1,
        }
    assert counts[0] == counts[1], counts


def test_the_attention_list_says_when_the_student_can_try_the_earlier_step_again(
    session: Session,
) -> None:
    """Step 1 "Safety briefing" teaches SAFE; "Lab" waits for it. A first result at mastery
    closed the briefing and opened the lab; a weak one locked the lab again, below mastery: the
    student may try the briefing again, which the teacher was not told."""
    course = make_course(session, students=2)
    c = course.context_id
    for person in course.student_ids:
        session.add(
            Membership(
                context_id=c,
                person_id=person,
                roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
                status=MembershipStatus.ACTIVE,
                is_learner=True,
            )
        )
    safe = create_competency(session, context_id=c, code="SAFE", title="Lab safety").id
    pathway = services.create_pathway(session, context_id=c, title="Chemistry")
    briefing, lab = (
        services.create_step(session, context_id=c, pathway_id=pathway.id, title=title, **rule)
        for title, rule in (
            ("Safety briefing", {"competency_id": safe}),
            ("Lab", {"prerequisite_ids": [safe]}),
        )
    )
    picks = [
        options.create_option(session, context_id=c, step_id=s.id, data=OptionInput("Go")).id
        for s in (briefing, lab)
    ]
    retrying, other = course.student_ids
    for person in course.student_ids:
        first = ch.choose_option(session, context_id=c, person_id=person, option_id=picks[0])
        ch.submit_choice(session, context_id=c, person_id=person, choice_id=first.id)
    for points in (3, 1):
        record_and_close(
            session,
            context_id=c,
            competency_id=safe,
            student_ids=course.student_ids,
            points=Decimal(points),
            note="",
            recorded_by_id=course.teacher_id,
        )
        if points == 3:
            for person in course.student_ids:
                two = ch.choose_option(session, context_id=c, person_id=person, option_id=picks[1])
                ch.start_choice(session, context_id=c, person_id=person, choice_id=two.id)
    # The other student is let on by hand: not locked out, nothing to say.
    unlock_step_for_students(
        session, context_id=c, step_id=lab.id, student_ids=[other], unlocked_by_id=course.teacher_id
    )
    items = attention_list(session, context_id=c, days=3650, now=NOW, today=NOW.date())
    blocked = {i.person_id: i for i in items if i.kind is AttentionKind.LOCKED_OUT}
    assert blocked[retrying].detail == (
        "Working on “Lab” (Go), but the step locked again: needs SAFE Lab safety; "
        "they can try “Safety briefing” again"
    )
    assert "try the earlier step again" in blocked[retrying].action
    assert other not in blocked  # unlocked by hand: not locked out
