"""Move frameworks in and out of a course: CSV, 1EdTech CASE JSON, and course-to-course copy.

CSV columns (header row required, names case-insensitive, order free, unknown columns ignored
unless their name is close to one of these, which is reported rather than silently dropped):

    code                required; unique in the course; imports match existing competencies by it
    title               required
    description         optional
    parent_code         optional; the code of the parent (in the file or already in the course)
    prerequisite_codes  optional; codes separated by ";"
    kind                optional; "academic" (default) or "non_academic"

An import is all-or-nothing: every problem is collected and raised in one ImportFailedError.
Competencies in the file are created or updated (their title, position among siblings and the
fields of the file's other columns become what the file says, and an archived one is brought
back); a column the file does not have leaves that field as it is, so `code,title` only renames,
while an empty cell in a column it has clears the field (an empty parent_code is the top level).
Competencies of the course that are not in the file are left alone. Importing the same file
twice changes nothing the second time. The upsert itself lives in `framework.py`.

Files may be UTF-8 (with or without a byte-order mark) or UTF-16 with one, separated by commas,
semicolons or tabs, with any line endings; `reading.py` reads them. Problems name the line as a
text editor counts them (the header is line 1, blank lines count, a quoted value with line
breaks takes several), and the spreadsheet row too where that differs.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.errors import ImportFailedError, ImportProblem
from lti_app.competencies.framework import (
    CASE_FIELDS,
    CSV_FIELDS,
    FrameworkRow,
    ImportSummary,
    apply_framework,
)
from lti_app.competencies.models import Competency, CompetencyPrerequisite
from lti_app.competencies.queries import list_competencies
from lti_app.competencies.reading import CSV_COLUMNS, MAX_ROWS, decode, parse_csv
from lti_app.csvsafe import safe_cell
from lti_app.unicode_text import HALF_CHARACTER, has_half_character, nfc

__all__ = [
    "CSV_COLUMNS",
    "MAX_ROWS",
    "ImportSummary",
    "copy_framework",
    "export_csv",
    "import_case",
    "import_csv",
    "parse_case",
    "parse_csv",
]

CASE_TITLE_LENGTH = 200
"""A CASE fullStatement longer than this is shortened for the title and kept as description."""


# --- CSV ---------------------------------------------------------------------------------


def import_csv(session: Session, *, context_id: int, data: str | bytes) -> ImportSummary:
    """Create or update the course's competencies from a framework CSV (see module docstring)."""
    rows, problems = parse_csv(data)
    return apply_framework(
        session, context_id=context_id, rows=rows, columns=CSV_FIELDS, problems=problems
    )


def export_csv(session: Session, *, context_id: int, include_archived: bool = False) -> str:
    """Write the course's framework as CSV that `import_csv` reads back into the same framework.

    Without archived competencies, prerequisites on archived ones are left out too, so the file
    imports cleanly into an empty course.
    """
    competencies = list_competencies(
        session, context_id=context_id, include_archived=include_archived
    )
    code_by_id = {c.id: c.code for c in competencies}
    prerequisites: dict[int, list[str]] = defaultdict(list)
    links = session.execute(
        select(CompetencyPrerequisite.competency_id, CompetencyPrerequisite.prerequisite_id).where(
            CompetencyPrerequisite.context_id == context_id
        )
    )
    for competency_id, prerequisite_id in links:
        if prerequisite_id in code_by_id:
            prerequisites[competency_id].append(code_by_id[prerequisite_id])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for c in competencies:
        cells = [
            c.code,
            c.title,
            c.description,
            code_by_id.get(c.parent_id, "") if c.parent_id is not None else "",
            ";".join(sorted(prerequisites[c.id])),
            c.kind.value,
        ]
        writer.writerow([safe_cell(cell) for cell in cells])
    return out.getvalue()


# --- 1EdTech CASE ------------------------------------------------------------------------


def _node_id(association: Mapping[str, Any], key: str) -> str | None:
    node = association.get(key)
    if isinstance(node, Mapping) and isinstance(node.get("identifier"), str):
        return str(node["identifier"])
    return None


def _case_title(item: Mapping[str, Any], statement: str) -> tuple[str, str | None]:
    """The title, and the description when the title does not hold the whole statement.

    A statement that is the title whole leaves no description in the package: the one the
    course has (a teacher's own notes) stays.
    """
    abbreviated = str(item.get("abbreviatedStatement") or "").strip()
    if abbreviated:
        return abbreviated, statement
    if len(statement) <= CASE_TITLE_LENGTH:
        return statement, None
    cut = statement[: CASE_TITLE_LENGTH - 1].rsplit(" ", 1)[0]
    return cut + "…", statement


