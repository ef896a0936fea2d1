"""The teacher's editor: the course's pathways, a pathway's steps (with its options listed),
and unlocking a step for chosen students. A single option's form is in `option_editor`."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from flask import redirect, render_template, request
from werkzeug.wrappers import Response

from lti_app.competencies.models import Competency
from lti_app.competencies.queries import list_competencies
from lti_app.courses.common import Refusal
from lti_app.errors import NotFoundError
from lti_app.insights.views import picked_students_with_group
from lti_app.pathways import options as option_services
from lti_app.pathways import services
from lti_app.pathways.editing import (
    PATHWAY_LABELS,
    STEP_LABELS,
    StalePageError,
    pathway_values,
    redo_form,
    stale_message,
    step_values,
)
from lti_app.pathways.errors import ParentCompetencyError
from lti_app.pathways.forms import (
    PathwayForm,
    StepForm,
    minutes_label,
    parse_ids,
)
from lti_app.pathways.unlocking import (
    manual_unlock_ids_by_person,
    relock_step_for_students,
    unlock_step_for_students,
)
from lti_app.pathways.views import TEACHER, bp, launch_course, page_notice
from lti_app.pathways.views.warnings import LossWarning, stuck_warnings, unconfirmed_lock_out
from lti_app.roster.services import list_students, student_ids_in_course
from lti_app.web import db_session, launch_url, require_role

LOG = logging.getLogger(__name__)


def _competencies(context_id: int, keep: Collection[int | None] = ()) -> list[Competency]:
    """The competencies a form offers: the course's current ones, then the archived ones in
    `keep` (what the step or pathway uses, or the teacher ticked). A form that did not offer
    an archived competency its step still uses would drop it when saved as shown."""
    session = db_session()
    offered = list_competencies(session, context_id=context_id)
    if set(keep) - {None} <= {c.id for c in offered}:
        return offered
    everything = list_competencies(session, context_id=context_id, include_archived=True)
    return offered + [c for c in everything if c.is_archived and c.id in keep]


def _parent_ids(competencies: list[Competency]) -> set[int]:
    """Competencies with sub-competencies: a step's work cannot be evidence for them."""
    return {c.parent_id for c in competencies if c.parent_id is not None and not c.is_archived}


def _names(context_id: int) -> dict[int, str]:
    """Every competency's name, archived ones marked (a step may still use one)."""
    everything = list_competencies(db_session(), context_id=context_id, include_archived=True)
    return {
        c.id: f"{c.code} {c.title}" + (" (archived)" if c.is_archived else "") for c in everything
    }


def _step_ids(form: StepForm) -> set[int | None]:
    return {form.competency_id, *form.prerequisite_ids}


def _step_refusal(err: ValueError, prefix: str) -> Refusal:
    """A refused step form as its page shows it: the step field it is about (ids `prefix`-...)
    marked and linked, if it is about one."""
    field = f"{prefix}-competency" if isinstance(err, ParentCompetencyError) else None
    return Refusal(str(err), field)


@bp.get("/manage")
@require_role(TEACHER)
def manage() -> str:
    """The course's pathways, with a form for a new one."""
    _, context_id = launch_course()
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
            competencies=_competencies(context_id, keep=form.competency_ids),
            form=form,
            error=error,
            notice=None if error else page_notice(),
        ),
        status,
    )


@bp.post("/manage")
@require_role(TEACHER)
def create_pathway() -> Response | tuple[str, int]:
    """Add a pathway at the end of the course's list."""
    _, context_id = launch_course()
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
    errors: Sequence[Refusal] = (),
    status: int = 200,
) -> tuple[str, int]:
    session = db_session()
    pathway = services.get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    stored = services.pathway_competency_ids(session, context_id=context_id, pathway_id=pathway_id)
    if form is None:
        form = PathwayForm.from_pathway(pathway, stored)
    step_form = step_form or StepForm()
    steps = services.list_steps(
        session, context_id=context_id, pathway_id=pathway_id, include_archived=True
    )
    competencies = _competencies(context_id, keep=_step_ids(step_form))
    return (
        render_template(
            "pathways/edit_pathway.html",
            pathway=pathway,
            form=form,
            step_form=step_form,
            steps=steps,
            competencies=competencies,
            pathway_competencies=_competencies(context_id, keep={*stored, *form.competency_ids}),
            parent_ids=_parent_ids(competencies),
            competency_names=_names(context_id),
            warnings=stuck_warnings(context_id, pathway_id),
            errors=errors,
            errors_title="Not saved:",
            notice=None if errors else page_notice(),
        ),
        status,
    )


@bp.route("/manage/<int:pathway_id>", methods=["GET", "POST"])
@require_role(TEACHER)
def edit_pathway(pathway_id: int) -> Response | tuple[str, int]:
    """Change a pathway; list its steps with a form for a new one."""
    _, context_id = launch_course()
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
            shown=form.shown,
        )
    except StalePageError as err:
        session.rollback()
        pathway = services.get_pathway(session, context_id=context_id, pathway_id=pathway_id)
        ids = services.pathway_competency_ids(session, context_id=context_id, pathway_id=pathway_id)
        message = stale_message(
            "pathway", err.edit, PATHWAY_LABELS, pathway_values(pathway, ids), _names(context_id)
        )
        now = PathwayForm.from_pathway(pathway, ids)
        return _render_pathway_editor(
            context_id,
            pathway_id,
            form=redo_form(form, now, err.edit),
            errors=[Refusal(message)],
            status=409,
        )
    except ValueError as err:
        session.rollback()
        return _render_pathway_editor(
            context_id, pathway_id, form=form, errors=[Refusal(str(err))], status=400
        )
    session.commit()
    return redirect(launch_url("pathways.edit_pathway", pathway_id=pathway_id, notice="saved"))


