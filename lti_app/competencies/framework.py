"""Upsert a framework described as rows (from a file or another course) into a course.

All or nothing: every problem is collected and raised in one ImportFailedError before anything
is written. Rows are matched to the course's competencies by code; competencies not in the rows
are left alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.errors import (
    ImportFailedError,
    ImportProblem,
    InvalidCompetencyError,
)
from lti_app.competencies.graph import MAX_DEPTH, depths, find_cycles
from lti_app.competencies.models import Competency, CompetencyKind, CompetencyPrerequisite
from lti_app.competencies.services import clean_code, clean_description, clean_title
from lti_app.unicode_text import nfc


@dataclass(frozen=True)
class ImportSummary:
    """How many competencies an import created, changed, and found already as in the file."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class FrameworkRow:
    """One competency as a file describes it, before it meets the database.

    None is a field the file does not carry (a CSV without that column, a CASE item's kind):
    the import leaves it as the course has it, and a new competency gets the default (no
    description, top level, no prerequisites, academic). A column the file has, left empty,
    clears the field: `parent_code` "" is the top level.
    """

    location: int | str
    code: str
    title: str
    description: str | None = None
    parent_code: str | None = None
    prerequisite_codes: list[str] | None = None
    kind: CompetencyKind | None = None
    sort_key: tuple[float, int] = (0.0, 0)
    """Orders siblings; the import numbers each parent's children 0, 1, 2... by it."""
    row: int | None = None
    """The row a spreadsheet shows for a CSV line (`location`), for problems."""

    def problem(self, column: str, message: str) -> ImportProblem:
        return ImportProblem(self.location, column, message, row=self.row)


@dataclass(frozen=True)
class Columns:
    """The names of the file's fields, so problems name what the teacher sees in the file."""

    code: str
    title: str
    parent: str
    prerequisites: str
    description: str


CSV_FIELDS = Columns("code", "title", "parent_code", "prerequisite_codes", "description")
CASE_FIELDS = Columns(
    "humanCodingScheme", "fullStatement", "isChildOf", "precedes", "fullStatement"
)


# --- Validation and upsert ---------------------------------------------------------------


def _parent_code(
    row: FrameworkRow, stored: Competency | None, code_by_id: Mapping[int, str]
) -> str | None:
    """The code of the parent the row's competency gets (None: the top level)."""
    if row.parent_code is None and stored is not None and stored.parent_id is not None:
        return code_by_id[stored.parent_id]  # the file does not say: it stays where it is
    return row.parent_code or None


def _validate(
    rows: Sequence[FrameworkRow], existing: Mapping[str, Competency], columns: Columns
) -> list[ImportProblem]:
    problems: list[ImportProblem] = []
    first_line: dict[str, int | str] = {}
    for row in rows:
        try:
            row.code = clean_code(row.code)
        except InvalidCompetencyError as err:
            problems.append(row.problem(columns.code, str(err)))
            continue
        try:
            row.title = clean_title(row.title)
        except InvalidCompetencyError as err:
            problems.append(row.problem(columns.title, str(err)))
        if row.description is not None:
            try:
                row.description = clean_description(row.description)
            except InvalidCompetencyError as err:
                problems.append(row.problem(columns.description, str(err)))
        if row.parent_code:
            row.parent_code = nfc(row.parent_code)
        if row.prerequisite_codes:
            row.prerequisite_codes = [nfc(code) for code in row.prerequisite_codes]
        if row.code in first_line:
            where = first_line[row.code]
            where_text = f"line {where}" if isinstance(where, int) else f"item {where}"
            problems.append(
                row.problem(columns.code, f"duplicate code {row.code!r} (first on {where_text})")
            )
        else:
            first_line[row.code] = row.location
    known = first_line.keys() | existing.keys()
    for row in rows:
        if row.parent_code:
            if row.parent_code == row.code:
                problems.append(
                    row.problem(columns.parent, "a competency cannot be its own parent")
                )
            elif row.parent_code not in known:
                problems.append(
                    row.problem(columns.parent, f"unknown parent code {row.parent_code!r}")
                )
            elif row.parent_code not in first_line and existing[row.parent_code].is_archived:
                problems.append(
                    row.problem(
                        columns.parent,
                        f"parent {row.parent_code!r} is archived; unarchive it or include it",
                    )
                )
        for code in row.prerequisite_codes or ():
            if code == row.code:
                problems.append(
                    row.problem(columns.prerequisites, "a competency cannot require itself")
                )
            elif code not in known:
                problems.append(
                    row.problem(columns.prerequisites, f"unknown prerequisite code {code!r}")
                )
    return problems


