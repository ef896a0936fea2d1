"""The family report's language: the user's own, as the LMS names it at launch, unless they
pick another; the English menus around a Spanish report are marked English; counts agree."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from lti_app.competencies.services import create_competency
from lti_app.demo.launches import LaunchTweaks
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.reports.i18n import language_of_locale
from tests.insights.conftest import OTHER_TEACHER, FreshCourse
from tests.progress.pages import unit_of_work, url

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MENTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"
SPANISH_HEADING = "Cómo leer este informe"
ENGLISH_HEADING = "How to read this report"


def _presentation(locale: str) -> dict[str, object]:
    return {CLAIM + "launch_presentation": {"locale": locale, "document_target": "iframe"}}


def _parent_lands_on(fc: FreshCourse, locale: str) -> str:
    """The page a parent of the course's student lands on, their LMS set to `locale`."""
    claims = {CLAIM + "role_scope_mentor": ["user-s01"], **_presentation(locale)}
    home = fc.lti.launch(OTHER_TEACHER, roles=[MENTOR], tweaks=LaunchTweaks(claims=claims))
    assert home.response.status_code == 200
    return home.text


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("es", "es"),
        ("es-MX", "es"),
        ("es_ES", "es"),  # Moodle's spelling
        ("ES-419", "es"),
        ("en_US", "en"),
        ("en", "en"),
        ("zh-Hans-CN", None),
        ("x-klingon", None),
        ("ar", None),
        ("", None),
        (None, None),
    ],
)
def test_the_language_an_lms_locale_names(locale: str | None, language: str | None) -> None:
    assert language_of_locale(locale) == language


def test_a_spanish_speaking_parent_lands_on_the_report_in_spanish(
    fresh_course: FreshCourse,
) -> None:
    for locale in ("es", "es-MX", "es_ES"):
        page = _parent_lands_on(fresh_course, locale)
        assert SPANISH_HEADING in page, f"report in English for locale {locale!r}"
        assert '<html lang="es">' in page


def test_a_parent_in_a_language_pathways_lacks_gets_the_report_in_english(
    fresh_course: FreshCourse,
) -> None:
    for locale in ("en_US", "zh-Hans-CN", "x-klingon", "", "ar"):
        page = _parent_lands_on(fresh_course, locale)
        assert ENGLISH_HEADING in page, f"locale {locale!r}"
        assert '<html lang="en">' in page


def test_a_spanish_speaking_student_reads_their_report_in_spanish_until_they_pick_english(
    fresh_course: FreshCourse,
) -> None:
    fc = fresh_course
    home = fc.lti.launch("user-s01", tweaks=LaunchTweaks(claims=_presentation("es-MX")))
    mine = home.client.get(url(home.response, "/reports/"), follow_redirects=True)
    assert SPANISH_HEADING in mine.text
    english = home.client.get(url(home.response, f"/reports/students/{fc.student_id}") + "&lang=en")
    assert ENGLISH_HEADING in english.text


def test_english_menus_of_the_spanish_report_are_marked_english(
    fresh_course: FreshCourse,
) -> None:
    """A screen reader reads "Skip to content", "Signed in as" and the menu in English
    (WCAG 3.1.2), and the report itself in Spanish."""
    fc = fresh_course
    home = fc.lti.launch("user-s01")
    base = url(home.response, f"/reports/students/{fc.student_id}")
    page = home.client.get(base + "&lang=es").text
    assert '<html lang="es">' in page
    assert re.search(r'<a class="skip-link" href="#main" lang="en">Skip to content</a>', page)
    assert re.search(r'<header class="topbar" lang="en">', page)
    assert '<main id="main" tabindex="-1">' in page  # the report inherits the page's Spanish
    english = home.client.get(base + "&lang=en").text
    assert '<header class="topbar">' in english


def test_one_area_is_one_area_in_english_and_spanish(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    with unit_of_work(database_url) as s:
        c = create_competency(s, context_id=fc.context_id, code="C1", title="Cells")
        record_evidence(
            s,
            context_id=fc.context_id,
            competency_id=c.id,
            student_ids=[fc.student_id],
            points=Decimal(3),
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=fc.teacher_id,
            observed_at=datetime.now(UTC),
        )
    home = fc.lti.launch("user-s01")
    base = url(home.response, f"/reports/students/{fc.student_id}")
    assert "1 of 1 area mastered so far." in home.client.get(base + "&lang=en").text
    assert "1 de 1 área dominada hasta ahora." in home.client.get(base + "&lang=es").text
    with unit_of_work(database_url) as s:
        create_competency(s, context_id=fc.context_id, code="C2", title="Tissues")
    assert "1 of 2 areas mastered so far." in home.client.get(base + "&lang=en").text
    assert "1 de 2 áreas dominadas hasta ahora." in home.client.get(base + "&lang=es").text


def test_a_teachers_chosen_language_survives_going_back_to_all_reports(
    fresh_course: FreshCourse,
) -> None:
    """Español on one report, then "Todos los informes": the class list (and its ZIP of
    PDFs) is still in Spanish."""
    fc = fresh_course
    home = fc.lti.launch("user-t01")
    report = home.client.get(url(home.response, f"/reports/students/{fc.student_id}") + "&lang=es")
    back = re.search(r'href="([^"]*/reports/\?[^"]*)">Todos los informes', report.text)
    assert back, "no 'All reports' link"
    href = html.unescape(back.group(1))
    assert "lang=es" in href
    index = home.client.get(str(report.url.join(href)))
    assert index.status_code == 200
    assert 'value="es" lang="es" selected' in index.text
