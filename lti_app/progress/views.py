"""The student's "my progress" page: level per competency with its history, and what to do next."""

from __future__ import annotations

import logging
from typing import cast

from flask import Blueprint, Flask, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from lti_app.competencies.errors import CompetencyNotFoundError
from lti_app.competencies.models import Competency
from lti_app.courses.common import Refusal
from lti_app.courses.lineage import own_or_copy
from lti_app.courses.recording import queue_scores
from lti_app.db import DATABASE_ID_MAX, utcnow
from lti_app.display import course_zone, isolate
from lti_app.errors import NotFoundError, PermissionDeniedError
from lti_app.form_once import ALREADY_SAVED, form_nonce, form_sent_again
from lti_app.grades.launch_columns import placed_competency
from lti_app.mastery.errors import InvalidEvidenceError
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.progress.charts import AxisLevel, ChartPoint, level_history_svg, short_date
from lti_app.progress.services import (
    CompetencyProgress,
    ProgressView,
    next_actions,
    pathway_overview,
    student_progress,
)
from lti_app.timezones import local_date, on_day
from lti_app.tool.review import REVIEW_PAGES
from lti_app.tool.roles import CourseRole
from lti_app.tool.services import LaunchContext
from lti_app.tool.views import LINK_PAGES
from lti_app.web import (
    add_nav_item,
    current_launch,
    db_session,
    launch_url,
    require_role,
    set_current_launch,
    set_history_url,
)

LOG = logging.getLogger(__name__)
bp = Blueprint("progress", __name__, url_prefix="/progress")

LEARNER = CourseRole.LEARNER.value
MAX_SELF_NOTE = 2000
SOURCE_WORDS = {
    EvidenceSource.TEACHER.value: "Teacher",
    EvidenceSource.SELF_ASSESSMENT.value: "Your self-assessment",
    EvidenceSource.PATHWAY_WORK.value: "Pathway work",
    EvidenceSource.KNOWLEDGE_CHECK.value: "Knowledge check",
}
NOTICES = {
    "self_assessed": "Thank you: your self-assessment is saved.",
    "already_saved": ALREADY_SAVED,
}


