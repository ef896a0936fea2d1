"""Record, correct and withdraw evidence, keeping every student's current level stored, and
read a course's evidence.

Every evidence change updates StudentCompetencyLevel in the same flush and returns the
MasteryChange list, so the caller can queue grade passback in the same transaction. The
course's scale: `mastery.scales`; reading stored levels: `mastery.levels`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.competencies.queries import get_competency, has_sub_competencies
from lti_app.db import DATABASE_ID_MAX, utcnow
from lti_app.mastery.errors import NUL_MESSAGE, EvidenceNotFoundError, InvalidEvidenceError
from lti_app.mastery.models import (
    IN_ORDER_OBSERVED,
    Evidence,
    EvidenceRevision,
    EvidenceSource,
    MasteryScale,
    RevisionAction,
)
from lti_app.mastery.rollup import MasteryChange, level_for_score, refresh_levels
from lti_app.mastery.scales import check_two_places, scale_in_force

__all__ = [
    "MasteryChange",
    "correct_evidence",
    "evidence_history",
    "get_evidence",
    "level_for_score",
    "record_evidence",
    "students_with_evidence",
    "withdraw_evidence",
]

CLOCK_SKEW = timedelta(minutes=5)
DOUBLE_SUBMIT = timedelta(seconds=30)
"""An identical observation recorded again this soon is a double click, not new evidence."""
HAND_ENTERED = frozenset({EvidenceSource.TEACHER, EvidenceSource.SELF_ASSESSMENT})


def repeats_since(form_shown_at: datetime | None) -> datetime:
    """Since when an identical row added by hand counts as the same send again: `DOUBLE_SUBMIT`
    ago (a double click), or since the sending form's page was shown if that is earlier (Back
    to the page after saving, then Add again: the very same form, however much later)."""
    recent = utcnow() - DOUBLE_SUBMIT
    return recent if form_shown_at is None else min(recent, form_shown_at)


def _check_points(scale: MasteryScale, points: Decimal) -> Decimal:
    points = Decimal(points)
    try:
        check_two_places(points, InvalidEvidenceError)
    except InvalidEvidenceError as err:
        raise InvalidEvidenceError(str(err), about="points") from None
    low, high = scale.levels[0].points, scale.levels[-1].points
    if not low <= points <= high:
        raise InvalidEvidenceError(
            f"points must be from {low} to {high} on this course's scale", about="points"
        )
    return points


def _clean_note(note: str) -> str:
    # PostgreSQL text cannot hold NUL; SQLite would keep it. Refuse it plainly on both.
    if "\x00" in note:
        raise InvalidEvidenceError(NUL_MESSAGE.format(what="note"), about="note")
    return note.strip()


def _same_points(points: Decimal, stored: Decimal) -> bool:
    value = Decimal(points)
    return value.is_finite() and value == stored


def _check_observed_at(observed_at: datetime | None) -> datetime:
    if observed_at is None:
        return utcnow()
    if observed_at.tzinfo is None:
        raise InvalidEvidenceError("observed_at needs a time zone", about="observed_at")
    if observed_at > utcnow() + CLOCK_SKEW:
        raise InvalidEvidenceError("evidence cannot be observed in the future", about="observed_at")
    return observed_at


def _assessable(session: Session, *, context_id: int, competency_id: int) -> Competency:
    competency = get_competency(session, context_id=context_id, competency_id=competency_id)
    if competency.is_archived:
        raise InvalidEvidenceError("this competency is archived", about="competency_id")
    if has_sub_competencies(session, context_id=context_id, competency_id=competency_id):
        # A parent's level is rolled up from its sub-competencies; evidence goes on those.
        raise InvalidEvidenceError(
            "record evidence on this competency's sub-competencies", about="competency_id"
        )
    # Serialise evidence on this competency (PostgreSQL; SQLite transactions are serial anyway),
    # so a double click's second request sees the first one's evidence and the stored level row.
    lock_competencies(session, context_id=context_id, competency_ids=[competency_id])
    return competency


def lock_competencies(
    session: Session, *, context_id: int, competency_ids: Collection[int]
) -> None:
    """Lock the course's competencies until the transaction ends, in id order.

    Evidence locks its competency and then closes the pathway work it answers, so whoever
    locks both competencies and choices takes the competencies first: two orders deadlock.
    """
    session.execute(
        select(Competency.id)
        .where(Competency.context_id == context_id, Competency.id.in_(set(competency_ids)))
        .order_by(Competency.id)
        .with_for_update()
    )


def _already_recorded(
    session: Session, new: Sequence[Evidence], form_shown_at: datetime | None
) -> set[int]:
    """The students of `new` (one observation, a row each, not yet added) who got this very
    observation moments ago (a double click or a resend), or since the form's page was shown
    (the same form sent again)."""
    since = repeats_since(form_shown_at)
    observation = new[0]
    # A form that leaves the time to the save (today) observes at the moment of each save: the
    # same form sent again observes later than the first send did.
    earliest = (
        observation.observed_at if form_shown_at is None else min(observation.observed_at, since)
    )
    rows = session.execute(
        select(Evidence.person_id, Evidence.created_at).where(
            Evidence.context_id == observation.context_id,
            Evidence.competency_id == observation.competency_id,
            Evidence.person_id.in_([row.person_id for row in new]),
            Evidence.points == observation.points,
            Evidence.source == observation.source,
            Evidence.note == observation.note,
            Evidence.recorded_by_id == observation.recorded_by_id,
            Evidence.withdrawn_at.is_(None),
            Evidence.observed_at.between(
                earliest - DOUBLE_SUBMIT, observation.observed_at + DOUBLE_SUBMIT
            ),
        )
    ).all()
    return {person_id for person_id, created in rows if created is not None and created >= since}


def record_evidence(
    session: Session,
    *,
    context_id: int,
    competency_id: int,
    student_ids: Sequence[int],
    points: Decimal,
    source: EvidenceSource,
    note: str,
    recorded_by_id: int,
    observed_at: datetime | None = None,
    observed_on: date | None = None,
    form_shown_at: datetime | None = None,
) -> list[MasteryChange]:
    """Record the same observation for one or more students and update their levels.

    `observed_on` is the day it was observed as the course reads it (a typed date, else the
    course's today); without one, the UTC date of `observed_at`: the domain knows no zone.

    A student who got this very observation (same points, source, note and recorder, observed
    at about the same time) in the last `DOUBLE_SUBMIT` is skipped: that is a double click; so
    is one who got it since `form_shown_at`, when the form's page was shown (the same form sent
    again).

    :raises CompetencyNotFoundError: the competency is not in this course.
    :raises InvalidEvidenceError: points outside the scale, archived or parent competency, no
        students, or a naive or future observed_at.
    """
    _assessable(session, context_id=context_id, competency_id=competency_id)
    scale = scale_in_force(session, context_id=context_id)
    points = _check_points(scale, points)
    observed = _check_observed_at(observed_at)
    day = observed.astimezone(UTC).date() if observed_on is None else observed_on
    note = _clean_note(note)
    students = list(dict.fromkeys(student_ids))
    if not students:
        raise InvalidEvidenceError("choose at least one student")
    level_name = level_for_score(scale, points).name
    new = [
        Evidence(
            context_id=context_id,
            competency_id=competency_id,
            person_id=student_id,
            points=points,
            level_name=level_name,
            source=source,
            note=note,
            recorded_by_id=recorded_by_id,
            observed_at=observed,
            observed_on=day,
        )
        for student_id in students
    ]
    # Only what people type into a form can be double-clicked; checks and work carry their own.
    if source in HAND_ENTERED:
        repeated = _already_recorded(session, new, form_shown_at)
        new = [row for row in new if row.person_id not in repeated]
    if not new:
        return []
    session.add_all(new)
    session.flush()
    return refresh_levels(
        session,
        scale=scale,
        context_id=context_id,
        person_ids=[row.person_id for row in new],
        competency_ids={competency_id},
    )


def get_evidence(session: Session, *, context_id: int, evidence_id: int) -> Evidence:
    """Return the course's evidence, or raise EvidenceNotFoundError (also for other courses)."""
    if not 0 < evidence_id <= DATABASE_ID_MAX:
        raise EvidenceNotFoundError(evidence_id)
    evidence = session.scalar(
        select(Evidence).where(Evidence.id == evidence_id, Evidence.context_id == context_id)
    )
    if evidence is None:
        raise EvidenceNotFoundError(evidence_id)
    return evidence


