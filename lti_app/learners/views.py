"""Profile and goals: the student edits their own part; a teacher edits a student's whole profile.

A student's page is built from `student_view`, which never carries teacher notes or private
check-ins, so no template can show them by mistake.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

from flask import Blueprint, Flask, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from lti_app.errors import NotFoundError, PermissionDeniedError
from lti_app.learners import services
from lti_app.learners.models import GoalStatus, LearnerProfile
from lti_app.learners.services import GoalNotFoundError, NotAllowedError, StudentProfileView
from lti_app.learners.vocab import CareerCluster, Modality
from lti_app.roster.services import list_students, student_ids_in_course
from lti_app.tool.roles import CourseRole
from lti_app.tool.services import LaunchContext
from lti_app.web import add_nav_item, current_launch, db_session, launch_url, require_role

LOG = logging.getLogger(__name__)
bp = Blueprint("learners", __name__, url_prefix="/profile")
"""A URL id: a longer number is no row of ours (and would overflow SQLite's integers)."""

LEARNER = CourseRole.LEARNER.value
TEACHER = CourseRole.TEACHER.value
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
    "teacher_saved": "The profile is saved.",
    "teacher_goal_added": "The goal is added.",
}


@bp.record_once
def _register(state: BlueprintSetupState) -> None:
    add_nav_item(cast(Flask, state.app), "learners.my_profile", "My profile", (LEARNER,), 30)


def _course() -> tuple[LaunchContext, int]:
    ctx = current_launch()
    if ctx.context is None:
        raise PermissionDeniedError("Open Pathways from a course to see your profile.")
    return ctx, ctx.context.id


def _notice() -> str | None:
    return NOTICES.get(request.args.get("notice", ""))


def _tags(text: str) -> list[str]:
    return [t for t in (" ".join(part.split()) for part in text.split(",")) if t]


def _date(value: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("Enter the target date as a date, e.g. 2025-06-30.") from None


def _goal_status(value: str) -> GoalStatus:
    try:
        return GoalStatus(value)
    except ValueError:
        raise ValueError("Choose a status for the goal.") from None


@dataclass
class ProfileForm:
    """The student-editable part of a profile, as the page shows and sends it."""

    interests_text: str = ""
    career_clusters: list[str] = field(default_factory=list)
    career_goal_text: str = ""
    preferred_modalities: list[str] = field(default_factory=list)
    preferences_text: str = ""

    @classmethod
    def from_view(cls, view: StudentProfileView) -> ProfileForm:
        return cls(
            ", ".join(view.interests),
            [c.value for c in view.career_clusters],
            view.career_goal_text,
            [m.value for m in view.preferred_modalities],
            view.preferences_text,
        )

    @classmethod
    def from_request(cls) -> ProfileForm:
        form = request.form
        return cls(
            form.get("interests", ""),
            form.getlist("career_clusters"),
            form.get("career_goal_text", ""),
            form.getlist("preferred_modalities"),
            form.get("preferences_text", ""),
        )

    def as_shown(self) -> dict[str, Any]:
        """The values in a form that compares equal whatever the browser did to them."""
        return {
            "interests": ", ".join(_tags(self.interests_text)),
            "career_clusters": sorted(set(self.career_clusters)),
            "career_goal_text": _same_text(self.career_goal_text),
            "preferred_modalities": sorted(set(self.preferred_modalities)),
            "preferences_text": _same_text(self.preferences_text),
        }

    def fields(self) -> dict[str, Any]:
        return {
            "interests": _tags(self.interests_text),
            "career_clusters": self.career_clusters,
            "career_goal_text": self.career_goal_text,
            "preferred_modalities": self.preferred_modalities,
            "preferences_text": self.preferences_text,
        }


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


def _same_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _shown(form: ProfileForm, teacher_values: dict[str, str]) -> str:
    """What the teacher's page shows, sent back with it: saving changes only what differs."""
    values = {**form.as_shown(), **{k: _same_text(v) for k, v in teacher_values.items()}}
    return json.dumps(values, ensure_ascii=False, sort_keys=True)


def _changed_fields(
    form: ProfileForm, teacher_values: dict[str, str], shown_json: str
) -> dict[str, Any]:
    """The fields the teacher changed on their page (all of them if the page did not say what
    it showed), so that saving an open page does not undo what the student saved meanwhile."""
    fields: dict[str, Any] = {**form.fields(), **teacher_values}
    try:
        shown = json.loads(shown_json)
    except ValueError:
        return fields
    if not isinstance(shown, dict):
        return fields
    now = {**form.as_shown(), **{k: _same_text(v) for k, v in teacher_values.items()}}
    return {k: v for k, v in fields.items() if k not in shown or shown[k] != now[k]}


def _vocab() -> dict[str, Any]:
    return {
        "career_clusters": tuple(CareerCluster),
        "modalities": tuple(Modality),
        "goal_statuses": tuple(GoalStatus),
        "goal_status_words": GOAL_STATUS_WORDS,
    }


# --- the student's own profile ----------------------------------------------------------------


def _render_mine(
    form: ProfileForm | None = None,
    error: str | None = None,
    status: int = 200,
    draft: GoalDraft | None = None,
) -> tuple[str, int]:
    ctx, context_id = _course()
    view = services.student_view(db_session(), context_id=context_id, person_id=ctx.person.id)
    return (
        render_template(
            "learners/my_profile.html",
            ctx=ctx,
            view=view,
            form=form or ProfileForm.from_view(view),
            draft=draft,
            error=error,
            notice=None if error else _notice(),
            **_vocab(),
        ),
        status,
    )


@bp.route("/", methods=["GET", "POST"])
@require_role(LEARNER)
def my_profile() -> Response | tuple[str, int]:
    """The student's interests, career goals, ways of learning, preferences and goals."""
    ctx, context_id = _course()
    if request.method == "GET":
        return _render_mine()
    session = db_session()
    form = ProfileForm.from_request()
    try:
        services.update_profile(
            session,
            context_id=context_id,
            person_id=ctx.person.id,
            editor_is_teacher=False,
            **form.fields(),
        )
    except (ValueError, NotAllowedError) as err:
        session.rollback()
        return _render_mine(form, str(err), 400)
    session.commit()
    return redirect(launch_url("learners.my_profile", notice="saved"))


@bp.post("/goals")
@require_role(LEARNER)
def add_goal() -> Response | tuple[str, int]:
    """Add a goal with an optional target date to the student's own profile."""
    ctx, context_id = _course()
    session = db_session()
    try:
        goal = services.add_goal(
            session,
            context_id=context_id,
            person_id=ctx.person.id,
            text=request.form.get("text", ""),
            target_date=_date(request.form.get("target_date", "")),
            created_by_id=ctx.person.id,
            editor_is_teacher=False,
        )
    except ValueError as err:
        session.rollback()
        return _render_mine(error=str(err), status=400, draft=GoalDraft.from_request())
    session.commit()
    return redirect(launch_url("learners.my_profile", notice="goal_added") + f"#goal-{goal.id}")


@bp.post("/goals/<int:goal_id>")
@require_role(LEARNER)
def update_goal(goal_id: int) -> Response | tuple[str, int]:
    """Change the text, target date or status of one of the student's own goals."""
    ctx, context_id = _course()
    session = db_session()
    try:
        services.update_goal(
            session,
            context_id=context_id,
            goal_id=goal_id,
            editor_id=ctx.person.id,
            editor_is_teacher=False,
            text=request.form.get("text", ""),
            target_date=_date(request.form.get("target_date", "")),
            status=_goal_status(request.form.get("status", "")),
        )
    except GoalNotFoundError as err:
        raise NotFoundError("That goal does not exist.") from err
    except ValueError as err:
        session.rollback()
        return _render_mine(error=str(err), status=400, draft=GoalDraft.from_request(goal_id))
    session.commit()
    return redirect(launch_url("learners.my_profile", notice="goal_saved") + f"#goal-{goal_id}")


# --- a teacher edits a student's profile ------------------------------------------------------


TEACHER_TEXT_FIELDS = ("strengths", "needs_and_supports", "non_academic_notes", "teacher_notes")


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
    form: ProfileForm | None = None,
    teacher_values: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
    draft: GoalDraft | None = None,
    shown: str | None = None,
) -> tuple[str, int]:
    session = db_session()
    name = _student_in_course(context_id, person_id)
    profile: LearnerProfile | None = services.get_profile(
        session, context_id=context_id, person_id=person_id
    )
    view = services.student_profile_view(profile, person_id=person_id, goals=(), check_ins=())
    stored_form = ProfileForm.from_view(view)
    stored_values = {f: getattr(profile, f) if profile else "" for f in TEACHER_TEXT_FIELDS}
    return (
        render_template(
            "learners/edit_profile.html",
            student_name=name,
            person_id=person_id,
            form=form or stored_form,
            teacher_values=stored_values if teacher_values is None else teacher_values,
            shown=_shown(stored_form, stored_values) if shown is None else shown,
            goals=services.list_goals(session, context_id=context_id, person_id=person_id),
            draft=draft,
            error=error,
            notice=None if error else _notice(),
            **_vocab(),
        ),
        status,
    )


