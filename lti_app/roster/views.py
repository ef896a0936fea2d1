"""The teacher's roster page and the "Refresh roster" button."""

from __future__ import annotations

from typing import cast

from flask import Blueprint, Flask, current_app, render_template
from flask.blueprints import BlueprintSetupState
from flask.wrappers import Response

from lti_app.errors import NotFoundError
from lti_app.roster import services
from lti_app.roster.jobs import after_launch, nrps_client, sync_roster
from lti_app.tool.services import LaunchContext
from lti_app.web import add_nav_item, current_launch, database, db_session, require_role

bp = Blueprint("roster", __name__, url_prefix="/roster")


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    add_nav_item(app, "roster.index", "Students", ("teacher",), order=30)

    def _after(response: Response) -> Response:
        return after_launch(app, response)

    # A teacher's launch starts a background roster sync; the tool needs no wiring for it.
    app.after_request(_after)


def _course(ctx: LaunchContext) -> int:
    if ctx.context is None:
        raise NotFoundError("Open Pathways from a course to see its students.")
    return ctx.context.id


def _render(ctx: LaunchContext, notice: str = "", error: str = "") -> str:
    session = db_session()
    context_id = _course(ctx)
    return render_template(
        "roster/index.html",
        ctx=ctx,
        students=services.list_students(session, context_id=context_id, include_inactive=True),
        sync=services.get_roster_sync(session, context_id=context_id),
        notice=notice,
        error=error,
    )


@bp.get("/")
@require_role("teacher")
def index() -> str:
    """The course's students with status, last launch, and whether they launched yet."""
    return _render(current_launch())


@bp.post("/refresh")
@require_role("teacher")
def refresh() -> str:
    """Sync the roster from the LMS now; on failure the previous roster stays."""
    ctx = current_launch()
    context_id = _course(ctx)
    session = db_session()
    services.remember_nrps_url(session, context_id=context_id, nrps_url=ctx.launch.nrps_url)
    # End this request's transaction: the sync works in its own (SQLite has one writer).
    session.commit()
    result = sync_roster(database(), nrps_client(current_app), context_id=context_id)
    if result.skipped:
        return _render(ctx, notice="A roster sync is already running. Reload in a moment.")
    if not result.ok:
        return _render(ctx, error=result.message)
    notice = f"Roster updated from the LMS: {result.members} members."
    if result.deactivated:
        notice += f" {result.deactivated} no longer listed, now shown as inactive."
    return _render(ctx, notice=notice)
