"""CSV exports for schools' own reporting: the dashboard grid and the evidence log."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from lti_app.competencies.models import Competency
from lti_app.csvsafe import safe_cell
from lti_app.insights.grid import GridRow
from lti_app.mastery.models import IN_ORDER_OBSERVED, Evidence
from lti_app.timezones import in_zone
from lti_app.tool.models import Membership, Person, display_name

SEMICOLONS = "semicolons"
"""The export style for Excel where the decimal mark is a comma (Spanish, French, German...):
Excel there opens a double-clicked .csv by splitting at ";", and reads "2.5" as text (or a
date). No "sep=;" line instead: with it, Excel ignores the UTF-8 mark and garbles names."""


def _lines(rows: Iterator[Sequence[object]], *, semicolons: bool = False) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if semicolons else ",")
    for row in rows:
        writer.writerow([_cell(v, semicolons=semicolons) for v in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _cell(value: object, *, semicolons: bool) -> str:
    # The same formula guard either way: safe_cell already guards the text after each ";".
    text = safe_cell(value)
    return text.replace(".", ",") if semicolons and isinstance(value, Decimal) else text


def dashboard_csv(
    rows: Sequence[GridRow],
    competencies: Sequence[Competency],
    *,
    zone: ZoneInfo,
    semicolons: bool = False,
) -> Iterator[str]:
    """One line per student: roster status, then each competency's level, whether it is
    mastered, points and the date of its latest evidence; times in the course's zone, with
    their offset.

    "mastered" is its own column: a competency with parts can average a mastery level with a
    part not mastered yet, and is mastered only when every part is."""

    def generate() -> Iterator[Sequence[object]]:
        header: list[object] = ["student", "status", "last_launch_at"]
        for comp in competencies:
            code = comp.code or comp.title
            header += [
                f"{code} level",
                f"{code} mastered",
                f"{code} points",
                f"{code} last_evidence_on",
            ]
        yield header
        for row in rows:
            line: list[object] = [row.name, row.status, in_zone(row.last_launch_at, zone)]
            for comp in competencies:
                cell = row.cells.get(comp.id)
                if cell is None:
                    line += ["", "no", "", ""]
                else:
                    mastered = "yes" if cell.is_mastered else "no"
                    line += [cell.level_name, mastered, cell.points, cell.last_evidence_on]
            yield line

    return _lines(generate(), semicolons=semicolons)


def evidence_csv(
    session: Session, *, context_id: int, zone: ZoneInfo, semicolons: bool = False
) -> Iterator[str]:
    """Every piece of evidence of the course, oldest first, withdrawn ones marked, streamed;
    times in the course's zone, with their offset (a spreadsheet shows the school's date)."""
    student = aliased(Person)
    recorder = aliased(Person)
    # Plain columns, not Evidence and two Person objects per row: building 108,000 ORM objects
    # for 36,000 rows was most of the download's time. Names are worked out once per person.
    query = (
        select(
            Evidence.person_id,
            Competency.code,
            Competency.title,
            Evidence.observed_on,
            Evidence.level_name,
            Evidence.points,
            Evidence.source,
            Evidence.note,
            recorder.id,
            Evidence.withdrawn_at,
            *_name_columns(student),
            *_name_columns(recorder),
        )
        .join(student, student.id == Evidence.person_id)
        .join(Competency, Competency.id == Evidence.competency_id)
        # An outer join: evidence whose recorder was erased is still the student's.
        .outerjoin(recorder, recorder.id == Evidence.recorded_by_id)
        .join(
            Membership,
            (Membership.person_id == Evidence.person_id) & (Membership.context_id == context_id),
        )
        .where(
            Evidence.context_id == context_id,
            Competency.context_id == context_id,
            Membership.is_preview.is_(False),  # Canvas's Test Student: the teacher trying it
        )
        .order_by(*IN_ORDER_OBSERVED)
    )

    def generate() -> Iterator[Sequence[object]]:
        yield [
            "student",
            "competency_code",
            "competency",
            "observed_on",
            "level",
            "points",
            "source",
            "note",
            "recorded_by",
            "withdrawn_at",
        ]
        names: dict[int, str] = {}
        rows: Iterable[Sequence[Any]] = session.execute(query).yield_per(2000)
        for row in rows:
            person_id, code, title, observed_on, level, points, source, note, by_id = row[:9]
            if person_id not in names:
                names[person_id] = display_name(*row[10:15])
            if by_id is not None and by_id not in names:
                names[by_id] = display_name(*row[15:20])
            yield [
                names[person_id],
                code,
                title,
                observed_on,
                level,
                points,
                source.value,
                note,
                names[by_id] if by_id is not None else "",
                in_zone(row[9], zone),
            ]

    return _lines(generate(), semicolons=semicolons)


def _name_columns(person: type[Person]) -> tuple[Any, ...]:
    """The columns display_name reads, in its order."""
    return (person.name, person.given_name, person.family_name, person.email, person.sub)
