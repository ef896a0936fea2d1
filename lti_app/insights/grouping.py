"""Propose flexible groups from current levels and next steps: pure functions, no database.

The service layer loads plain values (`ScaleLevel`, `StudentAtLevel`, `StudentAtStep`) and these
functions decide who goes together and what the group is called. The teacher adjusts the
proposal before anything is saved.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class ScaleLevel:
    """One level of the course's mastery scale."""

    name: str
    points: Decimal
    colour: str
    position: int
    is_mastery: bool


@dataclass(frozen=True)
class StudentAtLevel:
    """A student's stored standing on the chosen competency (points None: no level yet)."""

    person_id: int
    name: str
    points: Decimal | None
    is_mastered: bool | None = None
    """None: as the level says (a stored level knows better for a competency with parts)."""
    has_evidence: bool = False


class StepProgress(enum.StrEnum):
    DONE = "done"
    WORKING = "working"
    WORKING_LOCKED = "working_locked"
    """Has work to start or hand in on a step that locked again (a level dipped): blocked."""
    OPEN = "open"
    LOCKED = "locked"


@dataclass(frozen=True)
class StudentAtStep:
    """Where a student stands on the chosen step; `missing` lists unmastered prerequisites."""

    person_id: int
    name: str
    progress: StepProgress
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProposedGroup:
    """A group the teacher may keep, rename or adjust: a stable key, a name, its students."""

    key: str
    name: str
    person_ids: tuple[int, ...]
    names: tuple[str, ...] = field(default=())


def mastery_points(levels: Sequence[ScaleLevel]) -> Decimal | None:
    """The lowest points that count as mastery; the top level when none is marked."""
    marked = [lv.points for lv in levels if lv.is_mastery]
    if marked:
        return min(marked)
    return max((lv.points for lv in levels), default=None)


def level_band(points: Decimal | None, levels: Sequence[ScaleLevel]) -> str:
    """Place a level on the re-teach / practice / ready / extend ladder ("none": no level)."""
    if points is None:
        return "none"
    threshold = mastery_points(levels)
    if threshold is None:
        return "none"
    lowest = min(lv.points for lv in levels)
    if points < threshold:
        return "reteach" if points <= lowest else "practice"
    higher = [lv.points for lv in levels if lv.points > threshold]
    if higher and points >= min(higher):
        return "extend"
    return "ready"


def standing_band(
    points: Decimal | None,
    levels: Sequence[ScaleLevel],
    *,
    is_mastered: bool,
    has_evidence: bool,
) -> str:
    """Place a student's stored standing on the ladder, with two bands where the level alone
    would mislead: "unscored" (evidence, but no level yet: "n times" before n results at
    mastery) and "partial" (a level at or above mastery, yet not mastered: a competency with
    parts, one of them not mastered, see mastery.rollup.roll_up)."""
    if points is None:
        return "unscored" if has_evidence else "none"
    band = level_band(points, levels)
    if band in {"ready", "extend"} and not is_mastered:
        return "partial"
    return band


_BAND_ORDER = ("reteach", "practice", "unscored", "ready", "extend", "none")


def propose_by_competency(
    students: Sequence[StudentAtLevel],
    *,
    levels: Sequence[ScaleLevel],
    code: str,
    next_step_title: str | None = None,
) -> list[ProposedGroup]:
    """Group students by where their level on one competency puts them, lowest need first.

    Below mastery at the lowest level: re-teaching; below mastery otherwise: more practice;
    at mastery: ready for the next step (named when known); above mastery: ready to extend;
    no evidence: not assessed yet. A level at mastery with a part not mastered is more practice,
    not "ready"; evidence without a level yet ("n times") is a group of its own. Empty groups are
    left out.
    """
    labels = {
        "reteach": f"Needs re-teaching on {code}",
        "practice": f"Needs more practice on {code}",
        "ready": (
            f"Ready for “{next_step_title}”" if next_step_title else f"Ready to move on from {code}"
        ),
        "extend": f"Ready to extend on {code}",
        "unscored": f"Not yet enough results at mastery on {code} for a level",
        "none": f"Not assessed yet on {code}",
    }
    bands: dict[str, list[StudentAtLevel]] = {band: [] for band in _BAND_ORDER}
    for student in students:
        band = standing_band(
            student.points,
            levels,
            is_mastered=student.is_mastered is not False,
            has_evidence=student.has_evidence,
        )
        bands["practice" if band == "partial" else band].append(student)
    return [_group(band, labels[band], members) for band in _BAND_ORDER if (members := bands[band])]


