"""The teacher's gradebook settings (columns, display) and the "Gradebook sync" page."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any, cast

from flask import Blueprint, Flask, current_app, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from lti_app.errors import AppError, NotFoundError
from lti_app.grades import outbox_status
from lti_app.grades.columns import (
    ColumnOffer,
    GradebookError,
    column_offers,
    display_preview,
    enable_deep_linked_columns,
    list_columns,
    set_display,
    set_gradebook_competencies,
)
from lti_app.grades.gradebook import (
    get_or_create_gradebook,
    remember_ags_claim,
    submission_review,
)
from lti_app.grades.jobs import notify_outbox
from lti_app.grades.launch_columns import COLUMN_KEY, adopt_launch_column, reviewed_competency
from lti_app.grades.models import GradeDisplay
from lti_app.grades.services import requeue_current
from lti_app.mastery.scales import get_or_create_scale
from lti_app.tool.messages import accepts_line_items, lms_title
from lti_app.tool.models import Platform
from lti_app.tool.review import REVIEW_COLUMNS
from lti_app.tool.services import LaunchContext
from lti_app.web import add_nav_item, current_launch, db_session, launch_url, require_role

bp = Blueprint("grades", __name__, url_prefix="/grades")


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    add_nav_item(app, "grades.index", "Gradebook", ("teacher",), order=60)
    add_nav_item(app, "grades.sync", "Gradebook sync", ("teacher",), order=61)
    app.extensions.setdefault("lti_app.deep_link_providers", []).append(deep_link_columns)
    app.extensions.setdefault("lti_app.deep_link_pick_handlers", []).append(enable_picked_columns)
    app.extensions.setdefault("lti_app.launch_handlers", []).append(adopt_launch_column)
    app.extensions.setdefault("lti_app.launch_handlers", []).append(resend_to_returning_learner)
    app.extensions.setdefault(REVIEW_COLUMNS, []).append(reviewed_competency)


def resend_to_returning_learner(session: Session, ctx: LaunchContext, _platform: Platform) -> None:
    """Queue the levels of a learner whose launch brought them back into the class: active
    again, or a learner again after teaching (a TA made a student once more).

    The worker skips scores of people not active learners in the course (grades.claiming), so
    a level that changed while they were away never reached the LMS. Nothing at all on an
    ordinary launch: the launch says whether it made the membership count again.
    """
    if ctx.rejoined_course and ctx.context is not None:
        requeue_current(session, context_id=ctx.context.id, person_ids=[ctx.person.id])


def deep_link_columns(session: Session, ctx: LaunchContext) -> list[dict[str, Any]]:
    """Each competency's mastery column, for a teacher placing Pathways with deep linking.

    The link opens Pathways (a student lands on their progress on the competency,
    progress.views.placed_competency_page; a teacher on their home); its lineItem is the very
    column the gradebook keeps for the competency, so the worker finds
    the LMS's column by resourceId and tag and fills it.
    """
    if ctx.context is None:
        return []
    offers = column_offers(session, context_id=ctx.context.id)
    if not offers:
        return []
    gradebook = get_or_create_gradebook(session, context_id=ctx.context.id)
    maximum = _plain_number(offers[0].score_maximum)
    out_of = (
        f"out of {maximum}%"
        if gradebook.display is GradeDisplay.PERCENT
        else f"out of {maximum} points"
    )
    lms_makes_them = accepts_line_items(ctx.launch.deep_linking_settings or {})
    group_note = (
        f"Each adds a link to Pathways and a gradebook column of each student's current "
        f"mastery, {out_of} (set on Pathways' Gradebook page)."
        if lms_makes_them
        else f"Each adds a link to Pathways; this place in the LMS makes no gradebook column, "
        f"so Pathways makes one itself, {out_of}."
    )
    return [
        {
            "key": f"{COLUMN_KEY}{offer.competency_id}",
            "title": lms_title(offer.label, " \N{EM DASH} mastery column"),
            "text": "Opens Pathways on each student's progress in this competency. The gradebook "
            "column shows each student's mastery of it.",
            "custom": {},
            "group": "Mastery columns for the gradebook",
            "group_note": group_note,
            "competency_id": offer.competency_id,
            # In the LMS, or on its way there: a second column with the same resourceId would
            # stay empty.
            "note": _placed_note(offer),
            "line_item": None
            if offer.in_lms or offer.being_made
            else {
                "label": offer.label,
                "scoreMaximum": float(offer.score_maximum),
                "resourceId": offer.resource_id,
                "tag": offer.tag,
                "submissionReview": submission_review(),
            },
        }
        for offer in offers
    ]


def _placed_note(offer: ColumnOffer) -> str:
    if offer.in_lms:
        return "already in the gradebook"
    if offer.being_made:
        return "being added to the gradebook"
    return ""


def enable_picked_columns(
    session: Session, ctx: LaunchContext, picked: list[dict[str, Any]], lms_makes_them: bool
) -> None:
    """Send the picked competencies to the gradebook, in the deep-linking response's
    transaction, as turning them on in the Gradebook page does."""
    competency_ids = [c["competency_id"] for c in picked if "competency_id" in c]
    if ctx.context is None or not competency_ids:
        return
    # The worker finds the columns through the AGS endpoint the launches carried.
    remember_ags_claim(
        session, context_id=ctx.context.id, claim=ctx.launch.ags_claim, resource_link_id=None
    )
    # The LMS makes the columns whose lineItem it got: leave those to it for a while.
    awaited = {c["competency_id"] for c in picked if c.get("line_item") and lms_makes_them}
    for ids, lms_makes in (
        ([c for c in competency_ids if c in awaited], True),
        ([c for c in competency_ids if c not in awaited], False),
    ):
        if ids:
            enable_deep_linked_columns(
                session, context_id=ctx.context.id, competency_ids=ids, lms_makes_them=lms_makes
            )


def _plain_number(value: Decimal) -> str:
    """4.0000 as 4, 2.5000 as 2.5."""
    return format(value.normalize(), "f")


def _course(ctx: LaunchContext) -> int:
    if ctx.context is None:
        raise NotFoundError("Open Pathways from a course to manage its gradebook.")
    session = db_session()
    # Keep this launch's AGS endpoint for the worker, which runs outside any request.
    remember_ags_claim(
        session,
        context_id=ctx.context.id,
        claim=ctx.launch.ags_claim,
        resource_link_id=ctx.resource_link.id if ctx.resource_link else None,
    )
    return ctx.context.id


def _render_index(ctx: LaunchContext, notice: str = "", error: str = "") -> str:
    session = db_session()
    context_id = _course(ctx)
    gradebook = get_or_create_gradebook(session, context_id=context_id)
    session.commit()
    return render_template(
        "grades/index.html",
        gradebook=gradebook,
        columns=list_columns(session, context_id=context_id),
        preview=display_preview(session, context_id=context_id),
        notice=notice,
        error=error,
    )


@bp.get("/")
@require_role("teacher")
def index() -> str:
    """Which competencies go to the gradebook, each column's state, how levels appear."""
    return _render_index(current_launch(), notice=_notice())


