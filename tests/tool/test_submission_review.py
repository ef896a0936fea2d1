"""A score's review link in the LMS gradebook opens that student's mastery in Pathways.

Sources:
- LTI Submission Review Service 1.0 (https://www.imsglobal.org/spec/lti-sr/v1p0): a line item's
  `submissionReview` asks the platform for a review link on each score; the link launches an
  `LtiSubmissionReviewRequest` naming the student (`for_user`) and the column (the AGS claim's
  `lineitem`); the person launching is a teacher, or the student on their own grade.
- moodle/moodle mod/lti/grade.php (the gradebook's hook, 4.1+), mod/lti/locallib.php
  `lti_tool_configuration_from_content_item` (a deep-linked lineItem's `submissionReview`
  becomes the activity's `lineitemsubreviewurl`, "DEFAULT" without a url).
- pylti1p3 message_validators/submission_review.py (both claims required).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

from markupsafe import escape

from lti_app.demo.launches import FOR_USER, LaunchTweaks, MessageType
from lti_app.demo.seed import PEOPLE, TEACHER
from lti_app.demo.state import LineItem as LmsLineItem
from lti_app.demo.state import ResourceLink as LmsResourceLink
from tests.conftest import Launched, LtiActions
from tests.grades.conftest import GradeCourse, make_course
from tests.tool.test_deep_link_columns import (
    ITEMS,
    _lms_columns,
    _pick,
    _picker,
    _return_to_lms,
    _without_columns,
)

__all__ = ["make_course"]  # the grades tests' fixture, used here by name

CourseMaker = Callable[..., GradeCourse]


def _placed_column(
    lti: LtiActions, course: GradeCourse, competency: int
) -> tuple[LmsResourceLink, LmsLineItem]:
    """The teacher places the competency's mastery column by deep linking; the LMS makes the
    link and its column (Moodle: an activity and its grade item)."""
    launched = _picker(lti, course)
    claims, back = _pick(launched, [f"competency-{competency}"])
    (item,) = claims[ITEMS]
    assert item["lineItem"]["submissionReview"] == {
        "reviewableStatus": ["Completed"],
        "label": "Open in Pathways",
    }
    _return_to_lms(launched, back)
    (column,) = _lms_columns(course, item["lineItem"]["resourceId"])
    state = course.lms.platform.state
    link = next(rl for rl in state.resource_links.values() if rl.line_item_id == column.id)
    return link, column


def _review(
    lti: LtiActions, course: GradeCourse, by: str, of: str, link: LmsResourceLink, **kwargs: Any
) -> Launched:
    return lti.launch(
        by,
        context_id=course.lms_context_id,
        message_type=MessageType.SUBMISSION_REVIEW,
        resource_link_id=link.id,
        for_user_id=of,
        **kwargs,
    )


def _heading(page: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert found is not None, page[:2000]
    return found.group(1).strip()


def _heading_after_back(launched: Launched) -> str:
    """The page the browser's Back button brings back: the launch's answer came to a POST,
    so the page gives its history entry a GET address (frame.js)."""
    found = re.search(r'<body data-history-url="([^"]+)"', launched.text)
    assert found is not None, launched.text[:500]
    again = launched.client.get(
        launched.response.url.join(str(unescape(found.group(1)))),
        headers={"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "iframe"},
    )
    assert again.status_code == 200
    return _heading(again.text)


def test_a_teacher_opens_the_students_mastery_from_a_score_in_the_deep_linked_column(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    course = make_course(students=2, competencies=2)
    _without_columns(course)
    competency = course.competency_ids[1]
    course.record(3, competency=1)
    link, column = _placed_column(lti, course, competency)
    course.drain_until_settled(course.worker())  # the column Pathways waited for is filled
    student = sorted(course.students)[0]
    assert course.lms.platform.state.results(column.id)[student].body["scoreGiven"] == 3

    review = _review(lti, course, TEACHER.user_id, student, link)

    assert review.response.status_code == 200, review.text[:2000]
    assert _heading(review.text) == str(escape(PEOPLE[student].name))
    assert (
        "Opened from the LMS gradebook, the mastery column of\n  "
        f'<a href="#comp-{competency}">C2 · Competency 2</a>.'
    ) in review.text
    assert f'id="comp-{competency}"' in review.text  # where the link goes
    # The review opened Pathways for the teacher: the rest of Pathways is a click away.
    assert "Overview</a>" in review.text
    assert _heading_after_back(review) == _heading(review.text)


def test_the_column_the_launch_names_says_which_competency_without_a_placed_link(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    """A column Pathways made itself (the Gradebook page), reviewed from a link that names no
    competency: the AGS claim's lineitem is enough."""
    course = make_course(students=1, competencies=2)
    course.record(2, competency=0)
    course.drain_until_settled(course.worker())
    competency = course.competency_ids[0]
    state = course.lms.platform.state
    (column,) = [
        li
        for li in state.line_items_in(course.lms_context_id)
        if li.resource_id and li.resource_id.endswith(f"-{competency}")
    ]
    student = next(iter(course.students))
    link = LmsResourceLink(
        id=state.next_resource_link_id(), context_id=course.lms_context_id, title="Pathways"
    )
    with state.lock:
        state.resource_links[link.id] = link

    review = _review(lti, course, TEACHER.user_id, student, link, line_item_id=column.id)

    assert review.response.status_code == 200, review.text[:2000]
    assert f'<a href="#comp-{competency}">C1 · Competency 1</a>.' in review.text


