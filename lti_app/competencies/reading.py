"""Read an uploaded framework file, whatever program wrote it, or say plainly why it cannot be.

Excel writes "CSV UTF-8" with a byte-order mark, "Unicode Text" as UTF-16 with one (and tabs),
and plain "CSV" in the computer's legacy code page (Windows-1252 in Western Europe and the
Americas). A legacy code page cannot be told reliably from another one, so such a file is
refused with the line to look at, rather than read with a guess that could change letters.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
import re
from collections.abc import Iterable

from lti_app.competencies.errors import ImportFailedError, ImportProblem
from lti_app.competencies.framework import FrameworkRow
from lti_app.competencies.models import CompetencyKind
from lti_app.csvsafe import unsafe_cell

CSV_COLUMNS = ("code", "title", "description", "parent_code", "prerequisite_codes", "kind")
REQUIRED_CSV_COLUMNS = ("code", "title")
CSV_COLUMN_ALIASES = {
    "parent": "parent_code",
    "parents": "parent_code",
    "prereq": "prerequisite_codes",
    "prereqs": "prerequisite_codes",
    # Spanish (Pathways' other language), Portuguese and French headers, with and without
    # accents; only words that name nothing else, since a column named like one is refused.
    **dict.fromkeys(("código", "codigo"), "code"),
    **dict.fromkeys(("título", "titulo", "titre"), "title"),
    **dict.fromkeys(("descripción", "descripcion", "descrição", "descricao"), "description"),
    **dict.fromkeys(("padre", "código_padre", "codigo_padre"), "parent_code"),
    **dict.fromkeys(
        ("prerrequisitos", "pré_requisitos", "pre_requisitos", "prérequis"), "prerequisite_codes"
    ),
    "tipo": "kind",
}
"""Column names teachers write for ours that a close match does not find: too short, or in
another language."""
MAX_ROWS = 5000
"""Competencies one file may hold. A course framework has tens or hundreds; many thousands is a
whole standards catalogue or not a framework at all, and would outlast the request."""
MAX_COLUMNS = 100
"""Columns a header may have; Pathways reads six, the rest are a spreadsheet's extra ones."""

NOT_TEXT = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zipped document, not a text file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls), not a text file"),
    (b"%PDF-", "a PDF document, not a text file"),
    (b"{\\rtf", "a Rich Text (RTF) document, not a plain text file"),
)
"""How files that are not text start, and what to call them for a teacher."""

SAVE_AS = {
    "CSV": (
        "save the framework from its spreadsheet as CSV: in Excel, Save As with the type “CSV "
        "UTF-8 (Comma delimited)”; in Google Sheets, Download as “Comma-separated values”"
    ),
    "CASE JSON": "download the framework from the CASE provider as JSON",
}
DELIMITERS = (",", ";", "\t")
"""Comma; semicolon (Excel where the decimal mark is a comma); tab (Excel "Unicode Text", TSV)."""


EXCEL_SEPARATOR_LINE = re.compile(r'"?sep=([,;\t])"?[,;\t]*(?:\r\n|\r|\n)', re.IGNORECASE)
"""The first line Excel writes (and reads) to name a CSV file's separator."""


def line_of(text_before: str) -> int:
    """The line `text_before` ends on, counting lines as the csv reader and text editors do."""
    breaks = text_before.count("\n") + text_before.count("\r") - text_before.count("\r\n")
    return breaks + 1


