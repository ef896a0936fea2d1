"""Save the scale from a page that may be out of date: a second tab, another teacher, a double
click. The page carries the settings it was shown with; the save compares them with the
settings in force once it holds the scale's lock."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from lti_app.mastery.calculation import TWO_PLACES, CalculationMethod
from lti_app.mastery.errors import InvalidScaleError, MasteryError
from lti_app.mastery.models import MasteryScale
from lti_app.mastery.rollup import MasteryChange
from lti_app.mastery.scales import LevelSpec, check_levels, locked_scale, update_scale
from lti_app.unicode_text import nfc

MAX_SHOWN_LENGTH = 20_000
"""Far beyond the settings of a full scale; a longer posted value is not read at all."""


@dataclass(frozen=True)
class ScaleSettings:
    """Everything the scale page shows and saves, in a form two versions compare by."""

    method: CalculationMethod
    weight: int
    n: int
    counts_self_assessment: bool
    levels: tuple[LevelSpec, ...]

    def token(self) -> str:
        """The settings as text for the page to carry and post back."""
        return json.dumps(
            {
                "method": self.method.value,
                "weight": self.weight,
                "n": self.n,
                "self": self.counts_self_assessment,
                "levels": [
                    [lv.name, str(lv.points), lv.colour, lv.is_mastery] for lv in self.levels
                ],
            },
            separators=(",", ":"),
            ensure_ascii=True,
        )

    @classmethod
    def from_token(cls, text: str) -> ScaleSettings | None:
        """The settings a page posted back; None when the text is not such settings."""
        if len(text) > MAX_SHOWN_LENGTH:
            return None
        try:
            data: Any = json.loads(text)
            return _settings(
                CalculationMethod(data["method"]),
                weight=data["weight"],
                n=data["n"],
                counts_self_assessment=data["self"],
                levels=[
                    (str(name), Decimal(str(points)), str(colour), bool(mastery))
                    for name, points, colour, mastery in data["levels"]
                ],
            )
        # RecursionError: "[[[[..." posted by a script, nested deeper than json can read.
        except (
            ValueError,
            TypeError,
            KeyError,
            InvalidOperation,
            InvalidScaleError,
            RecursionError,
        ):
            return None


def _settings(
    method: CalculationMethod,
    *,
    weight: object,
    n: object,
    counts_self_assessment: object,
    levels: Sequence[tuple[str, Decimal, str, bool]],
) -> ScaleSettings:
    if not isinstance(weight, int) or not isinstance(n, int):
        raise TypeError("weight and n are whole numbers")
    return ScaleSettings(
        method=method,
        weight=weight,
        n=n,
        counts_self_assessment=bool(counts_self_assessment),
        levels=tuple(
            # Colours compare without case: the colour picker posts lower case.
            LevelSpec(
                spec.name, spec.points.quantize(TWO_PLACES), spec.colour.lower(), spec.is_mastery
            )
            for spec in check_levels(levels)
        ),
    )


def settings_of(scale: MasteryScale) -> ScaleSettings:
    """The settings of a stored scale (not checked again: the page must open whatever it holds)."""
    return ScaleSettings(
        method=scale.method,
        weight=scale.weight,
        n=scale.n,
        counts_self_assessment=scale.counts_self_assessment,
        levels=tuple(
            # NFC as check_levels keeps names: one saved decomposed before still compares equal.
            LevelSpec(
                nfc(lv.name), lv.points.quantize(TWO_PLACES), lv.colour.lower(), lv.is_mastery
            )
            for lv in scale.levels
        ),
    )


class ScaleSave(NamedTuple):
    """What a save did."""

    changes: list[MasteryChange]
    """The levels that moved, for the teacher's report."""
    repeated: bool
    """These very settings were saved already since the page was shown (a double click, or the
    same change in another tab): nothing new was saved, and `changes` are what the settings the
    page was shown with would have become, i.e. that earlier save's report."""


class StaleScaleError(MasteryError):
    """The scale was saved by someone else after this page was shown; nothing was saved."""

    def __init__(self, current: MasteryScale) -> None:
        super().__init__("the mastery scale was changed after this page was opened")
        self.current = current


def save_settings(
    session: Session,
    *,
    context_id: int,
    shown: str | None,
    method: CalculationMethod,
    weight: int | None,
    n: int | None,
    counts_self_assessment: bool,
    levels: Sequence[tuple[str, Decimal, str, bool]],
) -> ScaleSave:
    """Save the scale as `update_scale` does, unless the page was out of date.

    `shown` is the token of the settings the page was shown with (None: not known, saved as
    asked). When the settings in force differ from it, the save is a repeat if it asks for the
    settings in force (its report is rebuilt), else refused.

    :raises StaleScaleError: someone else's change would be overwritten.
    :raises InvalidScaleError: as `update_scale`.
    """
    scale = locked_scale(session, context_id)
    current = settings_of(scale)
    shown_settings = None if shown is None else ScaleSettings.from_token(shown)
    if shown is None or shown_settings == current:
        changes = update_scale(
            session,
            context_id=context_id,
            method=method,
            weight=weight,
            n=n,
            counts_self_assessment=counts_self_assessment,
            levels=levels,
        )
        return ScaleSave(changes, repeated=False)
    try:
        wanted: ScaleSettings | None = _settings(
            method,
            weight=current.weight if weight is None else weight,
            n=current.n if n is None else n,
            counts_self_assessment=counts_self_assessment,
            levels=levels,
        )
    except (TypeError, InvalidScaleError):
        wanted = None
    if wanted != current:
        raise StaleScaleError(scale)
    if shown_settings is None:
        return ScaleSave([], repeated=True)
    return ScaleSave(_replay(session, context_id, shown_settings, current), repeated=True)


def _replay(
    session: Session, context_id: int, before: ScaleSettings, after: ScaleSettings
) -> list[MasteryChange]:
    """What changing from `before` to `after` does to the stored levels, changing nothing."""
    savepoint = session.begin_nested()
    try:
        for settings in (before, after):
            changes = update_scale(
                session,
                context_id=context_id,
                method=settings.method,
                weight=settings.weight,
                n=settings.n,
                counts_self_assessment=settings.counts_self_assessment,
                levels=settings.levels,
            )
    except InvalidScaleError:
        changes = []  # settings no method takes any more: no report, still nothing changed
    finally:
        savepoint.rollback()
    return changes
