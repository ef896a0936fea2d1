"""Roster syncs outside a request: `sync_roster` (CLI, refresh button) and the background sync
a teacher's launch starts.

A teacher's launch needs no wiring in the tool: the roster blueprint registers an
`after_request` handler that, after a successful teacher launch of `tool.launch`, starts a
background sync in its own thread and unit of work (at most every LAUNCH_SYNC_INTERVAL).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from flask import Flask, g, request
from flask.wrappers import Response

from lti_app.db import Database, utcnow
from lti_app.roster import sync_lease, syncing
from lti_app.roster.client import MembersPage, NrpsClient, RosterError, with_query
from lti_app.tool.client import TokenClient
from lti_app.tool.keys import KeyRing
from lti_app.tool.models import Platform

LOG = logging.getLogger(__name__)

SYNC_LEASE = timedelta(minutes=15)
LAUNCH_SYNC_INTERVAL = timedelta(minutes=10)
NO_ROSTER_SERVICE = (
    "The LMS has not offered Pathways this course's roster (no Names and Role Provisioning "
    "claim in the launches). An LMS administrator can enable that service for Pathways "
    "(Canvas: the developer key's 'Names and Roles' scope; Moodle: the tool's 'Services' "
    "settings, 'IMS LTI Names and Role Provisioning'), then a teacher opens Pathways again."
)
REGISTRATION_DISABLED = (
    "Pathways is disabled for this course's LMS registration, so it does not fetch the "
    "roster. The Pathways operator can enable it again (lti-app platform enable)."
)
EMPTY_ROSTER = (
    "The LMS listed no students in this course, so Pathways kept the class as it was instead "
    "of marking every student inactive. An LMS answers this way for a course that has ended "
    "(Canvas: a concluded course) or whose students were all removed. Pathways will ask again "
    "at the next update; nothing needs doing if the course has ended."
)
_running: set[int] = set()
_running_guard = threading.Lock()


@dataclass(frozen=True)
class SyncResult:
    """What a sync did; `message` is for the teacher when it did not succeed."""

    ok: bool
    members: int = 0
    """Students the LMS listed (its preview student and the teachers are not counted)."""
    deactivated: int = 0
    """Students no longer listed, now inactive."""
    teachers_deactivated: int = 0
    """Teachers no longer listed, who no longer teach the course here."""
    message: str = ""
    skipped: bool = False
    """Another sync was running (or, for launch-started syncs, one ran recently or the LMS
    asked Pathways to wait)."""
    retry_after: float | None = None
    """Seconds the LMS asked Pathways to wait before asking again (Retry-After), if it said."""


def service_tokens(app: Flask) -> TokenClient:
    """The app's shared service-token client (memory + database cache)."""
    tokens = app.extensions.get("lti_app.service_tokens")
    if not isinstance(tokens, TokenClient):
        database: Database = app.extensions["lti_app.db"]
        http: httpx.Client = app.extensions["lti_app.http"]
        keyring: KeyRing = app.extensions["lti_app.keyring"]
        tokens = app.extensions.setdefault(
            "lti_app.service_tokens", TokenClient(database, http, keyring)
        )
    return tokens


def nrps_client(app: Flask) -> NrpsClient:
    http: httpx.Client = app.extensions["lti_app.http"]
    return NrpsClient(http, service_tokens(app))


def _prefetch(
    nrps: NrpsClient, platform: Platform, url: str, out: queue.Queue[Any], stop: threading.Event
) -> None:
    """Fetch pages ahead of the database work; put each page, then None (or the error)."""

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    try:
        for page in nrps.pages(platform, url):
            if not put(page):
                return
        put(None)
    except Exception as err:  # handed to the consumer, which re-raises
        put(err)


