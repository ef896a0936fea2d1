"""Moving a framework in and out of a course: import (CSV or CASE JSON, pasted or uploaded),
export as CSV, and copying from another course the teacher teaches (with its pathways).
Routes of the competencies blueprint (competencies.views), apart from the editor because they
bring in the importers, the CSV download and the pathway copier, which the editor never needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from flask import Response, current_app, render_template, request
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response as BaseResponse

from lti_app.competencies.errors import CompetencyError, ImportFailedError, ImportProblem
from lti_app.competencies.forms import IMPORT_FORMATS
from lti_app.competencies.importing import (
    MAX_ROWS,
    copy_framework,
    export_csv,
    import_case,
    import_csv,
)
from lti_app.competencies.views import (
    CONCURRENT_EDIT,
    _became_parents,
    _evidence_on_leaves,
    _framework_notice,
    _recompute,
    bp,
)
from lti_app.courses.common import TEACHER, current_course, domain_errors, parse_id
from lti_app.courses.grading_copy import copy_grading, has_evidence
from lti_app.courses.queries import TaughtCourse, taught_courses
from lti_app.csvsafe import EXCEL_UTF8
from lti_app.db import lock_course
from lti_app.display import local_time, sentence
from lti_app.errors import NotFoundError
from lti_app.grades.columns import GradebookError
from lti_app.mastery.errors import InvalidScaleError
from lti_app.pathways.copying import copy_pathways
from lti_app.pathways.errors import CopyError
from lti_app.reports.downloads import attachment, file_name_part
from lti_app.roster.services import teaches_course
from lti_app.web import db_session, require_role

MAX_PASTE = 2_000_000
CONCURRENT_IMPORT = (
    "The course's competencies changed while this file was being imported (was Import pressed "
    "twice?), so nothing was imported from it. Look at the competencies, then import the file "
    "again if it is still needed."
)


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
    plain, written = (
        f"competencies-{file_name_part(label, ascii_only=ascii_only, fallback='course')}.csv"
        for ascii_only in (True, False)
    )
    return Response(
        EXCEL_UTF8 + text,
        mimetype="text/csv",
        headers={
            "Content-Disposition": attachment(plain, written),
            "Cache-Control": "no-store",
        },
    )


# --- copy from another course -----------------------------------------------------------------


def _copy_page(errors: Sequence[str] = (), status: int = 200) -> tuple[str, int]:
    course = current_course()
    session = db_session()
    return (
        render_template(
            "competencies/copy.html",
            ctx=course.ctx,
            title="Copy from another course",
            courses=_course_choices(
                taught_courses(
                    session, person_id=course.teacher_id, exclude_context_id=course.context_id
                )
            ),
            grading_checked=not has_evidence(session, context_id=course.context_id),
            errors=list(errors),
            notice="",
        ),
        status,
    )


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _day(value: datetime) -> str:
    local = local_time(value)
    return f"{local.day} {local:%b %Y}" if isinstance(local, datetime) else ""


def _course_choices(courses: Sequence[TaughtCourse]) -> list[tuple[int, str]]:
    """Each course as the copy form lists it. An LMS's course copy keeps the original's title
    and code, so the name alone reads "Biology 9, Biology 9": what each holds and when it was
    used tell last term's from older ones, and the LMS's id tells apart any still alike."""
    texts = []
    for c in courses:
        name = c.title or c.label or c.context_id
        if c.title and c.label and c.label != c.title:
            name = f"{name} ({c.label})"
        held = (
            f"{_plural(c.competencies, 'competency', 'competencies')}, "
            f"{_plural(c.pathways, 'pathway', 'pathways')}"
        )
        used = f"first opened {_day(c.first_opened_at)}"
        if c.last_opened_at is not None:
            used += f", you last opened it {_day(c.last_opened_at)}"
        texts.append(f"{name} — {held} — {used}")
    alike = {text for text in texts if texts.count(text) > 1}
    return [
        (c.id, f"{text} — LMS course id {c.context_id}" if text in alike else text)
        for c, text in zip(courses, texts, strict=True)
    ]


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
    if request.form.get("grading_offered") == "yes":
        with_grading = request.form.get("grading") == "on"
    else:
        # A form that did not offer the choice: as the form would have had it ticked.
        with_grading = not has_evidence(session, context_id=course.context_id)
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
        if with_grading:
            copy_grading(
                session,
                from_context_id=source_id,
                to_context_id=course.context_id,
                competency_id_map=id_map,
            )
        _recompute(course.context_id)
    except ImportFailedError as err:
        session.rollback()
        return _copy_page([str(p) for p in err.problems], 400)
    except (CompetencyError, CopyError, InvalidScaleError, GradebookError, ValueError) as err:
        session.rollback()
        return _copy_page([sentence(str(err))], 400)
    except IntegrityError:
        session.rollback()
        return _copy_page([CONCURRENT_EDIT], 409)
    session.commit()
    notice = "copied_pathways" if with_pathways else "copied"
    return _framework_notice(notice, became_parents, n=len(id_map))
