"""The progress charts: the class's levels per competency week by week, and one student's
(their teacher, or the student). Routes of the insights blueprint (insights.views)."""

from __future__ import annotations

from flask import render_template

from lti_app.competencies.queries import list_competencies
from lti_app.db import utcnow
from lti_app.display import course_zone, isolate
from lti_app.errors import PermissionDeniedError
from lti_app.insights import charts
from lti_app.insights.dashboard import load_dashboard, scale_levels
from lti_app.insights.groups import group_history
from lti_app.insights.views import (
    LEARNER,
    TEACHER,
    _check_student,
    _context_id,
    _int_arg,
    _student_name,
    bp,
)
from lti_app.web import current_launch, db_session, require_role


@bp.get("/progress")
@require_role(TEACHER)
def class_progress() -> str:
    """The class's levels per competency over time, week by week, with data tables."""
    context_id = _context_id(current_launch())
    session = db_session()
    data = load_dashboard(session, context_id=context_id)
    comp = _int_arg("competency")
    chosen = [c for c in data.competencies if comp in (None, c.id)]
    labels = {c.id: f"{c.code} {c.title}".strip() for c in chosen}
    person_ids = {r.person_id for r in data.rows if r.status == "active"}
    zone = course_zone()
    series = charts.seen_in(
        charts.class_series(
            session,
            context_id=context_id,
            person_ids=person_ids,
            labels=labels,
            now=utcnow(),
            zone=zone,
        ),
        zone,
    )
    return render_template(
        "insights/progress.html",
        title="Progress over time",
        heading="Class progress over time",
        series=series,
        svgs={
            s.key: charts.level_chart_svg(
                [s],
                levels=data.levels,
                title=f"Class average on {isolate(s.label)}",
                chart_id=f"c{s.key}",
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
    levels = scale_levels(session, context_id=context_id)
    competencies = list_competencies(session, context_id=context_id)
    labels = {c.id: f"{c.code} {c.title}".strip() for c in competencies}
    series = charts.seen_in(
        charts.student_series(session, context_id=context_id, person_id=person_id, labels=labels),
        course_zone(),
    )
    name = _student_name(context_id, person_id)
    is_teacher = ctx.launch.role == TEACHER
    return render_template(
        "insights/progress.html",
        title="Progress over time",
        heading=f"{isolate(name)}: progress over time",
        series=series,
        svgs={
            s.key: charts.level_chart_svg(
                [s],
                levels=levels,
                title=f"{isolate(name)} on {isolate(s.label)}",
                chart_id=f"s{s.key}",
            )
            for s in series
        },
        competencies=(),
        competency_id=None,
        person_id=person_id,
        is_teacher=is_teacher,
        history=(
            group_history(session, context_id=context_id, person_id=person_id) if is_teacher else ()
        ),
    )
