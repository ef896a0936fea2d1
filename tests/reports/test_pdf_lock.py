"""A family-report PDF takes a second or more to render (WeasyPrint, several for a cold
worker). On SQLite every transaction holds the database's one write lock from its first query,
so a PDF rendered inside its request's transaction made every other request of every worker
wait (24 students downloading their reports: a teacher's save took six seconds, and past the
busy timeout it gets the "try again in a minute" page). While a PDF renders, another writer
must find the database free."""

from __future__ import annotations

import io
import sqlite3
import zipfile

import pytest
from sqlalchemy.engine import make_url

from lti_app.reports import views
from tests.insights.conftest import TEACHER, FreshCourse
from tests.progress.pages import url


@pytest.fixture
def writers_during_render(database_url: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What another request (any worker) met when it tried to write, once per PDF rendered."""
    database = make_url(database_url)
    if database.get_backend_name() != "sqlite":
        pytest.skip("SQLite's single write lock")
    met: list[str] = []
    real = views.render_pdf

    def render_pdf(html: str, paper: str) -> bytes:
        other = sqlite3.connect(database.database or "", timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            met.append("free")
        except sqlite3.OperationalError as err:
            met.append(str(err))
        finally:
            other.close()
        return real(html, paper)

    monkeypatch.setattr(views, "render_pdf", render_pdf)
    return met


def test_a_student_downloading_their_report_does_not_hold_up_anyone(
    fresh_course: FreshCourse, writers_during_render: list[str]
) -> None:
    home = fresh_course.lti.launch("user-s01")
    pdf = home.client.get(
        url(home.response, f"/reports/students/{fresh_course.student_id}/report.pdf")
    )
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")
    assert writers_during_render == ["free"]


def test_the_class_zip_does_not_hold_up_anyone_between_reports(
    fresh_course: FreshCourse, writers_during_render: list[str]
) -> None:
    fresh_course.lti.launch("user-s02")
    home = fresh_course.lti.launch(TEACHER)
    answer = home.client.get(url(home.response, "/reports/class.zip"))
    assert answer.status_code == 200
    assert len(zipfile.ZipFile(io.BytesIO(answer.content)).namelist()) >= 2
    assert len(writers_during_render) >= 2
    assert set(writers_during_render) == {"free"}
