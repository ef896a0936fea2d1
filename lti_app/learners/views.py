"""Profile and goals: the student edits their own part; a teacher edits a student's whole profile.

The teacher's editor is in `teacher_views`, on this same blueprint. A student's page is built
from `student_view`, which never carries teacher notes or private check-ins, so no template
can show them by mistake.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from flask import Blueprint, Flask, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from lti_app.courses.common import Refusal, in_field, refusal
from lti_app.db import utcnow
from lti_app.display import course_zone, date_limits
from lti_app.errors import NotFoundError, PermissionDeniedError
from lti_app.form_once import ALREADY_SAVED, form_sent_again
from lti_app.learners import goals_and_check_ins, services, visible_profile
from lti_app.learners.goals_and_check_ins import GoalNotFoundError
from lti_app.learners.models import GoalStatus
from lti_app.learners.profile_form import ProfilePage, page_values, save_profile_form
from lti_app.learners.services import NotAllowedError
from lti_app.learners.vocab import CareerCluster, Modality
from lti_app.timezones import local_date
from lti_app.tool.roles import CourseRole
from lti_app.tool.services import LaunchContext
from lti_app.web import add_nav_item, current_launch, db_session, launch_url, require_role

LOG = logging.getLogger(__name__)
bp = Blueprint("learners", __name__, url_prefix="/profile")
"""A URL id: a longer number is no row of ours (and would overflow SQLite's integers)."""

LEARNER = CourseRole.LEARNER.value
GOAL_STATUS_WORDS = {
    GoalStatus.NOT_STARTED: "Not started",
    GoalStatus.IN_PROGRESS: "In progress",
    GoalStatus.MET: "Met",
    GoalStatus.DROPPED: "Dropped",
}
NOTICES = {
    "saved": "Your profile is saved.",
    "goal_added": "Your goal is added.",
    "goal_saved": "Your goal is saved.",
    "goal_deleted": "Your goal is deleted.",
    "teacher_saved": "The profile is saved.",
    "teacher_goal_added": "The goal is added.",
    "already_saved": ALREADY_SAVED,
}


@bp.record_once
def _register(state: BlueprintSetupState) -> None:
    add_nav_item(cast(Flask, state.app), "learners.my_profile", "My profile", (LEARNER,), 30)


def launch_course() -> tuple[LaunchContext, int]:
    """The launch and its course's id; refused outside a course."""
    ctx = current_launch()
    if ctx.context is None:
        raise PermissionDeniedError("Open Pathways from a course to see your profile.")
    return ctx, ctx.context.id


def page_notice() -> str | None:
    """The confirmation a redirect after a save asked the page to show."""
    return NOTICES.get(request.args.get("notice", ""))


def parse_target_date(value: str) -> date | None:
    """A goal form's target date, None when left empty; ValueError says what to fix."""
    value = value.strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError("Enter the target date as a date, e.g. 2025-06-30.") from None
    # A year typed as "26" reaches us as 0026 (Chrome's date field): refuse, keep the form.
    limits = date_limits()
    if not limits.earliest <= day <= limits.latest_target:
        raise ValueError(f"The target date reads {day.isoformat()}: please check the year.")
    return day


def _goal_status(value: str) -> GoalStatus:
    try:
        return GoalStatus(value)
    except ValueError:
        raise ValueError("Choose a status for the goal.") from None


OWN_PROFILE_FORM = ProfilePage(
    {
        "interests": "Interests",
        "career_clusters": "Career areas that interest you",
        "career_goal_text": "Career goals in your own words",
        "preferred_modalities": "Ways of learning you like",
        "preferences_text": "Anything else that helps you learn",
    }
)
"""The student's part of their profile, as their own page shows it."""


@dataclass(frozen=True)
class GoalDraft:
    """A goal form as the editor sent it, shown again when it is refused so nothing typed is
    lost. goal_id is None for a new goal."""

    goal_id: int | None
    text: str
    target_date: str
    status: str = ""

    @classmethod
    def from_request(cls, goal_id: int | None = None) -> GoalDraft:
        form = request.form
        return cls(
            goal_id, form.get("text", ""), form.get("target_date", ""), form.get("status", "")
        )


@dataclass(frozen=True)
class GoalForm:
    """What a goal form sent, read: its target date and (a goal being changed) its status.
    Refusals name their field (`courses.common.in_field`): the date and the status here, the
    goal's words (empty, a repeat) inside `words_field`, for the message's link to the field
    and its aria-invalid."""

    target_date: date | None
    status: GoalStatus
    """A new goal's form sends none: it starts NOT_STARTED."""
    words_field: str

    @classmethod
    def from_request(cls, goal_id: int | None = None) -> GoalForm:
        prefix = "new-goal" if goal_id is None else f"goal-{goal_id}"
        with in_field(f"{prefix}-date"):
            target_date = parse_target_date(request.form.get("target_date", ""))
        status = GoalStatus.NOT_STARTED
        if goal_id is not None:
            with in_field(f"{prefix}-status"):
                status = _goal_status(request.form.get("status", ""))
        return cls(target_date, status, f"{prefix}-text")


def page_vocab() -> dict[str, Any]:
    """The choices and words both profile pages show."""
    return {
        "career_clusters": tuple(CareerCluster),
        "modalities": tuple(Modality),
        "goal_statuses": tuple(GoalStatus),
        "goal_status_words": GOAL_STATUS_WORDS,
        # The course's date, not UTC's: a goal due today is not overdue this evening.
        "today": local_date(utcnow(), course_zone()),
    }


# --- the student's own profile ----------------------------------------------------------------


def _render_mine(
    values: MultiDict[str, str] | None = None,
    errors: Sequence[Refusal] = (),
    status: int = 200,
    draft: GoalDraft | None = None,
) -> tuple[str, int]:
    """The student's page; `values` fills the profile form (as stored when None); `errors`
    mark the fields they are about."""
    ctx, context_id = launch_course()
    session = db_session()
    view = visible_profile.student_view(session, context_id=context_id, person_id=ctx.person.id)
    if values is None:
        profile = services.get_profile(session, context_id=context_id, person_id=ctx.person.id)
        values = page_values(profile, OWN_PROFILE_FORM)
    return (
        render_template(
            "learners/my_profile.html",
            ctx=ctx,
            view=view,
            values=values,
            labels=OWN_PROFILE_FORM.labels,
            draft=draft,
            errors=errors,
            errors_title="Not saved:",
            notice=None if errors else page_notice(),
            **page_vocab(),
        ),
        status,
    )


@bp.route("/", methods=["GET", "POST"])
@require_role(LEARNER)
def my_profile() -> Response | tuple[str, int]:
    """The student's interests, career goals, ways of learning, preferences and goals."""
    ctx, context_id = launch_course()
    if request.method == "GET":
        return _render_mine()
    session = db_session()
    try:
        conflict = save_profile_form(
            session,
            context_id=context_id,
            person_id=ctx.person.id,
            editor_is_teacher=False,
            form=request.form,
            page=OWN_PROFILE_FORM,
        )
    except (ValueError, NotAllowedError) as err:
        session.rollback()
        return _render_mine(request.form, [Refusal(str(err))], 400)
    if conflict is not None:
        session.rollback()
        return _render_mine(conflict.values, [Refusal(e) for e in conflict.errors], 400)
    session.commit()
    # At the section saved, as a goal's save is: the page's top is screens above, and focus
    # was left on nothing a screen reader would read.
    return redirect(launch_url("learners.my_profile", notice="saved") + "#about-me")


@bp.post("/goals")
@require_role(LEARNER)
def add_goal() -> Response | tuple[str, int]:
    """Add a goal with an optional target date to the student's own profile (the very same
    form sent again, say after Back, stores nothing and says so)."""
    ctx, context_id = launch_course()
    session = db_session()
    try:
        form = GoalForm.from_request()
        if form_sent_again(session):
            return redirect(launch_url("learners.my_profile", notice="already_saved") + "#goals")
        with in_field(form.words_field):
            goal = goals_and_check_ins.add_goal(
                session,
                context_id=context_id,
                person_id=ctx.person.id,
                text=request.form.get("text", ""),
                target_date=form.target_date,
                created_by_id=ctx.person.id,
                editor_is_teacher=False,
            )
    except ValueError as err:
        session.rollback()
        return _render_mine(errors=[refusal(err)], status=400, draft=GoalDraft.from_request())
    session.commit()
    return redirect(launch_url("learners.my_profile", notice="goal_added") + f"#goal-{goal.id}")


@bp.post("/goals/<int:goal_id>")
@require_role(LEARNER)
def update_goal(goal_id: int) -> Response | tuple[str, int]:
    """Change the text, target date or status of one of the student's own goals."""
    ctx, context_id = launch_course()
    session = db_session()
    try:
        form = GoalForm.from_request(goal_id)
        with in_field(form.words_field):
            goals_and_check_ins.update_goal(
                session,
                context_id=context_id,
                goal_id=goal_id,
                editor_id=ctx.person.id,
                editor_is_teacher=False,
                text=request.form.get("text", ""),
                target_date=form.target_date,
                status=form.status,
            )
    except GoalNotFoundError as err:
        raise NotFoundError("That goal does not exist.") from err
    except ValueError as err:
        session.rollback()
        return _render_mine(
            errors=[refusal(err)], status=400, draft=GoalDraft.from_request(goal_id)
        )
    session.commit()
    return redirect(launch_url("learners.my_profile", notice="goal_saved") + f"#goal-{goal_id}")


@bp.post("/goals/<int:goal_id>/delete")
@require_role(LEARNER)
def delete_goal(goal_id: int) -> Response | tuple[str, int]:
    """Delete one of the student's own goals, set by mistake (see
    goals_and_check_ins.delete_goal)."""
    ctx, context_id = launch_course()
    session = db_session()
    try:
        goals_and_check_ins.delete_goal(
            session,
            context_id=context_id,
            goal_id=goal_id,
            editor_id=ctx.person.id,
            editor_is_teacher=False,
        )
    except GoalNotFoundError as err:
        raise NotFoundError("That goal does not exist.") from err
    except NotAllowedError as err:
        session.rollback()
        return _render_mine(errors=[Refusal(str(err))], status=400)
    session.commit()
    return redirect(launch_url("learners.my_profile", notice="goal_deleted") + "#goals")


# The teacher's profile editor (learners.teacher_views) is routes of this blueprint too:
# importing it here registers them wherever the blueprint is (Flask's "Larger Applications").
from lti_app.learners import teacher_views  # noqa: E402, F401
