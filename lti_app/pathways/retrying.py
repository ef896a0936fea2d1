"""Trying a done step again: the way on when evidence closed the work below mastery.

Evidence on a competency closes the student's handed-in work on it as done, whatever the level.
When the level stays below mastery and a later step of the pathway waits for that mastery, the
done step was the student's only route there: without a second try nothing but the teacher
moves them on. So such a step offers "Try this step again", which starts the same option (or,
as nothing has started yet, lets the student switch) as a new attempt. The first attempt's
evidence and the teacher's notes on it stay in the student's mastery history; the attempt
itself (its hand-in, times, option and closing evidence) is kept as an earlier try
(`pathways.attempts`), shown on the step to the student and their teacher.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.pathways.attempts import keep_attempt
from lti_app.pathways.choices import choose_option, own_choice
from lti_app.pathways.errors import ChoiceNotAllowedError
from lti_app.pathways.models import Choice, ChoiceStatus, Option, PathwayCompetency, Step
from lti_app.pathways.unlock import CompetencyRef, UnlockState, step_unlock_states
from lti_app.pathways.unlocking import (
    class_unlock_states,
    manual_unlock_ids,
    mastered_ids_for,
    step_rules,
)


@dataclass(frozen=True)
class StepOnRoute:
    """What the rule needs of one step of a pathway, in the pathway's order."""

    step: Step
    unlock: UnlockState
    choice: Choice | None


@dataclass(frozen=True)
class TeacherNote:
    """The teacher's latest note on a competency a step is tried again for."""

    competency: CompetencyRef
    level_name: str
    note: str
    observed_on: date


def competencies_to_try_again(
    route: Iterable[StepOnRoute], teaches_by_pathway: Mapping[int, Set[int]]
) -> dict[int, tuple[CompetencyRef, ...]]:
    """For each done step a student may try again, the competencies it teaches that a later
    step of its pathway still waits for (by step id); other steps are left out.

    A step is tried again only while it is open and on offer (not archived): a step locked
    again waits for its own prerequisites first, and a retired step takes no new work.

    :param route: the pathway's steps in order, each with its lock state and the student's choice.
    :param teaches_by_pathway: the competencies each pathway leads to, for steps that name none.
    """
    steps = list(route)
    found: dict[int, tuple[CompetencyRef, ...]] = {}
    for index, item in enumerate(steps):
        choice = item.choice
        if choice is None or choice.status is not ChoiceStatus.DONE:
            continue
        if not item.unlock.is_unlocked or item.step.archived_at is not None:
            continue
        teaches = (
            {item.step.competency_id}
            if item.step.competency_id is not None
            else teaches_by_pathway.get(item.step.pathway_id, set())
        )
        waited_for: dict[int, CompetencyRef] = {}
        for later in steps[index + 1 :]:
            if later.unlock.is_unlocked or later.step.archived_at is not None:
                continue
            for competency in later.unlock.missing:
                if competency.id in teaches:
                    waited_for.setdefault(competency.id, competency)
        if waited_for:
            found[item.step.id] = tuple(waited_for.values())
    return found


def pathway_competency_ids(session: Session, pathway_ids: Collection[int]) -> dict[int, set[int]]:
    """The competencies each pathway leads to, in one query."""
    leads: dict[int, set[int]] = {p: set() for p in pathway_ids}
    if not pathway_ids:
        return leads
    for pathway_id, competency_id in session.execute(
        select(PathwayCompetency.pathway_id, PathwayCompetency.competency_id).where(
            PathwayCompetency.pathway_id.in_(list(pathway_ids))
        )
    ):
        leads[pathway_id].add(competency_id)
    return leads


def retry_offers_for_student(
    session: Session,
    *,
    context_id: int,
    person_id: int,
    pathway_id: int,
    mastered_ids: Set[int] | None = None,
) -> dict[int, tuple[CompetencyRef, ...]]:
    """The student's done steps in the pathway they may try again, with what each is for."""
    steps = list(
        session.scalars(
            select(Step)
            .where(Step.context_id == context_id, Step.pathway_id == pathway_id)
            .order_by(Step.position, Step.id)
        )
    )
    step_ids = [s.id for s in steps]
    choices = {
        c.step_id: c
        for c in session.scalars(
            select(Choice).where(
                Choice.context_id == context_id,
                Choice.person_id == person_id,
                Choice.step_id.in_(step_ids),
            )
        )
    }
    if mastered_ids is None:
        mastered_ids = mastered_ids_for(session, context_id=context_id, person_id=person_id)
    states = step_unlock_states(
        step_rules(session, context_id=context_id, step_ids=step_ids),
        mastered_ids,
        manual_unlock_ids(session, context_id=context_id, person_id=person_id, step_ids=step_ids),
    )
    return competencies_to_try_again(
        (StepOnRoute(s, states[s.id], choices.get(s.id)) for s in steps),
        pathway_competency_ids(session, [pathway_id]),
    )


