"""The course's mastery scale: its levels, calculation method and settings.

Changing the scale recomputes every stored level of the course (`mastery.rollup`) and returns
the MasteryChange list, so the caller can queue grade passback in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import NamedTuple

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from lti_app.db import upsert_insert
from lti_app.mastery.calculation import (
    N_RANGE,
    TWO_PLACES,
    CalculationError,
    CalculationMethod,
    check_parameters,
)
from lti_app.mastery.errors import NUL_MESSAGE, InvalidScaleError
from lti_app.mastery.models import LEVEL_NAME_LENGTH, MasteryLevel, MasteryScale
from lti_app.mastery.rollup import MasteryChange, refresh_levels
from lti_app.unicode_text import HALF_CHARACTER, has_half_character, is_blank, nfc

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


def check_two_places(points: Decimal, error: type[Exception]) -> None:
    """Raise `error` unless the points are a finite number with at most two decimals."""
    try:
        exact = points.is_finite() and points == points.quantize(TWO_PLACES)
    except InvalidOperation:
        exact = False
    if not exact:
        raise error("points have at most two decimals")


def _find_scale(session: Session, context_id: int) -> MasteryScale | None:
    return session.scalar(
        select(MasteryScale)
        .where(MasteryScale.context_id == context_id)
        .options(selectinload(MasteryScale.levels))
    )


def get_or_create_scale(session: Session, *, context_id: int) -> MasteryScale:
    """Return the course's scale, storing the default one first if the course has none.

    In a request, `web.current_launch` has already stored and committed it: a scale made here
    inside a GET would be rolled back with the GET, and its levels would come back with other
    ids on PostgreSQL, under a form that named the first ones.
    """
    scale = _find_scale(session, context_id)
    if scale is not None:
        return scale
    store_default_scale(session, context_id=context_id)
    scale = _find_scale(session, context_id)
    if scale is None:  # pragma: no cover - the row exists after store_default_scale
        raise InvalidScaleError("this course has no mastery scale")
    return scale


def store_default_scale(session: Session, *, context_id: int) -> bool:
    """Store the default scale for a course that has none; False when it has one already.

    ON CONFLICT DO NOTHING: two first requests of a new course at once (a class opening it
    together) each find no scale; on PostgreSQL the second waits on the unique index for the
    first and then inserts nothing, instead of failing.
    """
    scale_id = session.execute(
        upsert_insert(session, MasteryScale)
        .values(context_id=context_id)
        .on_conflict_do_nothing(index_elements=["context_id"])
        .returning(MasteryScale.id)
    ).scalar()
    if scale_id is None:
        return False
    session.execute(
        insert(MasteryLevel),
        [
            {
                "scale_id": scale_id,
                "name": spec.name,
                "points": spec.points,
                "colour": spec.colour,
                "position": position,
                "is_mastery": spec.is_mastery,
            }
            for position, spec in enumerate(DEFAULT_LEVELS)
        ],
    )
    return True


def check_levels(levels: Sequence[tuple[str, Decimal, str, bool]]) -> list[LevelSpec]:
    """The levels as a scale keeps them (names stripped, in NFC), or raise InvalidScaleError.

    Names compare in NFC and without case: "Émergent" typed and "Émergent" pasted from a PDF
    (decomposed) are one name.
    """
    specs = [
        LevelSpec(nfc(name.strip()), Decimal(points), colour, mastery)
        for name, points, colour, mastery in levels
    ]
    if len(specs) < 2:
        raise InvalidScaleError("a scale needs at least two levels")
    if len(specs) > MAX_LEVELS:
        raise InvalidScaleError(f"a scale has at most {MAX_LEVELS} levels")
    for i, spec in enumerate(specs):
        if "\x00" in spec.name:
            raise InvalidScaleError(NUL_MESSAGE.format(what="level name"), about="name", level=i)
        if has_half_character(spec.name):
            raise InvalidScaleError(f"a level name {HALF_CHARACTER}", about="name", level=i)
    names = [spec.name.casefold() for spec in specs]
    for i, name in enumerate(names):
        if is_blank(name) or name in names[:i]:
            raise InvalidScaleError("every level needs a name of its own", about="name", level=i)
    for i, spec in enumerate(specs):
        if len(spec.name) > LEVEL_NAME_LENGTH:
            raise InvalidScaleError(
                f"a level name has at most {LEVEL_NAME_LENGTH} characters", about="name", level=i
            )
    for i, spec in enumerate(specs):
        try:
            check_two_places(spec.points, InvalidScaleError)
        except InvalidScaleError as err:
            raise InvalidScaleError(str(err), about="points", level=i) from None
        if spec.points < 0 or spec.points >= 10_000:
            raise InvalidScaleError("level points are from 0 to 9999.99", about="points", level=i)
        # fullmatch: `$` would let "#rrggbb\n" through, too long for the column on PostgreSQL.
        if not _COLOUR.fullmatch(spec.colour):
            raise InvalidScaleError(
                f"colour {spec.colour!r} is not of the form #rrggbb", about="colour", level=i
            )
    for i, (a, b) in enumerate(pairwise(specs), start=1):
        if a.points >= b.points:
            raise InvalidScaleError(
                "list levels from lowest to highest, with rising points", about="points", level=i
            )
    if sum(spec.is_mastery for spec in specs) != 1:
        raise InvalidScaleError("exactly one level marks mastery", about="mastery")
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
        raise InvalidScaleError("the weight is a percentage from 1 to 99", about="weight")
    if n is not None and not N_RANGE[0] <= n <= N_RANGE[1]:
        raise InvalidScaleError(f"n times needs n from {N_RANGE[0]} to {N_RANGE[1]}", about="n")
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
