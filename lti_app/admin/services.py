"""What the admin console shows and changes, always within the viewer's platforms."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, delete, false, func, or_, select
from sqlalchemy.orm import Session

from lti_app.admin.models import SecretPurpose, SignInFailure
from lti_app.db import utcnow
from lti_app.errors import NotFoundError
from lti_app.registration.configuration import SCOPES
from lti_app.registration.models import PlatformRegistration, ServiceFailure
from lti_app.tool.client import SCOPE_NAMES
from lti_app.tool.models import (
    Deployment,
    DeploymentStatus,
    LaunchFailure,
    Platform,
    ServiceToken,
    ToolKey,
)

RECENT_ERRORS = 20
SIGN_IN_MAX_FAILURES = 10
SIGN_IN_WINDOW = timedelta(minutes=15)
"""After this many wrong secrets of one kind from one address within the window, that address
is refused (429) until the window has passed; other addresses are not affected."""


@dataclass
class PlatformView:
    """One registration with what the console shows about it."""

    platform: Platform
    registration: PlatformRegistration | None
    deployments: list[Deployment]
    granted: list[str] = field(default_factory=list)
    """Human names of the service scopes the LMS granted."""
    missing: list[str] = field(default_factory=list)
    """Human names of the services Pathways uses that the LMS did not grant."""
    granted_source: str = ""
    """'token' (the latest service token), 'registration', or '' when unknown."""

    @property
    def pending(self) -> int:
        return sum(1 for d in self.deployments if d.status is DeploymentStatus.PENDING)


@dataclass
class Console:
    platforms: list[PlatformView]
    keys: list[ToolKey]
    launch_failures: list[LaunchFailure]
    service_failures: list[ServiceFailure]


def _granted(
    session: Session, platform: Platform, registration: PlatformRegistration | None
) -> tuple[set[str], str]:
    tokens = session.scalars(
        select(ServiceToken).where(ServiceToken.platform_id == platform.id)
    ).all()
    if tokens:
        return {s for t in tokens for s in t.granted_scopes.split()}, "token"
    if registration is not None and registration.granted_scopes:
        return set(registration.granted_scopes.split()), "registration"
    return set(), ""


def _failure_scope(platforms: Sequence[Platform]) -> ColumnElement[bool]:
    """Failures that belong to these registrations: by id, or by (issuer, client_id).

    Never by issuer alone: Canvas Cloud's issuer is shared by every institution.
    """
    if not platforms:
        return false()
    return or_(
        LaunchFailure.platform_id.in_([p.id for p in platforms]),
        *(
            and_(LaunchFailure.issuer == p.issuer, LaunchFailure.client_id == p.client_id)
            for p in platforms
        ),
    )


def load_console(session: Session, *, platform_ids: Sequence[int] | None) -> Console:
    """Everything the console shows, for these platforms (None: every platform, operators)."""
    query = select(Platform).order_by(Platform.issuer, Platform.id)
    if platform_ids is not None:
        query = query.where(Platform.id.in_(list(platform_ids)))
    platforms = list(session.scalars(query))
    ids = [p.id for p in platforms]
    registrations = {
        r.platform_id: r
        for r in session.scalars(
            select(PlatformRegistration).where(PlatformRegistration.platform_id.in_(ids))
        )
    }
    views = []
    for platform in platforms:
        registration = registrations.get(platform.id)
        granted, source = _granted(session, platform, registration)
        views.append(
            PlatformView(
                platform=platform,
                registration=registration,
                deployments=list(
                    session.scalars(
                        select(Deployment)
                        .where(Deployment.platform_id == platform.id)
                        .order_by(Deployment.id)
                    )
                ),
                granted=sorted(SCOPE_NAMES.get(s, s) for s in granted),
                missing=[SCOPE_NAMES.get(s, s) for s in SCOPES if source and s not in granted],
                granted_source=source,
            )
        )
    launch_query = select(LaunchFailure).order_by(
        LaunchFailure.created_at.desc(), LaunchFailure.id.desc()
    )
    service_query = select(ServiceFailure).order_by(
        ServiceFailure.created_at.desc(), ServiceFailure.id.desc()
    )
    if platform_ids is not None:
        launch_query = launch_query.where(_failure_scope(platforms))
        service_query = service_query.where(ServiceFailure.platform_id.in_(ids))
    keys = session.scalars(select(ToolKey).order_by(ToolKey.created_at.desc(), ToolKey.id.desc()))
    return Console(
        platforms=views,
        keys=list(keys),
        launch_failures=list(session.scalars(launch_query.limit(RECENT_ERRORS))),
        service_failures=list(session.scalars(service_query.limit(RECENT_ERRORS))),
    )


def set_deployment_status(
    session: Session,
    *,
    deployment_id: int,
    status: DeploymentStatus,
    platform_ids: Sequence[int] | None,
) -> Deployment:
    """Approve or disable a deployment the viewer may manage; anything else is not found."""
    deployment = session.get(Deployment, deployment_id)
    if deployment is None or (
        platform_ids is not None and deployment.platform_id not in platform_ids
    ):
        raise NotFoundError("There is no such deployment among your registrations.")
    if status is DeploymentStatus.ACTIVE and deployment.status is not DeploymentStatus.ACTIVE:
        deployment.approved_at = utcnow()  # approving it again (a second click) keeps the date
    deployment.status = status
    session.flush()
    return deployment


def record_service_failure(
    session: Session, *, platform_id: int, service: str, reason: str, status: int | None = None
) -> ServiceFailure:
    """Keep a failed LMS service call for the console. Never pass tokens or bodies in reason."""
    failure = ServiceFailure(
        platform_id=platform_id, service=service[:32], status=status, reason=reason[:2000]
    )
    session.add(failure)
    session.flush()
    return failure


def sign_in_locked(
    session: Session,
    *,
    purpose: SecretPurpose,
    address: str,
    window: timedelta,
    max_failures: int,
) -> bool:
    """Whether this address gave `max_failures` wrong secrets of this kind within `window`."""
    failures = session.scalar(
        select(func.count())
        .select_from(SignInFailure)
        .where(
            SignInFailure.purpose == purpose,
            SignInFailure.client_address == address,
            SignInFailure.created_at >= utcnow() - window,
        )
    )
    return (failures or 0) >= max_failures


def record_sign_in_failure(
    session: Session, *, purpose: SecretPurpose, address: str, window: timedelta
) -> None:
    """Keep one wrong secret from this address; forget those older than the window."""
    session.execute(delete(SignInFailure).where(SignInFailure.created_at < utcnow() - window))
    session.add(SignInFailure(purpose=purpose, client_address=address))
    session.flush()


def secret_matches(given: str, expected: str) -> bool:
    """Whether a typed shared secret is the expected one, in a time that tells nothing of it.

    hmac.compare_digest returns at once when the lengths differ, which tells a guesser the
    secret's length; the digests compared here always have the same length.
    """
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def forget_sign_in_failures(session: Session, *, purpose: SecretPurpose, address: str) -> None:
    """A right secret clears this address's count for that secret."""
    session.execute(
        delete(SignInFailure).where(
            SignInFailure.purpose == purpose, SignInFailure.client_address == address
        )
    )
