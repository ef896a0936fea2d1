"""Where the family report PDF puts what people wrote: Hebrew and Arabic read right to left,
and a word longer than its line breaks instead of printing over its neighbours or off the page.

The reports are made up here (no course needed): the layout is the template's and the CSS's.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from lti_app.insights.grouping import ScaleLevel
from lti_app.learners.models import GoalStatus
from lti_app.reports import services, views
from lti_app.reports.i18n import text_dir
from tests.conftest import ToolServer
from tests.reports.pdftext import Run, pdf_runs

LEVELS = (
    ScaleLevel("Emerging", Decimal(1), "#B42318", 0, False),
    ScaleLevel("Developing", Decimal(2), "#93370D", 1, False),
    ScaleLevel("Proficient", Decimal(3), "#067647", 2, True),
    ScaleLevel("Advanced", Decimal(4), "#175CD3", 3, False),
)


def _report(**changes: Any) -> services.FamilyReport:
    now = datetime.now(UTC)
    report = services.FamilyReport(
        person_id=1,
        student_name="Ana Silva",
        course_title="Biology",
        levels=LEVELS,
        goals=(),
        competencies=(services.CompetencyLine("C1", "Cells", "Proficient", "ready", True, now),),
        recent_work=(),
        comments=(),
        check_ins=(),
        next_steps=(),
        reflection="",
    )
    return dataclasses.replace(report, **changes)


def _pdf_runs(tool_server: ToolServer, report: services.FamilyReport) -> list[Run]:
    with tool_server.app.test_request_context("/"):
        return pdf_runs(views.pdf_bytes(report, "en"))


def _shown_right_to_left(sentence: str) -> str:
    """A sentence of letters, spaces and a final full stop, as a right-to-left paragraph shows
    it from left to right: the full stop at the left end."""
    return "." + sentence.removesuffix(".")[::-1]


def test_the_direction_is_that_of_the_first_letter_with_one() -> None:
    assert text_dir("שרה כהן") == "rtl"
    assert text_dir("«محمد» Ali") == "rtl"  # Arabic letters are AL, not R
    assert text_dir("2024: Ana שרה") == "ltr"
    assert text_dir("2024 …") == "auto"


def test_hebrew_and_arabic_read_right_to_left_in_the_pdf(tool_server: ToolServer) -> None:
    """A family reading Hebrew sees the student's name, the goal, the teacher's comment, the
    conversation note and the reflection start at the right margin, the full stop at the left
    end; English text beside them stays at the left."""
    now = datetime.now(UTC)
    goal = "לקרוא כל יום."  # read every day
    comment = "עבודה טובה מאוד."  # very good work
    note = "דיברנו על הקריאה."  # we talked about reading
    reflection = "אני אוהבת ללמוד ביולוגיה."  # I love learning biology
    report = _report(
        student_name="שרה כהן",
        goals=(
            services.GoalLine(goal, None, GoalStatus.IN_PROGRESS),
            services.GoalLine("Finish the lab report.", None, GoalStatus.IN_PROGRESS),
        ),
        comments=(services.CommentLine(now, "C1 Cells", "Proficient", comment),),
        check_ins=(services.CheckInLine(now.date(), note, ""),),
        reflection=reflection,
    )
    runs = _pdf_runs(tool_server, report)
    middle = (min(run.x for run in runs) + max(run.x_end for run in runs)) / 2
    shown = {
        "name": "ןהכ הרש",
        "goal": _shown_right_to_left(goal),
        "comment": "”" + _shown_right_to_left(comment) + "“",
        "note": "”" + _shown_right_to_left(note) + "“",
        "reflection": _shown_right_to_left(reflection),
    }
    for what, text in shown.items():
        found = [run for run in runs if run.text.strip() == text]
        assert found, f"the {what} is not shown right to left: {[r.text for r in runs]}"
        assert found[0].x > middle, f"the {what} starts at x={found[0].x:.0f}, on the left"
    english = next(run for run in runs if run.text == "Finish the lab report.")
    assert english.x < middle


LONG_CODE = "K12CS.AlgorithmsAndProgramming.ControlStructures.NestedLoops"
"""A CASE-style humanCodingScheme; codes of up to 64 characters are allowed."""
E_MAIL = "maria.fernanda.gutierrez.hernandez@students.schooldistrict.k12.ca.us"
"""What an LMS that sends no name gives as one."""


@pytest.mark.parametrize(
    ("changes", "long_text"),
    [
        pytest.param(
            {
                "competencies": (
                    services.CompetencyLine(
                        LONG_CODE, "Nested loops", "Proficient", "ready", True, None
                    ),
                )
            },
            LONG_CODE,
            id="code-in-the-areas-table",
        ),
        pytest.param({"student_name": E_MAIL}, E_MAIL, id="e-mail-address-as-the-name"),
    ],
)
def test_a_word_longer_than_its_line_breaks_within_its_column_and_the_page(
    tool_server: ToolServer, changes: dict[str, Any], long_text: str
) -> None:
    """Printed whole, on several lines, none running into the Level column or off the page."""
    runs = _pdf_runs(tool_server, _report(**changes))
    pieces = [run for run in runs if run.text.strip() and run.text.strip() in long_text]
    assert "".join(piece.text.strip() for piece in pieces) == long_text
    assert len({piece.y for piece in pieces}) > 1
    page_end = next(run for run in runs if run.text == "1 / 1").x_end  # the right margin
    level_column = next(run for run in runs if run.text == "Level").x
    for piece in pieces:
        assert piece.x_end <= page_end, f"{piece.text!r} runs off the page"
        if "competencies" in changes:
            assert piece.x_end <= level_column, f"{piece.text!r} prints over the levels"


FSI, PDI = "\u2068", "\u2069"


def test_hebrew_competency_titles_keep_their_order_in_the_areas_table(
    tool_server: ToolServer,
) -> None:
    """A Hebrew title ending in Latin text or punctuation reads right to left as a whole, in
    the PDF and on the page: not with "Unit 2" or the question mark on the wrong side."""
    lines = (
        services.CompetencyLine(
            "C1", "מהו תא?", "Proficient", "ready", True, None
        ),  # what is a cell?
        services.CompetencyLine("C2", "תאים - Unit 2", "Proficient", "ready", True, None),
        # A code in Hebrew, a number after it: isolated, it stays before the title.
        services.CompetencyLine("תא 3", "Cell walls", "Proficient", "ready", True, None),
    )
    report = _report(competencies=lines, student_name="שרה כהן 2")
    shown = {run.text.strip() for run in _pdf_runs(tool_server, report)}
    assert "?את והמ" in shown, shown
    assert "Unit 2 - םיאת" in shown, shown
    with tool_server.app.test_request_context("/"):
        page = views._render("reports/family.html", report, "en")
        pdf_html = views._render("reports/family_pdf.html", report, "en")
    assert '<bdi dir="rtl">תאים - Unit 2</bdi>' in page
    # Codes are isolated as titles are: "3" would otherwise join the title's run.
    assert '<bdi class="code" dir="ltr">C2</bdi> <bdi dir="rtl">תאים - Unit 2</bdi>' in page
    assert '<bdi class="code" dir="rtl">תא 3</bdi> <bdi dir="ltr">Cell walls</bdi>' in page
    # In <title> no element can isolate the name: Unicode's isolate marks do.
    assert f"<title>Progress report: {FSI}שרה כהן 2{PDI} · Pathways</title>" in page
    assert f"<title>Progress report: {FSI}שרה כהן 2{PDI}</title>" in pdf_html