def _revise(
    session: Session,
    evidence: Evidence,
    *,
    action: RevisionAction,
    changed_by_id: int,
    points: Decimal,
    note: str,
    observed_at: datetime,
    observed_on: date,
) -> None:
    session.add(
        EvidenceRevision(
            evidence=evidence,
            context_id=evidence.context_id,
            action=action,
            changed_by_id=changed_by_id,
            old_points=evidence.points,
            new_points=points,
            old_note=evidence.note,
            new_note=note,
            old_observed_at=evidence.observed_at,
            new_observed_at=observed_at,
            old_observed_on=evidence.observed_on,
            new_observed_on=observed_on,
        )
    )


def correct_evidence(
    session: Session,
    *,
    context_id: int,
    evidence_id: int,
    points: Decimal | None = None,
    note: str | None = None,
    observed_at: datetime | None = None,
    observed_on: date | None = None,
    changed_by_id: int,
) -> list[MasteryChange]:
    """Change an observation's points, note or time (None: unchanged), keeping a revision.
    A new time without a day takes the day of its UTC date (the domain knows no zone)."""
    evidence = get_evidence(session, context_id=context_id, evidence_id=evidence_id)
    if evidence.withdrawn_at is not None:
        raise InvalidEvidenceError("withdrawn evidence cannot be corrected")
    scale = scale_in_force(session, context_id=context_id)
    # Points left as they were pass even if a later scale change put them off the scale.
    if points is None or _same_points(points, evidence.points):
        new_points = evidence.points
    else:
        new_points = _check_points(scale, points)
    new_note = evidence.note if note is None else _clean_note(note)
    if observed_at is None:
        new_observed, new_day = evidence.observed_at, evidence.observed_on
    else:
        new_observed = _check_observed_at(observed_at)
        new_day = new_observed.astimezone(UTC).date() if observed_on is None else observed_on
    if (new_points, new_note, new_observed, new_day) == (
        evidence.points,
        evidence.note,
        evidence.observed_at,
        evidence.observed_on,
    ):
        return []
    _revise(
        session,
        evidence,
        action=RevisionAction.CORRECTED,
        changed_by_id=changed_by_id,
        points=new_points,
        note=new_note,
        observed_at=new_observed,
        observed_on=new_day,
    )
    if new_points != evidence.points:
        evidence.level_name = level_for_score(scale, new_points).name
    evidence.points, evidence.note = new_points, new_note
    evidence.observed_at, evidence.observed_on = new_observed, new_day
    session.flush()
    return refresh_levels(
        session,
        scale=scale,
        context_id=context_id,
        person_ids=[evidence.person_id],
        competency_ids={evidence.competency_id},
    )