def propose_by_step(
    students: Sequence[StudentAtStep], *, step_title: str, step_number: int | None = None
) -> list[ProposedGroup]:
    """Group students by their place on one step: ready for it, working on it, finished it,
    or held back by the same missing prerequisites (one group per set of missing ones), both
    before they start and while they work on a step that locked again."""
    label = f"step {step_number} “{step_title}”" if step_number else f"“{step_title}”"
    ready: list[StudentAtStep] = []
    working: list[StudentAtStep] = []
    done: list[StudentAtStep] = []
    locked: dict[tuple[str, ...], list[StudentAtStep]] = {}
    blocked: dict[tuple[str, ...], list[StudentAtStep]] = {}
    for student in students:
        if student.progress is StepProgress.OPEN:
            ready.append(student)
        elif student.progress is StepProgress.WORKING:
            working.append(student)
        elif student.progress is StepProgress.DONE:
            done.append(student)
        elif student.progress is StepProgress.WORKING_LOCKED:
            blocked.setdefault(tuple(sorted(student.missing)), []).append(student)
        else:
            locked.setdefault(tuple(sorted(student.missing)), []).append(student)
    groups: list[ProposedGroup] = []
    for missing, members in sorted(locked.items()):
        codes = ", ".join(missing) if missing else "its prerequisites"
        groups.append(
            _group("locked:" + ",".join(missing), f"Needs re-teaching on {codes}", members)
        )
    for missing, members in sorted(blocked.items()):
        codes = ", ".join(missing) if missing else "its prerequisites"
        groups.append(
            _group(
                "working-locked:" + ",".join(missing),
                f"Working on {label} but locked: needs {codes}",
                members,
            )
        )
    if ready:
        groups.append(_group("open", f"Ready for {label}", ready))
    if working:
        groups.append(_group("working", f"Working on {label}", working))
    if done:
        groups.append(_group("done", f"Finished {label}: ready to extend", done))
    return groups


def _group(key: str, name: str, members: Sequence[StudentAtLevel | StudentAtStep]) -> ProposedGroup:
    ordered = sorted(members, key=lambda s: (s.name.casefold(), s.person_id))
    return ProposedGroup(
        key=key,
        name=name,
        person_ids=tuple(s.person_id for s in ordered),
        names=tuple(s.name for s in ordered),
    )


def step_progress(*, choice_status: str | None, is_unlocked: bool) -> StepProgress:
    """Decide a student's place on a step from their choice status and whether the step is open
    to them (pathways.unlock.unlock_state, the rule the student's own pages read)."""
    if choice_status == "done":
        return StepProgress.DONE
    if choice_status in {"chosen", "approved", "in_progress", "returned"}:
        # A locked step refuses starting and handing in, so the student can't go on.
        return StepProgress.WORKING if is_unlocked else StepProgress.WORKING_LOCKED
    if choice_status == "submitted":  # handed in: the teacher reviews it, locked or not
        return StepProgress.WORKING
    return StepProgress.OPEN if is_unlocked else StepProgress.LOCKED


def short_names(levels: Sequence[ScaleLevel]) -> dict[str, str]:
    """The shortest unique prefix of each level name (at least one letter), for grid cells.

    Names that cannot be told apart by a prefix fall back to their points."""
    names = [lv.name for lv in levels]
    result: dict[str, str] = {}
    for level in levels:
        short = ""
        for size in range(1, len(level.name) + 1):
            prefix = level.name[:size].casefold()
            if sum(1 for other in names if other.casefold().startswith(prefix)) == 1:
                short = level.name[:size]
                break
        result[level.name] = short or format(level.points.normalize(), "f")
    return result
