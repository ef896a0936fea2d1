"""The calculation methods: worked examples (Canvas's own where it has them) and properties."""

from __future__ import annotations

from decimal import Decimal
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lti_app.mastery.calculation import (
    CalculationError,
    CalculationMethod,
    average,
    calculate,
    decaying_average,
    highest,
    level_for,
    most_recent,
    n_times,
    round_score,
    weighted_average,
)

M = CalculationMethod


def d(*values: float | str) -> list[Decimal]:
    return [Decimal(str(v)) for v in values]


@pytest.mark.parametrize(
    ("method", "results", "params", "expected"),
    [
        # Decaying average 65%, [2, 3, 4, 5]:
        #   2 -> 2*.35 + 3*.65 = 2.65 -> 2.65*.35 + 4*.65 = 3.5275
        #   -> 3.5275*.35 + 5*.65 = 1.234625 + 3.25 = 4.484625 -> 4.48 (rounded only at the end)
        (M.DECAYING_AVERAGE, d(2, 3, 4, 5), {}, "4.48"),
        # Canvas spec (rollup_score_aggregator): [1,2,3,4,5] at 65%: 1.65, 2.5275, 3.484625,
        #   4.46961875 -> 4.47
        (M.DECAYING_AVERAGE, d(1, 2, 3, 4, 5), {"weight": 65}, "4.47"),
        # PowerSchool's worked example of the same method: [2, 3] at 65% -> 2.65
        (M.DECAYING_AVERAGE, d(2, 3), {"weight": 65}, "2.65"),
        # 50%: [4, 2] -> 4*.5 + 2*.5 = 3
        (M.DECAYING_AVERAGE, d(4, 2), {"weight": 50}, "3.00"),
        (M.DECAYING_AVERAGE, d(3), {}, "3.00"),
        # Weighted average 65%, Canvas spec: [1,2,3,4,5] -> 5*.65 + mean(1..4)*.35
        #   = 3.25 + 2.5*.35 = 3.25 + 0.875 = 4.125 -> 4.13 (half up)
        (M.WEIGHTED_AVERAGE, d(1, 2, 3, 4, 5), {}, "4.13"),
        # Canvas community example: others average 5, latest 4.5 -> 4.5*.65 + 5*.35 = 4.675 -> 4.68
        (M.WEIGHTED_AVERAGE, d(5, 5, 5, 4.5), {"weight": 65}, "4.68"),
        # 75%: [1, 4, 2, 3] -> 3*.75 + (7/3)*.25 = 2.25 + 0.58333 = 2.8333 -> 2.83
        (M.WEIGHTED_AVERAGE, d(1, 4, 2, 3), {"weight": 75}, "2.83"),
        (M.WEIGHTED_AVERAGE, d(2.5), {"weight": 10}, "2.50"),  # a single result is the score
        # n times, Canvas spec: [1,2,3,4,5], mastery 3, n=3 -> mean(3, 4, 5) = 4
        (M.N_TIMES, d(1, 2, 3, 4, 5), {"n": 3}, "4.00"),
        # ... n=4: only three results reach mastery -> not yet
        (M.N_TIMES, d(1, 2, 3, 4, 5), {"n": 4}, None),
        (M.N_TIMES, d(3, 3.5, 4), {"n": 1}, "3.50"),
        # Canvas spec: [2, 4, 3] -> highest 4, most recent 3, average 3
        (M.HIGHEST, d(2, 4, 3), {}, "4.00"),
        (M.MOST_RECENT, d(2, 4, 3), {}, "3.00"),
        (M.AVERAGE, d(2, 4, 3), {}, "3.00"),
        (M.AVERAGE, d(1, 2, 2), {}, "1.67"),  # 5/3 = 1.666... -> 1.67
        (M.AVERAGE, [], {}, None),
        (M.DECAYING_AVERAGE, [], {}, None),
    ],
)
def test_worked_examples(
    method: CalculationMethod,
    results: list[Decimal],
    params: dict[str, int],
    expected: str | None,
) -> None:
    score = calculate(method, results, mastery_points=Decimal(3), **params)
    assert score == (None if expected is None else Decimal(expected))