def withdraw_evidence(
    session: Session, *, context_id: int, evidence_id: int, changed_by_id: int
) -> list[MasteryChange]:
    """Stop an observation from counting; it stays in the history, marked withdrawn."""
    evidence = get_evidence(session, context_id=context_id, evidence_id=evidence_id)
    if evidence.withdrawn_at is not None:
        raise InvalidEvidenceError("this evidence is already withdrawn")
    _revise(
        session,
        evidence,
        action=RevisionAction.WITHDRAWN,
        changed_by_id=changed_by_id,
        points=evidence.points,
        note=evidence.note,
        observed_at=evidence.observed_at,
        observed_on=evidence.observed_on,
    )
    scale = scale_in_force(session, context_id=context_id)
    evidence.withdrawn_at = utcnow()
    session.flush()
    return refresh_levels(
        session,
        scale=scale,
        context_id=context_id,
        person_ids=[evidence.person_id],
        competency_ids={evidence.competency_id},
    )


# --- Reading -----------------------------------------------------------------------------


def students_with_evidence(session: Session, *, context_id: int) -> dict[int, int]:
    """How many students have evidence that counts (not withdrawn), by competency id."""
    rows = session.execute(
        select(Evidence.competency_id, func.count(func.distinct(Evidence.person_id)))
        .where(Evidence.context_id == context_id, Evidence.withdrawn_at.is_(None))
        .group_by(Evidence.competency_id)
    )
    return {int(competency_id): int(count) for competency_id, count in rows}


def evidence_history(
    session: Session,
    *,
    context_id: int,
    person_id: int,
    competency_id: int | None = None,
    include_withdrawn: bool = True,
) -> list[Evidence]:
    """Return the student's evidence, oldest observation first, withdrawn ones included."""
    query = select(Evidence).where(
        Evidence.context_id == context_id, Evidence.person_id == person_id
    )
    if competency_id is not None:
        query = query.where(Evidence.competency_id == competency_id)
    if not include_withdrawn:
        query = query.where(Evidence.withdrawn_at.is_(None))
    return list(session.scalars(query.order_by(*IN_ORDER_OBSERVED)))


def corrected_evidence_ids(session: Session, *, context_id: int, person_id: int) -> set[int]:
    """Ids of the student's evidence corrected or withdrawn since it was recorded: one query
    for the whole history (the student's page asked each row's revisions in turn)."""
    return set(
        session.scalars(
            select(EvidenceRevision.evidence_id)
            .join(Evidence, Evidence.id == EvidenceRevision.evidence_id)
            .where(Evidence.context_id == context_id, Evidence.person_id == person_id)
            .distinct()
        )
    )