@bp.route("/students/<int:person_id>", methods=["GET", "POST"])
@require_role(TEACHER)
def edit_profile(person_id: int) -> Response | tuple[str, int]:
    """A teacher edits a student's whole profile, private teacher notes included."""
    _, context_id = _course()
    if request.method == "GET":
        return _render_teacher(context_id, person_id)
    _student_in_course(context_id, person_id)
    session = db_session()
    form = ProfileForm.from_request()
    teacher_values = {f: request.form.get(f, "") for f in TEACHER_TEXT_FIELDS}
    shown = request.form.get("shown", "")
    try:
        services.update_profile(
            session,
            context_id=context_id,
            person_id=person_id,
            editor_is_teacher=True,
            **_changed_fields(form, teacher_values, shown),
        )
    except ValueError as err:
        session.rollback()
        return _render_teacher(
            context_id,
            person_id,
            form=form,
            teacher_values=teacher_values,
            error=str(err),
            status=400,
            shown=shown or None,
        )
    session.commit()
    return redirect(
        launch_url("learners.edit_profile", person_id=person_id, notice="teacher_saved")
    )


@bp.post("/students/<int:person_id>/goals")
@require_role(TEACHER)
def add_student_goal(person_id: int) -> Response | tuple[str, int]:
    """A teacher adds a goal to a student's profile."""
    ctx, context_id = _course()
    _student_in_course(context_id, person_id)
    session = db_session()
    try:
        services.add_goal(
            session,
            context_id=context_id,
            person_id=person_id,
            text=request.form.get("text", ""),
            target_date=_date(request.form.get("target_date", "")),
            created_by_id=ctx.person.id,
            editor_is_teacher=True,
        )
    except ValueError as err:
        session.rollback()
        return _render_teacher(
            context_id, person_id, error=str(err), status=400, draft=GoalDraft.from_request()
        )
    session.commit()
    return redirect(
        launch_url("learners.edit_profile", person_id=person_id, notice="teacher_goal_added")
    )
