"""Renaming a level is a change of wording: the percentage the course set for it in its own
conversion table (keyed by level name) goes with it, so the LMS keeps the same score."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sqlalchemy.orm import Session

from lti_app.db import Database
from lti_app.grades.columns import display_preview, set_display
from lti_app.grades.models import GradeDisplay
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.scales import DEFAULT_LEVELS, update_scale
from tests.domain_fixtures import make_course as make_domain_course
from tests.grades.conftest import GradeCourse

TABLE = {"Emerging": "55", "Developing": "70", "Proficient": "85", "Advanced": "100"}


def _levels(names: list[str]) -> list[tuple[str, Decimal, str, bool]]:
    return [
        (name, Decimal(points), "#067647", name in {"Proficient", "Meeting"})
        for points, name in enumerate(names, start=1)
    ]


def _lms_scores(course: GradeCourse) -> set[float]:
    (item_id,) = course.lms_item_ids().values()
    results = course.lms.platform.state.results(item_id).values()
    return {r.body.get("scoreGiven") for r in results}


def test_renaming_a_level_keeps_the_percentage_the_lms_shows(
    make_course: Callable[..., GradeCourse], db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    with db.begin() as s:
        set_display(s, context_id=course.context_id, display=GradeDisplay.PERCENT, conversion=TABLE)
    course.record(3)  # Proficient
    worker = course.worker()
    course.drain_until_settled(worker)
    assert _lms_scores(course) == {85.0}

    levels = [
        ("Meeting" if spec.name == "Proficient" else spec.name, *spec[1:])
        for spec in DEFAULT_LEVELS
    ]
    with db.begin() as s:  # the scale edit re-scores the course at commit
        update_scale(
            s,
            context_id=course.context_id,
            method=CalculationMethod.DECAYING_AVERAGE,
            levels=levels,
        )
    course.drain_until_settled(worker)
    assert _lms_scores(course) == {85.0}


def test_an_inserted_level_leaves_the_other_levels_percentages_by_name(
    session: Session,
) -> None:
    course = make_domain_course(session)
    set_display(
        session, context_id=course.context_id, display=GradeDisplay.PERCENT, conversion=TABLE
    )
    # Rows are kept by position, so inserting "Approaching" renames the rows after it; the
    # names that stay on the scale keep their percentages and the new one gets the default.
    names = ["Emerging", "Developing", "Approaching", "Proficient", "Advanced"]
    update_scale(
        session,
        context_id=course.context_id,
        method=CalculationMethod.DECAYING_AVERAGE,
        levels=_levels(names),
    )
    shown = {
        row.name: row.percent for row in display_preview(session, context_id=course.context_id)
    }
    assert shown == {
        "Emerging": Decimal(55),
        "Developing": Decimal(70),
        "Approaching": Decimal(60),
        "Proficient": Decimal(85),
        "Advanced": Decimal(100),
    }


def test_removing_the_lowest_level_leaves_the_others_percentages(session: Session) -> None:
    """Levels are kept by position: dropping Emerging moves the rows up a place, which is not
    Emerging renamed to Developing (Developing took Emerging's 55%)."""
    course = make_domain_course(session)
    set_display(
        session, context_id=course.context_id, display=GradeDisplay.PERCENT, conversion=TABLE
    )
    update_scale(
        session,
        context_id=course.context_id,
        method=CalculationMethod.DECAYING_AVERAGE,
        levels=_levels(["Developing", "Proficient", "Advanced"]),
    )
    shown = {r.name: r.percent for r in display_preview(session, context_id=course.context_id)}
    assert shown == {n: Decimal(TABLE[n]) for n in ("Developing", "Proficient", "Advanced")}
