"""The teacher's roster page and the "Refresh roster" button."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from flask import Blueprint, Flask, current_app, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from flask.wrappers import Response
from werkzeug.wrappers import Response as BaseResponse

from lti_app.db import utcnow
from lti_app.errors import NotFoundError
from lti_app.roster import services, sync_lease
from lti_app.roster.jobs import after_launch, refresh_roster
from lti_app.roster.models import SyncStatus
from lti_app.tool.models import MembershipStatus
from lti_app.tool.services import LaunchContext
from lti_app.web import add_nav_item, current_launch, db_session, launch_url, require_role

bp = Blueprint("roster", __name__, url_prefix="/roster")

REFRESH_WAIT = 8.0
"""Seconds "Refresh roster" waits for the LMS before saying the update goes on without it."""
REFRESH_WAIT_KEY = "lti_app.roster.refresh_wait"


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


NOTICES = {
    "updated": "Roster updated from the LMS: {students}.",
    "updated_inactive": "Roster updated from the LMS: {students}. {m} no longer listed, now "
    "shown as inactive.",
    "slow": "The LMS is slow to answer: Pathways keeps updating the roster in the background. "
    "Reload this page in a minute to see the new list.",
    "running": "A roster sync is already running. Reload in a moment.",
}
REFRESH_FAILED = "failed"
"""The notice of a refresh the LMS refused: the page shows the reason the sync recorded."""


def _students(n: int) -> str:
    return f"{n} student" if n == 1 else f"{n} students"


def _notice() -> str:
    """The message "Refresh roster" named in its redirect (never text from the URL)."""
    template = NOTICES.get(request.args.get("notice", ""))
    if template is None:
        return ""
    count = request.args.get
    return template.format(
        students=_students(max(0, count("n", 0, type=int))), m=max(0, count("m", 0, type=int))
    )


def _render(ctx: LaunchContext, notice: str = "", *, refresh_failed: bool = False) -> str:
    session = db_session()
    context_id = _course(ctx)
    students = services.list_students(session, context_id=context_id, include_inactive=True)
    sync = services.get_roster_sync(session, context_id=context_id)
    # Said as the refresh's own outcome while no later sync has replaced it.
    error = (
        sync.last_error
        if refresh_failed and sync is not None and sync.status is SyncStatus.FAILED
        else ""
    )
    # A sync whose lease ran out died with its process (a restart): it is not running.
    is_running = bool(
        sync is not None
        and sync.status is SyncStatus.RUNNING
        and sync.lease_until is not None
        and sync.lease_until > utcnow()
    )
    active = sum(1 for s in students if s.status is MembershipStatus.ACTIVE)
    # When the LMS's last refusal asked Pathways to wait (Retry-After), the page says until
    # when, to the minute and rounded up: "after 10:05" is never before the LMS's 10:05:30.
    wait_until = None
    if sync is not None and sync.lease_until and sync_lease.is_asked_to_wait(sync, utcnow()):
        wait_until = sync.lease_until.replace(second=0, microsecond=0)
        if wait_until < sync.lease_until:
            wait_until += timedelta(minutes=1)
    return render_template(
        "roster/index.html",
        ctx=ctx,
        students=students,
        active_count=active,
        gone_count=len(students) - active,
        sync=sync,
        is_running=is_running,
        notice=notice,
        error=error,
        wait_until=wait_until,
    )


@bp.get("/")
@require_role("teacher")
def index() -> str:
    """The course's students with status, last launch, and whether they launched yet."""
    return _render(
        current_launch(),
        notice=_notice(),
        refresh_failed=request.args.get("notice") == REFRESH_FAILED,
    )


@bp.post("/refresh")
@require_role("teacher")
def refresh() -> BaseResponse:
    """Sync the roster from the LMS now; on failure the previous roster stays.

    Answered with the page's GET address (303), so that Back and reload in the LMS frame come
    to the page, not to the browser's "Confirm form resubmission" or another sync.
    """
    ctx = current_launch()
    context_id = _course(ctx)
    session = db_session()
    sync_lease.remember_nrps_url(session, context_id=context_id, nrps_url=ctx.launch.nrps_url)
    # End this request's transaction: the sync works in its own (SQLite has one writer).
    session.commit()
    wait = float(current_app.extensions.get(REFRESH_WAIT_KEY, REFRESH_WAIT))
    outcome = refresh_roster(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        context_id=context_id,
        nrps_url=ctx.launch.nrps_url,
        wait=wait,
        started_by=ctx.launch.person_id,
    )
    result = outcome.result
    if outcome.still_running or result is None:
        return _back_to_roster("slow")
    if result.skipped:
        return _back_to_roster("running")
    if not result.ok:
        # Every failed sync records its reason (sync_lease.finish_sync), which the page shows.
        return _back_to_roster(REFRESH_FAILED)
    if result.deactivated:
        return _back_to_roster("updated_inactive", n=result.members, m=result.deactivated)
    return _back_to_roster("updated", n=result.members)


def _back_to_roster(notice: str, **counts: int) -> BaseResponse:
    return redirect(launch_url("roster.index", notice=notice, **counts), 303)
