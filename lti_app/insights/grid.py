"""The class dashboard's rows, filters and sort orders: pure functions over loaded values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

NOT_ASSESSED = "-"
"""The `level` filter value for "no evidence yet on this competency"."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SORTS = ("name", "name_desc", "level_asc", "level_desc", "idle")


class Cell(NamedTuple):
    """A stored current level (level_name None: no level yet, or no evidence at all).

    A tuple, not a dataclass: the grid builds 12,000 of them per request."""

    level_name: str | None
    points: Decimal | None
    last_evidence_on: date | None
    """The day of the latest evidence, as observed (loaded for the CSV only)."""
    is_mastered: bool
    evidence_count: int
    """The evidence that counts. 0 when all of it was withdrawn: the level row stays, but the
    student is not assessed (mastery.rollup)."""


@dataclass(frozen=True)
class GridRow:
    person_id: int
    name: str
    sort_key: str
    status: str
    last_launch_at: datetime | None
    last_evidence_at: datetime | None
    """The latest evidence on any competency (None: no evidence yet)."""
    cells: Mapping[int, Cell]
    step_ids: frozenset[int] = frozenset()
    """Steps the student is working on now (a choice not done, rejected or withdrawn)."""
    group_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class GridFilter:
    competency_id: int | None = None
    level: str | None = None
    """A level name, NOT_ASSESSED, or None for any."""
    step_id: int | None = None
    idle_days: int | None = None
    """Only students with no evidence at all, or none in this many days."""
    status: str = "active"
    """A membership status, or "all"."""
    group_id: int | None = None
    sort: str = "name"
    extra: Mapping[str, str] = field(default_factory=dict)


def apply_filter(rows: Sequence[GridRow], flt: GridFilter, *, now: datetime) -> list[GridRow]:
    """Keep the rows the filter asks for and order them as it asks."""
    kept = [row for row in rows if _keeps(row, flt, now)]
    return sort_rows(kept, flt.sort, flt.competency_id)


def _keeps(row: GridRow, flt: GridFilter, now: datetime) -> bool:
    if flt.status != "all" and row.status != flt.status:
        return False
    if flt.step_id is not None and flt.step_id not in row.step_ids:
        return False
    if flt.group_id is not None and flt.group_id not in row.group_ids:
        return False
    if flt.idle_days is not None:
        last = row.last_evidence_at
        if last is not None and last >= now - timedelta(days=flt.idle_days):
            return False
    if flt.level is not None and flt.competency_id is not None:
        cell = row.cells.get(flt.competency_id)
        name = cell.level_name if cell else None
        if flt.level == NOT_ASSESSED:
            return name is None
        return name == flt.level
    return True


def sort_rows(rows: Sequence[GridRow], sort: str, competency_id: int | None) -> list[GridRow]:
    """Order by name, by level on a competency (no evidence last), or longest idle first."""
    by_name = sorted(rows, key=lambda r: (r.sort_key, r.name.casefold(), r.person_id))
    if sort == "name_desc":
        return by_name[::-1]
    if sort in {"level_asc", "level_desc"} and competency_id is not None:
        assessed = [r for r in by_name if _points(r, competency_id) is not None]
        missing = [r for r in by_name if _points(r, competency_id) is None]
        assessed.sort(
            key=lambda r: _points(r, competency_id) or Decimal(0), reverse=sort == "level_desc"
        )
        return assessed + missing
    if sort == "idle":
        never = [r for r in by_name if r.last_evidence_at is None]
        some = [r for r in by_name if r.last_evidence_at is not None]
        some.sort(key=lambda r: r.last_evidence_at or _EPOCH)
        return never + some
    return by_name


def _points(row: GridRow, competency_id: int) -> Decimal | None:
    cell = row.cells.get(competency_id)
    return cell.points if cell and cell.level_name is not None else None


def mastered_level_counts(
    rows: Sequence[GridRow], competency_ids: Sequence[int]
) -> dict[int, dict[str, int]]:
    """How many of these students at each level of each competency have mastered it.

    Not everyone at a mastery level has: a competency with parts has the average of its parts'
    levels, but is mastered only when every part is (mastery.rollup)."""
    counts: dict[int, dict[str, int]] = {cid: {} for cid in competency_ids}
    for row in rows:
        for cid in competency_ids:
            cell = row.cells.get(cid)
            if cell is not None and cell.level_name and cell.is_mastered:
                bucket = counts[cid]
                bucket[cell.level_name] = bucket.get(cell.level_name, 0) + 1
    return counts


def level_counts(
    rows: Sequence[GridRow], competency_ids: Sequence[int], level_names: Sequence[str]
) -> dict[int, dict[str, int]]:
    """How many of these students are at each level of each competency (NOT_ASSESSED too)."""
    counts = {cid: dict.fromkeys([*level_names, NOT_ASSESSED], 0) for cid in competency_ids}
    for row in rows:
        for cid in competency_ids:
            cell = row.cells.get(cid)
            name = cell.level_name if cell and cell.level_name else NOT_ASSESSED
            bucket = counts[cid]
            bucket[name] = bucket.get(name, 0) + 1
    return counts