def sync_roster(
    database: Database,
    nrps: NrpsClient,
    *,
    context_id: int,
    full: bool = True,
    min_interval: timedelta | None = None,
    role_filter: str | None = None,
    started_by: int | None = None,
) -> SyncResult:
    """Fetch the course's members from the LMS and store them; keep the old roster on failure.

    `full` fetches every page and marks members who are gone inactive; otherwise the
    platform's `differences` link is used when the last full sync received one. Pages are
    fetched in a second thread while this one stores the previous page.

    The whole membership is asked for, teachers included (no `role_filter`, which Canvas and
    Moodle both allow): a teacher the LMS removed from the course must stop teaching it here
    too, where Pathways reads memberships rather than the current launch (the courses a
    teacher may copy from). `started_by` is the person whose launch or Refresh started the
    sync; their own membership is never ended by it (`syncing.deactivate_missing`).
    """
    with database.begin() as session:
        claim = sync_lease.begin_sync(
            session, context_id=context_id, lease=SYNC_LEASE, min_interval=min_interval
        )
        platform = session.get(Platform, claim.platform_id) if claim else None
        if claim is not None and platform is not None and not platform.is_active:
            sync_lease.finish_sync(session, context_id=context_id, error=REGISTRATION_DISABLED)
            return SyncResult(ok=False, message=REGISTRATION_DISABLED)
    if claim is None or platform is None:
        return SyncResult(ok=True, skipped=True)
    if not claim.nrps_url:
        with database.begin() as session:
            sync_lease.finish_sync(session, context_id=context_id, error=NO_ROSTER_SERVICE)
        return SyncResult(ok=False, message=NO_ROSTER_SERVICE)
    use_differences = not full and bool(claim.differences_url)
    if use_differences and claim.differences_url:
        url = claim.differences_url
    else:
        url = with_query(claim.nrps_url, role=role_filter) if role_filter else claim.nrps_url
    keep_launched_teachers = syncing.roster_understates_teaching(claim.nrps_url)
    listed_since = utcnow()
    pages: queue.Queue[MembersPage | Exception | None] = queue.Queue(maxsize=8)
    stop = threading.Event()
    fetcher = threading.Thread(
        target=_prefetch,
        args=(nrps, platform, url, pages, stop),
        name="nrps-fetch",
        daemon=True,
    )
    fetcher.start()
    seen: set[int] = set()
    differences_url: str | None = None
    count = 0
    students: set[str] = set()
    listed_teachers = False
    try:
        while (item := pages.get()) is not None:
            if isinstance(item, Exception):
                raise item
            differences_url = item.differences_url or differences_url
            students |= syncing.listed_students(item.members)
            count = len(students)
            listed_teachers = listed_teachers or syncing.lists_teachers(item.members)
            with database.begin() as session:
                seen |= syncing.apply_members(
                    session,
                    platform_id=platform.id,
                    context_id=context_id,
                    members=item.members,
                    keep_launched_teachers=keep_launched_teachers,
                )
        deactivated = syncing.Deactivated()
        with database.begin() as session:
            if (
                not use_differences
                and not students
                and syncing.has_active_learners(session, context_id=context_id)
            ):
                # A concluded Canvas course answers 200 with no members (its roster lists
                # active enrolments only): read as the class, it would mark everyone gone.
                LOG.warning(
                    "roster listed no learners iss=%s context=%s; class kept",
                    platform.issuer,
                    context_id,
                )
                sync_lease.finish_sync(session, context_id=context_id, error=EMPTY_ROSTER)
                return SyncResult(ok=False, members=count, message=EMPTY_ROSTER)
            if not use_differences:
                deactivated = syncing.deactivate_missing(
                    session,
                    context_id=context_id,
                    seen_person_ids=seen,
                    listed_since=listed_since,
                    # A roster filtered by role, or one that lists no teacher at all (an LMS
                    # that leaves its staff out), says nothing of who teaches.
                    teachers=role_filter is None and listed_teachers,
                    started_by=started_by,
                )
            sync_lease.finish_sync(
                session,
                context_id=context_id,
                member_count=count if not use_differences else None,
                differences_url=differences_url,
            )
    except RosterError as err:
        if use_differences and not err.retryable and not err.scope_refused:
            LOG.info("roster differences refused context=%s; full sync instead", context_id)
            with database.begin() as session:
                sync_lease.finish_sync(session, context_id=context_id, error=str(err))
            return sync_roster(
                database,
                nrps,
                context_id=context_id,
                role_filter=role_filter,
                started_by=started_by,
            )
        LOG.warning(
            "roster sync failed iss=%s context=%s status=%s",
            platform.issuer,
            context_id,
            err.status,
        )
        with database.begin() as session:
            sync_lease.finish_sync(
                session, context_id=context_id, error=str(err), retry_after=err.retry_after
            )
        return SyncResult(ok=False, members=count, message=str(err), retry_after=err.retry_after)
    except BaseException:
        with database.begin() as session:
            sync_lease.finish_sync(
                session,
                context_id=context_id,
                error="The roster sync stopped on an unexpected error; it will be retried.",
            )
        raise
    finally:
        stop.set()
        fetcher.join(timeout=5)
    LOG.info(
        "roster synced iss=%s context=%s students=%d deactivated=%d teachers_deactivated=%d",
        platform.issuer,
        context_id,
        count,
        deactivated.students,
        deactivated.teachers,
    )
    return SyncResult(
        ok=True,
        members=count,
        deactivated=deactivated.students,
        teachers_deactivated=deactivated.teachers,
    )


