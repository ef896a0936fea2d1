"""Teacher pages: the class dashboard, the evidence behind a cell, the attention list and
CSV exports; the flexible groups' pages are in insights.group_views and the progress charts
in insights.progress_views, on the same blueprint. Every page reads only the launch's course."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from flask import Blueprint, Flask, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from lti_app.competencies.queries import get_competency
from lti_app.csvsafe import EXCEL_UTF8
from lti_app.db import DATABASE_ID_MAX, utcnow
from lti_app.display import course_zone
from lti_app.errors import AppError, NotFoundError, PermissionDeniedError
from lti_app.insights import attention, exports
from lti_app.insights.dashboard import Dashboard, load_dashboard, scale_levels
from lti_app.insights.grid import (
    NOT_ASSESSED,
    SORTS,
    GridFilter,
    apply_filter,
    level_counts,
    mastered_level_counts,
)
from lti_app.insights.grouping import mastery_points, short_names
from lti_app.insights.groups import active_groups, resolve_picked_students
from lti_app.insights.table import grid_body, level_css
from lti_app.mastery.levels import current_levels
from lti_app.mastery.services import evidence_history
from lti_app.roster.services import list_students, student_ids_in_course
from lti_app.timezones import local_date
from lti_app.tool.services import LaunchContext
from lti_app.web import add_nav_item, current_launch, db_session, launch_url_by_id, require_role

bp = Blueprint("insights", __name__, url_prefix="/insights")
TEACHER, LEARNER = "teacher", "learner"
STATUSES = ("active", "inactive", "deleted", "all")
MAX_DAYS = 3650


@bp.record_once
def _register_nav(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    add_nav_item(app, "insights.dashboard", "Dashboard", (TEACHER,), order=15)
    add_nav_item(app, "insights.attention_list", "Needs attention", (TEACHER,), order=16)
    add_nav_item(app, "insights.groups", "Groups", (TEACHER,), order=17)
    add_nav_item(app, "insights.class_progress", "Progress over time", (TEACHER,), order=19)
    # Every page that picks students offers the course's saved groups.
    app.jinja_env.globals["course_groups"] = _course_groups


def _course_groups() -> list[Any]:
    """The launch's course's active groups, for the group picker partial."""
    ctx = current_launch()
    if ctx.context is None or ctx.launch.role != TEACHER:
        return []
    return list(active_groups(db_session(), context_id=ctx.context.id))


def picked_students_with_group(context_id: int, person_ids: list[int]) -> list[int]:
    """The ticked students plus the members of a submitted `group_id`, all of this course."""
    raw = request.form.get("group_id", "").strip()
    # ASCII digits only: "²" passes str.isdigit() but not int(), and a number past any id
    # overflows the database's integers; both were a 500 instead of a plain answer.
    if not (raw.isascii() and raw.isdigit()):
        return person_ids
    group_id = _plain_id(raw)
    if group_id is None:
        raise NotFoundError("That group is not in this course.")
    try:
        return resolve_picked_students(
            db_session(), context_id=context_id, group_id=group_id, person_ids=person_ids
        )
    except LookupError as err:
        raise NotFoundError(str(err)) from err


def _context_id(ctx: LaunchContext) -> int:
    if ctx.context is None:
        raise PermissionDeniedError("Open Pathways from a course to see this page.")
    return ctx.context.id


@contextmanager
def _domain_errors() -> Iterator[None]:
    try:
        yield
    except LookupError as err:
        raise NotFoundError(
            "That does not exist in this course. It may belong to another course."
        ) from err
    except ValueError as err:
        raise AppError(str(err)) from err


def _plain_id(raw: str) -> int | None:
    """An id typed in ASCII digits within range, else None (str.isdigit() also accepts "²",
    which int() refuses)."""
    raw = raw.strip()
    # The length first: int() refuses more than 4300 digits with a ValueError (a 500 from
    # ?cell=, a group_id or an assign-<id> field); no id has more digits than the largest.
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(DATABASE_ID_MAX)):
        return None
    value = int(raw)
    return value if value <= DATABASE_ID_MAX else None


def _int_arg(name: str, *, source: object = None) -> int | None:
    raw = (request.args if source is None else source).get(name, "")  # type: ignore[attr-defined]
    raw = str(raw).strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 0 <= value <= DATABASE_ID_MAX else None


# --- Dashboard ---------------------------------------------------------------------------


def _grid_filter(dashboard: Dashboard) -> GridFilter:
    comp_ids = {c.id for c in dashboard.competencies}
    competency_id = _int_arg("competency")
    competency_id = competency_id if competency_id in comp_ids else None
    level = request.args.get("level") or None
    if level not in {lv.name for lv in dashboard.levels} | {NOT_ASSESSED}:
        level = None
    step_id = _int_arg("step")
    step_id = step_id if step_id in {s.id for s in dashboard.steps} else None
    group_id = _int_arg("group")
    group_id = group_id if group_id in {g.id for g in dashboard.groups} else None
    idle = _int_arg("idle")
    idle = min(idle, MAX_DAYS) if idle is not None else None
    status = request.args.get("status", "active")
    sort = request.args.get("sort", "name")
    return GridFilter(
        competency_id=competency_id,
        level=level,
        step_id=step_id,
        idle_days=idle,
        status=status if status in STATUSES else "active",
        group_id=group_id,
        sort=sort if sort in SORTS else "name",
    )


def _filter_args(flt: GridFilter) -> dict[str, object]:
    values: dict[str, object] = {
        "competency": flt.competency_id,
        "level": flt.level,
        "step": flt.step_id,
        "idle": flt.idle_days,
        "status": flt.status,
        "group": flt.group_id,
        "sort": flt.sort,
    }
    return {k: v for k, v in values.items() if v not in (None, "")}


@bp.get("/")
@require_role(TEACHER)
def dashboard() -> str:
    """Students x competencies with current levels, counts per level, filters and sorts."""
    ctx = current_launch()
    context_id = _context_id(ctx)
    data = load_dashboard(db_session(), context_id=context_id)
    flt = _grid_filter(data)
    rows = apply_filter(data.rows, flt, now=utcnow())
    student_href = launch_url_by_id("insights.student_progress", "person_id")
    comp_ids = [c.id for c in data.competencies]
    counts = level_counts(rows, comp_ids, [lv.name for lv in data.levels])
    threshold = mastery_points(data.levels)
    return render_template(
        "insights/dashboard.html",
        title="Class dashboard",
        data=data,
        flt=flt,
        rows=rows,
        counts=counts,
        mastered=mastered_level_counts(rows, comp_ids),
        at_mastery={
            lv.name for lv in data.levels if threshold is not None and lv.points >= threshold
        },
        # Only a competency with parts can be at a mastery level and not mastered.
        with_parts={c.parent_id for c in data.competencies if c.parent_id is not None},
        grid_html=grid_body(rows, data.competencies, data.levels, student_href=student_href),
        filter_args=_filter_args(flt),
        csv_semicolons=exports.SEMICOLONS,
        sorts=SORTS,
        statuses=STATUSES,
        NOT_ASSESSED=NOT_ASSESSED,
        short_names=short_names(data.levels),
    )


@bp.get("/scale.css")
@require_role(TEACHER, LEARNER)
def scale_css() -> Response:
    """The course's level colours as CSS classes (the page's CSP allows no inline style)."""
    levels = scale_levels(db_session(), context_id=_context_id(current_launch()))
    return Response(
        level_css(levels), mimetype="text/css", headers={"Cache-Control": "private, max-age=60"}
    )


@bp.get("/cell")
@require_role(TEACHER)
def cell() -> str:
    """The evidence behind one cell of the dashboard (the grid's buttons submit here)."""
    ctx = current_launch()
    context_id = _context_id(ctx)
    raw = request.args.get("cell", "")
    person_raw, _, comp_raw = raw.partition("-")
    person_id, competency_id = _plain_id(person_raw), _plain_id(comp_raw)
    if person_id is None or competency_id is None:
        raise NotFoundError("That cell does not exist in this course.")
    return _cell_page(context_id, person_id, competency_id)


@bp.get("/students/<int:person_id>/competencies/<int:competency_id>")
@require_role(TEACHER)
def evidence(person_id: int, competency_id: int) -> str:
    """The evidence of one student on one competency, withdrawn evidence marked."""
    return _cell_page(_context_id(current_launch()), person_id, competency_id)


def _check_student(context_id: int, person_id: int) -> None:
    known = student_ids_in_course(db_session(), context_id=context_id, person_ids=[person_id])
    if person_id not in known:
        raise NotFoundError("That student is not in this course.")


def _student_name(context_id: int, person_id: int) -> str:
    for student in list_students(db_session(), context_id=context_id, include_inactive=True):
        if student.person_id == person_id:
            return student.name
    raise NotFoundError("That student is not in this course.")


def _cell_page(context_id: int, person_id: int, competency_id: int) -> str:
    session = db_session()
    _check_student(context_id, person_id)
    with _domain_errors():
        competency = get_competency(session, context_id=context_id, competency_id=competency_id)
    level = current_levels(session, context_id=context_id, person_id=person_id).get(competency_id)
    history = evidence_history(
        session, context_id=context_id, person_id=person_id, competency_id=competency_id
    )
    threshold = mastery_points(scale_levels(session, context_id=context_id))
    # A competency with parts can average a mastery level with a part not mastered yet.
    partly_mastered = (
        level is not None
        and level.level_points is not None
        and threshold is not None
        and level.level_points >= threshold
        and not level.is_mastered
    )
    return render_template(
        "insights/cell.html",
        title="Evidence",
        student_name=_student_name(context_id, person_id),
        person_id=person_id,
        competency=competency,
        level=level,
        partly_mastered=partly_mastered,
        history=list(reversed(history)),
    )


# --- Exports -----------------------------------------------------------------------------


def _semicolons() -> bool:
    """The download for Excel with ; and decimal commas (exports.SEMICOLONS) was asked for."""
    return request.args.get("style") == exports.SEMICOLONS


def _csv(lines: Iterator[str], name: str) -> Response:
    filename = f"{name}-{exports.SEMICOLONS}.csv" if _semicolons() else f"{name}.csv"
    return Response(
        EXCEL_UTF8 + "".join(lines),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


@bp.get("/dashboard.csv")
@require_role(TEACHER)
def dashboard_csv() -> Response:
    """The dashboard as CSV (same filters): students x competencies with levels and dates."""
    data = load_dashboard(db_session(), context_id=_context_id(current_launch()), with_dates=True)
    rows = apply_filter(data.rows, _grid_filter(data), now=utcnow())
    lines = exports.dashboard_csv(
        rows, data.competencies, zone=course_zone(), semicolons=_semicolons()
    )
    return _csv(lines, "dashboard")


@bp.get("/evidence.csv")
@require_role(TEACHER)
def evidence_csv() -> Response:
    """Every piece of evidence of the course as CSV."""
    context_id = _context_id(current_launch())
    lines = exports.evidence_csv(
        db_session(), context_id=context_id, zone=course_zone(), semicolons=_semicolons()
    )
    return _csv(lines, "evidence")


# --- Attention ---------------------------------------------------------------------------


@bp.get("/attention")
@require_role(TEACHER)
def attention_list() -> str:
    """Students who need the teacher, each with the action to take."""
    context_id = _context_id(current_launch())
    days = _int_arg("days") or 14
    days = max(1, min(days, MAX_DAYS))
    now = utcnow()
    items = attention.attention_list(
        db_session(),
        context_id=context_id,
        days=days,
        now=now,
        today=local_date(now, course_zone()),
    )
    return render_template(
        "insights/attention.html", title="Needs attention", items=items, days=days
    )


# The group pages (insights.group_views) and the progress charts (insights.progress_views)
# are routes of this blueprint too: importing them here registers them wherever the blueprint
# is (Flask's "Larger Applications" pattern).
from lti_app.insights import group_views, progress_views  # noqa: E402, F401
