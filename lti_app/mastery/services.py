"""Record evidence, keep every student's current level stored, and manage the course's scale.

Every evidence change updates StudentCompetencyLevel in the same flush and returns the
MasteryChange list, so the caller can queue grade passback in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from lti_app.competencies.models import Competency
from lti_app.competencies.services import get_competency
from lti_app.db import DATABASE_ID_MAX, utcnow
from lti_app.mastery.calculation import (
    N_RANGE,
    TWO_PLACES,
    CalculationError,
    CalculationMethod,
    check_parameters,
)
from lti_app.mastery.errors import EvidenceNotFoundError, InvalidEvidenceError, InvalidScaleError
from lti_app.mastery.models import (
    LEVEL_NAME_LENGTH,
    Evidence,
    EvidenceRevision,
    EvidenceSource,
    MasteryLevel,
    MasteryScale,
    RevisionAction,
    StudentCompetencyLevel,
)
from lti_app.mastery.rollup import MasteryChange, level_for_score, refresh_levels

__all__ = [
    "DEFAULT_LEVELS",
    "MAX_LEVELS",
    "LevelSpec",
    "MasteryChange",
    "correct_evidence",
    "current_levels",
    "evidence_history",
    "get_evidence",
    "get_or_create_scale",
    "level_for_score",
    "levels_for_course",
    "mastered_competency_ids",
    "recompute_course",
    "record_evidence",
    "scale_in_force",
    "students_with_evidence",
    "update_scale",
    "withdraw_evidence",
]

CLOCK_SKEW = timedelta(minutes=5)
DOUBLE_SUBMIT = timedelta(seconds=30)
"""An identical observation recorded again this soon is a double click, not new evidence."""
HAND_ENTERED = frozenset({EvidenceSource.TEACHER, EvidenceSource.SELF_ASSESSMENT})
NUL_MESSAGE = (
    "the {what} contains an invisible NUL character (code 0), which cannot be saved; delete it "
    "or retype the {what}"
)
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
MAX_LEVELS = 20
"""The most levels a scale has: the editor reads this many rows, so a longer scale could not be
saved from it again without losing levels."""


class LevelSpec(NamedTuple):
    """A level as `update_scale` takes it; a plain (name, points, colour, is_mastery) works too."""

    name: str
    points: Decimal
    colour: str
    is_mastery: bool


DEFAULT_LEVELS = (
    # Each colour has at least 4.5:1 contrast with white (WCAG AA for normal text).
    LevelSpec("Emerging", Decimal(1), "#B42318", False),
    LevelSpec("Developing", Decimal(2), "#93370D", False),
    LevelSpec("Proficient", Decimal(3), "#067647", True),
    LevelSpec("Advanced", Decimal(4), "#175CD3", False),
)


# --- Scale -------------------------------------------------------------------------------


def _find_scale(session: Session, context_id: int) -> MasteryScale | None:
    return session.scalar(
        select(MasteryScale)
        .where(MasteryScale.context_id == context_id)
        .options(selectinload(MasteryScale.levels))
    )


def get_or_create_scale(session: Session, *, context_id: int) -> MasteryScale:
    """Return the course's scale, creating the default one on first use."""
    scale = _find_scale(session, context_id)
    if scale is not None:
        return scale
    scale = MasteryScale(context_id=context_id)
    scale.levels = [
        MasteryLevel(
            name=spec.name,
            points=spec.points,
            colour=spec.colour,
            position=position,
            is_mastery=spec.is_mastery,
        )
        for position, spec in enumerate(DEFAULT_LEVELS)
    ]
    try:
        # A savepoint, because another request may create the course's scale at the same time.
        with session.begin_nested():
            session.add(scale)
    except IntegrityError:
        existing = _find_scale(session, context_id)
        if existing is None:
            raise
        return existing
    return scale


