"""The teacher's competency editor: build, order and archive a framework; the blueprint and
what its pages share.

A competency's edit page is in `edit_views`; import, export and copying from another course are
in `transfer_views`; both on this same blueprint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from flask import Blueprint, Flask, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response as BaseResponse

from lti_app.competencies.errors import CompetencyError, InvalidCompetencyError
from lti_app.competencies.forms import KIND_LABELS, CompetencyForm
from lti_app.competencies.models import Competency
from lti_app.competencies.queries import (
    CompetencyNode,
    competency_tree,
    get_competency,
    list_competencies,
    prerequisite_map,
)
from lti_app.competencies.services import (
    archive_competency,
    create_competency,
    find_same_competency,
    reorder_competencies,
    unarchive_competency,
)
from lti_app.courses.common import TEACHER, Refusal, assessable, current_course, domain_errors
from lti_app.courses.recording import queue_scores
from lti_app.courses.views import notice_text
from lti_app.db import lock_course
from lti_app.display import sentence
from lti_app.errors import AppError
from lti_app.mastery.scales import recompute_course
from lti_app.mastery.services import students_with_evidence
from lti_app.pathways.relocking import MasterySnapshot, mastery_snapshot
from lti_app.pathways.views.warnings import LossWarning, unconfirmed_loss
from lti_app.web import add_nav_item, db_session, launch_url, require_role

bp = Blueprint("competencies", __name__, url_prefix="/competencies")

NOTICES = {
    "created": "The competency is added.",
    "saved": "The competency is saved.",
    "created_under_evidence": "The competency is added. Its parent already had evidence from {n} "
    "student(s): that evidence keeps counting, standing in for each sub-competency a student "
    "has no evidence on yet, so no level changed. Record new evidence on the sub-competencies.",
    "saved_under_evidence": "The competency is saved. Its new parent already had evidence from "
    "{n} student(s): that evidence keeps counting, standing in for each sub-competency a "
    "student has no evidence on yet. Record new evidence on the sub-competencies.",
    "moved": "The order is saved.",
    "archived": "The competency (and any sub-competencies) is archived. Evidence is kept, and "
    "so are the students' levels on it: its LMS gradebook column, if it has one, keeps their "
    "scores. The Gradebook page still lists the column while it is on; turn it off there to "
    "stop sending to it.",
    "unarchived": "The competency is back in the framework.",
    "imported": "Imported: {n} competencies created or changed.",
    "copied": "Copied {n} competencies.",
    "copied_pathways": "Copied {n} competencies and the pathways.",
}
# An import, a copy or an unarchive can give sub-competencies to a competency that already has
# evidence, as the form can (the form warns before; these say it after).
UNDER_EVIDENCE = (
    " {m} competencies that had evidence now have sub-competencies: that evidence keeps "
    "counting, standing in for each sub-competency a student has no evidence on yet, so no "
    "level changed. Record new evidence on the sub-competencies."
)
NOTICES |= {
    f"{name}_under_evidence": NOTICES[name] + UNDER_EVIDENCE
    for name in ("unarchived", "imported", "copied", "copied_pathways")
}
CONCURRENT_EDIT = (
    "The course's competencies changed while this was being saved (in another tab, or was the "
    "button pressed twice?), so nothing was saved. Look at the competencies, then try again."
)


@bp.record_once
def _register(state: BlueprintSetupState) -> None:
    add_nav_item(cast(Flask, state.app), "competencies.index", "Competencies", (TEACHER,), 20)


def _posted_ids(name: str) -> set[int]:
    """The ids ticked in a posted form, to show them ticked again (unreadable ones dropped)."""
    # isascii(): str.isdigit() also takes "²", which int() refuses (a 500 on the refused form).
    return {
        int(v)
        for v in (raw.strip() for raw in request.form.getlist(name))
        if v.isascii() and v.isdigit() and len(v) < 19
    }


def _evidence_on_leaves(context_id: int) -> dict[int, int]:
    """Students with evidence on each competency that has no sub-competency yet: choosing one
    as a parent is worth a word to the teacher before and after."""
    session = db_session()
    everything = list_competencies(session, context_id=context_id, include_archived=True)
    counts = students_with_evidence(session, context_id=context_id)
    return {c.id: counts[c.id] for c in assessable(everything) if c.id in counts}


def _became_parents(context_id: int, evidence_on: dict[int, int]) -> int:
    """How many of the competencies that had evidence (`_evidence_on_leaves` taken before a
    change) have active sub-competencies now."""
    if not evidence_on:
        return 0
    everything = list_competencies(db_session(), context_id=context_id, include_archived=True)
    parents = {c.parent_id for c in everything if c.parent_id is not None and not c.is_archived}
    return len(parents & evidence_on.keys())


def _framework_notice(notice: str, became_parents: int, **args: Any) -> BaseResponse:
    if became_parents:
        notice, args = f"{notice}_under_evidence", {**args, "m": became_parents}
    return redirect(launch_url("competencies.index", notice=notice, **args), 303)


def _parent_notice(notice: str, parent_id: int | None, evidence_on: dict[int, int]) -> BaseResponse:
    n = evidence_on.get(parent_id, 0) if parent_id is not None else 0
    if n:
        return redirect(
            launch_url("competencies.index", notice=f"{notice}_under_evidence", n=n), 303
        )
    return redirect(launch_url("competencies.index", notice=notice), 303)


def _recompute(context_id: int) -> None:
    """A changed hierarchy changes parents' roll-ups: recompute and queue what changed."""
    session = db_session()
    queue_scores(session, recompute_course(session, context_id=context_id))


