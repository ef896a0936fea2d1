"""OIDC login initiation, and the login state a launch is checked against (tool.launch).

The login writes nothing: it travels signed inside the OIDC `state`, bound to the browser
that started it by a secret in a state cookie or in the platform's storage.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.errors import LaunchError
from lti_app.http import same_origin
from lti_app.tool.models import LaunchFailure, LaunchSession, Platform
from lti_app.tool.registrations import ADMIN_HINT, find_platform

# Now and then a launch also clears sessions that expired: no cron job.
PURGE_ONE_IN = 200
LOGIN_SALT = "pathways-login"
UNKNOWN_STATE = "This launch does not match a login Pathways started (unknown state)."
UNKNOWN_STATE_HINT = (
    "Open Pathways again from the course. If it keeps failing, the LMS may be sending "
    "launches to a different Pathways server."
)


@dataclass(frozen=True)
class LoginRedirect:
    """Where to send the browser after login initiation, and the browser secret to bind."""

    auth_url: str
    state: str
    browser_secret: str
    storage_target: str | None


@dataclass(frozen=True)
class LoginState:
    """A login in flight. It travels signed inside the OIDC `state` itself, so starting a
    login writes nothing and any worker, even after a restart, can check the launch."""

    state: str
    nonce: str
    browser_hash: str
    """SHA-256 of the random value in the browser's state cookie or platform storage."""
    platform_id: int
    target_link_uri: str
    storage_target: str | None
    """Set when the platform offered LTI Platform Storage (lti_storage_target) at login."""
    expires_at: float
    """Unix time."""


@functools.lru_cache(maxsize=8)
def _login_signer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(
        secret_key, salt=LOGIN_SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )


def browser_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


STATE_COOKIE_PREFIX = "lti1p3_state_"
PLAIN_HTTP = (
    "Pathways is served over plain HTTP ({origin}), where browsers do not keep its sign-in "
    "cookie, so no launch can start here."
)
PLAIN_HTTP_HINT = (
    "For the LMS or Pathways admin: serve Pathways over HTTPS and register its https:// "
    "addresses in the LMS. Plain HTTP works only at this computer's own addresses (localhost, "
    "127.0.0.1), for trying Pathways out."
)


def state_cookie_name(state: str) -> str:
    # One cookie per login, so two launches in two tabs don't overwrite each other.
    return STATE_COOKIE_PREFIX + hashlib.sha256(state.encode()).hexdigest()[:16]


def storage_key(state: str) -> str:
    """The key the login's browser secret has in the platform's storage (lti.put_data)."""
    return "lti_state_" + state


def start_login(
    session: Session,
    params: dict[str, str],
    *,
    secret_key: str,
    tool_origin: str,
    redirect_uri: str,
    state_ttl: int,
) -> LoginRedirect:
    """Build the platform authorization redirect; the login travels signed in its state."""
    issuer = params.get("iss", "")
    login_hint = params.get("login_hint", "")
    target = params.get("target_link_uri", "")
    platform = find_platform(
        session,
        issuer,
        params.get("client_id") or None,
        params.get("lti_deployment_id") or params.get("deployment_id") or "",
    )
    if not login_hint:
        raise LaunchError("The LMS did not send a login_hint.", hint=ADMIN_HINT)
    if not target:
        raise LaunchError("The LMS did not send a target_link_uri.", hint=ADMIN_HINT)
    if not _is_tool_address(target, tool_origin):
        # Never let a login send the id_token somewhere else.
        raise LaunchError(
            "The launch points at another site (target_link_uri).",
            hint=f"The target link URI must start with {tool_origin}.",
        )
    nonce = secrets.token_urlsafe(32)
    secret = secrets.token_urlsafe(32)
    storage_target = params.get("lti_storage_target") or None
    state = _login_signer(secret_key).dumps(
        [platform.id, nonce, browser_hash(secret), target, storage_target, time.time() + state_ttl]
    )
    return LoginRedirect(
        auth_url=authorization_url(
            platform,
            params,
            redirect_uri=redirect_uri,
            state=state,
            nonce=nonce,
        ),
        state=state,
        browser_secret=secret,
        storage_target=storage_target,
    )


def authorization_url(
    platform: Platform, params: dict[str, str], *, redirect_uri: str, state: str, nonce: str
) -> str:
    """The platform's OIDC authorization request for a login (`params`: its initiation)."""
    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": redirect_uri,
        "login_hint": params.get("login_hint", ""),
        "state": state,
        "nonce": nonce,
    }
    if params.get("lti_message_hint"):
        query["lti_message_hint"] = params["lti_message_hint"]
    separator = "&" if "?" in platform.auth_login_url else "?"
    return platform.auth_login_url + separator + urlencode(query)


def purge_expired(session: Session) -> None:
    """Drop launch sessions that can no longer be used (with them, the record of their
    logins, whose signed states expired long before)."""
    session.execute(delete(LaunchSession).where(LaunchSession.expires_at < utcnow()))


LAUNCH_FAILURES_KEPT = 10_000
LAUNCH_FAILURES_MAX_AGE = timedelta(days=30)


def purge_launch_failures(
    session: Session,
    *,
    keep: int = LAUNCH_FAILURES_KEPT,
    max_age: timedelta = LAUNCH_FAILURES_MAX_AGE,
) -> None:
    """Keep the record of refused launches bounded: anyone can post a bad launch, and each
    one is recorded for the admin console; a month, and the newest `keep`, are plenty."""
    session.execute(delete(LaunchFailure).where(LaunchFailure.created_at < utcnow() - max_age))
    newest_dropped = session.scalar(
        select(LaunchFailure.id).order_by(LaunchFailure.id.desc()).offset(keep).limit(1)
    )
    if newest_dropped is not None:
        session.execute(delete(LaunchFailure).where(LaunchFailure.id <= newest_dropped))


def load_login_state(state: str, *, secret_key: str) -> LoginState:
    """The login a state stands for, if we signed it; expiry is checked with the launch."""
    try:
        fields = _login_signer(secret_key).loads(state)
        platform_id, nonce, hashed, target, storage_target, expires_at = fields
    except (BadSignature, TypeError, ValueError):
        raise LaunchError(UNKNOWN_STATE, hint=UNKNOWN_STATE_HINT) from None
    return LoginState(
        state=state,
        nonce=str(nonce),
        browser_hash=str(hashed),
        platform_id=int(platform_id),
        target_link_uri=str(target),
        storage_target=str(storage_target) if storage_target else None,
        expires_at=float(expires_at),
    )


def login_was_used(session: Session, login: LoginState) -> bool:
    return (
        session.scalar(select(LaunchSession.id).where(LaunchSession.login_nonce == login.nonce))
        is not None
    )


def _is_tool_address(url: str, tool_origin: str) -> bool:
    """Whether `url` is on Pathways' own origin. Host case and a spelled-out default port do
    not matter (RFC 3986 §6.2.2: an admin may type `https://Pathways.School.org:443/…`); a
    user name in the address does, as browsers handle it in their own ways."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return False
    return "@" not in netloc and same_origin(url, tool_origin)
