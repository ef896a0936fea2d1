"""Turn a student's results on one competency into a score: pure functions, no database.

The methods follow Canvas's Learning Mastery Gradebook (RollupScoreAggregatorHelper in
instructure/canvas-lms): results are in chronological order, oldest first; the score is rounded
to two decimals only at the end (half up); no results give no score.

- decaying average (Canvas "standard_decaying_average"): v = first result, then for each later
  result v = v*(1-w) + result*w; w in 50..99%, default 65%.
- weighted average (Canvas "decaying_average", renamed "Weighted Average" in 2023):
  latest*w + mean(earlier results)*(1-w); a single result is the score; w in 1..99%.
- n times (Canvas "n_mastery"): the mean of the results at or above the mastery points, once
  there are at least n of them (n in 1..10); before that, None ("not yet").
- most recent, highest, average: as named.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

TWO_PLACES = Decimal("0.01")
DEFAULT_WEIGHT = 65
DEFAULT_N = 3


class CalculationMethod(enum.StrEnum):
    DECAYING_AVERAGE = "decaying_average"
    WEIGHTED_AVERAGE = "weighted_average"
    N_TIMES = "n_times"
    MOST_RECENT = "most_recent"
    HIGHEST = "highest"
    AVERAGE = "average"


METHOD_NAMES = {
    CalculationMethod.DECAYING_AVERAGE: "Decaying average",
    CalculationMethod.WEIGHTED_AVERAGE: "Weighted average",
    CalculationMethod.N_TIMES: "n times",
    CalculationMethod.MOST_RECENT: "Most recent",
    CalculationMethod.HIGHEST: "Highest",
    CalculationMethod.AVERAGE: "Average",
}
"""Names fit to show a teacher (error messages name the method this way)."""

WEIGHT_RANGES = {
    CalculationMethod.DECAYING_AVERAGE: (50, 99),
    CalculationMethod.WEIGHTED_AVERAGE: (1, 99),
}
"""Allowed weights in percent, as Canvas validates calculation_int."""
N_RANGE = (1, 10)


class CalculationError(ValueError):
    """A calculation parameter (weight or n) is missing or out of range."""


def round_score(value: Decimal) -> Decimal:
    """Round to two decimals, half up (Canvas rounds with Ruby's Float#round)."""
    return value.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def _percent(weight: int) -> Decimal:
    return Decimal(weight) / 100


def decaying_average(results: Sequence[Decimal], weight: int = DEFAULT_WEIGHT) -> Decimal | None:
    """Fold results oldest to newest: each new result gets `weight`% and the past the rest."""
    if not results:
        return None
    w = _percent(weight)
    value = results[0]
    for result in results[1:]:
        value = value * (1 - w) + result * w
    return round_score(value)


def weighted_average(results: Sequence[Decimal], weight: int = DEFAULT_WEIGHT) -> Decimal | None:
    """Weigh the latest result `weight`% and the mean of all earlier results the rest."""
    if not results:
        return None
    *earlier, latest = results
    if not earlier:
        return round_score(latest)
    w = _percent(weight)
    return round_score(latest * w + (sum(earlier, Decimal(0)) / len(earlier)) * (1 - w))


def n_times(results: Sequence[Decimal], *, n: int, mastery_points: Decimal) -> Decimal | None:
    """Average the results at or above mastery once there are at least `n`; else None."""
    at_mastery = [r for r in results if r >= mastery_points]
    if len(at_mastery) < n or not at_mastery:
        return None
    return round_score(sum(at_mastery, Decimal(0)) / len(at_mastery))


def most_recent(results: Sequence[Decimal]) -> Decimal | None:
    """Return the last result."""
    return round_score(results[-1]) if results else None


def highest(results: Sequence[Decimal]) -> Decimal | None:
    """Return the best result."""
    return round_score(max(results)) if results else None


def average(results: Sequence[Decimal]) -> Decimal | None:
    """Return the mean of all results."""
    if not results:
        return None
    return round_score(sum(results, Decimal(0)) / len(results))


def check_parameters(method: CalculationMethod, *, weight: int | None, n: int | None) -> None:
    """Raise CalculationError unless the method's weight or n is given and in range."""
    if method in WEIGHT_RANGES:
        low, high = WEIGHT_RANGES[method]
        if weight is None or not low <= weight <= high:
            raise CalculationError(f"{METHOD_NAMES[method]} needs a weight from {low}% to {high}%")
    elif method is CalculationMethod.N_TIMES:
        low, high = N_RANGE
        if n is None or not low <= n <= high:
            raise CalculationError(f"n times needs n from {low} to {high}")


def calculate(
    method: CalculationMethod,
    results: Sequence[Decimal],
    *,
    weight: int | None = None,
    n: int | None = None,
    mastery_points: Decimal,
) -> Decimal | None:
    """Return the score of chronologically ordered results by `method`, or None for no score.

    `weight` (percent) is used by the two averages and defaults to 65; `n` by n times.
    """
    if method in WEIGHT_RANGES and weight is None:
        weight = DEFAULT_WEIGHT
    if method is CalculationMethod.N_TIMES and n is None:
        n = DEFAULT_N
    check_parameters(method, weight=weight, n=n)
    match method:
        case CalculationMethod.DECAYING_AVERAGE:
            return decaying_average(results, weight or DEFAULT_WEIGHT)
        case CalculationMethod.WEIGHTED_AVERAGE:
            return weighted_average(results, weight or DEFAULT_WEIGHT)
        case CalculationMethod.N_TIMES:
            return n_times(results, n=n or DEFAULT_N, mastery_points=mastery_points)
        case CalculationMethod.MOST_RECENT:
            return most_recent(results)
        case CalculationMethod.HIGHEST:
            return highest(results)
        case CalculationMethod.AVERAGE:
            return average(results)


L = TypeVar("L")


def level_for(score: Decimal, levels: Sequence[tuple[Decimal, L]]) -> L:
    """Return the level of the highest points the score reaches; below them all, the lowest.

    `levels` pairs each level's points with the level, in any order; it must not be empty.
    """
    if not levels:
        raise CalculationError("a scale needs at least one level")
    ordered = sorted(levels, key=lambda pair: pair[0])
    chosen = ordered[0][1]
    for points, level in ordered:
        if score >= points:
            chosen = level
    return chosen
