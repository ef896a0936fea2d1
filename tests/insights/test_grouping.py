"""Grouping, grid and export rules as pure functions: no database, no app."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from lti_app.csvsafe import safe_cell, unsafe_cell
from lti_app.insights.charts import Point, Series, level_chart_svg
from lti_app.insights.grid import (
    NOT_ASSESSED,
    Cell,
    GridFilter,
    GridRow,
    apply_filter,
    level_counts,
)
from lti_app.insights.grouping import (
    ScaleLevel,
    StepProgress,
    StudentAtLevel,
    StudentAtStep,
    level_band,
    propose_by_competency,
    propose_by_step,
    short_names,
    standing_band,
    step_progress,
)

LEVELS = (
    ScaleLevel("Emerging", Decimal(1), "#B42318", 0, False),
    ScaleLevel("Developing", Decimal(2), "#93370D", 1, False),
    ScaleLevel("Proficient", Decimal(3), "#067647", 2, True),
    ScaleLevel("Advanced", Decimal(4), "#175CD3", 3, False),
)
NOW = datetime(2025, 5, 1, tzinfo=UTC)


def test_levels_fall_into_bands_around_mastery() -> None:
    assert [level_band(Decimal(p), LEVELS) for p in (1, 2, 3, 4)] == [
        "reteach",
        "practice",
        "ready",
        "extend",
    ]
    assert level_band(None, LEVELS) == "none"


def test_standing_band_tells_no_level_yet_and_unmastered_parts_apart() -> None:
    def band(points: int | None, *, mastered: bool, evidence: bool = True) -> str:
        value = None if points is None else Decimal(points)
        return standing_band(value, LEVELS, is_mastered=mastered, has_evidence=evidence)

    assert band(None, mastered=False, evidence=False) == "none"
    # "n times" before n results at mastery: assessed, no level yet.
    assert band(None, mastered=False) == "unscored"
    # A parent at Proficient or Advanced with a part not mastered is not mastered.
    assert band(3, mastered=False) == band(4, mastered=False) == "partial"
    assert [band(p, mastered=p >= 3) for p in (1, 2, 3, 4)] == [
        "reteach",
        "practice",
        "ready",
        "extend",
    ]


def test_competency_proposal_orders_groups_by_need_and_names_them() -> None:
    students = [
        StudentAtLevel(1, "Zoe", Decimal(1)),
        StudentAtLevel(2, "Adam", Decimal(3)),
        StudentAtLevel(3, "Bea", Decimal(4)),
        StudentAtLevel(4, "Cy", None),
        StudentAtLevel(5, "Al", Decimal(1)),
    ]
    groups = propose_by_competency(students, levels=LEVELS, code="C2", next_step_title="step 4")
    assert [(g.name, g.person_ids) for g in groups] == [
        ("Needs re-teaching on C2", (5, 1)),
        ("Ready for “step 4”", (2,)),
        ("Ready to extend on C2", (3,)),
        ("Not assessed yet on C2", (4,)),
    ]
    assert propose_by_competency([], levels=LEVELS, code="C2") == []


def test_step_proposal_groups_locked_students_by_what_they_miss() -> None:
    students = [
        StudentAtStep(1, "A", StepProgress.OPEN),
        StudentAtStep(2, "B", StepProgress.LOCKED, ("C2",)),
        StudentAtStep(3, "C", StepProgress.LOCKED, ("C1", "C2")),
        StudentAtStep(4, "D", StepProgress.LOCKED, ("C2",)),
        StudentAtStep(5, "E", StepProgress.WORKING),
        StudentAtStep(6, "F", StepProgress.DONE),
    ]
    names = {
        g.name: g.person_ids for g in propose_by_step(students, step_title="Lab", step_number=4)
    }
    assert names == {
        "Needs re-teaching on C1, C2": (3,),
        "Needs re-teaching on C2": (2, 4),
        "Ready for step 4 “Lab”": (1,),
        "Working on step 4 “Lab”": (5,),
        "Finished step 4 “Lab”: ready to extend": (6,),
    }


def test_step_progress_rules() -> None:
    assert step_progress(choice_status="done", is_unlocked=False) is StepProgress.DONE
    assert step_progress(choice_status="submitted", is_unlocked=True) is StepProgress.WORKING
    assert step_progress(choice_status="rejected", is_unlocked=True) is StepProgress.OPEN
    assert step_progress(choice_status=None, is_unlocked=True) is StepProgress.OPEN
    assert step_progress(choice_status=None, is_unlocked=False) is StepProgress.LOCKED
    # Work to start or hand in on a step locked again is blocked; handed-in work is not.
    assert (
        step_progress(choice_status="in_progress", is_unlocked=False) is StepProgress.WORKING_LOCKED
    )
    assert step_progress(choice_status="in_progress", is_unlocked=True) is StepProgress.WORKING
    assert step_progress(choice_status="submitted", is_unlocked=False) is StepProgress.WORKING


def test_short_names_are_unique_prefixes() -> None:
    assert short_names(LEVELS) == {
        "Emerging": "E",
        "Developing": "D",
        "Proficient": "P",
        "Advanced": "A",
    }
    similar = (
        ScaleLevel("Pro", Decimal(1), "#000000", 0, False),
        ScaleLevel("Proficient", Decimal(2), "#000000", 1, True),
    )
    assert short_names(similar) == {"Pro": "1", "Proficient": "Prof"}


def _row(
    pid: int, name: str, points: int | None, *, days_ago: int = 1, status: str = "active"
) -> GridRow:
    cells = {}
    last = None
    if points is not None:
        level = next(lv for lv in LEVELS if lv.points == points)
        last = NOW - timedelta(days=days_ago)
        cells[7] = Cell(level.name, level.points, last, level.is_mastery, 1)
    return GridRow(pid, name, name.lower(), status, None, last, cells, frozenset({pid * 10}))


def test_grid_filters_and_sorts() -> None:
    rows = [
        _row(1, "Bo", 3),
        _row(2, "Al", 1, days_ago=30),
        _row(3, "Cy", None),
        _row(4, "Di", 4, status="inactive"),
    ]

    def names(flt: GridFilter) -> list[str]:
        return [r.name for r in apply_filter(rows, flt, now=NOW)]

    assert names(GridFilter()) == ["Al", "Bo", "Cy"]
    assert names(GridFilter(status="all", sort="name_desc")) == ["Di", "Cy", "Bo", "Al"]
    assert names(GridFilter(competency_id=7, level="Emerging")) == ["Al"]
    assert names(GridFilter(competency_id=7, level=NOT_ASSESSED)) == ["Cy"]
    assert names(GridFilter(competency_id=7, sort="level_desc")) == ["Bo", "Al", "Cy"]
    assert names(GridFilter(idle_days=14)) == ["Al", "Cy"]
    assert names(GridFilter(step_id=20)) == ["Al"]
    assert names(GridFilter(sort="idle")) == ["Cy", "Al", "Bo"]
    counts = level_counts(rows, [7], [lv.name for lv in LEVELS])
    assert counts[7] == {
        "Emerging": 1,
        "Developing": 0,
        "Proficient": 1,
        "Advanced": 1,
        NOT_ASSESSED: 1,
    }


def test_csv_cells_never_start_a_formula() -> None:
    assert safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert safe_cell("@sum") == "'@sum"
    assert safe_cell(Decimal("3.00")) == "3"
    assert safe_cell(None) == ""


@pytest.mark.parametrize(
    "typed",
    [
        "Proud of this one\n=cmd|' /C calc'!A0;thanks",
        "first line\r\n+1",
        "a;\r=b",
        "list:\n- one\n- two",
        "note\n'=already quoted",
    ],
)
def test_text_after_a_line_break_is_guarded_and_comes_back_as_typed(typed: str) -> None:
    """Excel in a ";" locale reads a comma file line by line, so a line break in a quoted cell
    (a note typed in a text box) starts a new first cell, as ";" does."""
    cell = safe_cell(typed)
    pieces = [piece for line in re.split(r"\r\n|\n|\r", cell) for piece in line.split(";")]
    assert not [p for p in pieces if p.startswith(("=", "+", "-", "@", "\t", "\r"))], cell
    assert unsafe_cell(cell) == typed


def test_chart_reads_without_colour() -> None:
    series = [
        Series(
            1, "C1 <Cells>", (Point(NOW - timedelta(days=9), Decimal(1)), Point(NOW, Decimal(3)))
        )
    ]
    svg = str(level_chart_svg(series, levels=LEVELS, title="Ana <on> C1", chart_id="x"))
    assert 'role="img"' in svg
    assert '<title id="x-t">Ana &lt;on&gt; C1</title>' in svg
    for level in LEVELS:
        assert f">{level.name}</text>" in svg  # the axis names every level
    assert "<circle" in svg  # markers, not only a coloured line
    assert str(level_chart_svg([], levels=LEVELS, title="t", chart_id="y")) == ""