def check_levels(levels: Sequence[tuple[str, Decimal, str, bool]]) -> list[LevelSpec]:
    """The levels as a scale keeps them (names stripped), or raise InvalidScaleError."""
    specs = [
        LevelSpec(name.strip(), Decimal(points), colour, mastery)
        for name, points, colour, mastery in levels
    ]
    if len(specs) < 2:
        raise InvalidScaleError("a scale needs at least two levels")
    if len(specs) > MAX_LEVELS:
        raise InvalidScaleError(f"a scale has at most {MAX_LEVELS} levels")
    if any("\x00" in spec.name for spec in specs):
        raise InvalidScaleError(NUL_MESSAGE.format(what="level name"))
    names = [spec.name.casefold() for spec in specs]
    if any(not name for name in names) or len(set(names)) != len(names):
        raise InvalidScaleError("every level needs a name of its own")
    if any(len(spec.name) > LEVEL_NAME_LENGTH for spec in specs):
        raise InvalidScaleError(f"a level name has at most {LEVEL_NAME_LENGTH} characters")
    for spec in specs:
        _check_two_places(spec.points, InvalidScaleError)
        if spec.points < 0 or spec.points >= 10_000:
            raise InvalidScaleError("level points are from 0 to 9999.99")
        # fullmatch: `$` would let "#rrggbb\n" through, too long for the column on PostgreSQL.
        if not _COLOUR.fullmatch(spec.colour):
            raise InvalidScaleError(f"colour {spec.colour!r} is not of the form #rrggbb")
    if any(a.points >= b.points for a, b in pairwise(specs)):
        raise InvalidScaleError("list levels from lowest to highest, with rising points")
    if sum(spec.is_mastery for spec in specs) != 1:
        raise InvalidScaleError("exactly one level marks mastery")
    return specs


def update_scale(
    session: Session,
    *,
    context_id: int,
    method: CalculationMethod,
    weight: int | None = None,
    n: int | None = None,
    counts_self_assessment: bool | None = None,
    levels: Sequence[tuple[str, Decimal, str, bool]] | None = None,
) -> list[MasteryChange]:
    """Change the course's scale or method and recompute every stored level of the course.

    None leaves a setting as it is. `levels` replaces the levels, lowest first, as
    (name, points, colour #rrggbb, is_mastery). Returns what changed, for the teacher to review.
    """
    scale = locked_scale(session, context_id)
    # A setting the chosen method ignores is still stored (and shown) for a later switch, so it
    # must be a value some method accepts; an unbounded one would not even fit its column.
    if weight is not None and not 1 <= weight <= 99:
        raise InvalidScaleError("the weight is a percentage from 1 to 99")
    if n is not None and not N_RANGE[0] <= n <= N_RANGE[1]:
        raise InvalidScaleError(f"n times needs n from {N_RANGE[0]} to {N_RANGE[1]}")
    try:
        check_parameters(
            method,
            weight=scale.weight if weight is None else weight,
            n=scale.n if n is None else n,
        )
    except CalculationError as err:
        raise InvalidScaleError(str(err)) from err
    specs = None if levels is None else check_levels(levels)
    scale.method = method
    if weight is not None:
        scale.weight = weight
    if n is not None:
        scale.n = n
    if counts_self_assessment is not None:
        scale.counts_self_assessment = counts_self_assessment
    if specs is not None:
        # Update rows in place: renaming a level keeps its row, and evidence keeps its points.
        current = list(scale.levels)
        for position, spec in enumerate(specs):
            if position < len(current):
                level = current[position]
            else:
                level = MasteryLevel(position=position)
                scale.levels.append(level)
            level.name, level.points = spec.name, spec.points
            level.colour, level.is_mastery = spec.colour, spec.is_mastery
        for level in current[len(specs) :]:
            scale.levels.remove(level)
    session.flush()
    return refresh_levels(session, scale=scale, context_id=context_id)


def locked_scale(session: Session, context_id: int, *, share: bool = False) -> MasteryScale:
    """The course's scale, locked until commit and read afresh with its levels (PostgreSQL).

    Two saves at once (a double click, two teachers) would otherwise both start from the same
    levels and both append the new ones; the second now waits and starts from the first's.
    `share` is for whatever stores levels computed on the scale (evidence, a framework
    change): those run side by side, but a scale save waits for them and they wait for it, so
    no level is stored on a scale that a save in flight is replacing. SQLite runs one writing
    transaction at a time anyway; reading afresh still matters there for a session that loaded
    the scale in an earlier transaction.
    """
    query = (
        select(MasteryScale)
        .where(MasteryScale.context_id == context_id)
        .with_for_update(read=share)
        .options(selectinload(MasteryScale.levels))
        .execution_options(populate_existing=True)
    )
    scale = session.scalar(query)
    if scale is None:
        get_or_create_scale(session, context_id=context_id)
        scale = session.scalar(query)
    if scale is None:  # pragma: no cover - the row exists after get_or_create_scale
        raise InvalidScaleError("this course has no mastery scale")
    return scale


