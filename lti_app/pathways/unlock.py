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
    states: dict[int, UnlockState] = {}
    for rule in steps:
        missing = tuple(c for c in rule.prerequisites if c.id not in mastered_ids)
        if not rule.prerequisites:
            states[rule.step_id] = UnlockState(True, "Open from the start")
        elif not missing:
            names = _join(c.label for c in rule.prerequisites)
            states[rule.step_id] = UnlockState(True, f"Unlocked: you mastered {names}")
        elif rule.step_id in manual_unlocks:
            states[rule.step_id] = UnlockState(
                True, "Unlocked by your teacher", missing=missing, is_manual=True
            )
        else:
            names = _join(c.label for c in missing)
            states[rule.step_id] = UnlockState(
                False, f"Unlocks when you master {names}", missing=missing
            )
    return states


def _join(names: Iterable[str]) -> str:
    items = list(names)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