NOTICES = {
    "columns": "Gradebook columns saved.",
    "columns_queued": "Gradebook columns saved. {send} current results will be sent.",
    "display": "Saved. {send} current results will be sent again this way.",
    "retry": "{send} result(s) will be sent again.",
}


def _notice() -> str:
    """The message a save's redirect named, with its counts (never text from the URL)."""
    template = NOTICES.get(request.args.get("notice", ""))
    if template is None:
        return ""

    def count(name: str) -> int:
        return max(0, request.args.get(name, 0, type=int))

    outlook = outbox_status.SendOutlook(
        count("send"), count("others"), count("held"), count("admin")
    )
    notice = template.format(send=outlook.will_send)
    if outlook.not_learners:
        notice += (
            f" {outlook.not_learners} result(s) of people who are not active students of the"
            " course will not be sent."
        )
    return notice + _held(outlook)


def _saved(endpoint: str, notice: str, outlook: outbox_status.SendOutlook | None) -> Response:
    """Answer a save with the page's GET address (303): Back and reload in the LMS frame then
    come to the page, not to the browser's "Confirm form resubmission" or a second save."""
    counts = (
        {}
        if outlook is None
        else {
            "send": outlook.will_send,
            "others": outlook.not_learners,
            "held": outlook.held,
            "admin": outlook.for_admin,
        }
    )
    return redirect(
        launch_url(endpoint, notice=notice, **{k: v for k, v in counts.items() if v}), 303
    )