def test_rounding_is_half_up_to_two_places() -> None:
    assert round_score(Decimal("2.675")) == Decimal("2.68")
    assert round_score(Decimal("2.665")) == Decimal("2.67")
    assert round_score(Decimal("2.6649")) == Decimal("2.66")


@pytest.mark.parametrize(
    ("method", "params"),
    [
        (M.DECAYING_AVERAGE, {"weight": 49}),
        (M.DECAYING_AVERAGE, {"weight": 100}),
        (M.WEIGHTED_AVERAGE, {"weight": 0}),
        (M.N_TIMES, {"n": 0}),
        (M.N_TIMES, {"n": 11}),
    ],
)
def test_parameters_out_of_canvas_ranges_are_refused(
    method: CalculationMethod, params: dict[str, int]
) -> None:
    with pytest.raises(CalculationError):
        calculate(method, d(3), mastery_points=Decimal(3), **params)


def test_level_is_the_highest_reached_or_else_the_lowest() -> None:
    levels = [(Decimal(3), "Proficient"), (Decimal(1), "Emerging"), (Decimal(4), "Advanced")]
    assert level_for(Decimal("2.99"), levels) == "Emerging"
    assert level_for(Decimal(3), levels) == "Proficient"
    assert level_for(Decimal("0.5"), levels) == "Emerging"
    assert level_for(Decimal("4.48"), levels) == "Advanced"
    with pytest.raises(CalculationError):
        level_for(Decimal(1), [])


# --- Properties --------------------------------------------------------------------------

points = st.decimals(min_value=0, max_value=10, places=2, allow_nan=False, allow_infinity=False)
results_lists = st.lists(points, min_size=1, max_size=12)
weights = st.integers(min_value=50, max_value=99)


@given(results_lists, st.sampled_from(list(M)), weights, st.integers(1, 10), points)
def test_score_lies_within_the_results(
    results: list[Decimal], method: CalculationMethod, weight: int, n: int, mastery: Decimal
) -> None:
    score = calculate(method, results, weight=weight, n=n, mastery_points=mastery)
    if method is M.N_TIMES:
        if score is not None:
            assert mastery <= score <= max(results)
        return
    assert score is not None
    assert min(results) <= score <= max(results)


@given(results_lists)
def test_most_recent_is_the_last_and_highest_is_at_least_the_average(
    results: list[Decimal],
) -> None:
    assert most_recent(results) == results[-1]
    top, mean = highest(results), average(results)
    assert top is not None
    assert mean is not None
    assert top >= mean


@given(points, st.integers(1, 12), weights)
def test_averages_of_identical_results_are_that_result(
    value: Decimal, count: int, weight: int
) -> None:
    results = [value] * count
    assert decaying_average(results, weight) == value
    assert weighted_average(results, weight) == value
    assert average(results) == value


@given(results_lists, st.randoms(use_true_random=False))
def test_order_does_not_matter_for_average_highest_and_n_times(
    results: list[Decimal], random: Random
) -> None:
    shuffled = list(results)
    random.shuffle(shuffled)
    assert average(shuffled) == average(results)
    assert highest(shuffled) == highest(results)
    assert n_times(shuffled, n=2, mastery_points=Decimal(3)) == n_times(
        results, n=2, mastery_points=Decimal(3)
    )


def test_order_matters_for_the_decaying_and_weighted_averages() -> None:
    # [1, 4]: 1*.35 + 4*.65 = 2.95;  [4, 1]: 4*.35 + 1*.65 = 2.05
    assert decaying_average(d(1, 4)) == Decimal("2.95")
    assert decaying_average(d(4, 1)) == Decimal("2.05")
    assert weighted_average(d(1, 4)) != weighted_average(d(4, 1))


@given(results_lists, weights)
def test_a_newer_higher_result_never_lowers_the_decaying_average(
    results: list[Decimal], weight: int
) -> None:
    before = decaying_average(results, weight)
    assert before is not None
    after = decaying_average([*results, max(results)], weight)
    assert after is not None
    assert after >= before


@given(results_lists, st.integers(1, 10), points)
def test_n_times_is_not_yet_until_n_results_reach_mastery(
    results: list[Decimal], n: int, mastery: Decimal
) -> None:
    reached = [r for r in results if r >= mastery]
    score = n_times(results, n=n, mastery_points=mastery)
    assert (score is None) == (len(reached) < n)