@bp.record_once
def _register(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    add_nav_item(app, "progress.my_progress", "My progress", (LEARNER,), 20)
    app.extensions.setdefault(REVIEW_PAGES, {})[LEARNER] = own_review_page
    app.extensions.setdefault(LINK_PAGES, []).append(placed_competency_page)


def own_review_page(ctx: LaunchContext, person_id: int, competency_id: int | None) -> str:
    """A student's review of their own grade from the LMS: their progress, with the column's
    competency pointed out (tool.review has checked that person_id is theirs)."""
    set_current_launch(ctx)
    set_history_url("progress.my_progress")
    page, _status = _render(reviewed_competency_id=competency_id)
    return page


def placed_competency_page(session: Session, ctx: LaunchContext) -> str | None:
    """A student opening a competency's mastery column link (in Canvas, its assignment) lands
    on their progress with that competency pointed out, rather than on their pathways."""
    if ctx.launch.role != LEARNER or ctx.context is None or ctx.resource_link is None:
        return None
    placed = placed_competency(ctx.resource_link.custom)
    if placed is None:
        return None
    # A copied course's links keep the ids of the original's: this course's copy of it, never
    # the other course's.
    competency_id = own_or_copy(session, Competency, context_id=ctx.context.id, item_id=placed)
    if competency_id is None:
        return None
    set_current_launch(ctx)
    set_history_url("progress.my_progress")
    page, _status = _render(reviewed_competency_id=competency_id, opened_from="link")
    return page


def _course() -> tuple[LaunchContext, int]:
    ctx = current_launch()
    if ctx.context is None:
        raise PermissionDeniedError("Open Pathways from a course to see your progress.")
    return ctx, ctx.context.id


def _chart(view: ProgressView, item: CompetencyProgress) -> Markup:
    levels = [AxisLevel(lv.name, lv.points, lv.is_mastery) for lv in view.scale.levels]
    # In the course's zone: the chart's dates are the school's.
    zone = course_zone()
    points = [
        ChartPoint(on_day(h.observed_on, h.observed_at, zone), h.points, h.level_name)
        for h in item.history
    ]
    return level_history_svg(
        points,
        levels,
        chart_id=f"chart-{item.competency.id}",
        title=f"Your results on {isolate(item.competency.code)} {isolate(item.competency.title)}",
    )


def _render(
    refused: Refusal | None = None,
    status: int = 200,
    reviewed_competency_id: int | None = None,
    opened_from: str = "grades",
) -> tuple[str, int]:
    """The page; after a refused self-assessment, that rating open as the student left it
    (level and note), the field the refusal is about marked."""
    ctx, context_id = _course()
    session = db_session()
    view = student_progress(session, context_id=context_id, person_id=ctx.person.id)
    # Only a competency on this page: the id comes from the LMS's gradebook column.
    reviewed = next(
        (i.competency for i in view.competencies if i.competency.id == reviewed_competency_id),
        None,
    )
    overview = pathway_overview(session, context_id=context_id, person_id=ctx.person.id)
    if request.method == "POST":
        set_history_url("progress.my_progress")
    return (
        render_template(
            "progress/my_progress.html",
            ctx=ctx,
            view=view,
            actions=next_actions(overview),
            chart=lambda item: _chart(view, item),
            short_date=short_date,
            source_words=SOURCE_WORDS,
            errors=[refused] if refused else [],
            errors_title="Not saved:",
            notice=None if refused else NOTICES.get(request.args.get("notice", "")),
            reviewed=reviewed,
            opened_from=opened_from,
            typed=request.form if refused and request.method == "POST" else None,
        ),
        status,
    )


@bp.get("/")
@require_role(LEARNER)
def my_progress() -> tuple[str, int]:
    """The student's level on each competency, its history, and what to do next."""
    return _render()


@bp.post("/self-assessment")
@require_role(LEARNER)
def self_assess() -> Response | tuple[str, int]:
    """Record how the student rates themself on a competency (source: self-assessment)."""
    ctx, context_id = _course()
    session = db_session()
    view = student_progress(session, context_id=context_id, person_id=ctx.person.id)
    try:
        competency_id = int(request.form.get("competency_id", ""))
        level_id = int(request.form.get("level_id", ""))
    except ValueError:
        return _render(Refusal("Choose a competency and a level."), 400)
    if not 0 < competency_id <= DATABASE_ID_MAX:
        raise NotFoundError("That competency does not exist in this course.")
    level = next((lv for lv in view.scale.levels if lv.id == level_id), None)
    if level is None:
        return _render(Refusal("Choose one of the levels.", f"level-{competency_id}"), 400)
    note = request.form.get("note", "").strip()
    note_field = f"self-note-{competency_id}"
    if len(note) > MAX_SELF_NOTE:
        return _render(Refusal(f"Keep the note under {MAX_SELF_NOTE} characters.", note_field), 400)
    if "\x00" in note:
        return _render(
            Refusal(
                "Your note contains an invisible character (code 0) that cannot be saved: "
                "delete it or retype the note.",
                note_field,
            ),
            400,
        )
    if form_sent_again(session):
        url = launch_url("progress.my_progress", notice="already_saved")
        return redirect(f"{url}#competency-{competency_id}")
    recorded: list[int] = []
    try:
        changes = record_evidence(
            session,
            context_id=context_id,
            competency_id=competency_id,
            student_ids=[ctx.person.id],
            points=level.points,
            source=EvidenceSource.SELF_ASSESSMENT,
            note=note,
            recorded_by_id=ctx.person.id,
            observed_on=local_date(utcnow(), course_zone()),
            form_checked=form_nonce() is not None,
            recorded=recorded,
        )
    except CompetencyNotFoundError as err:
        raise NotFoundError("That competency does not exist in this course.") from err
    except InvalidEvidenceError as err:
        session.rollback()
        return _render(Refusal(f"You can't rate yourself on that competency: {err}."), 400)
    # Self-assessment counts towards mastery only if the course's scale says so; when it
    # does, the level may have changed and the gradebook must hear of it in this transaction.
    queue_scores(session, changes)
    session.commit()
    LOG.info("self-assessment context=%s competency=%s", context_id, competency_id)
    url = launch_url(
        "progress.my_progress", notice="self_assessed" if recorded else "already_saved"
    )
    return redirect(f"{url}#competency-{competency_id}")
