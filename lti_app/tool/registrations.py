"""Which registration (platform) and deployment a login or launch belongs to.

Both are read through short-lived per-process caches (tool.cache) that any change to a
registration or deployment empties; an unknown deployment of a known registration is
recorded here, active or waiting for approval.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session

from lti_app.db import Base, utcnow
from lti_app.errors import LaunchError, LaunchForbiddenError
from lti_app.tool.cache import EngineTtlCache
from lti_app.tool.models import Deployment, DeploymentStatus, Platform

LOG = logging.getLogger(__name__)

ADMIN_HINT = (
    "An LMS administrator can check the Pathways registration (issuer, client ID, "
    "deployment ID and key set URL) and the server clocks."
)


class PendingDeploymentError(LaunchForbiddenError):
    """The deployment waits for approval; the record of it must be kept (committed)."""


def find_platform(
    session: Session, issuer: str, client_id: str | None, deployment_id: str = ""
) -> Platform:
    """Find the registration. Without client_id (optional at login initiation), an issuer
    with one registration, or the one registration that knows `deployment_id`.

    Login initiation reads registrations through a short-lived cache (LOGIN_REGISTRATIONS).
    """
    if not issuer:
        raise LaunchError("The LMS did not say who it is (no issuer, 'iss').", hint=ADMIN_HINT)
    rows = _registrations_for_login(session, issuer)
    if not client_id and len(rows) > 1 and deployment_id and "\x00" not in deployment_id:
        # A deployment belongs to one registration: it says which one the LMS means.
        known = set(
            session.scalars(
                select(Deployment.platform_id).where(
                    Deployment.deployment_id == deployment_id,
                    Deployment.platform_id.in_([p.id for p in rows]),
                )
            )
        )
        rows = [p for p in rows if p.id in known] or rows
    return _choose_platform(rows, issuer, client_id)


LOGIN_REGISTRATIONS: EngineTtlCache[list[Platform]] = EngineTtlCache(ttl=10.0)
"""Registrations by issuer, for login initiation; only issuers that exist are kept, so logins
naming made-up issuers cannot grow it."""
LAUNCH_REGISTRATIONS: EngineTtlCache[tuple[Platform, Deployment]] = EngineTtlCache(ttl=10.0)
"""(registration, deployment) by (issuer, client_id, deployment_id), kept only while both are
active: approving a deployment takes effect at once, disabling one within `ttl` seconds in
other processes and at once in the process that did it."""


def _registrations_for_login(session: Session, issuer: str) -> list[Platform]:
    if "\x00" in issuer:  # PostgreSQL text cannot hold it; no registration can match
        return []
    engine = _engine(session)
    cached = LOGIN_REGISTRATIONS.get(engine, issuer)
    if cached is not None:
        return cached
    rows = session.connection().execute(_queries().platforms, {"issuer": issuer})
    platforms = [Platform(**row._mapping) for row in rows]
    if platforms:
        LOGIN_REGISTRATIONS.put(engine, issuer, platforms)
    return platforms


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


def _forget_registrations() -> None:
    LOGIN_REGISTRATIONS.clear()
    LAUNCH_REGISTRATIONS.clear()


@event.listens_for(Platform, "after_insert")
@event.listens_for(Platform, "after_update")
@event.listens_for(Platform, "after_delete")
@event.listens_for(Deployment, "after_update")
@event.listens_for(Deployment, "after_delete")
def _registration_changed(*_args: Any) -> None:
    _forget_registrations()


@event.listens_for(Session, "do_orm_execute")
def _registrations_changed_in_bulk(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(
        mapper.class_ in (Platform, Deployment) for mapper in state.all_mappers
    ):
        _forget_registrations()


def _choose_platform(rows: list[Platform], issuer: str, client_id: str | None) -> Platform:
    if not rows:
        raise LaunchError(
            f"Pathways is not registered for the LMS {issuer!r}.",
            hint="An LMS administrator must register Pathways with this issuer first.",
        )
    if client_id:
        matching = [p for p in rows if p.client_id == client_id]
        if not matching:
            raise LaunchError(
                f"The client ID {client_id!r} is not registered for {issuer!r}.",
                hint="Check the client ID of the Pathways registration in the LMS.",
            )
        platform = matching[0]
    elif len(rows) == 1:
        platform = rows[0]
    else:
        raise LaunchError(
            "Several registrations exist for this LMS and it did not say which (no client_id).",
            hint=ADMIN_HINT,
        )
    if not platform.is_active:
        # Only the operator's `lti-app platform disable` disables a registration.
        raise LaunchForbiddenError(
            "Pathways is disabled for this LMS registration, so it refuses its launches.",
            hint="The Pathways operator disabled it. An LMS administrator can ask them why; "
            "they enable it again with: lti-app platform enable "
            f"--issuer {platform.issuer} --client-id {platform.client_id}",
        )
    return platform


def find_platform_and_deployment(
    session: Session, issuer: str, client_id: str, deployment_id: str
) -> tuple[Platform, Deployment | None]:
    """The registration and, when known, the deployment: one query for both, or none while
    LAUNCH_REGISTRATIONS holds them active."""
    if not issuer:
        raise LaunchError("The LMS did not say who it is (no issuer, 'iss').", hint=ADMIN_HINT)
    engine = _engine(session)
    cache_key = (issuer, client_id, deployment_id)
    cached = LAUNCH_REGISTRATIONS.get(engine, cache_key)
    if cached is not None:
        return cached
    rows = session.connection().execute(
        _queries().platforms_with_deployment, {"issuer": issuer, "deployment_id": deployment_id}
    )
    pairs = []
    for row in rows:
        values = row._mapping
        platform = Platform(**{c: values[c] for c in PLATFORM_COLUMNS})
        deployment = None
        if values["d_id"] is not None:
            deployment = Deployment(**{c: values["d_" + c] for c in DEPLOYMENT_COLUMNS})
        pairs.append((platform, deployment))
    platform = _choose_platform([pair[0] for pair in pairs], issuer, client_id)
    found = next(pair[1] for pair in pairs if pair[0] is platform)
    if found is not None and found.status is DeploymentStatus.ACTIVE:
        LAUNCH_REGISTRATIONS.put(engine, cache_key, (platform, found))
    return platform, found


@dataclass(frozen=True)
class _Queries:
    platforms: Any
    platforms_with_deployment: Any


PLATFORM_COLUMNS = [c.name for c in Base.metadata.tables["platform"].c]
DEPLOYMENT_COLUMNS = [c.name for c in Base.metadata.tables["deployment"].c]


@functools.cache
def _queries() -> _Queries:
    """Core statements with bound parameters, built and compiled once: every launch runs
    them, and the ORM's per-statement work cost more than the database did. The objects
    made from their rows are plain copies, not tracked by the session."""
    platform = Base.metadata.tables["platform"]
    deployment = Base.metadata.tables["deployment"]
    with_deployment = (
        select(platform, *(c.label("d_" + c.name) for c in deployment.c))
        .outerjoin(
            deployment,
            and_(
                deployment.c.platform_id == platform.c.id,
                deployment.c.deployment_id == bindparam("deployment_id"),
            ),
        )
        .where(platform.c.issuer == bindparam("issuer"))
    )
    return _Queries(
        platforms=select(platform).where(platform.c.issuer == bindparam("issuer")),
        platforms_with_deployment=with_deployment,
    )


def resolve_deployment(
    session: Session, platform: Platform, deployment: Deployment | None, deployment_id: str
) -> Deployment:
    """The launch's deployment (found with its registration, or recorded now); refused
    unless it is active."""
    if deployment is None or deployment.deployment_id != deployment_id:
        deployment = record_new_deployment(session, platform, deployment_id)
    if deployment.status is DeploymentStatus.PENDING:
        raise PendingDeploymentError(
            f"This installation of Pathways (deployment {deployment_id}) is waiting for approval.",
            hint=_who_can_approve(session, platform, deployment_id),
        )
    if deployment.status is DeploymentStatus.DISABLED:
        raise LaunchForbiddenError(
            f"This installation of Pathways (deployment {deployment_id}) is disabled.",
            hint="It was disabled in the Pathways admin console or by the Pathways operator. "
            "An LMS administrator can approve it again in the admin console (opened through "
            "another installation); the operator with: lti-app platform enable-deployment "
            f"--issuer {platform.issuer} --client-id {platform.client_id} "
            f"--deployment-id {deployment_id}",
        )
    return deployment


ADMIN_CONSOLE_PATH = "/admin/"
"""Where the admin console answers (admin.views); the launch refusals name it."""


def _who_can_approve(session: Session, platform: Platform, deployment_id: str) -> str:
    """Who can approve this deployment, and where. An LMS administrator's console needs a
    launch through an approved deployment of the same registration: named only when one is."""
    operator = (
        f"in the admin console ({ADMIN_CONSOLE_PATH} on the Pathways server, signed in as "
        "the operator) or with: lti-app platform approve-deployment "
        f"--issuer {platform.issuer} --client-id {platform.client_id} "
        f"--deployment-id {deployment_id}"
    )
    has_approved = session.scalar(
        select(Deployment.id)
        .where(
            Deployment.platform_id == platform.id,
            Deployment.status == DeploymentStatus.ACTIVE,
        )
        .limit(1)
    )
    if has_approved is None:
        return (
            "No installation of this registration is approved yet, so only the Pathways "
            f"operator can approve it: {operator}"
        )
    return (
        "An LMS administrator can approve it in the Pathways admin console: open Pathways "
        "from an installation that already works (in Canvas: Pathways administration in the "
        f"account's menu) and press Approve beside deployment {deployment_id}. The Pathways "
        f"operator can approve it too: {operator}"
    )


def _claim_first_deployment(session: Session, platform: Platform) -> bool:
    """Use up the registration's approval of its first deployment; False when another launch
    (in any worker) used it first or there was none."""
    if not platform.approve_first_deployment:
        return False
    # One conditional UPDATE: of two first launches of two deployments at once, the second
    # waits on the row and then finds the flag cleared.
    claimed = session.execute(
        update(Platform)
        .where(Platform.id == platform.id, Platform.approve_first_deployment.is_(True))
        .values(approve_first_deployment=False)
        .returning(Platform.id)
        .execution_options(synchronize_session=False)
    ).first()
    return claimed is not None


def record_new_deployment(session: Session, platform: Platform, deployment_id: str) -> Deployment:
    """Record an unknown deployment of a known registration (Canvas makes one per install).

    A pending deployment fails its launch with PendingDeploymentError, which the view commits
    so the administrator sees the request.
    """
    deployment = Deployment(platform_id=platform.id, deployment_id=deployment_id)
    try:
        with session.begin_nested():
            # In the savepoint: a concurrent launch of this same deployment that recorded it
            # first leaves the registration's first approval unused.
            approved = platform.auto_approve_deployments or _claim_first_deployment(
                session, platform
            )
            status = DeploymentStatus.ACTIVE if approved else DeploymentStatus.PENDING
            deployment.status = status
            deployment.approved_at = utcnow() if approved else None
            session.add(deployment)
    except IntegrityError:
        # A concurrent first launch of the same deployment recorded it first.
        found = session.scalar(
            select(Deployment).where(
                Deployment.platform_id == platform.id, Deployment.deployment_id == deployment_id
            )
        )
        if found is None:  # pragma: no cover
            raise
        return found
    LOG.warning(
        "new deployment iss=%s client_id=%s deployment=%s status=%s",
        platform.issuer,
        platform.client_id,
        deployment_id,
        status.value,
    )
    return deployment