def test_a_column_of_a_competency_without_evidence_says_so(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    course = make_course(students=1, competencies=1)
    _without_columns(course)
    competency = course.competency_ids[0]
    link, _column = _placed_column(lti, course, competency)

    review = _review(lti, course, TEACHER.user_id, next(iter(course.students)), link)

    assert review.response.status_code == 200, review.text[:2000]
    assert "C1 · Competency 1: no evidence on it yet." in review.text


def test_a_student_opens_their_own_grade_on_their_progress_page(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    course = make_course(students=1, competencies=2)
    _without_columns(course)
    competency = course.competency_ids[1]
    course.record(4, competency=1)
    link, _column = _placed_column(lti, course, competency)
    student = next(iter(course.students))

    review = _review(lti, course, student, student, link)

    assert review.response.status_code == 200, review.text[:2000]
    assert _heading(review.text) == "My progress"
    assert (
        "Opened from your grades in the LMS:\n  "
        f'<a href="#competency-{competency}">C2 <bdi>Competency 2</bdi></a>.'
    ) in review.text
    assert _heading_after_back(review) == "My progress"


def test_a_student_is_never_shown_another_students_work(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    course = make_course(students=2, competencies=1)
    _without_columns(course)
    course.record(4)
    link, _column = _placed_column(lti, course, course.competency_ids[0])
    me, other = sorted(course.students)

    review = _review(lti, course, me, other, link)

    assert review.response.status_code == 403
    assert "This link opens another student&#39;s work." in review.text
    assert str(escape(PEOPLE[other].name)) not in review.text


def test_a_student_pathways_has_no_record_of_is_named_as_such(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    course = make_course(students=1, competencies=1)
    _without_columns(course)
    link, _column = _placed_column(lti, course, course.competency_ids[0])
    stranger = next(sub for sub in PEOPLE if sub not in course.students and sub != TEACHER.user_id)

    review = _review(lti, course, TEACHER.user_id, stranger, link)

    assert review.response.status_code == 404
    assert "Pathways has no record of this student in this course yet." in review.text


def test_a_review_launch_naming_its_student_unreadably_is_refused_in_plain_words(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    course = make_course(students=1, competencies=1)
    _without_columns(course)
    link, _column = _placed_column(lti, course, course.competency_ids[0])
    student = next(iter(course.students))

    empty_student = _review(
        lti, course, TEACHER.user_id, student, link, tweaks=LaunchTweaks(claims={FOR_USER: {}})
    )
    assert empty_student.response.status_code == 400
    assert "has no reviewed student&#39;s id (for_user.user_id)" in empty_student.text

    not_an_object = _review(
        lti, course, TEACHER.user_id, student, link, tweaks=LaunchTweaks(claims={FOR_USER: student})
    )
    assert not_an_object.response.status_code == 400
    assert "does not say whose work it is about (for_user)" in not_an_object.text


def test_a_student_opening_a_mastery_column_link_lands_on_that_competency(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    """Canvas shows the column's link as an assignment: a student opening it sees their level on
    that competency, not their pathways; a teacher opening it lands on their home as ever."""
    course = make_course(students=1, competencies=2)
    _without_columns(course)
    competency = course.competency_ids[1]
    course.record(2, competency=1)
    link, _column = _placed_column(lti, course, competency)
    student = next(iter(course.students))

    opened = lti.launch(student, context_id=course.lms_context_id, resource_link_id=link.id)

    assert opened.response.status_code == 200, opened.text[:2000]
    assert _heading(opened.text) == "My progress"
    assert (
        "This activity of your course is about\n  "
        f'<a href="#competency-{competency}">C2 <bdi>Competency 2</bdi></a>.'
    ) in opened.text
    assert _heading_after_back(opened) == "My progress"
    teacher = lti.launch(
        TEACHER.user_id, context_id=course.lms_context_id, resource_link_id=link.id
    )
    assert teacher.response.status_code == 200
    assert "This activity of your course is about" not in teacher.text
    assert "Opened from the LMS gradebook" not in teacher.text


def test_a_link_naming_another_courses_competency_opens_the_students_home(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    """A copied course keeps the original's links and their custom parameters."""
    mine = make_course(students=1, competencies=1)
    other = make_course(students=1, competencies=1)
    state = mine.lms.platform.state
    link = LmsResourceLink(
        id=state.next_resource_link_id(),
        context_id=mine.lms_context_id,
        title="Copied",
        custom={"pathways_item": f"competency-{other.competency_ids[0]}"},
    )
    with state.lock:
        state.resource_links[link.id] = link

    opened = lti.launch(
        next(iter(mine.students)), context_id=mine.lms_context_id, resource_link_id=link.id
    )

    assert opened.response.status_code == 200, opened.text[:2000]
    assert _heading(opened.text) != "My progress"
    assert "This activity of your course is about" not in opened.text
