"""Teacher pages: the class dashboard, the evidence behind a cell, flexible groups, the
attention list, progress charts and CSV exports. Every page reads only the launch's course."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from flask import Blueprint, Flask, make_response, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from lti_app.competencies.services import get_competency, list_competencies
from lti_app.csvsafe import EXCEL_UTF8
from lti_app.db import DATABASE_ID_MAX, utcnow
from lti_app.errors import AppError, NotFoundError, PermissionDeniedError
from lti_app.insights import attention, charts, exports, services
from lti_app.insights.grid import NOT_ASSESSED, SORTS, GridFilter, apply_filter, level_counts
from lti_app.insights.grouping import short_names
from lti_app.insights.models import GroupBasis
from lti_app.insights.table import grid_body, level_css
from lti_app.mastery.services import current_levels, evidence_history
from lti_app.roster.services import list_students, student_ids_in_course
from lti_app.tool.services import LaunchContext
from lti_app.web import (
    LAUNCH_TOKEN_FIELD,
    add_nav_item,
    current_launch,
    current_launch_token,
    db_session,
    launch_url,
    require_role,
)

bp = Blueprint("insights", __name__, url_prefix="/insights")
TEACHER, LEARNER = "teacher", "learner"
STATUSES = ("active", "inactive", "deleted", "all")
MAX_DAYS = 3650
MAX_PROPOSED = 50
"""More proposed groups than a proposal ever has: the bound on `keep-N` fields read back."""


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
    return list(services.active_groups(db_session(), context_id=ctx.context.id))


def picked_students_with_group(context_id: int, person_ids: list[int]) -> list[int]:
    """The ticked students plus the members of a submitted `group_id`, all of this course."""
    raw = request.form.get("group_id", "")
    if not raw.isdigit():
        return person_ids
    try:
        return services.resolve_picked_students(
            db_session(), context_id=context_id, group_id=int(raw), person_ids=person_ids
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
    if not raw.isascii() or not raw.isdigit():
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


def _ids(name: str) -> list[int]:
    ids: list[int] = []
    for raw in request.form.getlist(name):
        value = _plain_id(raw)
        if value is None:
            raise NotFoundError("A student picked is not in this course.")
        ids.append(value)
    return ids


# --- Dashboard ---------------------------------------------------------------------------


def _grid_filter(dashboard: services.Dashboard) -> GridFilter:
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
    data = services.load_dashboard(db_session(), context_id=context_id)
    flt = _grid_filter(data)
    rows = apply_filter(data.rows, flt, now=utcnow())
    token = current_launch_token()
    base = launch_url("insights.student_progress", person_id=0).split("?")[0][: -len("0")]

    def student_href(person_id: int) -> str:
        return f"{base}{person_id}?{LAUNCH_TOKEN_FIELD}={token}"

    counts = level_counts(rows, [c.id for c in data.competencies], [lv.name for lv in data.levels])
    return render_template(
        "insights/dashboard.html",
        title="Class dashboard",
        data=data,
        flt=flt,
        rows=rows,
        counts=counts,
        grid_html=grid_body(rows, data.competencies, data.levels, student_href=student_href),
        filter_args=_filter_args(flt),
        sorts=SORTS,
        statuses=STATUSES,
        NOT_ASSESSED=NOT_ASSESSED,
        short_names=short_names(data.levels),
    )


@bp.get("/scale.css")
@require_role(TEACHER, LEARNER)
def scale_css() -> Response:
    """The course's level colours as CSS classes (the page's CSP allows no inline style)."""
    levels = services.scale_levels(db_session(), context_id=_context_id(current_launch()))
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
    return render_template(
        "insights/cell.html",
        title="Evidence",
        student_name=_student_name(context_id, person_id),
        person_id=person_id,
        competency=competency,
        level=level,
        history=list(reversed(history)),
    )


# --- Exports -----------------------------------------------------------------------------


def _csv(lines: Iterator[str], filename: str) -> Response:
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
    data = services.load_dashboard(
        db_session(), context_id=_context_id(current_launch()), with_dates=True
    )
    rows = apply_filter(data.rows, _grid_filter(data), now=utcnow())
    return _csv(exports.dashboard_csv(rows, data.competencies), "dashboard.csv")


@bp.get("/evidence.csv")
@require_role(TEACHER)
def evidence_csv() -> Response:
    """Every piece of evidence of the course as CSV."""
    context_id = _context_id(current_launch())
    return _csv(exports.evidence_csv(db_session(), context_id=context_id), "evidence.csv")


# --- Attention ---------------------------------------------------------------------------


@bp.get("/attention")
@require_role(TEACHER)
def attention_list() -> str:
    """Students who need the teacher, each with the action to take."""
    context_id = _context_id(current_launch())
    days = _int_arg("days") or 14
    days = max(1, min(days, MAX_DAYS))
    items = attention.attention_list(db_session(), context_id=context_id, days=days, now=utcnow())
    return render_template(
        "insights/attention.html", title="Needs attention", items=items, days=days
    )


# --- Groups ------------------------------------------------------------------------------


@bp.get("/groups")
@require_role(TEACHER)
def groups() -> str:
    """Saved groups (active and archived) and the form to propose new ones."""
    session = db_session()
    context_id = _context_id(current_launch())
    return render_template(
        "insights/groups.html",
        title="Groups",
        groups=services.list_groups(session, context_id=context_id, include_archived=True),
        counts=services.member_counts(session, context_id=context_id),
        data=services.load_dashboard(session, context_id=context_id),
    )


@bp.route("/groups/propose", methods=["GET", "POST"])
@require_role(TEACHER)
def propose() -> str | Response:
    """Propose groups by a competency or a step; the teacher adjusts, names and saves them."""
    ctx = current_launch()
    context_id = _context_id(ctx)
    session = db_session()
    source = request.form if request.method == "POST" else request.args
    competency_id = _int_arg("competency", source=source)
    step_id = None if competency_id else _int_arg("step", source=source)
    with _domain_errors():
        if competency_id:
            proposal = services.propose_for_competency(
                session, context_id=context_id, competency_id=competency_id
            )
            basis = GroupBasis.COMPETENCY
        elif step_id:
            proposal = services.propose_for_step(session, context_id=context_id, step_id=step_id)
            basis = GroupBasis.STEP
        else:
            raise AppError("Choose a competency or a step to group by.")
    students = {s.person_id: s.name for s in list_students(session, context_id=context_id)}
    slot_of = {pid: str(index) for index, group in enumerate(proposal) for pid in group.person_ids}
    names: dict[int, str] = {}
    kept: set[int] | None = None
    error = ""
    if request.method == "POST":
        chosen: list[tuple[str, list[int]]] = []
        assignments: dict[int, str] = {}
        for key, value in request.form.items():
            if key.startswith("assign-"):
                person_id = _plain_id(key[7:])
                if person_id is None:
                    raise NotFoundError("A student picked is not in this course.")
                assignments[person_id] = value
        # The groups the teacher's page showed, not today's proposal: evidence recorded or
        # withdrawn since the page opened may have changed how many groups there are now.
        kept = set()
        for index in range(MAX_PROPOSED):
            names[index] = request.form.get(f"name-{index}", "")
            if request.form.get(f"keep-{index}") != "1":
                continue
            kept.add(index)
            members = [pid for pid, slot in assignments.items() if slot == str(index)]
            chosen.append((names[index], members))
        try:
            with _domain_errors():
                saved = services.save_proposal(
                    session,
                    context_id=context_id,
                    created_by_id=ctx.person.id,
                    groups=chosen,
                    basis=basis,
                    competency_id=competency_id,
                    step_id=step_id,
                )
        except AppError as err:
            if isinstance(err, NotFoundError):
                raise
            # The page comes back as the teacher left it, with what to change.
            session.rollback()
            error = err.user_message
            slot_of.update(assignments)
        else:
            session.commit()
            return redirect(launch_url("insights.groups", saved=len(saved)), 303)
    return make_response(
        render_template(
            "insights/propose.html",
            title="Propose groups",
            proposal=proposal,
            students=students,
            slot_of=slot_of,
            names=names,
            kept=kept,
            error=error,
            competency_id=competency_id,
            step_id=step_id,
        ),
        400 if error else 200,
    )


@bp.route("/groups/<int:group_id>", methods=["GET", "POST"])
@require_role(TEACHER)
def group_detail(group_id: int) -> str | Response:
    """A group's members: rename it, add or remove students."""
    context_id = _context_id(current_launch())
    session = db_session()
    with _domain_errors():
        group = services.get_group(session, context_id=context_id, group_id=group_id)
        if request.method == "POST":
            services.update_group(
                session,
                context_id=context_id,
                group_id=group_id,
                name=request.form.get("name", ""),
                person_ids=_ids("member"),
            )
            session.commit()
            return redirect(launch_url("insights.group_detail", group_id=group_id, saved=1), 303)
    members = services.current_member_ids(group)
    # Members whose enrollment is inactive stay listed (ticked), or saving would drop them.
    students = [
        s
        for s in list_students(session, context_id=context_id, include_inactive=True)
        if s.status.value == "active" or s.person_id in members
    ]
    return render_template(
        "insights/group.html",
        title=group.name,
        group=group,
        members=members,
        students=students,
        saved=request.args.get("saved") == "1",
    )


