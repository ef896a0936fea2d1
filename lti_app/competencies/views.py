"""The teacher's competency editor: build, order, archive, import, export and copy a framework."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response as BaseResponse

from lti_app.competencies.errors import CompetencyError, ImportFailedError, ImportProblem
from lti_app.competencies.forms import IMPORT_FORMATS, KIND_LABELS, CompetencyForm, sentence
from lti_app.competencies.importing import (
    MAX_ROWS,
    copy_framework,
    export_csv,
    import_case,
    import_csv,
)
from lti_app.competencies.models import Competency
from lti_app.competencies.services import (
    CompetencyNode,
    archive_competency,
    competency_tree,
    create_competency,
    edit_competency,
    find_same_competency,
    get_competency,
    list_competencies,
    prerequisite_map,
    reorder_competencies,
    set_prerequisites,
    unarchive_competency,
)
from lti_app.courses.common import TEACHER, current_course, domain_errors, parse_id
from lti_app.courses.queries import taught_courses
from lti_app.courses.recording import queue_scores
from lti_app.courses.views import assessable, notice_text
from lti_app.csvsafe import EXCEL_UTF8
from lti_app.db import lock_course
from lti_app.errors import AppError, NotFoundError
from lti_app.mastery.scales import recompute_course
from lti_app.mastery.services import students_with_evidence
from lti_app.pathways.copying import copy_pathways
from lti_app.pathways.errors import CopyError
from lti_app.roster.services import teaches_course
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
    "archived": "The competency (and any sub-competencies) is archived. Evidence is kept.",
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
MAX_PASTE = 2_000_000
CONCURRENT_EDIT = (
    "The course's competencies changed while this was being saved (in another tab, or was the "
    "button pressed twice?), so nothing was saved. Look at the competencies, then try again."
)
CONCURRENT_IMPORT = (
    "The course's competencies changed while this file was being imported (was Import pressed "
    "twice?), so nothing was imported from it. Look at the competencies, then import the file "
    "again if it is still needed."
)


@bp.record_once
def _register(state: BlueprintSetupState) -> None:
    add_nav_item(cast(Flask, state.app), "competencies.index", "Competencies", (TEACHER,), 20)


def _posted_ids(name: str) -> set[int]:
    """The ids ticked in a posted form, to show them ticked again (unreadable ones dropped)."""
    return {int(v) for v in request.form.getlist(name) if v.strip().isdigit() and len(v) < 19}


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


# --- the framework ----------------------------------------------------------------------------


def _index_page(errors: Sequence[str] = (), status: int = 200) -> tuple[str, int]:
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
    try:
        data = CompetencyForm.from_form(request.form)
        with domain_errors():
            lock_course(session, context_id=course.context_id)
            evidence_on = _evidence_on_leaves(course.context_id)
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
    except (CompetencyError, ValueError) as err:
        session.rollback()
        return _index_page([sentence(str(err))], 400)
    except IntegrityError:
        session.rollback()
        return _index_page([CONCURRENT_EDIT], 409)
    session.commit()
    return _parent_notice("created", None if same else data.parent_id, evidence_on)


def _edit_page(
    competency_id: int, errors: Sequence[str] = (), status: int = 200
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
    try:
        data = CompetencyForm.from_form(request.form)
        with domain_errors():
            lock_course(session, context_id=course.context_id)
            evidence_on = _evidence_on_leaves(course.context_id)
            before = get_competency(
                session, context_id=course.context_id, competency_id=competency_id
            ).parent_id
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
    except (CompetencyError, ValueError) as err:
        session.rollback()
        return _edit_page(competency_id, [sentence(str(err))], 400)
    except IntegrityError:
        session.rollback()
        return _edit_page(competency_id, [CONCURRENT_EDIT], 409)
    session.commit()
    return _parent_notice(
        "saved", data.parent_id if before != data.parent_id else None, evidence_on
    )


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
    try:
        with domain_errors():
            change(session, context_id=course.context_id, competency_id=competency_id)
            became_parents = _became_parents(course.context_id, evidence_on)
            _recompute(course.context_id)
    except CompetencyError as err:
        session.rollback()
        return _index_page([sentence(str(err))], 400)
    session.commit()
    return _framework_notice("archived" if archived else "unarchived", became_parents)


# --- import and export ------------------------------------------------------------------------


def _import_page(
    problems: Sequence[ImportProblem] = (), errors: Sequence[str] = (), status: int = 200
) -> tuple[str, int]:
    course = current_course()
    return (
        render_template(
            "competencies/import.html",
            ctx=course.ctx,
            title="Import competencies",
            formats=IMPORT_FORMATS,
            chosen=request.form.get("format", "csv"),
            pasted=request.form.get("text", "") if request.method == "POST" else "",
            problems=list(problems),
            errors=list(errors),
            notice="",
            max_rows=MAX_ROWS,
            max_megabytes=(current_app.config.get("MAX_CONTENT_LENGTH") or 0) // 2**20,
        ),
        status,
    )


@bp.get("/import")
@require_role(TEACHER)
def import_form() -> tuple[str, int]:
    """Upload or paste a CSV or CASE JSON framework."""
    return _import_page()


@bp.post("/import")
@require_role(TEACHER)
def import_framework() -> BaseResponse | tuple[str, int]:
    """Import all or nothing; every problem is listed with its line or identifier and column."""
    course = current_course()
    session = db_session()
    kind = request.form.get("format", "csv")
    if kind not in IMPORT_FORMATS:
        return _import_page(errors=["Choose CSV or CASE JSON."], status=400)
    upload = request.files.get("file")
    data: bytes | str
    if upload is not None and upload.filename:
        data = upload.read()
        if not data.strip():
            message = f"The file “{upload.filename}” is empty: choose the file with the framework."
            return _import_page(errors=[message], status=400)
    else:
        data = request.form.get("text", "")
        if len(data) > MAX_PASTE:
            message = (
                f"The pasted text is longer than {MAX_PASTE:,} characters, the most that can be "
                "pasted; nothing was imported. Save it as a file and choose the file instead."
            )
            return _import_page(errors=[message], status=400)
    if not data.strip():
        return _import_page(errors=["Choose a file or paste the framework."], status=400)
    evidence_on = _evidence_on_leaves(course.context_id)
    try:
        with domain_errors():
            if kind == "csv":
                summary = import_csv(session, context_id=course.context_id, data=data)
            else:
                summary = import_case(session, context_id=course.context_id, data=data)
            became_parents = _became_parents(course.context_id, evidence_on)
            _recompute(course.context_id)
        session.commit()
    except ImportFailedError as err:
        session.rollback()
        return _import_page(problems=err.problems, status=400)
    except (CompetencyError, ValueError) as err:
        session.rollback()
        return _import_page(errors=[sentence(str(err))], status=400)
    except IntegrityError:
        # Another import (Import pressed twice, a second tab) added the same codes meanwhile.
        session.rollback()
        return _import_page(errors=[CONCURRENT_IMPORT], status=409)
    return _framework_notice("imported", became_parents, n=summary.created + summary.updated)


@bp.get("/export.csv")
@require_role(TEACHER)
def export() -> Response:
    """Download the framework as CSV (the same columns the import reads)."""
    course = current_course()
    text = export_csv(db_session(), context_id=course.context_id)
    context = course.ctx.context
    label = (context.label or context.context_id) if context is not None else "course"
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-") or "course"
    return Response(
        EXCEL_UTF8 + text,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="competencies-{safe}.csv"',
            "Cache-Control": "no-store",
        },
    )


# --- copy from another course -----------------------------------------------------------------


def _copy_page(errors: Sequence[str] = (), status: int = 200) -> tuple[str, int]:
    course = current_course()
    return (
        render_template(
            "competencies/copy.html",
            ctx=course.ctx,
            title="Copy from another course",
            courses=taught_courses(
                db_session(), person_id=course.teacher_id, exclude_context_id=course.context_id
            ),
            errors=list(errors),
            notice="",
        ),
        status,
    )


@bp.get("/copy")
@require_role(TEACHER)
def copy_form() -> tuple[str, int]:
    """Pick another course you teach (on this LMS) to copy its framework and pathways from."""
    return _copy_page()


@bp.post("/copy")
@require_role(TEACHER)
def copy() -> BaseResponse | tuple[str, int]:
    course = current_course()
    session = db_session()
    source_id = parse_id(request.form.get("source_context_id"))
    allowed = {
        c.id
        for c in taught_courses(
            session, person_id=course.teacher_id, exclude_context_id=course.context_id
        )
    }
    if source_id not in allowed or not teaches_course(
        session, context_id=source_id, person_id=course.teacher_id
    ):
        raise NotFoundError("You do not teach that course on this LMS, so it cannot be copied.")
    with_pathways = request.form.get("pathways") == "on"
    try:
        # A second press of Copy waits for the first, then finds its work done (copying is
        # matched by code, and a pathway already copied unchanged is not copied again).
        lock_course(session, context_id=course.context_id)
        evidence_on = _evidence_on_leaves(course.context_id)
        id_map = copy_framework(session, from_context_id=source_id, to_context_id=course.context_id)
        became_parents = _became_parents(course.context_id, evidence_on)
        if with_pathways:
            copy_pathways(
                session,
                from_context_id=source_id,
                to_context_id=course.context_id,
                competency_id_map=id_map,
            )
        _recompute(course.context_id)
    except ImportFailedError as err:
        session.rollback()
        return _copy_page([str(p) for p in err.problems], 400)
    except (CompetencyError, CopyError, ValueError) as err:
        session.rollback()
        return _copy_page([sentence(str(err))], 400)
    except IntegrityError:
        session.rollback()
        return _copy_page([CONCURRENT_EDIT], 409)
    session.commit()
    notice = "copied_pathways" if with_pathways else "copied"
    return _framework_notice(notice, became_parents, n=len(id_map))
