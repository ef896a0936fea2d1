"""What a student sees of a pathway: steps, options, locks and reasons, choices, suggestions."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.learners.models import LearnerProfile
from lti_app.pathways.attempts import EarlierTry, earlier_tries
from lti_app.pathways.errors import PathwayNotFoundError
from lti_app.pathways.models import Choice, ChoiceStatus, Option, Pathway, Step
from lti_app.pathways.recommend import LearnerTraits, Recommendation, recommend_option
from lti_app.pathways.retrying import (
    StepOnRoute,
    TeacherNote,
    competencies_to_try_again,
    pathway_competency_ids,
    teacher_notes,
)
from lti_app.pathways.unlock import CompetencyRef, UnlockState, step_unlock_states
from lti_app.pathways.unlocking import manual_unlock_ids, mastered_ids_for, step_rules


@dataclass(frozen=True)
class OptionView:
    option: Option
    recommendation: Recommendation
    is_chosen: bool


@dataclass(frozen=True)
class StepView:
    step: Step
    unlock: UnlockState
    options: tuple[OptionView, ...]
    choice: Choice | None
    """The student's current choice for this step, if any."""
    try_again_for: tuple[CompetencyRef, ...] = ()
    """Done below mastery of these, which a later step waits for: the step may be tried again."""
    teacher_notes: tuple[TeacherNote, ...] = ()
    """The teacher's latest note on each competency of try_again_for that has one."""
    earlier_tries: tuple[EarlierTry, ...] = ()
    """The student's earlier tries at this step, oldest first."""


@dataclass(frozen=True)
class StudentPathwayView:
    pathway: Pathway
    steps: tuple[StepView, ...]

    @property
    def is_read_only(self) -> bool:
        """An archived pathway, shown only for the student's own choices, to read."""
        return self.pathway.is_archived

    @property
    def recommended_option_ids(self) -> set[int]:
        return {
            o.option.id for s in self.steps for o in s.options if o.recommendation.is_recommended
        }


def student_pathway_view(
    session: Session,
    *,
    context_id: int,
    pathway_id: int,
    person_id: int,
    mastered_ids: Set[int] | None = None,
) -> StudentPathwayView:
    """Load everything a student's pathway page shows, in a fixed number of queries.

    Archived steps and options stay hidden unless the student already chose them. An archived
    pathway shows only the steps the student chose in, and only their chosen options.

    :param mastered_ids: the student's mastered competencies if the caller has them already.
    :raises PathwayNotFoundError: no such pathway in this course, or it is archived and the
        student has no choice in it.
    """
    pathway = session.scalars(
        select(Pathway).where(Pathway.id == pathway_id, Pathway.context_id == context_id)
    ).one_or_none()
    if pathway is None:
        raise PathwayNotFoundError("That pathway does not exist in this course.")
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
    if pathway.is_archived and not choices:
        # Archiving retires a pathway; a student with no work in it has nothing to come back to.
        raise PathwayNotFoundError("That pathway does not exist in this course.")
    chosen_option_ids = {c.option_id for c in choices.values()}
    options_by_step: dict[int, list[Option]] = {s: [] for s in step_ids}
    for option in session.scalars(
        select(Option)
        .where(Option.context_id == context_id, Option.step_id.in_(step_ids))
        .order_by(Option.position, Option.id)
    ):
        if option.id in chosen_option_ids or (
            option.archived_at is None and not pathway.is_archived
        ):
            options_by_step[option.step_id].append(option)
    profile = session.scalars(
        select(LearnerProfile).where(
            LearnerProfile.context_id == context_id, LearnerProfile.person_id == person_id
        )
    ).one_or_none()
    traits = (
        LearnerTraits(
            interests=tuple(profile.interests),
            career_clusters=tuple(profile.career_clusters),
            preferred_modalities=tuple(profile.preferred_modalities),
        )
        if profile
        else LearnerTraits()
    )
    if mastered_ids is None:
        mastered_ids = mastered_ids_for(session, context_id=context_id, person_id=person_id)
    states = step_unlock_states(
        step_rules(session, context_id=context_id, step_ids=step_ids),
        mastered_ids,
        manual_unlock_ids(session, context_id=context_id, person_id=person_id, step_ids=step_ids),
    )
    retry = _retry_offers(session, pathway, steps, states, choices)
    notes = (
        teacher_notes(
            session,
            context_id=context_id,
            person_id=person_id,
            competencies=[c for refs in retry.values() for c in refs],
        )
        if retry
        else {}
    )
    tries = earlier_tries(session, context_id=context_id, person_ids=[person_id], step_ids=step_ids)
    views = []
    for step in steps:
        choice = choices.get(step.id)
        if (step.archived_at is not None or pathway.is_archived) and choice is None:
            continue
        options = tuple(
            OptionView(
                option=o,
                recommendation=recommend_option(
                    interest_tags=o.interest_tags,
                    career_clusters=o.career_clusters,
                    modality=o.modality.value,
                    learner=traits,
                ),
                is_chosen=choice is not None and choice.option_id == o.id,
            )
            for o in options_by_step[step.id]
        )
        again = retry.get(step.id, ())
        views.append(
            StepView(
                step=step,
                unlock=states[step.id],
                options=options,
                choice=choice,
                try_again_for=again,
                teacher_notes=tuple(notes[c.id] for c in again if c.id in notes),
                earlier_tries=tuple(tries.get((person_id, step.id), ())),
            )
        )
    return StudentPathwayView(pathway=pathway, steps=tuple(views))


def _retry_offers(
    session: Session,
    pathway: Pathway,
    steps: list[Step],
    states: dict[int, UnlockState],
    choices: dict[int, Choice],
) -> dict[int, tuple[CompetencyRef, ...]]:
    """The done steps the student may try again; none in an archived pathway (read only)."""
    if pathway.is_archived or not any(c.status is ChoiceStatus.DONE for c in choices.values()):
        return {}  # nothing done: no query for what the pathway leads to
    return competencies_to_try_again(
        (StepOnRoute(s, states[s.id], choices.get(s.id)) for s in steps),
        pathway_competency_ids(session, [pathway.id]),
    )
