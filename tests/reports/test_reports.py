"""Family reports through real launches: who may read which report, what it says (and never
says), in English and Spanish, as a page, a PDF and a class ZIP."""

from __future__ import annotations

import html
import io
import re
import subprocess
import time
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from lti_app.competencies.services import create_competency
from lti_app.insights.groups import create_group
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.scales import update_scale
from lti_app.mastery.services import record_evidence
from lti_app.reports import fonts
from tests.conftest import LtiActions
from tests.insights.conftest import OTHER_TEACHER, TEACHER, FreshCourse, Seeded
from tests.progress.pages import form, post, unique, unit_of_work, url
from tests.reports.pdftext import pdf_text

SECRETS = ("SECRET-NOTE", "SECRET-NEEDS", "SECRET-PRIVATE", "SECRET-GROUP")


@pytest.fixture
def with_group(seeded: Seeded, database_url: str) -> Seeded:
    with unit_of_work(database_url) as s:
        create_group(
            s,
            context_id=seeded.context_id,
            name="SECRET-GROUP needs re-teaching",
            person_ids=[seeded.students["user-s01"]],
            created_by_id=seeded.teacher_id,
        )
    return seeded


def _report_path(seeded: Seeded, sub: str, suffix: str = "") -> str:
    return f"/reports/students/{seeded.students[sub]}{suffix}"


def test_teacher_reads_a_report_with_levels_goals_and_comments_but_no_secrets(
    lti: LtiActions, with_group: Seeded
) -> None:
    home = lti.launch(TEACHER)
    page = home.client.get(url(home.response, _report_path(with_group, "user-s01")))
    assert page.status_code == 200
    text = page.text
    assert "Explain photosynthesis to my family" in text
    assert "Proficient" in text
    assert "Mastered: can do this on their own." in text
    assert "Cells and &lt;organelles&gt;" in text
    assert "Clear lab report on mitochondria" in text
    assert "Read chapter 4 together" in text
    for secret in SECRETS:
        assert secret not in text


def test_pdf_is_a_pdf_with_the_name_levels_and_goals(lti: LtiActions, with_group: Seeded) -> None:
    home = lti.launch(TEACHER)
    response = home.client.get(
        url(home.response, _report_path(with_group, "user-s01", "/report.pdf"))
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert b"%%EOF" in response.content[-64:]
    text = pdf_text(response.content)
    assert "Explain photosynthesis to my family" in text
    assert "Proficient" in text
    assert with_group.c1_code in text
    for secret in SECRETS:
        assert secret not in text


def test_spanish_report_page_and_pdf(lti: LtiActions, seeded: Seeded) -> None:
    home = lti.launch(TEACHER)
    page = home.client.get(url(home.response, _report_path(seeded, "user-s01")) + "&lang=es")
    assert '<html lang="es">' in page.text
    assert "Informe de progreso" in page.text
    assert "Competente" in page.text
    assert "Metas" in page.text
    pdf = home.client.get(
        url(home.response, _report_path(seeded, "user-s01", "/report.pdf")) + "&lang=es"
    )
    text = pdf_text(pdf.content)
    assert "Informe de progreso" in text
    assert "Competente" in text
    # An unknown language falls back to English.
    assert (
        "Progress report"
        in home.client.get(url(home.response, _report_path(seeded, "user-s01")) + "&lang=xx").text
    )


def _area_row(page: str, code: str) -> str:
    """The text of the report's row for the competency with this code."""
    row = re.search(
        r'<tr>\s*<th scope="row"><bdi class="code" dir="[a-z]+">'
        + re.escape(code)
        + r"</bdi>.*?</tr>",
        page,
        re.S,
    )
    assert row is not None, code
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row[0])).split())


