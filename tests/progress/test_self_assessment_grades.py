"""A self-assessment the course counts towards mastery reaches the LMS gradebook like any
other change of level."""

from __future__ import annotations

from collections.abc import Callable

from lti_app.db import Database
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.scales import update_scale
from tests.conftest import LtiActions
from tests.grades.conftest import GradeCourse, make_course
from tests.progress.pages import form, post, url
from tests.progress.test_views import _level_id

__all__ = ["make_course"]  # the grades tests' fixture, used here by name


def test_counted_self_assessment_is_sent_to_the_lms(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    with db.begin() as s:
        update_scale(
            s,
            context_id=course.context_id,
            method=CalculationMethod.MOST_RECENT,
            counts_self_assessment=True,
        )
    course.record(2)  # Developing for everyone
    worker = course.worker()
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()

    sub = next(iter(course.students))
    home = lti.launch(sub, context_id=course.lms_context_id)
    page = home.client.get(url(home.response, "/progress/"))
    assert page.status_code == 200
    comp = course.competency_ids[0]
    saved = post(
        home.client,
        form(page, "/progress/self-assessment"),
        {
            "competency_id": str(comp),
            "level_id": _level_id(page.text, comp, "Advanced"),
            "note": "I get it",
        },
    )
    assert "your self-assessment is saved" in saved.text

    course.drain_until_settled(worker)
    assert sorted(course.expected().values()) == [2.0, 4.0]  # Pathways shows Advanced for them
    course.assert_lms_matches_mastery()
