"""A student's earlier tries at a step: kept when a new try starts, read back for the student,
their teacher and the export.

A step's choice holds the try under way. When the student tries a step done below mastery
again (`pathways.retrying`), the try that just closed is copied here first, with the teacher's
evidence that closed it, so a second hand-in never overwrites the first one's work.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from lti_app.pathways.models import (
    Attempt,
    Choice,
    ChoiceStatus,
    Option,
    PathwayCompetency,
    Step,
)

CLOSING_WINDOW = timedelta(minutes=1)
"""How long after a try's closing its evidence may be saved: marking work done with a level on
the overview closes the work first, then records the evidence, in one request."""


@dataclass(frozen=True)
class EarlierTry:
    """One earlier try at a step, with the titles and the evidence a page shows it by."""

    attempt: Attempt
    option_title: str
    level_name: str | None
    """The level of the teacher's evidence that closed it; None: marked done without one."""
    evidence_note: str
    observed_on: date | None
    is_withdrawn: bool
    """The teacher withdrew that evidence since: it no longer counts."""


def keep_attempt(session: Session, *, choice: Choice, step: Step) -> Attempt:
    """Copy the choice's closed try into the attempts before the choice starts a new one."""
    number = (
        session.scalar(
            select(func.count())
            .select_from(Attempt)
            .where(Attempt.person_id == choice.person_id, Attempt.step_id == step.id)
        )
        or 0
    ) + 1
    attempt = Attempt(
        context_id=choice.context_id,
        person_id=choice.person_id,
        step_id=step.id,
        option_id=choice.option_id,
        number=number,
        submission_note=choice.submission_note,
        submission_url=choice.submission_url,
        teacher_feedback=choice.teacher_feedback,
        chosen_at=choice.chosen_at,
        started_at=choice.started_at,
        submitted_at=choice.submitted_at,
        done_at=choice.done_at,
        closed_by_id=choice.decided_by_id,
        evidence_id=_closing_evidence_id(session, choice, step),
    )
    session.add(attempt)
    session.flush()
    return attempt


def restore_last_attempt(session: Session, *, choice: Choice) -> bool:
    """Put the student's last earlier try at the choice's step back on the choice, as it closed,
    in place of the new try under way; tell whether there was one.

    A student who tried a step again and then withdraws the new pick means "not after all": the
    step goes back to done with the work and the teacher's notes it had, not to no choice at all.
    """
    last = session.scalars(
        select(Attempt)
        .where(Attempt.person_id == choice.person_id, Attempt.step_id == choice.step_id)
        .order_by(Attempt.number.desc(), Attempt.id.desc())
        .limit(1)
    ).one_or_none()
    if last is None:
        return False
    if last.option_id != choice.option_id:
        # The new try switched: its approval, if any, was of the other option.
        choice.approved_at = None
    choice.option_id = last.option_id
    choice.status = ChoiceStatus.DONE
    choice.submission_note = last.submission_note
    choice.submission_url = last.submission_url
    choice.teacher_feedback = last.teacher_feedback
    choice.chosen_at = last.chosen_at
    choice.started_at = last.started_at
    choice.submitted_at = last.submitted_at
    choice.returned_at = None
    choice.done_at = last.done_at
    choice.decided_by_id = last.closed_by_id
    # The choice holds that try again; kept twice, it would show as an earlier try of itself.
    session.delete(last)
    session.flush()
    return True


def _closing_evidence_id(session: Session, choice: Choice, step: Step) -> int | None:
    """The teacher's evidence that closed the choice: the latest recorded during the try, up to
    its closing, on what the step teaches (its own competency, else its pathway's), by the
    teacher who closed it; None when they marked it done without a level."""
    # Imported here so pathways loads (and its rules test) without the mastery tables.
    from lti_app.mastery.models import Evidence, EvidenceSource

    if choice.done_at is None:
        return None
    teaches = (
        [step.competency_id]
        if step.competency_id is not None
        else list(
            session.scalars(
                select(PathwayCompetency.competency_id).where(
                    PathwayCompetency.pathway_id == step.pathway_id
                )
            )
        )
    )
    query = (
        select(Evidence.id)
        .where(
            Evidence.context_id == choice.context_id,
            Evidence.person_id == choice.person_id,
            Evidence.competency_id.in_(teaches),
            Evidence.source != EvidenceSource.SELF_ASSESSMENT,
            Evidence.created_at >= choice.chosen_at,
            Evidence.created_at <= choice.done_at + CLOSING_WINDOW,
        )
        .order_by(Evidence.created_at.desc(), Evidence.id.desc())
        .limit(1)
    )
    if choice.decided_by_id is not None:
        query = query.where(Evidence.recorded_by_id == choice.decided_by_id)
    return session.scalar(query)


def earlier_tries(
    session: Session,
    *,
    context_id: int,
    person_ids: Collection[int],
    step_ids: Collection[int] | None = None,
    only_pairs: Collection[tuple[int, int]] | None = None,
) -> dict[tuple[int, int], list[EarlierTry]]:
    """These students' earlier tries (at these steps, or only at these (person id, step id)
    pairs), oldest first, by (person id, step id), in one query."""
    from lti_app.mastery.models import Evidence

    if not person_ids or (step_ids is not None and not step_ids):
        return {}
    query = (
        select(
            Attempt,
            Option.title,
            Evidence.level_name,
            Evidence.note,
            Evidence.observed_on,
            Evidence.withdrawn_at,
        )
        .join(Option, Option.id == Attempt.option_id)
        .outerjoin(Evidence, Evidence.id == Attempt.evidence_id)
        .where(Attempt.context_id == context_id, Attempt.person_id.in_(set(person_ids)))
        .order_by(Attempt.number, Attempt.id)
    )
    if step_ids is not None:
        query = query.where(Attempt.step_id.in_(set(step_ids)))
    if only_pairs is not None:
        # A class where most have handed something in would otherwise load nearly every try
        # of the course (each student's at each step anyone handed in at) to show a few.
        query = query.where(tuple_(Attempt.person_id, Attempt.step_id).in_(set(only_pairs)))
    tries: dict[tuple[int, int], list[EarlierTry]] = {}
    for attempt, option_title, level_name, note, observed_on, withdrawn_at in session.execute(
        query
    ):
        tries.setdefault((attempt.person_id, attempt.step_id), []).append(
            EarlierTry(
                attempt=attempt,
                option_title=option_title,
                level_name=level_name,
                evidence_note=note or "",
                observed_on=observed_on,
                is_withdrawn=withdrawn_at is not None,
            )
        )
    return tries
