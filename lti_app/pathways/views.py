"""Pathway pages: the teacher's editor and the student's own pathways.

Every id in a URL or form is looked up inside the launch's course (and, for a student's choice,
the student's own rows), so an id from another course, student or platform is "not found".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Literal, cast

from flask import Blueprint, Flask, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from lti_app.competencies.models import Competency
from lti_app.competencies.services import list_competencies
from lti_app.errors import NotFoundError, PermissionDeniedError, render_error
from lti_app.insights.views import picked_students_with_group
from lti_app.pathways import choices as choice_services
from lti_app.pathways import services
from lti_app.pathways.errors import (
    ChoiceNotAllowedError,
    ChoiceNotFoundError,
    PathwayNotFoundError,
)
from lti_app.pathways.forms import (
    CAREER_CLUSTERS,
    CHALLENGE_LEVELS,
    MODALITIES,
    OptionForm,
    PathwayForm,
    StepForm,
    minutes_label,
    parse_ids,
)
from lti_app.pathways.models import Choice, ChoiceStatus, Option, Step
from lti_app.pathways.student import (
    StepView,
    student_pathway_view,
)
from lti_app.pathways.unlock import CompetencyRef
from lti_app.pathways.unlocking import (
    manual_unlock_ids_by_person,
    relock_step_for_students,
    stuck_steps,
    unlock_step_for_students,
)
from lti_app.progress.services import next_actions, student_home_overview
from lti_app.roster.services import list_students, student_ids_in_course
from lti_app.tool.roles import CourseRole
from lti_app.tool.services import LaunchContext
from lti_app.web import add_nav_item, current_launch, db_session, launch_url, require_role

LOG = logging.getLogger(__name__)
bp = Blueprint("pathways", __name__, url_prefix="/pathways")
"""A URL id: a longer number is no row of ours (and would overflow SQLite's integers)."""

TEACHER = CourseRole.TEACHER.value
LEARNER = CourseRole.LEARNER.value

NOTICES = {
    "created": "Saved.",
    "saved": "Your changes are saved.",
    "moved": "The order is changed.",
    "not_moved": "Nothing was moved: the list had already changed since this page was shown "
    "(a second click, or a colleague's change). Here is the order as it is now.",
    "archived": "Archived: students no longer see it. Their choices and work are kept.",
    "archived_pathway": "Archived: students no longer see it. Those who chose in it can still "
    "read their work and your notes there, but can't change it. Restore it to let them go on.",
    "restored": "Restored: students see it again.",
    "unlocked": "The step is unlocked for the students you chose.",
    "relocked": "The teacher unlock is withdrawn for the students you chose. Any choice or work "
    "they have in this step is kept, but they can't start or hand in work here until the step "
    "opens again.",
    "chosen": "Your choice is saved. You can change your mind until you start.",
    "withdrawn": "Your choice is withdrawn. Choose another option when you are ready.",
    "started": "Started. Hand in your work when it is ready.",
    "submitted": "Handed in. Your teacher will look at it.",
}


@bp.record_once
def _register(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    app.extensions.setdefault("lti_app.home_renderers", {})[LEARNER] = render_student_home
    app.extensions.setdefault("lti_app.deep_link_providers", []).append(deep_link_pathways)
    add_nav_item(app, "pathways.my_pathways", "My pathways", (LEARNER,), order=10)
    add_nav_item(app, "pathways.manage", "Pathways", (TEACHER,), order=30)


@bp.errorhandler(PathwayNotFoundError)
def _not_found(err: PathwayNotFoundError) -> tuple[str, int]:
    return render_error(NotFoundError(str(err)))


def _course() -> tuple[LaunchContext, int]:
    ctx = current_launch()
    if ctx.context is None:
        raise PermissionDeniedError("Open Pathways from a course to see its pathways.")
    return ctx, ctx.context.id


def _notice() -> str | None:
    return NOTICES.get(request.args.get("notice", ""))


# --- the student's pages ----------------------------------------------------------------------


def deep_link_pathways(session: Session, ctx: LaunchContext) -> list[dict[str, Any]]:
    """Each pathway of the course, for a teacher placing Pathways in a module."""
    if ctx.context is None:
        return []
    return [
        {
            "key": f"pathway-{p.id}",
            "title": p.title,
            "text": "Opens this pathway for students.",
            "resource_id": f"pathway-{p.id}",
            "custom": {"pathway_id": str(p.id)},
        }
        for p in services.list_pathways(session, context_id=ctx.context.id)
    ]


def _placed_pathway_id(ctx: LaunchContext) -> int | None:
    """The pathway a deep-linked placement opens (its custom parameter), if any."""
    custom = ctx.resource_link.custom if ctx.resource_link is not None else {}
    value = custom.get("pathway_id") if isinstance(custom, dict) else None
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None  # isdigit() alone also takes "²", which int() refuses
    return int(value) if len(value) <= 9 else None  # nine digits fit any database


def render_student_home(ctx: LaunchContext) -> str:
    """The learner's landing page: every pathway at a glance and what to do next.

    A placement made for one pathway (deep linking) opens that pathway instead.
    """
    if ctx.context is None:  # pragma: no cover - render_home handles launches without one
        raise PermissionDeniedError("Open Pathways from a course to see its pathways.")
    placed = _placed_pathway_id(ctx)
    if placed is not None and request.endpoint == "tool.launch":
        try:
            return _render_pathway(placed)[0]
        except PathwayNotFoundError:
            LOG.info("placement names a missing pathway %s; showing the home", placed)
    session = db_session()
    overview, archived = student_home_overview(
        session, context_id=ctx.context.id, person_id=ctx.person.id
    )
    return render_template(
        "pathways/my_pathways.html",
        ctx=ctx,
        overview=overview,
        archived=archived,
        actions=next_actions(overview),
        notice=_notice(),
        status_words=STUDENT_STATUS_WORDS,
        status_of=student_status,
    )


def student_status(status: ChoiceStatus, option: Option | None) -> str:
    """A choice's status in the student's words; a pick that waits for approval says so."""
    if status is ChoiceStatus.CHOSEN and option is not None and option.requires_approval:
        return "Waiting for your teacher's approval"
    return STUDENT_STATUS_WORDS[status]


@bp.get("/")
@require_role(LEARNER)
def my_pathways() -> str:
    """The student's pathways: steps, lock states and their choices."""
    ctx, _ = _course()
    return render_student_home(ctx)


def _render_pathway(
    pathway_id: int,
    *,
    error: str | None = None,
    status: int = 200,
    draft: dict[int, dict[str, str]] | None = None,
) -> tuple[str, int]:
    """The student's pathway page; `draft` holds a refused hand-in as typed, by choice id."""
    ctx, context_id = _course()
    view = student_pathway_view(
        db_session(), context_id=context_id, pathway_id=pathway_id, person_id=ctx.person.id
    )
    return (
        render_template(
            "pathways/student_pathway.html",
            ctx=ctx,
            view=view,
            error=error,
            notice=None if error else _notice(),
            status_words=STUDENT_STATUS_WORDS,
            step_actions={
                s.step.id: _step_actions(s, read_only=view.is_read_only) for s in view.steps
            },
            minutes_label=minutes_label,
            draft=draft or {},
        ),
        status,
    )


@bp.get("/<int:pathway_id>")
@require_role(LEARNER)
def student_pathway(pathway_id: int) -> tuple[str, int]:
    """One pathway with its steps, options, recommendations and the student's choices."""
    return _render_pathway(pathway_id)


def _after_student_action(pathway_id: int, step_id: int, notice: str) -> Response:
    url = launch_url("pathways.student_pathway", pathway_id=pathway_id, notice=notice)
    return redirect(f"{url}#step-{step_id}")


def _pathway_of_step(step_id: int, context_id: int) -> int:
    return services.get_step(db_session(), context_id=context_id, step_id=step_id).pathway_id


def _pathway_of_option(option_id: int, context_id: int) -> int:
    option = services.get_option(db_session(), context_id=context_id, option_id=option_id)
    return _pathway_of_step(option.step_id, context_id)


@bp.post("/options/<int:option_id>/choose")
@require_role(LEARNER)
def choose(option_id: int) -> Response | tuple[str, int]:
    """Pick an option, or switch to it while work has not started."""
    ctx, context_id = _course()
    session = db_session()
    try:
        choice = choice_services.choose_option(
            session, context_id=context_id, person_id=ctx.person.id, option_id=option_id
        )
    except ChoiceNotAllowedError as err:
        session.rollback()
        return _render_pathway(
            _pathway_of_option(option_id, context_id), error=str(err), status=400
        )
    pathway_id = _pathway_of_step(choice.step_id, context_id)
    step_id = choice.step_id
    session.commit()
    return _after_student_action(pathway_id, step_id, "chosen")


ChoiceAction = Literal["withdraw", "start", "submit"]


def _choice_action(choice_id: int, action: ChoiceAction) -> Response | tuple[str, int]:
    ctx, context_id = _course()
    session = db_session()
    own = {
        c.id: c
        for c in choice_services.choices_for_student(
            session, context_id=context_id, person_id=ctx.person.id
        )
    }
    if choice_id not in own:
        done = _withdrawn_already(context_id, own.values()) if action == "withdraw" else None
        if done is not None:
            return done
        # Another student's choice, or another course's: the same answer as a missing one.
        raise NotFoundError("That choice does not exist.")
    step_id = own[choice_id].step_id
    pathway_id = _pathway_of_step(step_id, context_id)
    me = ctx.person.id
    try:
        if action == "withdraw":
            try:
                choice_services.withdraw_choice(
                    session, context_id=context_id, person_id=me, choice_id=choice_id
                )
            except ChoiceNotFoundError:
                session.rollback()  # a simultaneous first click withdrew it: as asked
                return _after_student_action(pathway_id, step_id, "withdrawn")
        elif action == "start":
            choice_services.start_choice(
                session, context_id=context_id, person_id=me, choice_id=choice_id
            )
        else:
            choice_services.submit_choice(
                session,
                context_id=context_id,
                person_id=me,
                choice_id=choice_id,
                note=request.form.get("note", ""),
                url=request.form.get("url", ""),
            )
    except ValueError as err:  # ChoiceNotAllowedError, or a link that is not http(s)
        session.rollback()
        # A refused hand-in comes back as typed: the student only fixes what was wrong.
        draft = (
            {choice_id: {"note": request.form.get("note", ""), "url": request.form.get("url", "")}}
            if action == "submit"
            else None
        )
        return _render_pathway(pathway_id, error=str(err), status=400, draft=draft)
    session.commit()
    notice = {"withdraw": "withdrawn", "start": "started", "submit": "submitted"}[action]
    return _after_student_action(pathway_id, step_id, notice)


def _withdrawn_already(context_id: int, own: Iterable[Choice]) -> Response | None:
    """The answer to a second "Withdraw my choice" (a double click): the first one withdrew it,
    so the page says so instead of "not found". The form names its step; a step where the
    student holds a choice again, or that is not in the course, gets no such answer."""
    value = request.form.get("step_id", "")
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        return None
    step_id = int(value)
    if any(c.step_id == step_id for c in own):
        return None
    try:
        pathway_id = _pathway_of_step(step_id, context_id)
    except PathwayNotFoundError:
        return None
    return _after_student_action(pathway_id, step_id, "withdrawn")


@bp.post("/choices/<int:choice_id>/withdraw")
@require_role(LEARNER)
def withdraw(choice_id: int) -> Response | tuple[str, int]:
    """Drop a pick before work starts."""
    return _choice_action(choice_id, "withdraw")


@bp.post("/choices/<int:choice_id>/start")
@require_role(LEARNER)
def start(choice_id: int) -> Response | tuple[str, int]:
    """Begin work on the chosen option."""
    return _choice_action(choice_id, "start")


@bp.post("/choices/<int:choice_id>/submit")
@require_role(LEARNER)
def submit(choice_id: int) -> Response | tuple[str, int]:
    """Hand in the work with a note and an optional link."""
    return _choice_action(choice_id, "submit")


STUDENT_STATUS_WORDS = {
    ChoiceStatus.CHOSEN: "Chosen",
    ChoiceStatus.APPROVED: "Approved by your teacher",
    ChoiceStatus.IN_PROGRESS: "In progress",
    ChoiceStatus.SUBMITTED: "Handed in: waiting for your teacher",
    ChoiceStatus.DONE: "Done",
    ChoiceStatus.RETURNED: "Returned by your teacher: keep working and hand it in again",
    ChoiceStatus.REJECTED: "Not approved: choose an option again",
}


READ_ONLY_STATUS_WORDS = {
    **STUDENT_STATUS_WORDS,
    ChoiceStatus.CHOSEN: "Chosen",
    ChoiceStatus.SUBMITTED: "Handed in",
    ChoiceStatus.RETURNED: "Returned by your teacher with a note",
    ChoiceStatus.REJECTED: "Not approved",
}
"""Statuses in an archived pathway, where nothing more can happen: no "hand it in again"."""

LOCKED_AGAIN = (
    "This step is locked for you now, so you can't start or hand in work here until it opens "
    "again. Your choice and your work are kept."
)


def _step_actions(step_view: StepView, *, read_only: bool = False) -> dict[str, object]:
    """What the student may do on a step now, so the template holds no rules.

    :param read_only: the pathway is archived: the page shows the work and notes, no buttons.
    """
    choice = step_view.choice
    chosen = next((o.option for o in step_view.options if o.is_chosen), None)
    needs_approval = bool(chosen and chosen.requires_approval)
    is_open = step_view.unlock.is_unlocked and not read_only
    if choice is None:
        return {
            "can_choose": is_open,
            "status": "",
            "can_withdraw": False,
            "can_start": False,
            "can_submit": False,
            "waiting_for_approval": False,
            "locked_note": "",
        }
    status = choice.status
    if read_only:
        words = READ_ONLY_STATUS_WORDS[status]
    elif status is ChoiceStatus.CHOSEN and needs_approval:
        words = "Chosen: waiting for your teacher's approval"
    else:
        words = STUDENT_STATUS_WORDS[status]
    # Work that could go on if the step were open: say why it can't, so it isn't a mystery.
    unfinished = status not in {ChoiceStatus.DONE, ChoiceStatus.SUBMITTED}
    return {
        "can_choose": is_open and status in choice_services.CHANGEABLE,
        "status": words,
        "can_withdraw": not read_only
        and status in choice_services.CHANGEABLE
        and status is not ChoiceStatus.REJECTED,
        "can_start": is_open
        and status is not ChoiceStatus.IN_PROGRESS
        and choice_services.may_start(status, requires_approval=needs_approval),
        "can_submit": is_open
        and choice_services.may_submit(status, requires_approval=needs_approval),
        "waiting_for_approval": status is ChoiceStatus.CHOSEN and needs_approval,
        "locked_note": LOCKED_AGAIN
        if not read_only and not step_view.unlock.is_unlocked and unfinished
        else "",
    }


# --- the teacher's editor ---------------------------------------------------------------------


def _join_names(refs: list[CompetencyRef]) -> str:
    names = [r.label for r in refs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _stuck_warnings(context_id: int, pathway_id: int) -> list[str]:
    """Tell the teacher which steps students can never open, so none waits forever."""
    return [
        f"Students can never unlock “{step.title}”: it waits for {_join_names(missing)}, "
        "which this pathway teaches only in steps that stay locked until then. Change its "
        "prerequisites, or unlock it for students by hand."
        for step, missing in stuck_steps(db_session(), context_id=context_id, pathway_id=pathway_id)
    ]


def _competencies(context_id: int) -> list[Competency]:
    return list_competencies(db_session(), context_id=context_id)


@bp.get("/manage")
@require_role(TEACHER)
def manage() -> str:
    """The course's pathways, with a form for a new one."""
    _, context_id = _course()
    return _render_manage(context_id, PathwayForm())[0]


def _render_manage(
    context_id: int, form: PathwayForm, error: str | None = None, status: int = 200
) -> tuple[str, int]:
    session = db_session()
    pathways = services.list_pathways(session, context_id=context_id, include_archived=True)
    return (
        render_template(
            "pathways/manage.html",
            pathways=pathways,
            competencies=_competencies(context_id),
            form=form,
            error=error,
            notice=None if error else _notice(),
        ),
        status,
    )


@bp.post("/manage")
@require_role(TEACHER)
def create_pathway() -> Response | tuple[str, int]:
    """Add a pathway at the end of the course's list."""
    _, context_id = _course()
    session = db_session()
    form = PathwayForm.from_request(request.form)
    try:
        pathway = services.create_pathway(
            session,
            context_id=context_id,
            title=form.title,
            description=form.description_html,
            competency_ids=form.competency_ids,
            once=True,
        )
    except ValueError as err:
        session.rollback()
        return _render_manage(context_id, form, str(err), 400)
    session.commit()
    return redirect(launch_url("pathways.edit_pathway", pathway_id=pathway.id, notice="created"))


def _render_pathway_editor(
    context_id: int,
    pathway_id: int,
    form: PathwayForm | None = None,
    step_form: StepForm | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    session = db_session()
    pathway = services.get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    if form is None:
        form = PathwayForm.from_pathway(
            pathway,
            services.pathway_competency_ids(session, context_id=context_id, pathway_id=pathway_id),
        )
    steps = services.list_steps(
        session, context_id=context_id, pathway_id=pathway_id, include_archived=True
    )
    competencies = _competencies(context_id)
    return (
        render_template(
            "pathways/edit_pathway.html",
            pathway=pathway,
            form=form,
            step_form=step_form or StepForm(),
            steps=steps,
            competencies=competencies,
            competency_names={c.id: f"{c.code} {c.title}" for c in competencies},
            warnings=_stuck_warnings(context_id, pathway_id),
            error=error,
            notice=None if error else _notice(),
        ),
        status,
    )


@bp.route("/manage/<int:pathway_id>", methods=["GET", "POST"])
@require_role(TEACHER)
def edit_pathway(pathway_id: int) -> Response | tuple[str, int]:
    """Change a pathway; list its steps with a form for a new one."""
    _, context_id = _course()
    if request.method == "GET":
        return _render_pathway_editor(context_id, pathway_id)
    session = db_session()
    form = PathwayForm.from_request(request.form)
    try:
        services.update_pathway(
            session,
            context_id=context_id,
            pathway_id=pathway_id,
            title=form.title,
            description=form.description_html,
            competency_ids=form.competency_ids,
        )
    except ValueError as err:
        session.rollback()
        return _render_pathway_editor(context_id, pathway_id, form=form, error=str(err), status=400)
    session.commit()
    return redirect(launch_url("pathways.edit_pathway", pathway_id=pathway_id, notice="saved"))


@bp.post("/manage/<int:pathway_id>/steps")
@require_role(TEACHER)
def create_step(pathway_id: int) -> Response | tuple[str, int]:
    """Add a step at the end of a pathway."""
    _, context_id = _course()
    session = db_session()
    step_form = StepForm.from_request(request.form)
    try:
        step = services.create_step(
            session,
            context_id=context_id,
            pathway_id=pathway_id,
            title=step_form.title,
            description=step_form.description_html,
            competency_id=step_form.competency_id,
            prerequisite_ids=step_form.prerequisite_ids,
            once=True,
        )
    except ValueError as err:
        session.rollback()
        return _render_pathway_editor(
            context_id, pathway_id, step_form=step_form, error=str(err), status=400
        )
    session.commit()
    return redirect(launch_url("pathways.edit_step", step_id=step.id, notice="created"))


def _render_step_editor(
    context_id: int,
    step_id: int,
    form: StepForm | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    session = db_session()
    step = services.get_step(session, context_id=context_id, step_id=step_id)
    pathway = services.get_pathway(session, context_id=context_id, pathway_id=step.pathway_id)
    if form is None:
        form = StepForm.from_step(
            step, services.step_prerequisite_ids(session, context_id=context_id, step_id=step_id)
        )
    return (
        render_template(
            "pathways/edit_step.html",
            pathway=pathway,
            step=step,
            form=form,
            options=services.list_options(
                session, context_id=context_id, step_id=step_id, include_archived=True
            ),
            competencies=_competencies(context_id),
            students=list_students(session, context_id=context_id),
            unlocked_ids=manual_unlock_ids_by_person(
                session, context_id=context_id, step_id=step_id
            ),
            minutes_label=minutes_label,
            warnings=_stuck_warnings(context_id, step.pathway_id),
            error=error,
            notice=None if error else _notice(),
        ),
        status,
    )


@bp.route("/manage/steps/<int:step_id>", methods=["GET", "POST"])
@require_role(TEACHER)
def edit_step(step_id: int) -> Response | tuple[str, int]:
    """Change a step; list its options; unlock it for chosen students."""
    _, context_id = _course()
    if request.method == "GET":
        return _render_step_editor(context_id, step_id)
    session = db_session()
    form = StepForm.from_request(request.form)
    try:
        services.update_step(
            session,
            context_id=context_id,
            step_id=step_id,
            title=form.title,
            description=form.description_html,
            competency_id=form.competency_id,
            prerequisite_ids=form.prerequisite_ids,
        )
    except ValueError as err:
        session.rollback()
        return _render_step_editor(context_id, step_id, form=form, error=str(err), status=400)
    session.commit()
    return redirect(launch_url("pathways.edit_step", step_id=step_id, notice="saved"))


@bp.post("/manage/steps/<int:step_id>/unlock")
@require_role(TEACHER)
def unlock_step(step_id: int) -> Response | tuple[str, int]:
    """Open a step for the checked students (or withdraw their unlock) whatever their mastery."""
    ctx, context_id = _course()
    session = db_session()
    services.get_step(session, context_id=context_id, step_id=step_id)
    try:
        wanted = parse_ids(request.form.getlist("student_ids"), "student")
    except ValueError as err:
        return _render_step_editor(context_id, step_id, error=str(err), status=400)
    wanted = picked_students_with_group(context_id, list(wanted))
    if not wanted:
        return _render_step_editor(
            context_id, step_id, error="Tick at least one student or pick a group.", status=400
        )
    students = student_ids_in_course(session, context_id=context_id, person_ids=wanted)
    if students != set(wanted):
        raise NotFoundError("Some of those students are not in this course.")
    if request.form.get("action") == "relock":
        relock_step_for_students(
            session, context_id=context_id, step_id=step_id, student_ids=wanted
        )
        notice = "relocked"
    else:
        unlock_step_for_students(
            session,
            context_id=context_id,
            step_id=step_id,
            student_ids=wanted,
            unlocked_by_id=ctx.person.id,
        )
        notice = "unlocked"
    session.commit()
    LOG.info("step %s %s for %d students context=%s", step_id, notice, len(wanted), context_id)
    return redirect(launch_url("pathways.edit_step", step_id=step_id, notice=notice) + "#unlock")


def _render_option_form(
    context_id: int,
    step: Step,
    form: OptionForm,
    option: Option | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    pathway = services.get_pathway(db_session(), context_id=context_id, pathway_id=step.pathway_id)
    return (
        render_template(
            "pathways/edit_option.html",
            pathway=pathway,
            step=step,
            option=option,
            form=form,
            career_clusters=CAREER_CLUSTERS,
            modalities=MODALITIES,
            challenge_levels=CHALLENGE_LEVELS,
            error=error,
            notice=None if error else _notice(),
        ),
        status,
    )


@bp.route("/manage/steps/<int:step_id>/options/new", methods=["GET", "POST"])
@require_role(TEACHER)
def create_option(step_id: int) -> Response | tuple[str, int]:
    """Add an option at the end of a step."""
    _, context_id = _course()
    session = db_session()
    step = services.get_step(session, context_id=context_id, step_id=step_id)
    if request.method == "GET":
        return _render_option_form(context_id, step, OptionForm())
    form = OptionForm.from_request(request.form)
    try:
        services.create_option(
            session, context_id=context_id, step_id=step_id, data=form.to_input(), once=True
        )
    except ValueError as err:
        session.rollback()
        return _render_option_form(context_id, step, form, error=str(err), status=400)
    session.commit()
    return redirect(launch_url("pathways.edit_step", step_id=step_id, notice="created"))


@bp.route("/manage/options/<int:option_id>", methods=["GET", "POST"])
@require_role(TEACHER)
def edit_option(option_id: int) -> Response | tuple[str, int]:
    """Change everything a teacher sets on an option."""
    _, context_id = _course()
    session = db_session()
    option = services.get_option(session, context_id=context_id, option_id=option_id)
    step = services.get_step(session, context_id=context_id, step_id=option.step_id)
    if request.method == "GET":
        return _render_option_form(context_id, step, OptionForm.from_option(option), option)
    form = OptionForm.from_request(request.form)
    try:
        services.update_option(
            session, context_id=context_id, option_id=option_id, data=form.to_input()
        )
    except ValueError as err:
        session.rollback()
        option = services.get_option(session, context_id=context_id, option_id=option_id)
        return _render_option_form(context_id, step, form, option, error=str(err), status=400)
    session.commit()
    return redirect(launch_url("pathways.edit_step", step_id=step.id, notice="saved"))


ITEM_ACTIONS = frozenset({"up", "down", "archive", "restore"})


def _moved(ids: list[int], item_id: int, direction: str) -> list[int] | None:
    """The order with the item swapped with its neighbour, or None when the item is no longer
    where the teacher's page showed it.

    A double-clicked "Move up" posts the same move twice; the second post finds the item one
    place higher than the page said, so it is ignored rather than moving the item again. The
    same goes for a page left open while a colleague reordered the list.
    """
    shown_at = request.form.get("shown_at", "")
    index = ids.index(item_id)
    if not (shown_at.isascii() and shown_at.isdigit()) or int(shown_at) != index:
        return None
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(ids):
        ids[index], ids[other] = ids[other], ids[index]
    return ids


@bp.post("/manage/<any(pathway, step, option):kind>/<int:item_id>/<action>")
@require_role(TEACHER)
def item_action(kind: str, item_id: int, action: str) -> Response:
    """Move a pathway, step or option up or down, archive it or restore it."""
    _, context_id = _course()
    if action not in ITEM_ACTIONS:
        raise NotFoundError("Unknown action.")
    session = db_session()
    notice = {"up": "moved", "down": "moved", "archive": "archived", "restore": "restored"}[action]
    moves = action in {"up", "down"}
    order: list[int] | None = None
    target: tuple[str, dict[str, int]]
    if kind == "pathway":
        services.get_pathway(session, context_id=context_id, pathway_id=item_id)
        if moves:
            ids = [
                p.id
                for p in services.list_pathways(
                    session, context_id=context_id, include_archived=True
                )
            ]
            order = _moved(ids, item_id, action)
            if order is not None:
                services.reorder_pathways(session, context_id=context_id, pathway_ids=order)
        elif action == "archive":
            services.archive_pathway(session, context_id=context_id, pathway_id=item_id)
            notice = "archived_pathway"
        else:
            services.restore_pathway(session, context_id=context_id, pathway_id=item_id)
        target = "pathways.manage", {}
    elif kind == "step":
        step = services.get_step(session, context_id=context_id, step_id=item_id)
        if moves:
            ids = [
                s.id
                for s in services.list_steps(
                    session,
                    context_id=context_id,
                    pathway_id=step.pathway_id,
                    include_archived=True,
                )
            ]
            order = _moved(ids, item_id, action)
            if order is not None:
                services.reorder_steps(
                    session, context_id=context_id, pathway_id=step.pathway_id, step_ids=order
                )
        elif action == "archive":
            services.archive_step(session, context_id=context_id, step_id=item_id)
        else:
            services.restore_step(session, context_id=context_id, step_id=item_id)
        target = "pathways.edit_pathway", {"pathway_id": step.pathway_id}
    else:
        option = services.get_option(session, context_id=context_id, option_id=item_id)
        if moves:
            ids = [
                o.id
                for o in services.list_options(
                    session, context_id=context_id, step_id=option.step_id, include_archived=True
                )
            ]
            order = _moved(ids, item_id, action)
            if order is not None:
                services.reorder_options(
                    session, context_id=context_id, step_id=option.step_id, option_ids=order
                )
        elif action == "archive":
            services.archive_option(session, context_id=context_id, option_id=item_id)
        else:
            services.restore_option(session, context_id=context_id, option_id=item_id)
        target = "pathways.edit_step", {"step_id": option.step_id}
    if moves and order is None:
        notice = "not_moved"
    session.commit()
    endpoint, values = target
    return redirect(f"{launch_url(endpoint, **values, notice=notice)}#{kind}-{item_id}")