def _cycle_problems(
    rows: Sequence[FrameworkRow],
    existing: Mapping[str, Competency],
    existing_prerequisites: Mapping[str, set[str]],
    columns: Columns,
) -> list[ImportProblem]:
    by_code = {row.code: row for row in rows}
    code_by_id = {c.id: code for code, c in existing.items()}
    parents: dict[str, list[str]] = {}
    requires: dict[str, list[str]] = {}
    for code, competency in existing.items():
        parent = code_by_id.get(competency.parent_id) if competency.parent_id is not None else None
        parents[code] = [parent] if parent else []
        requires[code] = sorted(existing_prerequisites.get(code, ()))
    for row in rows:
        # A field the file does not carry stays as the course has it (set above), or empty.
        if row.parent_code is None:
            parents.setdefault(row.code, [])
        else:
            parents[row.code] = [row.parent_code] if row.parent_code else []
        if row.prerequisite_codes is None:
            requires.setdefault(row.code, [])
            continue
        kept = [
            code
            for code in sorted(existing_prerequisites.get(row.code, ()))
            if existing[code].is_archived and code not in by_code
        ]  # archived prerequisites the import keeps (see apply_framework)
        requires[row.code] = list(dict.fromkeys([*row.prerequisite_codes, *kept]))
    problems = []
    for graph, column, what in (
        (parents, columns.parent, "parent"),
        (requires, columns.prerequisites, "prerequisite"),
    ):
        for cycle in find_cycles(graph):
            in_file = [by_code[code] for code in cycle if code in by_code]
            message = f"{what} cycle: {' → '.join(cycle)}"
            problems.append(
                in_file[0].problem(column, message)
                if in_file
                else ImportProblem(cycle[0], column, message)
            )
    if not problems:
        level = depths({code: (up[0] if up else None) for code, up in parents.items()})
        too_deep = next((row for row in rows if level.get(row.code, 0) > MAX_DEPTH), None)
        if too_deep is not None:
            problems.append(
                too_deep.problem(
                    columns.parent,
                    f"this puts {too_deep.code!r} {level[too_deep.code]} levels deep; a "
                    f"framework goes at most {MAX_DEPTH} levels deep",
                )
            )
    return problems


def _by_code(competencies: Iterable[Competency]) -> dict[str, Competency]:
    """The course's competencies by code in NFC, as the file's codes are cleaned.

    A code stored decomposed (saved before codes were normalised) is matched by its NFC form, so
    a file naming it updates it rather than adding a twin. Where a course already holds a code
    in both forms, the NFC one is matched and the other stays under its own stored code, which
    no cleaned code equals: left alone, like a competency the file does not name.
    """
    by_code: dict[str, Competency] = {}
    for competency in sorted(competencies, key=lambda c: c.code != nfc(c.code)):
        key = nfc(competency.code)
        by_code[competency.code if key in by_code else key] = competency
    return by_code


