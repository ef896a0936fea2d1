"""The unlock rule, without a database."""

from __future__ import annotations

from lti_app.pathways.unlock import CompetencyRef, StepRule, step_unlock_states

C3 = CompetencyRef(3, "C3", "Cell transport")
C4 = CompetencyRef(4, "C4", "Osmosis")


def test_step_without_prerequisites_is_open() -> None:
    state = step_unlock_states([StepRule(1)], set(), set())[1]
    assert state.is_unlocked
    assert state.reason == "Open from the start"


def test_step_stays_locked_until_every_prerequisite_is_mastered() -> None:
    rule = StepRule(1, (C3, C4))
    state = step_unlock_states([rule], {4}, set())[1]
    assert not state.is_unlocked
    assert state.reason == "Unlocks when you master C3 Cell transport"
    assert state.missing == (C3,)


def test_locked_reason_names_every_missing_competency() -> None:
    state = step_unlock_states([StepRule(1, (C3, C4))], set(), set())[1]
    assert state.reason == "Unlocks when you master C3 Cell transport and C4 Osmosis"


def test_step_unlocks_when_prerequisites_are_mastered() -> None:
    state = step_unlock_states([StepRule(1, (C3, C4))], {3, 4, 9}, set())[1]
    assert state.is_unlocked
    assert not state.is_manual
    assert state.reason == "Unlocked: you mastered C3 Cell transport and C4 Osmosis"


def test_teacher_unlock_opens_a_locked_step() -> None:
    state = step_unlock_states([StepRule(1, (C3,))], set(), {1})[1]
    assert state.is_unlocked
    assert state.is_manual
    assert state.reason == "Unlocked by your teacher"
    assert state.missing == (C3,)


def test_teacher_unlock_of_another_step_does_not_leak() -> None:
    states = step_unlock_states([StepRule(1, (C3,)), StepRule(2, (C3,))], set(), {2})
    assert not states[1].is_unlocked
    assert states[2].is_unlocked


def test_every_step_gets_a_state() -> None:
    states = step_unlock_states([StepRule(1), StepRule(2, (C3,))], set(), set())
    assert set(states) == {1, 2}
