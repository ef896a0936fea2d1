"""Submission review as the real Moodle sends and keeps it, beyond the spec's happy path.

Sources:
- moodle/moodle grade/lib.php `get_activity_link`: a grade item's own name (the grader report's
  column heading) links to mod/lti/grade.php with no userid; a student's grade links with theirs.
- moodle/moodle mod/lti/grade.php (4.1+): redirects to the activity's `gradeReport` action with
  `user` = that userid (0 when none); mod/lti/launch.php sends an LtiSubmissionReviewRequest for
  it; mod/lti/locallib.php `lti_build_request` adds `for_user_id` (the for_user claim) only
  when the user is not 0. So clicking a column's name sends a review launch naming no student.
- moodle/moodle mod/lti/service/gradebookservices/classes/local/service/gradebookservices.php
  `get_launch_parameters`: the AGS claim's `lineitem` only when the activity has exactly one
  column, and no AGS claim at all when the service is off for the tool; a review launch then
  names no column.
- moodle/moodle mod/lti/service/gradebookservices/classes/local/resources/lineitem.php
  `process_put_request`: a PUT without `submissionReview` sets the column's subreviewurl and
  subreviewparams to null, withdrawing the review the deep-linking lineItem asked for.
- pylti1p3 lineitem.py `TSubmissionReview` and andyfmiller/LtiAdvantage SubmissionReview:
  `reviewableStatus` (the activityProgress values for which the review link shows) is required.
"""

from __future__ import annotations

from collections.abc import Callable

from lti_app.db import Database
from lti_app.demo.launches import DELETE, FOR_USER, LaunchTweaks
from lti_app.demo.seed import TEACHER
from lti_app.grades.columns import set_display
from lti_app.grades.models import GradeDisplay, LineItemState
from tests.conftest import LtiActions
from tests.grades.conftest import GradeCourse, make_course
from tests.grades.test_moodle_source_review_crafted import (
    MoodleGradebook,
    make_lms,
    make_moodle_course,
)
from tests.tool.test_deep_link_columns import _without_columns
from tests.tool.test_submission_review import _heading, _placed_column, _review

__all__ = ["make_course", "make_lms", "make_moodle_course"]  # fixtures, used here by name

CourseMaker = Callable[..., GradeCourse]
REVIEW = {"reviewableStatus": ["Completed"], "label": "Open in Pathways"}


def test_a_click_on_a_columns_name_in_moodle_opens_pathways_as_the_activity_does(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    """Moodle's review launch from the column heading names no student: the teacher lands where
    the activity's own link takes them, not on an error page telling them to call an admin."""
    course = make_course(students=1, competencies=1)
    _without_columns(course)
    link, _column = _placed_column(lti, course, course.competency_ids[0])
    student = next(iter(course.students))
    no_student = LaunchTweaks(claims={FOR_USER: DELETE})

    teacher = _review(lti, course, TEACHER.user_id, student, link, tweaks=no_student)
    learner = _review(lti, course, student, student, link, tweaks=no_student)

    for who, review in ((TEACHER.user_id, teacher), (student, learner)):
        assert review.response.status_code == 200, review.text[:2000]
        home = lti.launch(who, context_id=course.lms_context_id, resource_link_id=link.id)
        assert _heading(review.text) == _heading(home.text)


def test_a_review_launch_naming_no_column_opens_the_students_page_on_the_links_competency(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    """Moodle names no column when the activity has two, or its gradebook service is off."""
    course = make_course(students=1, competencies=2)
    _without_columns(course)
    competency = course.competency_ids[1]
    link, _column = _placed_column(lti, course, competency)
    student = next(iter(course.students))

    review = _review(lti, course, TEACHER.user_id, student, link, include_ags=False)

    assert review.response.status_code == 200, review.text[:2000]
    assert "Opened from the LMS gradebook, the mastery column of" in review.text
    assert "C2 · Competency 2: no evidence on it yet." in review.text


def test_a_column_pathways_makes_asks_for_the_review_too(make_course: CourseMaker) -> None:
    """A column made over AGS (the Gradebook page) takes review links like a deep-linked one,
    on an LMS that offers them for a tool's own columns."""
    course = make_course(students=1, competencies=1)
    course.record(3)
    course.drain_until_settled(course.worker())

    (column,) = course.lms.platform.state.line_items_in(course.lms_context_id)
    assert column.extra["submissionReview"] == REVIEW


def test_a_change_of_points_keeps_the_column_asking_moodle_for_the_review(
    make_moodle_course: Callable[..., tuple[GradeCourse, MoodleGradebook]], db: Database
) -> None:
    """A change of display updates every column (a PUT); Moodle takes a PUT without
    submissionReview as withdrawing it. The update repeats the request, and only once."""
    course, moodle = make_moodle_course(placement="5", activities={"5"})
    course.record(3)
    worker = course.worker()
    course.drain_until_settled(worker)
    (n,) = moodle.items
    moodle.items[n].subreview_url = "DEFAULT"  # as placed by deep linking with submissionReview

    with db.begin() as session:
        set_display(session, context_id=course.context_id, display=GradeDisplay.PERCENT)
    course.drain_until_settled(worker)
    course.drain_until_settled(worker)

    (item,) = course.line_items().values()
    assert (item.state, item.needs_update) == (LineItemState.READY, False), item.last_error
    assert moodle.items[n].score_maximum == 100.0
    assert moodle.items[n].subreview_url == "DEFAULT"
    puts = [s for s in moodle.lms.seen if s.method == "PUT"]
    assert len(puts) == 1