def start_background_sync(
    app: Flask,
    *,
    context_id: int,
    nrps_url: str | None,
    min_interval: timedelta | None,
    results: list[SyncResult] | None = None,
    started_by: int | None = None,
) -> threading.Thread | None:
    """Sync the course in a daemon thread with its own unit of work; the caller never waits.

    None when this process already syncs the course. The outcome is appended to `results`
    (nothing is appended when the sync stopped on an unexpected error). `started_by`: the
    person whose launch or Refresh this is (see `sync_roster`).
    """
    with _running_guard:
        if context_id in _running:
            return None
        _running.add(context_id)

    def run() -> None:
        database: Database = app.extensions["lti_app.db"]
        try:
            with database.begin() as session:
                sync_lease.remember_nrps_url(session, context_id=context_id, nrps_url=nrps_url)
            result = sync_roster(
                database,
                nrps_client(app),
                context_id=context_id,
                min_interval=min_interval,
                started_by=started_by,
            )
            if results is not None:
                results.append(result)
        except Exception:
            LOG.exception("background roster sync failed context=%s", context_id)
        finally:
            with _running_guard:
                _running.discard(context_id)

    thread = threading.Thread(target=run, name=f"roster-sync-{context_id}", daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class RefreshOutcome:
    """What a teacher's Refresh found after waiting: a result, or a sync still going on."""

    result: SyncResult | None
    still_running: bool = False


def refresh_roster(
    app: Flask,
    *,
    context_id: int,
    nrps_url: str | None,
    wait: float,
    started_by: int | None = None,
) -> RefreshOutcome:
    """Sync the course now, waiting at most `wait` seconds for the outcome.

    A slow LMS must not hold the teacher's page (or the LMS frame's proxy) for minutes: past
    `wait` the sync goes on in its thread and the page says so.
    """
    results: list[SyncResult] = []
    thread = start_background_sync(
        app,
        context_id=context_id,
        nrps_url=nrps_url,
        min_interval=None,
        results=results,
        started_by=started_by,
    )
    if thread is None:
        return RefreshOutcome(SyncResult(ok=True, skipped=True))
    thread.join(timeout=wait)
    if thread.is_alive():
        return RefreshOutcome(None, still_running=True)
    if not results:
        return RefreshOutcome(
            SyncResult(
                ok=False,
                message="The roster sync stopped on an unexpected error; it will be retried.",
            )
        )
    return RefreshOutcome(results[0])


def after_launch(app: Flask, response: Response) -> Response:
    """After a teacher's successful launch in a course, sync its roster in the background."""
    if request.endpoint != "tool.launch" or response.status_code != 200:
        return response
    ctx = g.get("_launch_ctx")
    if ctx is None or ctx.context is None or ctx.launch.role != "teacher":
        return response
    interval = app.extensions.get("lti_app.roster.launch_sync_interval", LAUNCH_SYNC_INTERVAL)
    start_background_sync(
        app,
        context_id=ctx.context.id,
        nrps_url=ctx.launch.nrps_url,
        min_interval=interval,
        started_by=ctx.launch.person_id,
    )
    return response
