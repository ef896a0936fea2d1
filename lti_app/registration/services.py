"""Finish a registration: read the LMS's answer, store it, and carry the pending state."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lti_app.db import upsert_insert, utcnow
from lti_app.registration.configuration import PRIVACY_LEVEL, TOOL_CONFIG
from lti_app.registration.errors import NOTHING_SAVED, PlatformRefusedError, RegistrationError
from lti_app.registration.models import (
    PlatformRegistration,
    RegistrationMethod,
    RegistrationSubmission,
)
from lti_app.registration.platform_configuration import (
    PlatformConfiguration,
    has_control_characters,
)
from lti_app.tool.models import Deployment, DeploymentStatus, Platform

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Issued:
    """What the LMS answered to our client registration."""

    client_id: str
    deployment_id: str | None
    granted_scopes: tuple[str, ...]
    scope_answered: bool = field(default=False, compare=False)
    """The answer carried `scope`: then granted_scopes is what was granted, even when empty."""


def parse_registration_response(body: Any) -> Issued:
    """Read the client_id (and deployment_id) the LMS issued; refuse anything malformed."""
    if not isinstance(body, dict):
        raise PlatformRefusedError(
            "The LMS accepted the registration but its answer is not a JSON object.",
            hint=NOTHING_SAVED,
        )
    client_id = body.get("client_id")
    if not isinstance(client_id, str | int) or isinstance(client_id, bool) or not str(client_id):
        raise PlatformRefusedError(
            "The LMS's answer has no client ID, so Pathways cannot recognise its launches.",
            hint=NOTHING_SAVED,
        )
    if len(str(client_id)) > 255:
        raise PlatformRefusedError(
            "The LMS's answer has a client ID longer than 255 characters.", hint=NOTHING_SAVED
        )
    tool = body.get(TOOL_CONFIG)
    deployment = tool.get("deployment_id") if isinstance(tool, dict) else None
    deployment_id = (
        str(deployment)
        if isinstance(deployment, str | int) and not isinstance(deployment, bool) and deployment
        else None
    )
    if deployment_id is not None and len(deployment_id) > 255:
        raise PlatformRefusedError(
            "The LMS's answer has a deployment ID that is too long.", hint=NOTHING_SAVED
        )
    # No launch could ever match an id with control characters in it (and PostgreSQL refuses
    # NUL): say so now rather than store a registration that cannot work.
    for name, value in (("client ID", str(client_id)), ("deployment ID", deployment_id)):
        if value is not None and has_control_characters(value):
            raise PlatformRefusedError(
                f"The LMS's answer has a {name} with control characters in it, which no "
                "launch could match.",
                hint=NOTHING_SAVED,
            )
    scope = body.get("scope")
    # The answer is the registration as the LMS stored it (LTI-DR 3.6, RFC 7591 3.2.1): its
    # scope is what was granted, and "" means nothing (Moodle with every service off). A token
    # with control characters is no RFC 6749 scope-token (and PostgreSQL refuses NUL).
    tokens = scope.split() if isinstance(scope, str) else []
    granted = tuple(s for s in tokens if not has_control_characters(s))
    return Issued(str(client_id), deployment_id, granted, scope_answered=isinstance(scope, str))


def store_registration(
    session: Session,
    *,
    platform: PlatformConfiguration,
    issued: Issued,
    config_url: str,
    requested: tuple[str, ...],
    auto_approve_deployments: bool,
) -> Platform:
    """Record the registration, its deployment (approved: the admin just confirmed it), or,
    when the LMS named none yet, that its first deployment is approved at its first launch."""
    row = session.scalar(
        select(Platform).where(
            Platform.issuer == platform.issuer, Platform.client_id == issued.client_id
        )
    )
    if row is None:
        row = Platform(issuer=platform.issuer, client_id=issued.client_id)
        session.add(row)
    row.name = platform.display_name[:255]
    row.auth_login_url = platform.authorization_endpoint
    row.token_url = platform.token_endpoint
    row.token_audience = platform.authorization_server
    row.jwks_url = platform.jwks_uri
    row.auto_approve_deployments = auto_approve_deployments
    row.is_active = True
    session.flush()
    # Canvas answers with no deployment: it makes one when its admin enables the tool, after
    # this. Left to wait for approval, that first launch would lock out the only people who
    # could approve it (the console needs a launch that worked), so it is approved at launch.
    row.approve_first_deployment = (
        issued.deployment_id is None
        and not auto_approve_deployments
        and session.scalar(select(Deployment.id).where(Deployment.platform_id == row.id).limit(1))
        is None
    )
    if issued.deployment_id is not None:
        deployment = session.scalar(
            select(Deployment).where(
                Deployment.platform_id == row.id,
                Deployment.deployment_id == issued.deployment_id,
            )
        )
        if deployment is None:
            deployment = Deployment(platform_id=row.id, deployment_id=issued.deployment_id)
            session.add(deployment)
        deployment.status = DeploymentStatus.ACTIVE
        deployment.approved_at = utcnow()
    record = session.scalar(
        select(PlatformRegistration).where(PlatformRegistration.platform_id == row.id)
    )
    if record is None:
        record = PlatformRegistration(platform_id=row.id, method=RegistrationMethod.DYNAMIC)
        session.add(record)
    record.method = RegistrationMethod.DYNAMIC
    record.product_family_code = platform.product_family_code
    record.platform_version = platform.version
    record.openid_configuration_url = config_url[:1024]
    record.registration_endpoint = platform.registration_endpoint
    record.requested_scopes = " ".join(requested)
    record.granted_scopes = " ".join(
        issued.granted_scopes if issued.granted_scopes or issued.scope_answered else requested
    )
    record.privacy_level = PRIVACY_LEVEL
    session.flush()
    LOG.info(
        "registered iss=%s client_id=%s deployment=%s family=%s",
        row.issuer,
        row.client_id,
        issued.deployment_id,
        platform.product_family_code,
    )
    return row


# The pending registration travels in the confirm form, encrypted and timestamped (Fernet),
# so every worker can finish it and the registration token is never readable in the page.


def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(b"pathways-registration:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _submission_digest(sealed: str, *, config_url: str, token: str) -> str:
    claim = f"{config_url}\n{token}" if token else sealed
    return hashlib.sha256(claim.encode()).hexdigest()


def claim_submission(
    session: Session, sealed: str, *, config_url: str, token: str, max_age: int
) -> bool:
    """Record that this registration goes to the LMS now; False when it already went.

    One registration is one registration token: Back (or a reload) fetches the confirm page
    again and seals a new form for the same token, which Canvas accepts for an hour. Without a
    token (LTI-DR makes it optional) the form itself is all that tells two apart.
    """
    table = RegistrationSubmission.__table__
    # A form is only good for max_age seconds (open_pending): older records guard nothing.
    session.execute(
        delete(RegistrationSubmission).where(
            RegistrationSubmission.created_at < utcnow() - timedelta(seconds=max_age)
        )
    )
    claimed = session.execute(
        upsert_insert(session, table)
        .values(
            form_digest=_submission_digest(sealed, config_url=config_url, token=token),
            created_at=utcnow(),
        )
        .on_conflict_do_nothing()
        .returning(table.c.form_digest)
    ).first()
    return claimed is not None


def release_submission(session: Session, sealed: str, *, config_url: str, token: str) -> None:
    """Forget that this registration went to the LMS, which refused it: registered nothing,
    it may be sent again (the admin was told to try again in a few minutes)."""
    session.execute(
        delete(RegistrationSubmission).where(
            RegistrationSubmission.form_digest
            == _submission_digest(sealed, config_url=config_url, token=token)
        )
    )


def seal_pending(secret: str, *, config_url: str, token: str, config: dict[str, Any]) -> str:
    """Encrypt what the confirm step needs: the configuration URL, token and configuration."""
    payload = json.dumps({"url": config_url, "token": token, "config": config})
    return _fernet(secret).encrypt(payload.encode()).decode()


def open_pending(secret: str, sealed: str, *, max_age: int) -> tuple[str, str, dict[str, Any]]:
    """Decrypt a pending registration, or say it expired."""
    try:
        data = json.loads(_fernet(secret).decrypt(sealed.encode(), ttl=max_age))
    except (InvalidToken, ValueError) as err:
        raise RegistrationError(
            "This registration has expired or its form was changed.",
            hint="Start the registration again from the LMS.",
        ) from err
    return str(data["url"]), str(data["token"]), dict(data["config"])
