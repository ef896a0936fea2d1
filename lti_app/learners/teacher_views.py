"""A teacher edits a student's whole profile, private teacher notes included (routes of the
`learners` blueprint, registered by `learners.views`)."""

from __future__ import annotations

from collections.abc import Sequence

from flask import redirect, render_template, request
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from lti_app.courses.common import Refusal, in_field, refusal
from lti_app.errors import NotFoundError
from lti_app.form_once import form_sent_again
from lti_app.learners import goals_and_check_ins, services
from lti_app.learners.profile_form import ProfilePage, page_values, save_profile_form
from lti_app.learners.views import (
    GoalDraft,
    GoalForm,
    bp,
    launch_course,
    page_notice,
    page_vocab,
)
from lti_app.roster.services import list_students, student_ids_in_course
from lti_app.tool.roles import CourseRole
from lti_app.web import db_session, launch_url, require_role

TEACHER = CourseRole.TEACHER.value

EDITOR_FORM = ProfilePage(
    {
        "interests": "Interests",
        "career_clusters": "Career areas that interest them",
        "career_goal_text": "Career goals in their own words",
        "preferred_modalities": "Ways of learning they like",
        "preferences_text": "Anything else that helps them learn",
        "strengths": "Strengths",
        "needs_and_supports": "Needs and supports",
        "non_academic_notes": "Work habits and social skills",
        "teacher_notes": "Teacher notes",
    }
)
"""The whole profile, as the teacher's profile editor shows it."""


def _student_in_course(context_id: int, person_id: int) -> str:
    """The student's name, or "not found" for anyone who is not a learner of this course."""
    session = db_session()
    if not student_ids_in_course(session, context_id=context_id, person_ids=[person_id]):
        raise NotFoundError("That student is not in this course.")
    students = list_students(session, context_id=context_id, include_inactive=True)
    return next((s.name for s in students if s.person_id == person_id), "Student")


def _render_teacher(
    context_id: int,
    person_id: int,
    *,
    values: MultiDict[str, str] | None = None,
    errors: Sequence[Refusal] = (),
    status: int = 200,
    draft: GoalDraft | None = None,
) -> tuple[str, int]:
    """The teacher's profile editor; `values` fills the profile form (as stored when None);
    `errors` mark the fields they are about."""
    session = db_session()
    name = _student_in_course(context_id, person_id)
    if values is None:
        profile = services.get_profile(session, context_id=context_id, person_id=person_id)
        values = page_values(profile, EDITOR_FORM)
    return (
        render_template(
            "learners/edit_profile.html",
            student_name=name,
            person_id=person_id,
            values=values,
            labels=EDITOR_FORM.labels,
            goals=goals_and_check_ins.list_goals(
                session, context_id=context_id, person_id=person_id
            ),
            draft=draft,
            errors=errors,
            errors_title="Not saved:",
            notice=None if errors else page_notice(),
            **page_vocab(),
        ),
        status,
    )


@bp.route("/students/<int:person_id>", methods=["GET", "POST"])
@require_role(TEACHER)
def edit_profile(person_id: int) -> Response | tuple[str, int]:
    """A teacher edits a student's whole profile, private teacher notes included."""
    _, context_id = launch_course()
    if request.method == "GET":
        return _render_teacher(context_id, person_id)
    _student_in_course(context_id, person_id)
    session = db_session()
    try:
        conflict = save_profile_form(
            session,
            context_id=context_id,
            person_id=person_id,
            editor_is_teacher=True,
            form=request.form,
            page=EDITOR_FORM,
        )
    except ValueError as err:
        session.rollback()
        return _render_teacher(
            context_id, person_id, values=request.form, errors=[Refusal(str(err))], status=400
        )
    if conflict is not None:
        session.rollback()
        return _render_teacher(
            context_id,
            person_id,
            values=conflict.values,
            errors=[Refusal(e) for e in conflict.errors],
            status=400,
        )
    session.commit()
    return redirect(
        launch_url("learners.edit_profile", person_id=person_id, notice="teacher_saved")
    )


@bp.post("/students/<int:person_id>/goals")
@require_role(TEACHER)
def add_student_goal(person_id: int) -> Response | tuple[str, int]:
    """A teacher adds a goal to a student's profile (the very same form sent again stores
    nothing and says so)."""
    ctx, context_id = launch_course()
    _student_in_course(context_id, person_id)
    session = db_session()
    try:
        form = GoalForm.from_request()
        if form_sent_again(session):
            return redirect(
                launch_url("learners.edit_profile", person_id=person_id, notice="already_saved")
            )
        with in_field(form.words_field):
            goals_and_check_ins.add_goal(
                session,
                context_id=context_id,
                person_id=person_id,
                text=request.form.get("text", ""),
                target_date=form.target_date,
                created_by_id=ctx.person.id,
                editor_is_teacher=True,
            )
    except ValueError as err:
        session.rollback()
        return _render_teacher(
            context_id,
            person_id,
            errors=[refusal(err)],
            status=400,
            draft=GoalDraft.from_request(),
        )
    session.commit()
    return redirect(
        launch_url("learners.edit_profile", person_id=person_id, notice="teacher_goal_added")
    )