CASE_TEXT_FIELDS = ("humanCodingScheme", "fullStatement", "abbreviatedStatement")
"""CFItem fields Pathways reads, strings in the CASE 1.0 information model."""


def parse_case(
    data: str | bytes | Mapping[str, Any],
) -> tuple[list[FrameworkRow], list[ImportProblem]]:
    """Read a CASE CFPackage (CFDocument, CFItems, CFAssociations) into rows.

    humanCodingScheme becomes the code, fullStatement the title (abbreviatedStatement when given,
    or a shortened fullStatement) and description; `isChildOf` gives the parent (an item that is a
    child of the CFDocument is top level) and its sequenceNumber the order; `A precedes B` makes A
    a prerequisite of B. Other association types are ignored. CASE has no kind, so a competency
    keeps its own (a new one is academic).
    """
    if isinstance(data, Mapping):
        package: Any = data
    else:
        try:
            package = json.loads(decode(data, expected="CASE JSON"))
        except json.JSONDecodeError as err:
            message = f"not JSON: {err.msg} at line {err.lineno}"
            if err.pos == 0:
                message += "; if it is a CSV file, choose CSV as the format"
            raise ImportFailedError([ImportProblem("CFPackage", "", message)]) from err
        except RecursionError as err:
            raise ImportFailedError(
                [ImportProblem("CFPackage", "", "nested too deeply to be a CASE package")]
            ) from err
        except ValueError as err:  # Python refuses integers of more than 4,300 digits
            raise ImportFailedError(
                [ImportProblem("CFPackage", "", "it holds a number too long to be read")]
            ) from err
    if not isinstance(package, Mapping):
        raise ImportFailedError([ImportProblem("CFPackage", "", "expected a JSON object")])
    problems: list[ImportProblem] = []
    document = package.get("CFDocument")
    document_id = document.get("identifier") if isinstance(document, Mapping) else None
    if not isinstance(document_id, str):
        problems.append(ImportProblem("CFDocument", "identifier", "a CFDocument is required"))
    items = package.get("CFItems")
    if not isinstance(items, list):
        problems.append(ImportProblem("CFItems", "", "a list of CFItems is required"))
        items = []
    associations = package.get("CFAssociations") or []
    if not isinstance(associations, list):
        problems.append(ImportProblem("CFAssociations", "", "expected a list"))
        associations = []
    if len(items) > MAX_ROWS:
        over = items[MAX_ROWS]
        where = over.get("identifier") if isinstance(over, Mapping) else None
        problems.append(
            ImportProblem(
                where if isinstance(where, str) and where else f"CFItems[{MAX_ROWS}]",
                "",
                f"the package has {len(items):,} CFItems and one import takes at most "
                f"{MAX_ROWS:,}; split it into several packages",
            )
        )
    if problems:
        raise ImportFailedError(problems)

    rows: dict[str, FrameworkRow] = {}
    # Each row's own list of prerequisites, filled by the `precedes` associations below.
    prerequisites: dict[str, list[str]] = defaultdict(list)
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            problems.append(ImportProblem(f"CFItems[{index}]", "", "expected an object"))
            continue
        identifier = item.get("identifier")
        if not isinstance(identifier, str) or not identifier:
            problems.append(ImportProblem(f"CFItems[{index}]", "identifier", "is required"))
            continue
        if identifier in rows:
            problems.append(ImportProblem(identifier, "identifier", "appears twice in CFItems"))
            continue
        not_text = [
            name
            for name in CASE_TEXT_FIELDS
            if item.get(name) is not None and not isinstance(item.get(name), str)
        ]
        if not_text:
            problems.extend(ImportProblem(identifier, name, "must be text") for name in not_text)
            continue
        halved = [name for name in CASE_TEXT_FIELDS if has_half_character(item.get(name) or "")]
        if halved:
            problems.extend(ImportProblem(identifier, name, HALF_CHARACTER) for name in halved)
            continue
        statement = str(item.get("fullStatement") or "").strip()
        title, description = _case_title(item, statement)
        rows[identifier] = FrameworkRow(
            location=identifier,
            code=str(item.get("humanCodingScheme") or "").strip(),
            title=title,
            description=description,
            parent_code="",  # top level unless an isChildOf says otherwise
            prerequisite_codes=prerequisites[identifier],
            sort_key=(float("inf"), index),
        )

    parent_seen: dict[str, str] = {}
    for index, association in enumerate(associations):
        if not isinstance(association, Mapping):
            problems.append(ImportProblem(f"CFAssociations[{index}]", "", "expected an object"))
            continue
        kind = association.get("associationType")
        if kind not in ("isChildOf", "precedes"):
            continue
        where = str(association.get("identifier") or f"CFAssociations[{index}]")
        origin = _node_id(association, "originNodeURI")
        destination = _node_id(association, "destinationNodeURI")
        if origin not in rows:
            problems.append(ImportProblem(where, "originNodeURI", f"unknown CFItem {origin!r}"))
            continue
        if kind == "isChildOf":
            if origin in parent_seen:
                problems.append(
                    ImportProblem(where, "isChildOf", f"item {origin} already has a parent")
                )
                continue
            parent_seen[origin] = where
            sequence = association.get("sequenceNumber")
            if isinstance(sequence, int | float) and not isinstance(sequence, bool):
                try:
                    order = float(sequence)
                except OverflowError:  # an integer of hundreds of digits
                    order = math.inf
                if not math.isfinite(order):  # also the NaN and Infinity Python's json reads
                    message = "is not a number" if math.isnan(order) else "is too large a number"
                    problems.append(ImportProblem(where, "sequenceNumber", message))
                    continue
                rows[origin].sort_key = (order, rows[origin].sort_key[1])
            if destination == document_id:
                continue
            if destination not in rows:
                problems.append(
                    ImportProblem(where, "destinationNodeURI", f"unknown CFItem {destination!r}")
                )
                continue
            rows[origin].parent_code = rows[destination].code
        else:
            if destination not in rows:
                problems.append(
                    ImportProblem(where, "destinationNodeURI", f"unknown CFItem {destination!r}")
                )
                continue
            if rows[origin].code:
                prerequisites[destination].append(rows[origin].code)
    return list(rows.values()), problems