def _snapshot_to_ask(context_id: int, *, may_take_mastery: bool) -> MasterySnapshot | None:
    """The course's mastery before a change, when the change may take some (reading it costs
    four queries over the whole course). Taken even once the teacher confirmed: the confirm
    holds only for what they were warned of."""
    if not may_take_mastery:
        return None
    return mastery_snapshot(db_session(), context_id=context_id)


def _unconfirmed_losses(context_id: int, before: MasterySnapshot | None) -> LossWarning | None:
    """What a change (made and recomputed, not committed) takes from students beyond what
    the teacher confirmed, if anything: a new sub-competency has no evidence yet, so students
    who mastered its parent through the other parts stop mastering it; a parent left with no
    sub-competency in use counts only the evidence recorded on it directly, usually none
    (mastery.rollup)."""
    return None if before is None else unconfirmed_loss(context_id, before)


# --- the framework ----------------------------------------------------------------------------


def _index_page(
    errors: Sequence[str | Refusal] = (),
    status: int = 200,
    losing: LossWarning | None = None,
    archiving: int | None = None,
    unarchiving: int | None = None,
) -> tuple[str, int]:
    """The framework page; `errors` mark the add form's fields they are about, and
    `losing` what the posted change (adding, or archiving `archiving`, or unarchiving
    `unarchiving`) would take from students, for the teacher to confirm."""
    course = current_course()
    session = db_session()
    cid = course.context_id
    tree = competency_tree(session, context_id=cid, include_archived=True)
    rows: list[tuple[Competency, int, bool, bool]] = []

    def walk(nodes: Sequence[CompetencyNode], depth: int) -> None:
        for index, node in enumerate(nodes):
            rows.append((node.competency, depth, index > 0, index < len(nodes) - 1))
            walk(node.children, depth + 1)

    walk(tree, 0)
    everything = [row[0] for row in rows]
    code_by_id = {c.id: c.code for c in everything}
    prerequisites = {
        cid_: sorted(code_by_id[p] for p in pre if p in code_by_id)
        for cid_, pre in prerequisite_map(session, context_id=cid).items()
    }
    return (
        render_template(
            "competencies/index.html",
            ctx=course.ctx,
            title="Competencies",
            rows=rows,
            active=[c for c in everything if not c.is_archived],
            prerequisites=prerequisites,
            code_by_id=code_by_id,
            kinds=KIND_LABELS,
            evidence_on=_evidence_on_leaves(cid),
            form=request.form if request.method == "POST" else {},
            selected=_posted_ids("prerequisite_ids") if request.method == "POST" else set(),
            notice=notice_text(NOTICES),
            errors=list(errors),
            losing=losing.lines if losing else [],
            warned=losing,
            archiving=archiving,
            unarchiving=unarchiving,
        ),
        status,
    )


@bp.get("/")
@require_role(TEACHER)
def index() -> tuple[str, int]:
    """The course's framework as a tree, with ordering, archiving and a form to add one."""
    return _index_page()