@bp.post("/columns")
@require_role("teacher")
def columns() -> Response:
    ctx = current_launch()
    session = db_session()
    context_id = _course(ctx)
    try:
        wanted = [int(v) for v in request.form.getlist("competency")]
    except ValueError as err:
        raise AppError("Choose competencies from the list.") from err
    queued = set_gradebook_competencies(session, context_id=context_id, competency_ids=wanted)
    session.commit()
    notify_outbox(current_app)
    if not queued:
        return _saved("grades.index", "columns", None)
    outlook = outbox_status.send_outlook(session, outbox_ids=queued, context_id=context_id)
    # As before the redirect: only Retry's notice counts results of people who are not students.
    return _saved("grades.index", "columns_queued", replace(outlook, not_learners=0))


@bp.post("/display")
@require_role("teacher")
def display() -> Response | str:
    ctx = current_launch()
    session = db_session()
    context_id = _course(ctx)
    try:
        mode = GradeDisplay(request.form.get("display", "points"))
    except ValueError as err:
        raise AppError("Choose points or percentage.") from err
    scale = get_or_create_scale(session, context_id=context_id)
    table = {
        level.name: request.form.get(f"level-{i}", "")
        for i, level in enumerate(scale.levels)
        if request.form.get(f"level-{i}", "") != ""
    }
    try:
        queued = set_display(session, context_id=context_id, display=mode, conversion=table)
    except GradebookError as err:
        session.rollback()
        return _render_index(ctx, error=str(err))
    session.commit()
    notify_outbox(current_app)
    outlook = outbox_status.send_outlook(session, outbox_ids=queued, context_id=context_id)
    return _saved("grades.index", "display", replace(outlook, not_learners=0))


PROBLEMS_SHOWN = 200
"""Rows of the problem list on the sync page; the counts above it cover every row."""


def _render_sync(ctx: LaunchContext, notice: str = "") -> str:
    session = db_session()
    context_id = _course(ctx)
    gradebook = get_or_create_gradebook(session, context_id=context_id)
    session.commit()
    return render_template(
        "grades/sync.html",
        gradebook=gradebook,
        counts=outbox_status.outbox_counts(session, context_id=context_id),
        turned_off=outbox_status.waiting_for_turned_off_columns(session, context_id=context_id),
        problems=outbox_status.list_problems(session, context_id=context_id, limit=PROBLEMS_SHOWN),
        problems_shown=PROBLEMS_SHOWN,
        columns=[c for c in list_columns(session, context_id=context_id) if c.is_enabled],
        notice=notice,
    )


@bp.get("/sync")
@require_role("teacher")
def sync() -> str:
    """What reached the LMS, what waits, and what failed with the reason."""
    return _render_sync(current_launch(), notice=_notice())


@bp.post("/retry")
@require_role("teacher")
def retry() -> Response:
    ctx = current_launch()
    session = db_session()
    context_id = _course(ctx)
    named = request.form.getlist("id")
    # Only ids the page could have shown: ASCII digits ("²" passes isdigit() but not int())
    # that fit the database's integer. A Retry that names results retries only those.
    ids = {int(v) for v in named if v.isascii() and v.isdigit() and len(v) <= 18}
    if named and not ids:
        outlook = outbox_status.SendOutlook(0, 0, 0)
    else:
        outlook = outbox_status.retry(session, context_id=context_id, outbox_ids=ids or None)
    session.commit()
    notify_outbox(current_app)
    return _saved("grades.sync", "retry", outlook)


def _held(outlook: outbox_status.SendOutlook) -> str:
    notice = ""
    if outlook.held:
        notice += (
            f" {outlook.held} result(s) wait until their LMS gradebook column can be made;"
            " they are sent once it exists."
        )
    if outlook.for_admin:
        notice += (
            f" {outlook.for_admin} result(s) wait for an LMS administrator (see above);"
            " they are sent once it is fixed."
        )
    return notice
