"""CSV exports for schools' own reporting: the dashboard grid and the evidence log."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from lti_app.competencies.models import Competency
from lti_app.csvsafe import safe_cell
from lti_app.insights.grid import GridRow
from lti_app.mastery.models import IN_ORDER_OBSERVED, Evidence
from lti_app.timezones import in_zone
from lti_app.tool.models import Membership, Person

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
    """One line per student: roster status, then each competency's level, points and the date
    of its latest evidence; times in the course's zone, with their offset."""

    def generate() -> Iterator[Sequence[object]]:
        header: list[object] = ["student", "status", "last_launch_at"]
        for comp in competencies:
            code = comp.code or comp.title
            header += [f"{code} level", f"{code} points", f"{code} last_evidence_on"]
        yield header
        for row in rows:
            line: list[object] = [row.name, row.status, in_zone(row.last_launch_at, zone)]
            for comp in competencies:
                cell = row.cells.get(comp.id)
                if cell is None:
                    line += ["", "", ""]
                else:
                    line += [cell.level_name, cell.points, cell.last_evidence_on]
            yield line

    return _lines(generate(), semicolons=semicolons)


def evidence_csv(
    session: Session, *, context_id: int, zone: ZoneInfo, semicolons: bool = False
) -> Iterator[str]:
    """Every piece of evidence of the course, oldest first, withdrawn ones marked, streamed;
    times in the course's zone, with their offset (a spreadsheet shows the school's date)."""
    student = aliased(Person)
    recorder = aliased(Person)
    query = (
        select(Evidence, student, Competency.code, Competency.title, recorder)
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
        for ev, person, code, title, by in session.execute(query).yield_per(500):
            yield [
                person.display_name,
                code,
                title,
                ev.observed_on,
                ev.level_name,
                ev.points,
                ev.source.value,
                ev.note,
                by.display_name if by is not None else "",
                in_zone(ev.withdrawn_at, zone),
            ]

    return _lines(generate(), semicolons=semicolons)