@bp.post("/")
@require_role(TEACHER)
def create() -> BaseResponse | tuple[str, int]:
    course = current_course()
    session = db_session()
    losing: LossWarning | None = None
    try:
        data = CompetencyForm.from_form(request.form)
        with domain_errors():
            lock_course(session, context_id=course.context_id)
            evidence_on = _evidence_on_leaves(course.context_id)
            before = _snapshot_to_ask(
                course.context_id, may_take_mastery=data.parent_id is not None
            )
            same = find_same_competency(
                session,
                context_id=course.context_id,
                code=data.code,
                title=data.title,
                description=data.description,
                kind=data.kind,
                parent_id=data.parent_id,
                prerequisite_ids=data.prerequisite_ids,
            )
            # The same competency already there: the first press of a double click added it.
            if same is None:
                create_competency(
                    session,
                    context_id=course.context_id,
                    code=data.code,
                    title=data.title,
                    description=data.description,
                    parent_id=data.parent_id,
                    kind=data.kind,
                    prerequisite_ids=data.prerequisite_ids,
                )
                if data.parent_id is not None:
                    _recompute(course.context_id)  # the parent's level now rolls up
                    losing = _unconfirmed_losses(course.context_id, before)
    except (CompetencyError, ValueError) as err:
        session.rollback()
        return _index_page([refused_field(err, "new")], 400)
    except IntegrityError:
        session.rollback()
        return _index_page([CONCURRENT_EDIT], 409)
    if losing:
        session.rollback()
        return _index_page(losing=losing)
    session.commit()
    return _parent_notice("created", None if same else data.parent_id, evidence_on)


def refused_field(err: Exception, prefix: str) -> Refusal:
    """The refusal as the competency form with ids `prefix`-code, `prefix`-title... shows it:
    the one field it is about marked and linked, if it is about one."""
    field = err.field if isinstance(err, InvalidCompetencyError) else None
    return Refusal(sentence(str(err)), f"{prefix}-{field}" if field else None)


@bp.post("/<int:competency_id>/move")
@require_role(TEACHER)
def move(competency_id: int) -> BaseResponse:
    """Move a competency one place up or down among its siblings."""
    course = current_course()
    session = db_session()
    direction = request.form.get("direction")
    if direction not in {"up", "down"}:
        raise AppError("Choose up or down.")
    with domain_errors():
        competency = get_competency(
            session, context_id=course.context_id, competency_id=competency_id
        )
        siblings = [
            c.id
            for c in list_competencies(session, context_id=course.context_id, include_archived=True)
            if c.parent_id == competency.parent_id
        ]
        at = siblings.index(competency_id)
        other = at - 1 if direction == "up" else at + 1
        if 0 <= other < len(siblings):
            siblings[at], siblings[other] = siblings[other], siblings[at]
            reorder_competencies(
                session,
                context_id=course.context_id,
                parent_id=competency.parent_id,
                ordered_ids=siblings,
            )
    session.commit()
    return redirect(
        launch_url("competencies.index", notice="moved", _anchor=f"c-{competency_id}"), 303
    )


@bp.post("/<int:competency_id>/archive")
@require_role(TEACHER)
def archive(competency_id: int) -> BaseResponse | tuple[str, int]:
    return _set_archived(competency_id, archived=True)


@bp.post("/<int:competency_id>/unarchive")
@require_role(TEACHER)
def unarchive(competency_id: int) -> BaseResponse | tuple[str, int]:
    return _set_archived(competency_id, archived=False)


def _set_archived(competency_id: int, *, archived: bool) -> BaseResponse | tuple[str, int]:
    course = current_course()
    session = db_session()
    change = archive_competency if archived else unarchive_competency
    evidence_on = {} if archived else _evidence_on_leaves(course.context_id)
    losing: LossWarning | None = None
    try:
        with domain_errors():
            before = mastery_snapshot(session, context_id=course.context_id)
            change(session, context_id=course.context_id, competency_id=competency_id)
            became_parents = _became_parents(course.context_id, evidence_on)
            _recompute(course.context_id)
            # A sub-competency back in the framework is a part its parent's students may have
            # no evidence on, as when one is added; archiving a parent's last part in use
            # leaves the parent judged on its own evidence, usually none.
            losing = _unconfirmed_losses(course.context_id, before)
    except CompetencyError as err:
        session.rollback()
        return _index_page([sentence(str(err))], 400)
    if losing:
        session.rollback()
        if archived:
            return _index_page(losing=losing, archiving=competency_id)
        return _index_page(losing=losing, unarchiving=competency_id)
    session.commit()
    return _framework_notice("archived" if archived else "unarchived", became_parents)


# The edit page (competencies.edit_views) and the import, export and copy pages
# (competencies.transfer_views) are routes of this blueprint too: importing them here registers
# them wherever the blueprint is (Flask's "Larger Applications" pattern).
from lti_app.competencies import edit_views, transfer_views  # noqa: E402, F401