@bp.post("/manage/<int:pathway_id>/steps")
@require_role(TEACHER)
def create_step(pathway_id: int) -> Response | tuple[str, int]:
    """Add a step at the end of a pathway."""
    _, context_id = launch_course()
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
            context_id,
            pathway_id,
            step_form=step_form,
            errors=[_step_refusal(err, "new-step")],
            status=400,
        )
    session.commit()
    return redirect(launch_url("pathways.edit_step", step_id=step.id, notice="created"))


def _render_step_editor(
    context_id: int,
    step_id: int,
    form: StepForm | None = None,
    errors: Sequence[Refusal] = (),
    status: int = 200,
    locking: LossWarning | None = None,
) -> tuple[str, int]:
    """The step's page; `locking` names the students a change the teacher has to confirm
    would lock out of their work here (the change, as typed, is in `form`), and carries the
    confirm's proof of what it named."""
    session = db_session()
    step = services.get_step(session, context_id=context_id, step_id=step_id)
    pathway = services.get_pathway(session, context_id=context_id, pathway_id=step.pathway_id)
    stored = StepForm.from_step(
        step, services.step_prerequisite_ids(session, context_id=context_id, step_id=step_id)
    )
    form = form or stored
    competencies = _competencies(context_id, keep=_step_ids(stored) | _step_ids(form))
    return (
        render_template(
            "pathways/edit_step.html",
            pathway=pathway,
            step=step,
            form=form,
            options=option_services.list_options(
                session, context_id=context_id, step_id=step_id, include_archived=True
            ),
            competencies=competencies,
            parent_ids=_parent_ids(competencies),
            students=list_students(session, context_id=context_id),
            unlocked_ids=manual_unlock_ids_by_person(
                session, context_id=context_id, step_id=step_id
            ),
            minutes_label=minutes_label,
            warnings=stuck_warnings(context_id, step.pathway_id),
            errors=errors,
            errors_title="Not saved:",
            locking=locking.lines if locking else [],
            warned=locking,
            notice=None if errors or locking else page_notice(),
        ),
        status,
    )


@bp.route("/manage/steps/<int:step_id>", methods=["GET", "POST"])
@require_role(TEACHER)
def edit_step(step_id: int) -> Response | tuple[str, int]:
    """Change a step; list its options; unlock it for chosen students."""
    _, context_id = launch_course()
    if request.method == "GET":
        return _render_step_editor(context_id, step_id)
    session = db_session()
    form = StepForm.from_request(request.form)
    # Students part-way through this step would silently find it locked: ask first, and
    # again on the confirm if it now locks out students the warning did not name.
    locking = unconfirmed_lock_out(context_id, step_id, form)
    if locking:
        return _render_step_editor(context_id, step_id, form=form, locking=locking)
    try:
        services.update_step(
            session,
            context_id=context_id,
            step_id=step_id,
            title=form.title,
            description=form.description_html,
            competency_id=form.competency_id,
            prerequisite_ids=form.prerequisite_ids,
            shown=form.shown,
        )
    except StalePageError as err:
        session.rollback()
        step = services.get_step(session, context_id=context_id, step_id=step_id)
        ids = services.step_prerequisite_ids(session, context_id=context_id, step_id=step_id)
        message = stale_message(
            "step", err.edit, STEP_LABELS, step_values(step, ids), _names(context_id)
        )
        now = StepForm.from_step(step, ids)
        return _render_step_editor(
            context_id,
            step_id,
            form=redo_form(form, now, err.edit),
            errors=[Refusal(message)],
            status=409,
        )
    except ValueError as err:
        session.rollback()
        return _render_step_editor(
            context_id,
            step_id,
            form=form,
            errors=[_step_refusal(err, "step")],
            status=400,
        )
    session.commit()
    return redirect(launch_url("pathways.edit_step", step_id=step_id, notice="saved"))


@bp.post("/manage/steps/<int:step_id>/unlock")
@require_role(TEACHER)
def unlock_step(step_id: int) -> Response | tuple[str, int]:
    """Open a step for the checked students (or withdraw their unlock) whatever their mastery."""
    ctx, context_id = launch_course()
    session = db_session()
    services.get_step(session, context_id=context_id, step_id=step_id)
    try:
        wanted = parse_ids(request.form.getlist("student_ids"), "student")
    except ValueError as err:
        return _render_step_editor(context_id, step_id, errors=[Refusal(str(err))], status=400)
    wanted = picked_students_with_group(context_id, list(wanted))
    if not wanted:
        return _render_step_editor(
            context_id,
            step_id,
            errors=[Refusal("Tick at least one student or pick a group.")],
            status=400,
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