def closed_work_offered_again(
    session: Session, *, context_id: int, person_id: int, choices: Iterable[Choice]
) -> list[Choice]:
    """Which of a student's just-closed choices the student may now try again: what the
    teacher is told when their evidence closes work below mastery."""
    wanted = list(choices)
    pathway_ids = set(
        session.scalars(select(Step.pathway_id).where(Step.id.in_([c.step_id for c in wanted])))
    )
    mastered = mastered_ids_for(session, context_id=context_id, person_id=person_id)
    offered: set[int] = set()
    for pathway_id in sorted(pathway_ids):
        offered |= set(
            retry_offers_for_student(
                session,
                context_id=context_id,
                person_id=person_id,
                pathway_id=pathway_id,
                mastered_ids=mastered,
            )
        )
    return [c for c in wanted if c.step_id in offered]


def students_offered_again(
    session: Session, *, context_id: int, choices: Iterable[Choice]
) -> set[int]:
    """The students among those whose work was just closed (by evidence, or marked done on the
    overview) who may now try a step of it again: what the teacher is told. For a whole class
    in six queries at most."""
    closed = list(choices)
    if not closed:
        return set()
    pathways = select(Step.pathway_id).where(Step.id.in_({c.step_id for c in closed}))
    steps = list(
        session.scalars(
            select(Step)
            .where(Step.context_id == context_id, Step.pathway_id.in_(pathways))
            .order_by(Step.position, Step.id)
        )
    )
    people = {c.person_id for c in closed}
    current = {
        (c.person_id, c.step_id): c
        for c in session.scalars(
            select(Choice).where(
                Choice.context_id == context_id,
                Choice.person_id.in_(people),
                Choice.step_id.in_([s.id for s in steps]),
            )
        )
    }
    states = class_unlock_states(
        session, context_id=context_id, pairs={(p, s.id) for p in people for s in steps}
    )
    leads = pathway_competency_ids(session, {s.pathway_id for s in steps})
    closed_steps = {(c.person_id, c.step_id) for c in closed}
    offered: set[int] = set()
    for person_id in people:
        routes: dict[int, list[StepOnRoute]] = {}
        for step in steps:
            routes.setdefault(step.pathway_id, []).append(
                StepOnRoute(step, states[person_id, step.id], current.get((person_id, step.id)))
            )
        for route in routes.values():
            if any((person_id, s) in closed_steps for s in competencies_to_try_again(route, leads)):
                offered.add(person_id)
    return offered


def earlier_steps_to_try_again(
    session: Session, *, context_id: int, locked: Mapping[tuple[int, int], UnlockState]
) -> dict[tuple[int, int], list[Step]]:
    """For students locked out of a step (by (student, step), with its lock state): the done
    steps before it in its pathway they may try again for what it waits for, by the rule of
    `competencies_to_try_again`, for a whole class in six queries at most."""
    if not locked:
        return {}
    waiting = {
        s.id: s
        for s in session.scalars(
            select(Step).where(
                Step.context_id == context_id,
                Step.id.in_({step_id for _, step_id in locked}),
                Step.archived_at.is_(None),
            )
        )
    }
    people = {person_id for person_id, step_id in locked if step_id in waiting}
    if not people:
        return {}
    done = session.execute(
        select(Choice.person_id, Step)
        .join(Step, Step.id == Choice.step_id)
        .where(
            Choice.context_id == context_id,
            Choice.person_id.in_(people),
            Choice.status == ChoiceStatus.DONE,
            Step.pathway_id.in_({s.pathway_id for s in waiting.values()}),
            Step.archived_at.is_(None),
        )
    ).all()
    leads = pathway_competency_ids(
        session, {step.pathway_id for _, step in done if step.competency_id is None}
    )
    candidates: dict[tuple[int, int], list[Step]] = {}
    for (person_id, step_id), state in locked.items():
        later = waiting.get(step_id)
        if later is None:
            continue
        missing = {c.id for c in state.missing}
        for done_by, step in done:
            teaches = (
                {step.competency_id}
                if step.competency_id is not None
                else leads.get(step.pathway_id, set())
            )
            if (
                done_by == person_id
                and step.pathway_id == later.pathway_id
                and (step.position, step.id) < (later.position, later.id)
                and teaches & missing
            ):
                candidates.setdefault((person_id, step_id), []).append(step)
    # A done step locked again itself waits for its own prerequisites first.
    open_now = class_unlock_states(
        session,
        context_id=context_id,
        pairs={(p, step.id) for (p, _), steps in candidates.items() for step in steps},
    )
    found = {
        key: sorted(
            (step for step in steps if open_now[key[0], step.id].is_unlocked),
            key=lambda step: (step.position, step.id),
        )
        for key, steps in candidates.items()
    }
    return {key: steps for key, steps in found.items() if steps}