def scale_in_force(session: Session, *, context_id: int) -> MasteryScale:
    """The course's scale to compute levels on, held until commit so a scale save waits."""
    return locked_scale(session, context_id, share=True)


def recompute_course(session: Session, *, context_id: int) -> list[MasteryChange]:
    """Recompute every stored level of the course, e.g. after the framework's hierarchy changed.

    Archiving, unarchiving or moving a competency changes its parents' roll-ups; the
    competencies feature does not know about mastery, so the caller runs this afterwards.
    """
    scale = scale_in_force(session, context_id=context_id)
    return refresh_levels(session, scale=scale, context_id=context_id)


# --- Evidence ----------------------------------------------------------------------------


def _check_two_places(points: Decimal, error: type[Exception]) -> None:
    try:
        exact = points.is_finite() and points == points.quantize(TWO_PLACES)
    except InvalidOperation:
        exact = False
    if not exact:
        raise error("points have at most two decimals")


def _check_points(scale: MasteryScale, points: Decimal) -> Decimal:
    points = Decimal(points)
    _check_two_places(points, InvalidEvidenceError)
    low, high = scale.levels[0].points, scale.levels[-1].points
    if not low <= points <= high:
        raise InvalidEvidenceError(f"points must be from {low} to {high} on this course's scale")
    return points


def _clean_note(note: str) -> str:
    # PostgreSQL text cannot hold NUL; SQLite would keep it. Refuse it plainly on both.
    if "\x00" in note:
        raise InvalidEvidenceError(NUL_MESSAGE.format(what="note"))
    return note.strip()


def _same_points(points: Decimal, stored: Decimal) -> bool:
    value = Decimal(points)
    return value.is_finite() and value == stored


def _check_observed_at(observed_at: datetime | None) -> datetime:
    if observed_at is None:
        return utcnow()
    if observed_at.tzinfo is None:
        raise InvalidEvidenceError("observed_at needs a time zone")
    if observed_at > utcnow() + CLOCK_SKEW:
        raise InvalidEvidenceError("evidence cannot be observed in the future")
    return observed_at


def _assessable(session: Session, *, context_id: int, competency_id: int) -> Competency:
    competency = get_competency(session, context_id=context_id, competency_id=competency_id)
    if competency.is_archived:
        raise InvalidEvidenceError("this competency is archived")
    has_children = session.scalar(
        select(Competency.id)
        .where(
            Competency.context_id == context_id,
            Competency.parent_id == competency_id,
            Competency.archived_at.is_(None),
        )
        .limit(1)
    )
    if has_children is not None:
        # A parent's level is rolled up from its sub-competencies; evidence goes on those.
        raise InvalidEvidenceError("record evidence on this competency's sub-competencies")
    # Serialise evidence on this competency (PostgreSQL; SQLite transactions are serial anyway),
    # so a double click's second request sees the first one's evidence and the stored level row.
    session.execute(select(Competency.id).where(Competency.id == competency_id).with_for_update())
    return competency


