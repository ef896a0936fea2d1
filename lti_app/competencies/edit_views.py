"""A competency's edit page: its code, title, description, kind, parent and prerequisites.
Routes of the competencies blueprint (competencies.views), with the framework page's helpers."""

from __future__ import annotations

from collections.abc import Sequence

from flask import render_template, request
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response as BaseResponse

from lti_app.competencies.errors import CompetencyError
from lti_app.competencies.forms import KIND_LABELS, CompetencyForm
from lti_app.competencies.queries import get_competency, list_competencies, prerequisite_map
from lti_app.competencies.services import edit_competency, set_prerequisites
from lti_app.competencies.views import (
    CONCURRENT_EDIT,
    _evidence_on_leaves,
    _parent_notice,
    _posted_ids,
    _recompute,
    _snapshot_to_ask,
    _unconfirmed_losses,
    bp,
    refused_field,
)
from lti_app.courses.common import TEACHER, Refusal, current_course, domain_errors
from lti_app.db import lock_course
from lti_app.pathways.views.warnings import LossWarning
from lti_app.web import db_session, require_role


def _edit_page(
    competency_id: int,
    errors: Sequence[str | Refusal] = (),
    status: int = 200,
    losing: LossWarning | None = None,
) -> tuple[str, int]:
    course = current_course()
    session = db_session()
    with domain_errors():
        competency = get_competency(
            session, context_id=course.context_id, competency_id=competency_id
        )
    everything = list_competencies(session, context_id=course.context_id, include_archived=True)
    others = [c for c in everything if c.id != competency_id and not c.is_archived]
    stored = prerequisite_map(session, context_id=course.context_id).get(competency_id, set())
    if request.method == "POST":  # the page again after a refused save: what was typed
        form = request.form
        values = {k: form.get(k, "") for k in ("code", "title", "description", "kind")}
        values["parent_id"] = form.get("parent_id", "").strip()
        selected = _posted_ids("prerequisite_ids")
    else:
        values = {
            "code": competency.code,
            "title": competency.title,
            "description": competency.description,
            "kind": competency.kind.value,
            "parent_id": str(competency.parent_id or ""),
        }
        selected = stored
    # An archived parent or prerequisite is still this competency's: offer it (marked), or
    # saving the page would silently drop it.
    parents = others + [c for c in everything if c.is_archived and c.id == competency.parent_id]
    prereq_choices = others + [
        c
        for c in everything
        if c.is_archived and c.id in stored | selected and c.id != competency_id
    ]
    return (
        render_template(
            "competencies/edit.html",
            ctx=course.ctx,
            title=f"Edit {competency.code}",
            competency=competency,
            values=values,
            parents=parents,
            prereq_choices=prereq_choices,
            prerequisite_ids=selected,
            kinds=KIND_LABELS,
            evidence_on=_evidence_on_leaves(course.context_id),
            errors=list(errors),
            losing=losing.lines if losing else [],
            warned=losing,
            notice="",
        ),
        status,
    )


@bp.get("/<int:competency_id>/edit")
@require_role(TEACHER)
def edit(competency_id: int) -> tuple[str, int]:
    """Change code, title, description, kind, parent and prerequisites."""
    return _edit_page(competency_id)


@bp.post("/<int:competency_id>/edit")
@require_role(TEACHER)
def save(competency_id: int) -> BaseResponse | tuple[str, int]:
    course = current_course()
    session = db_session()
    losing: LossWarning | None = None
    try:
        data = CompetencyForm.from_form(request.form)
        with domain_errors():
            lock_course(session, context_id=course.context_id)
            evidence_on = _evidence_on_leaves(course.context_id)
            before = get_competency(
                session, context_id=course.context_id, competency_id=competency_id
            ).parent_id
            snapshot = _snapshot_to_ask(
                course.context_id, may_take_mastery=before != data.parent_id
            )
            edit_competency(
                session,
                context_id=course.context_id,
                competency_id=competency_id,
                code=data.code,
                title=data.title,
                description=data.description,
                kind=data.kind,
                parent_id=data.parent_id,
            )
            set_prerequisites(
                session,
                context_id=course.context_id,
                competency_id=competency_id,
                prerequisite_ids=data.prerequisite_ids,
            )
            if before != data.parent_id:
                _recompute(course.context_id)
                losing = _unconfirmed_losses(course.context_id, snapshot)
    except (CompetencyError, ValueError) as err:
        session.rollback()
        return _edit_page(competency_id, [refused_field(err, "edit")], 400)
    except IntegrityError:
        session.rollback()
        return _edit_page(competency_id, [CONCURRENT_EDIT], 409)
    if losing:
        session.rollback()
        return _edit_page(competency_id, losing=losing)
    session.commit()
    return _parent_notice(
        "saved", data.parent_id if before != data.parent_id else None, evidence_on
    )