def decode(data: str | bytes, *, expected: str = "CSV") -> str:
    """Return the file's text; raise ImportFailedError naming what it is when it is not text."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    advice = SAVE_AS.get(expected, SAVE_AS["CSV"])
    for signature, what in NOT_TEXT:
        if data.startswith(signature):
            raise ImportFailedError([ImportProblem("File", "", f"this is {what}: {advice}")])
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, name = "utf-16", "UTF-16"  # Excel's "Unicode Text"
    else:
        encoding, name = "utf-8-sig", "UTF-8"  # Excel's "CSV UTF-8" starts with a BOM
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        line = line_of(data[: err.start].decode(encoding, errors="replace"))
        message = f"the file is not {name} text: this line has the first character that is not"
        if name == "UTF-8" and expected == "CSV":
            message += " (often é, ñ or a curly quote, which Excel's plain “CSV” saves differently)"
        raise ImportFailedError(
            [ImportProblem(line, "", f"{message}. To fix it, {advice}")]
        ) from err
    return text.removeprefix("\ufeff")


def column_name(header_cell: str) -> str:
    """A header cell as a column name: case, spaces and hyphens do not matter."""
    return re.sub(r"[\s_-]+", "_", header_cell.strip().lower()).strip("_")


def sniff_delimiter(text: str, required: Iterable[str]) -> str:
    """The delimiter whose first non-blank line names the required columns (else the most)."""
    wanted = set(required)
    best, best_score = DELIMITERS[0], (False, 0)
    for delimiter in DELIMITERS:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            first = next((record for record in reader if any(c.strip() for c in record)), [])
        except csv.Error:
            continue
        score = (wanted <= {column_name(cell) for cell in first}, len(first))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _parse_kind(value: str) -> CompetencyKind | None:
    normalised = value.strip().lower().replace("-", "_").replace(" ", "_")
    if not normalised:
        return CompetencyKind.ACADEMIC
    try:
        return CompetencyKind(normalised)
    except ValueError:
        return None


def _looks_like_json(text: str) -> bool:
    if not text.lstrip().startswith(("{", "[")):
        return False
    try:
        json.loads(text)
    except RecursionError:
        return True  # JSON, nested deeper than any framework (parse_case says so)
    except ValueError:
        return False
    return True


def _csv_error(err: csv.Error, line: int, row: int) -> ImportProblem:
    """Python's csv complaint in a teacher's words, at the line where the value starts."""
    text = str(err)
    if "unexpected end of data" in text:
        message = (
            'a value here starts with a quote (") that is never closed, so everything after it '
            "would become part of it; add the closing quote"
        )
    elif "expected after" in text:
        message = (
            "a value in quotes is followed by more text; put the whole value in quotes and write "
            'each quote inside it twice ("")'
        )
    elif "field limit" in text:
        message = f"a value here is longer than {csv.field_size_limit():,} characters; shorten it"
    else:
        message = f"this line cannot be read as CSV ({text})"
    return ImportProblem(line, "", message, row=row)


def parse_csv(data: str | bytes) -> tuple[list[FrameworkRow], list[ImportProblem]]:
    """Read a framework CSV into rows and the problems found in them.

    Raise ImportFailedError at once when the rows cannot be read (encoding, header), when there
    are none, or more than MAX_ROWS.
    """
    text = decode(data)
    if _looks_like_json(text):
        raise ImportFailedError(
            [
                ImportProblem(
                    "File", "", "this is a JSON file: choose 1EdTech CASE JSON as the format"
                )
            ]
        )
    named = EXCEL_SEPARATOR_LINE.match(text)
    if named:
        # Excel's "sep=;" first line names the separator and is hidden in Excel itself: the
        # rows after it keep their spreadsheet numbers, the lines their editor numbers.
        delimiter, skipped_lines = named[1], 1
        text = text[named.end() :]
    else:
        delimiter, skipped_lines = sniff_delimiter(text, REQUIRED_CSV_COLUMNS), 0
    # strict: a stray quote is reported instead of silently swallowing the lines after it.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    problems: list[ImportProblem] = []
    header: list[str] | None = None
    header_line = 0
    rows: list[FrameworkRow] = []
    last_line = row = 0
    try:
        for record in reader:
            line, last_line, row = skipped_lines + last_line + 1, reader.line_num, row + 1
            if not any(cell.strip() for cell in record):
                continue  # blank lines, including ",,,," from spreadsheets
            if header is None:
                if len(record) > MAX_COLUMNS:
                    # Each name is compared with the columns Pathways reads: a header of a
                    # million names held a worker for half a minute.
                    raise ImportFailedError(
                        [
                            ImportProblem(
                                line,
                                "",
                                f"the header row has {len(record):,} columns; a framework has "
                                f"at most {len(CSV_COLUMNS)} ({', '.join(CSV_COLUMNS)})",
                            )
                        ]
                    )
                header, header_line = [column_name(name) for name in record], line
                problems.extend(_check_header(record, header, line))
                if problems:
                    break
                continue
            rows.append(_parse_csv_record(record, header, line, row, delimiter, problems))
            if len(rows) > MAX_ROWS:
                break  # the rows after it cannot change the answer
    except csv.Error as err:
        problems.append(_csv_error(err, skipped_lines + last_line + 1, row + 1))
    if header is None and not problems:
        problems.append(ImportProblem(1, "", "the file is empty; it needs a header row"))
    if header is None or (not rows and problems):
        raise ImportFailedError(problems)
    if not rows:
        raise ImportFailedError(
            [ImportProblem(header_line + 1, "", "the file has a header row but no competencies")]
        )
    if len(rows) > MAX_ROWS:
        first_over = rows[MAX_ROWS]
        message = (
            f"the file has more than {MAX_ROWS:,} competencies and one import takes at most "
            f"{MAX_ROWS:,}; split it into several files"
        )
        raise ImportFailedError([first_over.problem("", message)])
    return rows, problems


def _check_header(record: list[str], header: list[str], line: int) -> list[ImportProblem]:
    problems = [
        ImportProblem(line, name, "required column is missing")
        for name in REQUIRED_CSV_COLUMNS
        if name not in header
    ]
    seen: set[str] = set()
    for cell, name in zip(record, header, strict=True):
        if name and name in seen:
            problems.append(ImportProblem(line, name, "column appears twice"))
        seen.add(name)
        if not name or name in CSV_COLUMNS:
            continue
        close = difflib.get_close_matches(name, CSV_COLUMNS, n=1, cutoff=0.75)
        meant = CSV_COLUMN_ALIASES.get(name) or (close[0] if close else None)
        if meant is not None and meant not in header:
            # Ignoring it would drop what the teacher wrote there (parents, prerequisites...).
            shown = "".join("?" if ord(c) < 32 or ord(c) == 127 else c for c in cell.strip())
            hidden = shown != cell.strip()
            problems.append(
                ImportProblem(
                    line,
                    shown,
                    f"holds a hidden character: retype it as {meant}"
                    if hidden
                    else f"not a column Pathways reads: rename it {meant} if that is what it "
                    "holds, or else rename or delete it",
                )
            )
    return problems


def _parse_csv_record(
    record: list[str],
    header: list[str],
    line: int,
    row: int,
    delimiter: str,
    problems: list[ImportProblem],
) -> FrameworkRow:
    if len(record) > len(header) and any(cell.strip() for cell in record[len(header) :]):
        separator = {",": "commas", ";": "semicolons", "\t": "tabs"}[delimiter]
        problems.append(
            ImportProblem(
                line,
                "",
                f"more values than columns; put values that contain {separator} in quotes",
                row=row,
            )
        )
    values = {
        name: (unsafe_cell(record[i]) if i < len(record) else "") for i, name in enumerate(header)
    }
    # A column the file does not have is None: the import leaves that field as it is (a file
    # of codes and titles only renames); an empty cell in a column it has clears the field.
    kind = None
    if "kind" in values:
        kind = _parse_kind(values["kind"])
        if kind is None:
            problems.append(
                ImportProblem(
                    line,
                    "kind",
                    f"unknown kind {values['kind'].strip()!r}; use academic or non_academic",
                    row=row,
                )
            )
    prerequisite_codes = None
    if "prerequisite_codes" in values:
        # Once each: "A;;A" is one prerequisite (and one problem, when A is this row itself).
        prerequisite_codes = list(
            dict.fromkeys(
                code.strip() for code in values["prerequisite_codes"].split(";") if code.strip()
            )
        )
    parent_code = values.get("parent_code")
    return FrameworkRow(
        location=line,
        code=values["code"],
        title=values["title"],
        description=values.get("description"),
        parent_code=parent_code.strip() if parent_code is not None else None,
        prerequisite_codes=prerequisite_codes,
        kind=kind,
        sort_key=(0.0, line),
        row=row,
    )
