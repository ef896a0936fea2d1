"""The class ZIP of family reports as a teacher with a large class meets it: the download
starts with the first student's PDF instead of after the whole class is made, and a failure
part-way is a failed download (and a log line with the request id), never a ZIP that opens
fine with students missing."""

from __future__ import annotations

import gc
import io
import logging
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator

import httpx
import pytest

from lti_app.reports import services, views
from tests.conftest import LtiActions
from tests.insights.conftest import OTHER_TEACHER, Seeded
from tests.progress.pages import url

CLUB = "course-chem-club"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def report_log() -> Iterator[_Records]:
    """What the reports views log (the app's `lti_app` logger does not propagate)."""
    handler = _Records()
    logger = logging.getLogger(views.__name__)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _club_teacher(lti: LtiActions) -> tuple[httpx.Client, str]:
    """The club's teacher, once the launch's roster sync lists both students; the ZIP's URL."""
    home = lti.launch(OTHER_TEACHER, context_id=CLUB)
    deadline = time.monotonic() + 20
    while home.client.get(url(home.response, "/reports/")).text.count("Open report<") < 2:
        assert time.monotonic() < deadline, "the launch's roster sync did not finish"
        time.sleep(0.05)
    return home.client, url(home.response, "/reports/class.zip")


def _pdf_bytes_with(
    monkeypatch: pytest.MonkeyPatch, on_second: Callable[[], None]
) -> list[services.FamilyReport]:
    """Call `on_second` before the second student's PDF is made; return the reports made."""
    made: list[services.FamilyReport] = []
    real = views.pdf_bytes

    def pdf_bytes(report: services.FamilyReport, lang: str, paper: str) -> bytes:
        made.append(report)
        if len(made) == 2:
            on_second()
        return real(report, lang, paper)

    monkeypatch.setattr(views, "pdf_bytes", pdf_bytes)
    return made


def test_class_zip_download_starts_with_the_first_pdf(
    lti: LtiActions, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the second student's PDF is still being made, the teacher's browser has already
    received the first one (a class of a hundred no longer waits past a proxy's patience
    with nothing sent). The finished ZIP holds every student, named as before."""
    client, zip_url = _club_teacher(lti)
    second_may_start = threading.Event()
    made = _pdf_bytes_with(monkeypatch, lambda: second_may_start.wait(30))
    try:
        with client.stream("GET", zip_url, timeout=httpx.Timeout(10.0)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/zip"
            assert response.headers["content-disposition"] == (
                'attachment; filename="family-reports-en.zip"'
            )
            chunks = response.iter_bytes()
            # The second PDF cannot be finished before this: its making waits for us.
            first = next(chunks)
            assert first.startswith(b"PK\x03\x04")
            assert views._filename(made[0], "en").encode() in first
            second_may_start.set()
            body = first + b"".join(chunks)
    finally:
        second_may_start.set()
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    assert archive.namelist() == [views._filename(r, "en") for r in made]
    for name in archive.namelist():
        assert archive.read(name).startswith(b"%PDF-")


def test_a_failure_part_way_is_a_failed_download_and_logged_with_the_request_id(
    lti: LtiActions, seeded: Seeded, monkeypatch: pytest.MonkeyPatch, report_log: _Records
) -> None:
    """The second student's PDF cannot be made: the teacher does not get a ZIP that opens
    with one student missing (the download fails, so they try again or ask), and the
    operator finds the failure by the request id the response carried."""
    client, zip_url = _club_teacher(lti)
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    def broken() -> None:
        raise RuntimeError("WeasyPrint fell over")

    _pdf_bytes_with(monkeypatch, broken)
    received: list[bytes] = []
    with client.stream("GET", zip_url, timeout=httpx.Timeout(10.0)) as response:
        rid = response.headers["x-request-id"]
        with pytest.raises(httpx.HTTPError):
            received.extend(response.iter_bytes())
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(b"".join(received)))
    deadline = time.monotonic() + 5
    while not any(r.exc_info for r in report_log.records):
        assert time.monotonic() < deadline, "nothing was logged"
        time.sleep(0.02)
    (logged,) = [r for r in report_log.records if r.exc_info]
    assert f"rid={rid}" in logged.getMessage()
    assert "after 1 of 2 reports" in logged.getMessage()
    # The abandoned archive stays abandoned: its clean-up must not fail later, in whatever
    # request or test the garbage collector happens to run in.
    gc.collect()
    assert unraisable == []


def test_a_failure_at_the_first_report_is_the_usual_error_page(
    lti: LtiActions, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing was sent yet: the teacher sees Pathways' error page with its request id, not
    a download that breaks at once."""
    client, zip_url = _club_teacher(lti)

    def broken(report: services.FamilyReport, lang: str, paper: str) -> bytes:
        raise RuntimeError("no fonts at all")

    monkeypatch.setattr(views, "pdf_bytes", broken)
    response = client.get(zip_url)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-request-id"] in response.text
