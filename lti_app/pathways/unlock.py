"""When a step is open to a student: the rule as a pure function."""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CompetencyRef:
    """Enough of a competency to name it to a student."""

    id: int
    code: str
    title: str

    @property
    def label(self) -> str:
        return f"{self.code} {self.title}".strip()


@dataclass(frozen=True)
class StepRule:
    """A step and the competencies it waits for."""

    step_id: int
    prerequisites: tuple[CompetencyRef, ...] = ()


@dataclass(frozen=True)
class UnlockState:
    is_unlocked: bool
    reason: str
    """A sentence for the student: why the step is open, or what opens it."""
    missing: tuple[CompetencyRef, ...] = field(default=())
    """Prerequisites not mastered yet (empty when every prerequisite is mastered)."""
    is_manual: bool = False
    """Open only because a teacher unlocked it."""


def step_unlock_states(
    steps: Iterable[StepRule], mastered_ids: Set[int], manual_unlocks: Set[int]
) -> dict[int, UnlockState]:
    """Decide for each step whether it is open: no prerequisites, all mastered, or teacher-opened.

    :param mastered_ids: competency ids the student has mastered.
    :param manual_unlocks: step ids a teacher unlocked for the student.
    """
    return {
        rule.step_id: unlock_state(rule, mastered_ids, is_manual=rule.step_id in manual_unlocks)
        for rule in steps
    }


def unlock_state(rule: StepRule, mastered_ids: Set[int], *, is_manual: bool) -> UnlockState:
    """Decide whether one step is open to a student: the rule every page and check reads.

    :param mastered_ids: competency ids the student has mastered.
    :param is_manual: a teacher unlocked the step for the student.
    """
    missing = tuple(c for c in rule.prerequisites if c.id not in mastered_ids)
    if not rule.prerequisites:
        return UnlockState(True, "Open from the start")
    if not missing:
        names = _join(c.label for c in rule.prerequisites)
        return UnlockState(True, f"Unlocked: you mastered {names}")
    if is_manual:
        return UnlockState(True, "Unlocked by your teacher", missing=missing, is_manual=True)
    names = _join(c.label for c in missing)
    return UnlockState(False, f"Unlocks when you master {names}", missing=missing)


def _join(names: Iterable[str]) -> str:
    items = list(names)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