@bp.post("/groups/<int:group_id>/archive")
@require_role(TEACHER)
def archive(group_id: int) -> Response:
    """Archive a group, or bring it back (``restore=1``)."""
    context_id = _context_id(current_launch())
    session = db_session()
    with _domain_errors():
        if request.form.get("restore") == "1":
            services.restore_group(session, context_id=context_id, group_id=group_id)
        else:
            services.archive_group(session, context_id=context_id, group_id=group_id)
    session.commit()
    return redirect(launch_url("insights.groups"), 303)


# --- Progress over time ------------------------------------------------------------------


@bp.get("/progress")
@require_role(TEACHER)
def class_progress() -> str:
    """The class's levels per competency over time, week by week, with data tables."""
    context_id = _context_id(current_launch())
    session = db_session()
    data = services.load_dashboard(session, context_id=context_id)
    comp = _int_arg("competency")
    chosen = [c for c in data.competencies if comp in (None, c.id)]
    labels = {c.id: f"{c.code} {c.title}".strip() for c in chosen}
    person_ids = {r.person_id for r in data.rows if r.status == "active"}
    series = charts.class_series(
        session,
        context_id=context_id,
        person_ids=person_ids,
        labels=labels,
        levels=data.levels,
        now=utcnow(),
    )
    return render_template(
        "insights/progress.html",
        title="Progress over time",
        heading="Class progress over time",
        series=series,
        svgs={
            s.key: charts.level_chart_svg(
                [s], levels=data.levels, title=f"Class average on {s.label}", chart_id=f"c{s.key}"
            )
            for s in series
        },
        competencies=data.competencies,
        competency_id=comp,
        person_id=None,
    )