def teacher_notes(
    session: Session, *, context_id: int, person_id: int, competencies: Iterable[CompetencyRef]
) -> dict[int, TeacherNote]:
    """The teacher's latest note on each of these competencies for the student, by id."""
    # Imported here so pathways loads (and its rules test) without the mastery tables.
    from lti_app.mastery.levels import latest_teacher_notes

    refs = {c.id: c for c in competencies}
    latest = latest_teacher_notes(
        session, context_id=context_id, person_id=person_id, competency_ids=refs
    )
    return {
        cid: TeacherNote(refs[cid], e.level_name, e.note, e.observed_on)
        for cid, e in latest.items()
    }


def try_step_again(
    session: Session,
    *,
    context_id: int,
    person_id: int,
    choice_id: int,
    option_id: int | None = None,
    mastered_ids: Set[int] | None = None,
) -> Choice:
    """Open a done step for a new attempt: its option (or `option_id`, another option of the
    step) is picked again, nothing started yet.

    The attempt that closed is kept as an earlier try (its hand-in, times and the teacher's
    closing evidence); the choice then holds only the new attempt, so the teacher's lists read
    its age and its hand-in, not the first one's.

    :raises ChoiceNotAllowedError: the step is not done, or the student has mastered what it
        teaches (or nothing later waits for it), so there is nothing to try again for; or the
        teacher has taken the done option off offer and no other option is picked.
    """
    choice, option = own_choice(session, context_id, person_id, choice_id)
    if choice.status is not ChoiceStatus.DONE:
        if choice.status in {ChoiceStatus.CHOSEN, ChoiceStatus.APPROVED}:
            return choice  # a second click: the first one opened the new attempt
        raise ChoiceNotAllowedError("Only a step that is done can be tried again.")
    step = session.get(Step, choice.step_id)
    offers = retry_offers_for_student(
        session,
        context_id=context_id,
        person_id=person_id,
        pathway_id=step.pathway_id if step is not None else 0,
        mastered_ids=mastered_ids,
    )
    if step is None or choice.step_id not in offers:
        raise ChoiceNotAllowedError(
            "This step can't be tried again: nothing further on waits for what it teaches."
        )
    switching = option_id is not None and option_id != option.id
    if (
        switching
        and session.scalar(
            select(Option.step_id).where(Option.id == option_id, Option.context_id == context_id)
        )
        != choice.step_id
    ):
        raise ChoiceNotAllowedError("That option is not one of this step's.")
    if option.archived_at is not None and not switching:
        # Retired by the teacher: the student goes on with another option, as a new pick would.
        raise ChoiceNotAllowedError(
            f"Your teacher has taken “{option.title}” off offer: pick another option to try "
            "this step again with."
        )
    keep_attempt(session, choice=choice, step=step)
    now = utcnow()
    # An option that needs approval was approved once already: the same option goes on as
    # approved, from now (the new try's age counts from its start, not the old approval);
    # switching to another asks the teacher again (choose_option clears it).
    again_approved = option.requires_approval and choice.approved_at is not None
    choice.status = ChoiceStatus.APPROVED if again_approved else ChoiceStatus.CHOSEN
    choice.chosen_at = now
    choice.approved_at = now if again_approved else None
    choice.started_at = None
    choice.submitted_at = None
    choice.returned_at = None
    choice.done_at = None
    choice.decided_by_id = None
    # Kept in the earlier try: the new hand-in form starts from it (the student's page).
    choice.submission_note = ""
    choice.submission_url = None
    choice.teacher_feedback = ""
    session.flush()
    if switching and option_id is not None:
        # Refused like any pick (retired, or the step locked since):
        # the caller rolls the whole try back.
        return choose_option(
            session,
            context_id=context_id,
            person_id=person_id,
            option_id=option_id,
            mastered_ids=mastered_ids,
        )
    return choice