def _already_recorded(
    session: Session,
    *,
    context_id: int,
    competency_id: int,
    student_ids: Sequence[int],
    points: Decimal,
    source: EvidenceSource,
    note: str,
    recorded_by_id: int,
    observed_at: datetime,
) -> set[int]:
    """The students who got this very observation moments ago (a double click or a resend)."""
    rows = session.execute(
        select(Evidence.person_id, Evidence.created_at).where(
            Evidence.context_id == context_id,
            Evidence.competency_id == competency_id,
            Evidence.person_id.in_(student_ids),
            Evidence.points == points,
            Evidence.source == source,
            Evidence.note == note,
            Evidence.recorded_by_id == recorded_by_id,
            Evidence.withdrawn_at.is_(None),
            Evidence.observed_at.between(observed_at - DOUBLE_SUBMIT, observed_at + DOUBLE_SUBMIT),
        )
    ).all()
    recent = utcnow() - DOUBLE_SUBMIT
    return {person_id for person_id, created in rows if created is not None and created >= recent}


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
) -> list[MasteryChange]:
    """Record the same observation for one or more students and update their levels.

    A student who got this very observation (same points, source, note and recorder, observed
    at about the same time) in the last `DOUBLE_SUBMIT` is skipped: that is a double click.

    :raises CompetencyNotFoundError: the competency is not in this course.
    :raises InvalidEvidenceError: points outside the scale, archived or parent competency, no
        students, or a naive or future observed_at.
    """
    _assessable(session, context_id=context_id, competency_id=competency_id)
    scale = scale_in_force(session, context_id=context_id)
    points = _check_points(scale, points)
    observed = _check_observed_at(observed_at)
    note = _clean_note(note)
    students = list(dict.fromkeys(student_ids))
    if not students:
        raise InvalidEvidenceError("choose at least one student")
    # Only what people type into a form can be double-clicked; checks and work carry their own.
    repeated = (
        set()
        if source not in HAND_ENTERED
        else _already_recorded(
            session,
            context_id=context_id,
            competency_id=competency_id,
            student_ids=students,
            points=points,
            source=source,
            note=note,
            recorded_by_id=recorded_by_id,
            observed_at=observed,
        )
    )
    students = [s for s in students if s not in repeated]
    if not students:
        return []
    level_name = level_for_score(scale, points).name
    for student_id in students:
        session.add(
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
            )
        )
    session.flush()
    return refresh_levels(
        session,
        scale=scale,
        context_id=context_id,
        person_ids=students,
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
    changed_by_id: int,
) -> list[MasteryChange]:
    """Change an observation's points, note or time (None: unchanged), keeping a revision."""
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
    new_observed = evidence.observed_at if observed_at is None else _check_observed_at(observed_at)
    if (new_points, new_note, new_observed) == (
        evidence.points,
        evidence.note,
        evidence.observed_at,
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
    )
    if new_points != evidence.points:
        evidence.level_name = level_for_score(scale, new_points).name
    evidence.points, evidence.note, evidence.observed_at = new_points, new_note, new_observed
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


def current_levels(
    session: Session, *, context_id: int, person_id: int
) -> dict[int, StudentCompetencyLevel]:
    """Return the student's stored levels in the course, by competency id."""
    rows = session.scalars(
        select(StudentCompetencyLevel).where(
            StudentCompetencyLevel.context_id == context_id,
            StudentCompetencyLevel.person_id == person_id,
        )
    )
    return {row.competency_id: row for row in rows}


def mastered_competency_ids(session: Session, *, context_id: int, person_id: int) -> set[int]:
    """Return the ids of the competencies the student has mastered in the course."""
    return set(
        session.scalars(
            select(StudentCompetencyLevel.competency_id).where(
                StudentCompetencyLevel.context_id == context_id,
                StudentCompetencyLevel.person_id == person_id,
                StudentCompetencyLevel.is_mastered.is_(True),
            )
        )
    )


def levels_for_course(session: Session, *, context_id: int) -> list[StudentCompetencyLevel]:
    """Return every stored level of the course in one query (the dashboard's grid)."""
    return list(
        session.scalars(
            select(StudentCompetencyLevel)
            .where(StudentCompetencyLevel.context_id == context_id)
            .order_by(StudentCompetencyLevel.person_id, StudentCompetencyLevel.competency_id)
        )
    )


def mastered_counts(session: Session, *, context_id: int) -> dict[int, int]:
    """How many active competencies each student has mastered, counted in the database."""
    rows = session.execute(
        select(StudentCompetencyLevel.person_id, func.count())
        .join(Competency, Competency.id == StudentCompetencyLevel.competency_id)
        .where(
            StudentCompetencyLevel.context_id == context_id,
            StudentCompetencyLevel.is_mastered.is_(True),
            Competency.archived_at.is_(None),
        )
        .group_by(StudentCompetencyLevel.person_id)
    )
    return {int(person_id): int(count) for person_id, count in rows}


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
    return list(session.scalars(query.order_by(Evidence.observed_at, Evidence.id)))