def import_case(
    session: Session, *, context_id: int, data: str | bytes | Mapping[str, Any]
) -> ImportSummary:
    """Create or update the course's competencies from a CASE package (see `parse_case`)."""
    rows, problems = parse_case(data)
    return apply_framework(
        session, context_id=context_id, rows=rows, columns=CASE_FIELDS, problems=problems
    )


# --- Copy between courses ----------------------------------------------------------------


def copy_framework(session: Session, *, from_context_id: int, to_context_id: int) -> dict[int, int]:
    """Copy a course's (unarchived) framework into another course; return old id -> new id.

    Competencies whose code already exists in the target are updated, like an import; the caller
    checks that the person may read the source course.
    """
    source = list_competencies(session, context_id=from_context_id)
    source_ids = {c.id for c in source}
    code_by_id = {c.id: c.code for c in source}
    prerequisites: dict[int, list[str]] = defaultdict(list)
    links = session.execute(
        select(CompetencyPrerequisite.competency_id, CompetencyPrerequisite.prerequisite_id).where(
            CompetencyPrerequisite.context_id == from_context_id
        )
    )
    for competency_id, prerequisite_id in links:
        if competency_id in source_ids and prerequisite_id in source_ids:
            prerequisites[competency_id].append(code_by_id[prerequisite_id])
    rows = [
        FrameworkRow(
            location=c.code,
            code=c.code,
            title=c.title,
            description=c.description,
            parent_code=code_by_id.get(c.parent_id, "") if c.parent_id is not None else "",
            prerequisite_codes=sorted(prerequisites[c.id]),
            kind=c.kind,
            sort_key=(float(c.position), index),
        )
        for index, c in enumerate(source)
    ]
    apply_framework(session, context_id=to_context_id, rows=rows, columns=CSV_FIELDS)
    target = {
        c.code: c
        for c in session.scalars(select(Competency).where(Competency.context_id == to_context_id))
    }
    for c in source:
        # One matched by code (imported before, or copied before copies were recorded) is
        # this one's copy from now on; one already copied from elsewhere keeps its origin.
        mine = target[nfc(c.code)]
        if mine.copied_from_id is None and c.copied_from_id != mine.id:
            mine.copied_from_id = c.id
    session.flush()
    return {c.id: target[nfc(c.code)].id for c in source}