def apply_framework(
    session: Session,
    *,
    context_id: int,
    rows: Sequence[FrameworkRow],
    columns: Columns = CSV_FIELDS,
    problems: Sequence[ImportProblem] = (),
) -> ImportSummary:
    """Validate rows against the course, then upsert them by code, all or nothing.

    `problems` already found while reading the file are reported with the validation's own.
    """
    existing = _by_code(
        session.scalars(select(Competency).where(Competency.context_id == context_id))
    )
    found = [*problems, *_validate(rows, existing, columns)]
    if found:
        if all(isinstance(p.location, int) for p in found):
            found.sort(key=lambda p: p.location)  # CSV: in line order
        raise ImportFailedError(found)
    code_by_id = {c.id: code for code, c in existing.items()}
    existing_prerequisites: dict[str, set[str]] = defaultdict(set)
    links = session.scalars(
        select(CompetencyPrerequisite).where(CompetencyPrerequisite.context_id == context_id)
    ).all()
    for link in links:
        existing_prerequisites[code_by_id[link.competency_id]].add(code_by_id[link.prerequisite_id])
    cycles = _cycle_problems(rows, existing, existing_prerequisites, columns)
    if cycles:
        raise ImportFailedError(cycles)

    parent_of = {row.code: _parent_code(row, existing.get(row.code), code_by_id) for row in rows}
    # The file's siblings take the file's order, after the siblings it does not name (those are
    # left alone): a competency imported on its own under a parent comes last, not in between.
    # A file that does not say where a competency goes (no parent_code column) does not say
    # among which siblings its order is either: the course's own keep their place.
    in_file = {row.code for row in rows}
    placed = {row.code for row in rows if row.parent_code is not None or row.code not in existing}
    first_free: dict[int | None, int] = defaultdict(int)
    for code, competency in existing.items():
        if code not in placed:
            parent_id = competency.parent_id
            first_free[parent_id] = max(first_free[parent_id], competency.position + 1)
    positions = {code: existing[code].position for code in in_file - placed}
    siblings: dict[str | None, list[FrameworkRow]] = defaultdict(list)
    for row in rows:
        if row.code in placed:
            siblings[parent_of[row.code]].append(row)
    for parent_code, group in siblings.items():
        ordered = sorted(group, key=lambda r: r.sort_key)
        stored = [existing.get(row.code) for row in ordered]
        parent_id = existing[parent_code].id if parent_code in existing else None
        if (parent_code is None or parent_code in existing) and all(
            c is not None and c.parent_id == parent_id for c in stored
        ):
            kept = [c.position for c in stored if c is not None]
            if all(a < b for a, b in pairwise(kept)):
                # Already in this order (gaps left by moved or archived siblings): a file
                # exported and imported again changes nothing.
                positions.update((row.code, pos) for row, pos in zip(ordered, kept, strict=True))
                continue
        if parent_code is None:
            start = first_free[None]
        elif parent_code in existing:
            start = first_free[existing[parent_code].id]
        else:
            start = 0  # a parent new in this file has no other children
        for position, row in enumerate(sorted(group, key=lambda r: r.sort_key), start):
            positions[row.code] = position

    created = updated = 0
    by_code = dict(existing)
    for row in rows:
        if row.code not in by_code:
            competency = Competency(
                context_id=context_id,
                code=row.code,
                title=row.title,
                description="",
                kind=CompetencyKind.ACADEMIC,
            )
            session.add(competency)
            by_code[row.code] = competency
            created += 1
    session.flush()  # new rows need ids before parents and prerequisites can point at them

    changed: set[str] = set()
    for row in rows:
        competency = by_code[row.code]
        parent_code = parent_of[row.code]
        wanted: dict[str, Any] = {
            "code": row.code,  # a code stored decomposed is stored in NFC from now on
            "title": row.title,
            "position": positions[row.code],
            "parent_id": by_code[parent_code].id if parent_code else None,
            "archived_at": None,
        }
        if row.description is not None:
            wanted["description"] = row.description
        if row.kind is not None:
            wanted["kind"] = row.kind
        for name, value in wanted.items():
            if getattr(competency, name) != value:
                setattr(competency, name, value)
                changed.add(row.code)
        if row.prerequisite_codes is None:
            continue
        have = existing_prerequisites.get(row.code, set())
        # A prerequisite archived for now is not in an export, so a file cannot be read as
        # dropping it: it stays until removed on the edit page (or unarchived by the file).
        want = set(row.prerequisite_codes) | {
            code for code in have if existing[code].is_archived and code not in in_file
        }
        if have != want:
            changed.add(row.code)
            for link in links:
                if code_by_id.get(link.competency_id) == row.code and (
                    code_by_id[link.prerequisite_id] not in want
                ):
                    session.delete(link)
            for code in want - have:
                session.add(
                    CompetencyPrerequisite(
                        context_id=context_id,
                        competency_id=competency.id,
                        prerequisite_id=by_code[code].id,
                    )
                )
    session.flush()
    updated = len(changed & existing.keys())
    return ImportSummary(created=created, updated=updated, unchanged=len(rows) - created - updated)
