"""The family report keeps the lines people wrote, says which goals are overdue, prints on the
reader's paper, and warns a student whose report has letters no font prints."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lti_app.demo.launches import LaunchTweaks
from lti_app.learners.goals_and_check_ins import add_check_in, add_goal
from lti_app.learners.models import GoalStatus
from lti_app.mastery.models import EvidenceSource
from lti_app.reports import views
from lti_app.reports.pdf import A4, LETTER, paper_for
from tests.insights.conftest import FreshCourse
from tests.progress.pages import unit_of_work, url
from tests.reports.pdftext import page_sizes, pdf_text

TEACHER = "user-t01"
REPORT_CSS = Path(__file__).resolve().parents[2] / "lti_app" / "static" / "css" / "report.css"
A4_POINTS, LETTER_POINTS = (595.3, 841.9), (612.0, 792.0)
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


def _seed_lists(fc: FreshCourse, database_url: str) -> None:
    from decimal import Decimal

    from lti_app.competencies.services import create_competency
    from lti_app.mastery.services import record_evidence

    with unit_of_work(database_url) as s:
        add_goal(
            s,
            context_id=fc.context_id,
            person_id=fc.student_id,
            text="This term:\n- read 3 books\n- finish the lab",
            created_by_id=fc.student_id,
            editor_is_teacher=False,
        )
        add_check_in(
            s,
            context_id=fc.context_id,
            person_id=fc.student_id,
            author_id=fc.teacher_id,
            held_on=datetime.now(UTC).date(),
            note="We agreed:\n1. Reading log\n2. Lab write-up",
            next_steps="- finish lab\n- read ch. 4",
        )
        competency = create_competency(s, context_id=fc.context_id, code="C1", title="Cells")
        record_evidence(
            s,
            context_id=fc.context_id,
            competency_id=competency.id,
            student_ids=[fc.student_id],
            points=Decimal(3),
            source=EvidenceSource.TEACHER,
            note="Strong points:\n- labelled diagram\n- clear method",
            recorded_by_id=fc.teacher_id,
            observed_at=datetime.now(UTC) - timedelta(days=1),
        )


WRITTEN_AS_LISTS = (
    ("read 3 books", "finish the lab"),
    ("Reading log", "Lab write-up"),
    ("finish lab", "read ch. 4"),
    ("labelled diagram", "clear method"),
)


def test_the_pdf_keeps_the_lines_of_goals_check_ins_next_steps_and_comments(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    _seed_lists(fc, database_url)
    home = fc.lti.launch(TEACHER)
    pdf = home.client.get(url(home.response, f"/reports/students/{fc.student_id}/report.pdf"))
    lines = pdf_text(pdf.content).splitlines()
    for first, second in WRITTEN_AS_LISTS:
        assert any(first in line for line in lines), first
        assert not [line for line in lines if first in line and second in line], first


def test_the_page_keeps_the_same_lines(fresh_course: FreshCourse, database_url: str) -> None:
    fc = fresh_course
    _seed_lists(fc, database_url)
    home = fc.lti.launch(TEACHER)
    page = home.client.get(url(home.response, f"/reports/students/{fc.student_id}")).text
    for first, second in WRITTEN_AS_LISTS:
        element = re.search(
            r'<(div|bdi) class="pre-line"[^>]*>[^<]*?(?:<strong>)?[^<]*'
            + re.escape(first)
            + r"\n[^<]*"
            + re.escape(second),
            page,
        )
        assert element, first
    assert re.search(r"\.pre-line\s*\{[^}]*white-space:\s*pre-line", REPORT_CSS.read_text())


def test_an_overdue_goal_says_so_in_the_report(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    past = datetime.now(UTC).date() - timedelta(days=4)
    with unit_of_work(database_url) as s:
        for text, status in (("Late goal", GoalStatus.IN_PROGRESS), ("Met goal", GoalStatus.MET)):
            goal = add_goal(
                s,
                context_id=fc.context_id,
                person_id=fc.student_id,
                text=text,
                target_date=past,
                created_by_id=fc.student_id,
                editor_is_teacher=False,
            )
            goal.status = status
    home = fc.lti.launch(TEACHER)
    page = home.client.get(url(home.response, f"/reports/students/{fc.student_id}")).text
    items = re.findall(r"<li><div class=\"pre-line\".*?</li>", page, re.S)
    assert ["Overdue" in i for i in items if "Late goal" in i] == [True]
    assert ["Overdue" in i for i in items if "Met goal" in i] == [False]
    spanish = home.client.get(
        url(home.response, f"/reports/students/{fc.student_id}") + "&lang=es"
    ).text
    assert "Fuera de plazo" in spanish
    pdf = home.client.get(url(home.response, f"/reports/students/{fc.student_id}/report.pdf"))
    assert "Overdue" in pdf_text(pdf.content)


# --- paper ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "paper"),
    [
        (["en-US", "en"], LETTER),
        (["fr-CA"], LETTER),
        (["es-MX", "es"], LETTER),
        (["en-PH"], LETTER),
        (["zh-Hant-TW"], A4),
        (["en-GB", "en"], A4),
        (["es-419"], A4),
        (["de"], A4),
        (["en", "en-US"], LETTER),  # the first tag naming a country
        ([], A4),
    ],
)
def test_the_paper_is_letter_in_the_letter_countries(accept: list[str], paper: str) -> None:
    assert paper_for(accept) == paper


@pytest.mark.parametrize(
    ("accept", "size"),
    [("en-US,en;q=0.9", LETTER_POINTS), ("fr-CA", LETTER_POINTS), ("de-DE,de;q=0.9", A4_POINTS)],
)
def test_the_pdf_is_on_the_viewers_paper(
    fresh_course: FreshCourse, accept: str, size: tuple[float, float]
) -> None:
    home = fresh_course.lti.launch(TEACHER)
    pdf = home.client.get(
        url(home.response, f"/reports/students/{fresh_course.student_id}/report.pdf"),
        headers={"Accept-Language": accept},
    )
    assert pdf.status_code == 200
    sizes = page_sizes(pdf.content)
    assert sizes
    assert set(sizes) == {size}


@pytest.mark.parametrize(
    ("locale", "accept", "size"),
    [("en-US", "en", LETTER_POINTS), ("es_MX", "es", LETTER_POINTS), ("en-GB", "en-US", A4_POINTS)],
)
def test_the_pdf_follows_the_locale_the_lms_gave_before_the_browser(
    fresh_course: FreshCourse, locale: str, accept: str, size: tuple[float, float]
) -> None:
    # The LMS knows the person's country (a Canvas user's locale); a browser often says
    # only "en" (no country), or the country of whoever set the school's computers up.
    presentation = {"locale": locale, "document_target": "iframe"}
    home = fresh_course.lti.launch(
        TEACHER, tweaks=LaunchTweaks(claims={CLAIM + "launch_presentation": presentation})
    )
    pdf = home.client.get(
        url(home.response, f"/reports/students/{fresh_course.student_id}/report.pdf"),
        headers={"Accept-Language": accept},
    )
    assert pdf.status_code == 200
    assert set(page_sizes(pdf.content)) == {size}


def test_printing_from_the_browser_uses_the_paper_chosen_there() -> None:
    css = REPORT_CSS.read_text()
    pages = re.findall(r"@page\s*\{[^}]*", css)
    assert pages
    assert not [rule for rule in pages if re.search(r"(?<![-\w])size\s*:", rule)]


# --- fonts ------------------------------------------------------------------------------------


def test_a_student_opening_their_report_is_warned_of_letters_no_font_prints(
    fresh_course: FreshCourse, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fc = fresh_course
    with unit_of_work(database_url) as s:
        add_goal(
            s,
            context_id=fc.context_id,
            person_id=fc.student_id,
            text="Run 5 km \N{RUNNER}",
            created_by_id=fc.student_id,
            editor_is_teacher=False,
        )
    # As on a server without an emoji font, whatever this one has installed.
    monkeypatch.setattr(
        views, "unprintable", lambda text: "\N{RUNNER}" if "\N{RUNNER}" in text else ""
    )
    st = fc.lti.launch("user-s01")
    page = st.client.get(url(st.response, f"/reports/students/{fc.student_id}"))
    assert page.status_code == 200
    warning = re.search(r'<p class="flash flash-warning"[^>]*>(.*?)</p>', page.text, re.S)
    assert warning
    assert "empty boxes" in warning.group(1)
    assert "\N{RUNNER}" in warning.group(1)


def test_the_readme_names_emoji_fonts() -> None:
    readme = (REPORT_CSS.parents[3] / "README.md").read_text()
    fonts = readme.split("Family reports are made into PDFs", 1)[1].split("\n\n", 1)[0]
    assert "emoji" in fonts
    assert "fonts-noto-color-emoji" in fonts
