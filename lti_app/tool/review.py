"""Submission review launches: a gradebook column's review link opens a student's work.

A platform that supports LTI Submission Review 1.0 (https://www.imsglobal.org/spec/lti-sr/v1p0;
Moodle 4.1+, mod/lti/grade.php) offers a link on each score of a column whose line item asked
for it (`submissionReview`; Moodle: of every LTI activity), and launches Pathways with an
`LtiSubmissionReviewRequest`: the person who clicked (a teacher, or the student on their own
grade), the student it is about (`for_user`) and the column (the AGS claim's `lineitem`).
Moodle may leave out the student (a click on the column's name) or the column
(tool.messages `_check_submission_review`): without a student the launch opens Pathways as the
link does; without a column the student's page points out the link's own competency, if any.

The tool only says who and which column; the features render the page, through two hooks:
`REVIEW_PAGES` (role -> page for the reviewed student) and `REVIEW_COLUMNS` (which competency a
course's column is, from the grades feature).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.errors import NotFoundError, PermissionDeniedError
from lti_app.tool.messages import reviewed_line_item, reviewed_user_id
from lti_app.tool.models import Membership, Person
from lti_app.tool.roles import CourseRole
from lti_app.tool.services import LaunchContext

REVIEW_PAGES = "lti_app.submission_review_pages"
"""role -> page(ctx, student person id, competency id or None)."""
REVIEW_COLUMNS = "lti_app.submission_review_columns"
"""[column(session, ctx, lineitem URL or None) -> competency id or None]"""

ReviewPage = Callable[[LaunchContext, int, int | None], str]


def review_page(session: Session, ctx: LaunchContext, claims: dict[str, Any]) -> str | None:
    """The reviewed student's page for this person's role; None where a role has none (the
    home then)."""
    page: ReviewPage | None = current_app.extensions.get(REVIEW_PAGES, {}).get(ctx.launch.role)
    reviewed_sub = reviewed_user_id(claims)
    if page is None or ctx.context is None or reviewed_sub is None:
        return None
    if ctx.launch.role == CourseRole.LEARNER.value:
        if reviewed_sub != ctx.person.sub:
            # The LMS decides who may review; a student's own grade is the only one a student
            # is shown, whatever a launch says.
            raise PermissionDeniedError(
                "This link opens another student's work. Pathways shows each student only "
                "their own."
            )
        student_id: int | None = ctx.person.id
    else:
        student_id = _member_id(session, ctx.launch.platform_id, ctx.context.id, reviewed_sub)
    if student_id is None:
        raise NotFoundError(
            "Pathways has no record of this student in this course yet.",
            hint="A student appears in Pathways once they have opened it from the course, or "
            "after the class list is refreshed from the LMS (Pathways' Students page).",
        )
    line_item = reviewed_line_item(claims)
    competency_id = None
    for column in current_app.extensions.get(REVIEW_COLUMNS, []):
        competency_id = column(session, ctx, line_item)
        if competency_id is not None:
            break
    return page(ctx, student_id, competency_id)


def _member_id(session: Session, platform_id: int, context_id: int, sub: str) -> int | None:
    """The person the LMS calls `sub` on this platform, if they are in this course (any
    status: a teacher may review the work of a student who has since left)."""
    found: int | None = session.execute(
        select(Person.id)
        .join(Membership, Membership.person_id == Person.id)
        .where(
            Person.platform_id == platform_id,
            Person.sub == sub,
            Membership.context_id == context_id,
        )
    ).scalar_one_or_none()
    return found
