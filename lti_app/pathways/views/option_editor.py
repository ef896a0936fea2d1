"""The teacher's editor of one option: adding an option to a step, and changing it."""

from __future__ import annotations

from flask import redirect, render_template, request
from werkzeug.wrappers import Response

from lti_app.pathways import options as option_services
from lti_app.pathways import services
from lti_app.pathways.editing import (
    OPTION_FORM_FIELDS,
    OPTION_LABELS,
    StalePageError,
    option_values,
    redo_form,
    stale_message,
)
from lti_app.pathways.forms import CAREER_CLUSTERS, CHALLENGE_LEVELS, MODALITIES, OptionForm
from lti_app.pathways.models import Option, Step
from lti_app.pathways.views import TEACHER, bp, launch_course, page_notice
from lti_app.web import db_session, launch_url, require_role


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
            notice=None if error else page_notice(),
        ),
        status,
    )


@bp.route("/manage/steps/<int:step_id>/options/new", methods=["GET", "POST"])
@require_role(TEACHER)
def create_option(step_id: int) -> Response | tuple[str, int]:
    """Add an option at the end of a step."""
    _, context_id = launch_course()
    session = db_session()
    step = services.get_step(session, context_id=context_id, step_id=step_id)
    if request.method == "GET":
        return _render_option_form(context_id, step, OptionForm())
    form = OptionForm.from_request(request.form)
    try:
        option_services.create_option(
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
    _, context_id = launch_course()
    session = db_session()
    option = option_services.get_option(session, context_id=context_id, option_id=option_id)
    step = services.get_step(session, context_id=context_id, step_id=option.step_id)
    if request.method == "GET":
        return _render_option_form(context_id, step, OptionForm.from_option(option), option)
    form = OptionForm.from_request(request.form)
    try:
        option_services.update_option(
            session,
            context_id=context_id,
            option_id=option_id,
            data=form.to_input(),
            shown=form.shown,
        )
    except StalePageError as err:
        session.rollback()
        option = option_services.get_option(session, context_id=context_id, option_id=option_id)
        message = stale_message("option", err.edit, OPTION_LABELS, option_values(option), {})
        now = OptionForm.from_option(option)
        form = redo_form(form, now, err.edit, OPTION_FORM_FIELDS)
        return _render_option_form(context_id, step, form, option, error=message, status=409)
    except ValueError as err:
        session.rollback()
        option = option_services.get_option(session, context_id=context_id, option_id=option_id)
        return _render_option_form(context_id, step, form, option, error=str(err), status=400)
    session.commit()
    return redirect(launch_url("pathways.edit_step", step_id=step.id, notice="saved"))
