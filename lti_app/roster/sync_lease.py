"""A roster sync's bookkeeping on `RosterSync`: the roster URL to ask, the course's sync lease
(one sync at a time; launches do not ask again too soon) and each sync's outcome. Called by
`roster.jobs.sync_roster`, each in a short transaction: `begin_sync` first, `finish_sync` last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.roster.client import SCOPE_REFUSED, SCOPE_REFUSED_HOLD
from lti_app.roster.models import RosterSync, SyncStatus
from lti_app.roster.services import get_roster_sync
from lti_app.tool.models import Context, LaunchSession


@dataclass(frozen=True)
class SyncClaim:
    """What a sync needs once it holds the course's lease (plain values, no session)."""

    context_id: int
    platform_id: int
    nrps_url: str | None
    differences_url: str | None


def _locked_roster_sync(session: Session, context_id: int) -> RosterSync | None:
    # Locked until the transaction ends, so two workers cannot both take a sync's lease.
    return session.scalar(
        select(RosterSync)
        .where(RosterSync.context_id == context_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _latest_nrps_url(session: Session, context_id: int) -> str | None:
    return session.scalar(
        select(LaunchSession.nrps_url)
        .where(LaunchSession.context_id == context_id, LaunchSession.nrps_url.is_not(None))
        .order_by(LaunchSession.created_at.desc())
        .limit(1)
    )


def remember_nrps_url(session: Session, *, context_id: int, nrps_url: str | None) -> RosterSync:
    """Keep the roster URL a launch carried (else the latest launch's) for later syncs."""
    context = session.get(Context, context_id)
    if context is None:
        raise LookupError(f"no context {context_id}")
    row = _locked_roster_sync(session, context_id)
    if row is None:
        try:
            # Two teachers opening a new course at once both find no row; the second insert
            # meets the first's (PostgreSQL waits for it, then refuses it).
            with session.begin_nested():
                row = RosterSync(platform_id=context.platform_id, context_id=context_id)
                session.add(row)
        except IntegrityError:
            row = _locked_roster_sync(session, context_id)
            if row is None:
                raise
    url = nrps_url or row.nrps_url or _latest_nrps_url(session, context_id)
    if url and url != row.nrps_url:
        row.nrps_url = url
        row.differences_url = None  # belongs to the old address
    session.flush()
    return row


def begin_sync(
    session: Session, *, context_id: int, lease: timedelta, min_interval: timedelta | None = None
) -> SyncClaim | None:
    """Take the course's sync lease; None when a sync runs or, for a launch's sync
    (min_interval), one ran recently, the LMS asked Pathways to wait (`finish_sync`) or it
    refused the roster scope lately (`SCOPE_REFUSED_HOLD`)."""
    row = remember_nrps_url(session, context_id=context_id, nrps_url=None)
    now = utcnow()
    if row.status is SyncStatus.RUNNING and row.lease_until and row.lease_until > now:
        return None
    if min_interval is not None and is_asked_to_wait(row, now):
        return None
    if (
        min_interval is not None
        and row.status is SyncStatus.FAILED
        and row.last_error == SCOPE_REFUSED
        and row.finished_at is not None
        and row.finished_at + SCOPE_REFUSED_HOLD > now
    ):
        # Only the LMS's admin can change a refused scope: asked at every teacher's launch,
        # the LMS's token endpoint took one refused request per launch (Canvas throttles
        # them). A Refresh still asks, for the teacher whose admin has just enabled it.
        return None
    if (
        min_interval is not None
        and row.succeeded_at is not None
        and row.succeeded_at + min_interval > now
    ):
        return None
    row.status = SyncStatus.RUNNING
    row.lease_until = now + lease
    row.started_at = now
    session.flush()
    return SyncClaim(context_id, row.platform_id, row.nrps_url, row.differences_url)


def is_asked_to_wait(row: RosterSync, now: datetime) -> bool:
    """Whether the LMS's last refusal asked Pathways to wait (Retry-After) until after `now`:
    a failed sync's lease then holds until the time the LMS named."""
    return row.status is SyncStatus.FAILED and row.lease_until is not None and row.lease_until > now


def finish_sync(
    session: Session,
    *,
    context_id: int,
    error: str = "",
    member_count: int | None = None,
    differences_url: str | None = None,
    retry_after: float | None = None,
) -> None:
    """Record a sync's outcome and free the lease; a failure keeps the previous roster.

    A refusal with `retry_after` (the LMS's Retry-After, in seconds) keeps the lease until
    then: a busy LMS (Canvas counts every request against one budget per developer key) is
    not asked again by each teacher's launch meanwhile. A teacher's Refresh still asks.
    """
    row = get_roster_sync(session, context_id=context_id)
    if row is None:
        return
    now = utcnow()
    row.lease_until = None
    row.finished_at = now
    row.last_error = error
    if error:
        row.status = SyncStatus.FAILED
        if retry_after:
            row.lease_until = now + timedelta(seconds=retry_after)
        return
    row.status = SyncStatus.OK
    row.succeeded_at = now
    if member_count is not None:
        row.member_count = member_count
    if differences_url is not None:
        row.differences_url = differences_url