def test_report_never_calls_a_parent_mastered_while_one_of_its_parts_is_not(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """Proficient on part A and nothing yet on part B: the parent's rolled-up level is
    Proficient, but it is not mastered (every part must be), as the student's own page says."""
    parent_code = unique("PAR-")
    with unit_of_work(database_url) as s:
        ctx = fresh_course.context_id
        parent = create_competency(s, context_id=ctx, code=parent_code, title="Parent area")
        part_a = create_competency(
            s, context_id=ctx, code=unique("PA-"), title="Part A", parent_id=parent.id
        )
        create_competency(
            s, context_id=ctx, code=unique("PB-"), title="Part B", parent_id=parent.id
        )
        record_evidence(
            s,
            context_id=ctx,
            competency_id=part_a.id,
            student_ids=[fresh_course.student_id],
            points=Decimal(3),
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=fresh_course.teacher_id,
            observed_at=datetime.now(UTC) - timedelta(hours=1),
        )
    home = fresh_course.lti.launch(TEACHER)
    path = url(home.response, f"/reports/students/{fresh_course.student_id}")
    page = home.client.get(path).text
    row = _area_row(page, parent_code)
    assert "Proficient" in row
    assert "Mastered" not in row
    assert "Not mastered yet: has mastered some parts of this, not all of them yet." in row
    assert "1 of 3 areas mastered so far." in page
    assert f"Keep practising: {parent_code} Parent area" in html.unescape(page)
    spanish = _area_row(home.client.get(path + "&lang=es").text, parent_code)
    assert "Dominado" not in spanish
    assert "Todavía no dominado" in spanish


def test_n_times_report_tells_work_without_a_level_yet_from_no_work_assessed(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """ "n times" (n = 3) gives no level before three results at mastery: two Advanced results
    are work assessed (their comments are on the report), not "nothing assessed yet"."""
    twice, never = unique("NT-"), unique("NA-")
    with unit_of_work(database_url) as s:
        ctx = fresh_course.context_id
        update_scale(s, context_id=ctx, method=CalculationMethod.N_TIMES, n=3)
        competency = create_competency(s, context_id=ctx, code=twice, title="Twice advanced")
        create_competency(s, context_id=ctx, code=never, title="Not started")
        for days, note in ((3, "Excellent lab write-up"), (2, "Excellent field notes")):
            record_evidence(
                s,
                context_id=ctx,
                competency_id=competency.id,
                student_ids=[fresh_course.student_id],
                points=Decimal(4),
                source=EvidenceSource.TEACHER,
                note=note,
                recorded_by_id=fresh_course.teacher_id,
                observed_at=datetime.now(UTC) - timedelta(days=days),
            )
    home = fresh_course.lti.launch(TEACHER)
    path = url(home.response, f"/reports/students/{fresh_course.student_id}")
    page = home.client.get(path).text
    assert "Excellent lab write-up" in page
    row = _area_row(page, twice)
    assert "No level yet" in row
    assert "Not assessed yet" not in row
    assert "No work on this has been assessed yet." not in row
    assert "Work on this has been assessed, but not yet often enough at" in row
    untouched = _area_row(page, never)
    assert "Not assessed yet" in untouched
    assert "No work on this has been assessed yet." in untouched
    spanish = home.client.get(path + "&lang=es").text
    assert "Todavía sin nivel" in _area_row(spanish, twice)
    assert "Todavía sin evaluar" not in _area_row(spanish, twice)
    assert "Todavía sin evaluar" in _area_row(spanish, never)


def test_student_reads_only_their_own_report(lti: LtiActions, seeded: Seeded) -> None:
    me = lti.launch("user-s01")
    own = me.client.get(url(me.response, _report_path(seeded, "user-s01")))
    assert own.status_code == 200
    assert "Explain photosynthesis" in own.text
    assert "SECRET" not in own.text
    for path in (
        _report_path(seeded, "user-s02"),
        _report_path(seeded, "user-s02", "/report.pdf"),
        "/reports/class.zip",
    ):
        assert me.client.get(url(me.response, path)).status_code == 403, path


def test_another_course_teacher_gets_nothing(lti: LtiActions, seeded: Seeded) -> None:
    other = lti.launch(OTHER_TEACHER, context_id="course-chem-club")
    s03 = _report_path(seeded, "user-s03")
    assert other.client.get(url(other.response, s03)).status_code == 404
    assert other.client.get(url(other.response, s03 + "/report.pdf")).status_code == 404
    # s01 is in the club too: the club's report holds none of Biology's data.
    shared = other.client.get(url(other.response, _report_path(seeded, "user-s01")))
    assert seeded.c1_code not in shared.text
    assert "photosynthesis" not in shared.text


def test_reflection_is_written_by_the_student_and_quoted(lti: LtiActions, seeded: Seeded) -> None:
    me = lti.launch("user-s02")
    page = me.client.get(url(me.response, "/reports/reflection"))
    assert page.status_code == 200
    saved = post(
        me.client, form(page, "/reports/reflection"), {"reflection": "I liked <the> microscope"}
    )
    assert "Your reflection is saved" in saved.text
    report = me.client.get(url(me.response, _report_path(seeded, "user-s02")))
    assert "I liked &lt;the&gt; microscope" in report.text
    teacher = lti.launch(TEACHER)
    assert teacher.client.get(url(teacher.response, "/reports/reflection")).status_code == 403


def test_class_zip_holds_one_pdf_per_student(lti: LtiActions, seeded: Seeded) -> None:
    # The small club keeps this quick; bench/dashboard.py times a class of 30.
    home = lti.launch(OTHER_TEACHER, context_id="course-chem-club")
    # The teacher's launch syncs the club's roster (two students) in the background: the class
    # set is taken once they are in.
    for _ in range(200):
        index = home.client.get(url(home.response, "/reports/"))
        assert index.status_code == 200
        if index.text.count("Open report<") == 2:
            break
        time.sleep(0.05)
    response = home.client.get(url(home.response, "/reports/class.zip") + "&lang=es")
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    assert len(names) == 2
    assert all(n.endswith("-es.pdf") for n in names)
    own = next(n for n in names if f"-{seeded.students['user-s01']}-es.pdf" in n)
    assert pdf_text(archive.read(own)).count("Informe de progreso") >= 1


@pytest.fixture
def latin_fonts_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server whose fonts cover Latin letters (Basic Latin to Latin Extended-B) and
    punctuation only."""
    monkeypatch.setattr(fonts, "_covered", lambda: ((0x20, 0xA0, 0x2000), (0x7E, 0x24F, 0x206F)))


def _warning(page: str) -> str:
    found = re.search(r'<p class="flash flash-warning" role="status">(.*?)</p>', page, re.S)
    return found.group(1) if found else ""


def test_teacher_is_told_which_letters_the_pdf_would_print_as_boxes(
    lti: LtiActions, seeded: Seeded, latin_fonts_only: None
) -> None:
    home = lti.launch(TEACHER)
    chinese = home.client.get(url(home.response, _report_path(seeded, "user-s03")))
    # (Other tests may have given the course titles in more scripts: the name is what counts.)
    assert "no font for some letters in this report (李小龍" in _warning(chinese.text)
    latin = home.client.get(url(home.response, _report_path(seeded, "user-s01")))
    assert latin.status_code == 200
    assert "李" not in _warning(latin.text)  # each report names its own letters
    index = home.client.get(url(home.response, "/reports/"))
    assert "李" in _warning(index.text)
    assert "fonts-noto-cjk" in _warning(index.text)
    # The student too, about to download their own PDF (an emoji in a goal, a name).
    student = lti.launch("user-s03")
    own = student.client.get(url(student.response, _report_path(seeded, "user-s03")))
    assert own.status_code == 200
    assert "no font for some letters in this report (李小龍" in _warning(own.text)


@pytest.mark.parametrize(
    "covered", [None, ((0x0,), (0x10FFFF,))], ids=["fonts-unknown", "every-letter-covered"]
)
def test_no_warning_when_every_letter_prints_or_the_fonts_cannot_be_listed(
    lti: LtiActions,
    seeded: Seeded,
    monkeypatch: pytest.MonkeyPatch,
    covered: tuple[tuple[int, ...], tuple[int, ...]] | None,
) -> None:
    monkeypatch.setattr(fonts, "_covered", lambda: covered)
    home = lti.launch(TEACHER)
    page = home.client.get(url(home.response, _report_path(seeded, "user-s03")))
    assert page.status_code == 200
    assert _warning(page.text) == ""


def test_fontconfig_ranges_are_read_and_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = "20-7e a0-17f\n400-45f 20-30\n\n5d0-5ea\n"

    def fc_list(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 0, stdout=listing, stderr="")

    monkeypatch.setattr(fonts.subprocess, "run", fc_list)
    covered = fonts._covered.__wrapped__()
    assert covered == ((0x20, 0xA0, 0x400, 0x5D0), (0x7E, 0x17F, 0x45F, 0x5EA))
    monkeypatch.setattr(fonts, "_covered", lambda: covered)
    # Each letter once, in order: the م of محمد is named once.
    assert fonts.unprintable("José Ольга שלום 李小龍 李 محمد") == "李小龍محد"
