"""The CSV exports in a second style for Excel where the decimal mark is a comma (Spanish,
French, German...): Excel there splits a double-clicked .csv at ";", not ","."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from lti_app.competencies.services import create_competency
from lti_app.csvsafe import EXCEL_UTF8
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from tests.insights.conftest import FreshCourse
from tests.progress.pages import unit_of_work, url

NOTE = "Good;=1+1 on the last line"
EXCEL_LINK = "for Excel with ; and decimal commas</a>"


def _half_point(fc: FreshCourse, database_url: str) -> None:
    with unit_of_work(database_url) as s:
        c = create_competency(s, context_id=fc.context_id, code="C1", title="Cells")
        record_evidence(
            s,
            context_id=fc.context_id,
            competency_id=c.id,
            student_ids=[fc.student_id],
            points=Decimal("2.5"),
            source=EvidenceSource.TEACHER,
            note=NOTE,
            recorded_by_id=fc.teacher_id,
            observed_at=datetime.now(UTC),
        )


def _points(rows: list[list[str]]) -> list[str]:
    """The points of each student who has some on C1 (the class has one)."""
    column = rows[0].index("C1 points")
    return [row[column] for row in rows[1:] if row[column]]


def _download(client: httpx.Client, page: httpx.Response, href: str) -> httpx.Response:
    response = client.get(str(page.url.join(html.unescape(href))))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    return response


def _excel_links(page: httpx.Response) -> dict[str, str]:
    """The dashboard's links to the semicolon downloads, by the file they lead to."""
    links = re.findall(
        r'<a href="([^"]*/insights/(\w+)\.csv\?[^"]*)"><span[^>]*>[^<]*</span>'
        + re.escape(EXCEL_LINK),
        page.text,
    )
    return {name: href for href, name in links}


def test_both_exports_come_for_excel_with_semicolons_and_decimal_commas(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    _half_point(fc, database_url)
    home = fc.lti.launch("user-t01")
    dashboard = home.client.get(url(home.response, "/insights/"))
    links = _excel_links(dashboard)
    assert sorted(links) == ["dashboard", "evidence"], "no link next to each CSV export"

    grid = _download(home.client, dashboard, links["dashboard"])
    assert grid.content.startswith(EXCEL_UTF8.encode())  # names stay readable in Excel
    assert "dashboard-semicolons.csv" in grid.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(grid.content.decode("utf-8-sig")), delimiter=";"))
    header = rows[0]
    assert header[:4] == ["student", "status", "last_launch_at", "C1 level"]
    assert _points(rows) == ["2"]  # the level's points (Developing): one student, in columns

    log = _download(home.client, dashboard, links["evidence"])
    rows = list(csv.reader(io.StringIO(log.content.decode("utf-8-sig")), delimiter=";"))
    header, entry = rows[0], rows[1]
    assert len(header) == 10
    assert entry[header.index("points")] == "2,5"
    # The note's ";" splits nothing (quoted), and what follows it is no formula either.
    assert entry[header.index("note")] == "Good;'=1+1 on the last line"


def test_the_default_csv_stays_comma_separated_with_decimal_points(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    _half_point(fc, database_url)
    home = fc.lti.launch("user-t01")
    grid = home.client.get(url(home.response, "/insights/dashboard.csv"))
    assert 'filename="dashboard.csv"' in grid.headers["content-disposition"]
    text = grid.content.decode("utf-8")
    assert text.startswith(EXCEL_UTF8)
    assert _points(list(csv.reader(io.StringIO(text[1:])))) == ["2"]
    log = home.client.get(url(home.response, "/insights/evidence.csv"))
    assert 'filename="evidence.csv"' in log.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(log.content.decode("utf-8-sig"))))
    assert rows[1][rows[0].index("points")] == "2.5"
    assert rows[1][rows[0].index("note")] == "Good;'=1+1 on the last line"