@bp.get("/students/<int:person_id>/progress")
def student_progress(person_id: int) -> str:
    """One student's levels per competency over time (their teacher, or the student)."""
    ctx = current_launch()
    context_id = _context_id(ctx)
    if ctx.launch.role == TEACHER:
        _check_student(context_id, person_id)
    elif not (ctx.launch.role == LEARNER and ctx.person.id == person_id):
        raise PermissionDeniedError("You can see only your own progress.")
    session = db_session()
    levels = services.scale_levels(session, context_id=context_id)
    competencies = list_competencies(session, context_id=context_id)
    labels = {c.id: f"{c.code} {c.title}".strip() for c in competencies}
    series = charts.student_series(
        session, context_id=context_id, person_id=person_id, labels=labels
    )
    name = _student_name(context_id, person_id)
    is_teacher = ctx.launch.role == TEACHER
    return render_template(
        "insights/progress.html",
        title="Progress over time",
        heading=f"{name}: progress over time",
        series=series,
        svgs={
            s.key: charts.level_chart_svg(
                [s], levels=levels, title=f"{name} on {s.label}", chart_id=f"s{s.key}"
            )
            for s in series
        },
        competencies=(),
        competency_id=None,
        person_id=person_id,
        is_teacher=is_teacher,
        history=(
            services.group_history(session, context_id=context_id, person_id=person_id)
            if is_teacher
            else ()
        ),
    )
