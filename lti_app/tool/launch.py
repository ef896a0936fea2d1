"""OIDC login initiation and id_token validation.

pylti1p3 validates the LTI message claims (its message validators); this module adds what
pylti1p3 2.0 does not check: `aud`/`azp`, a single-use nonce bound to the login, a state
bound to the browser that started the login, `target_link_uri`, clock-skew leeway, RS256
only, and cached platform keys.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from itsdangerous import BadSignature, URLSafeSerializer
from jwt.utils import base64url_decode, base64url_encode
from pylti1p3.exception import LtiException
from pylti1p3.message_validators import get_validators
from sqlalchemy import Connection, Engine, and_, bindparam, delete, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session

from lti_app.db import Base, utcnow
from lti_app.errors import LaunchError, LaunchForbiddenError
from lti_app.tool.cache import EngineTtlCache
from lti_app.tool.jwks import JwksCache, JwksUnavailableError, UnknownKeyError
from lti_app.tool.models import (
    Deployment,
    DeploymentStatus,
    LaunchSession,
    Platform,
)

LOG = logging.getLogger(__name__)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
CLAIM_DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
CLAIM_AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
CLAIM_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
SUPPORTED_MESSAGES = frozenset({"LtiResourceLinkRequest", "LtiDeepLinkingRequest"})
# Now and then a launch also clears sessions that expired: no cron job.
PURGE_ONE_IN = 200
LOGIN_SALT = "pathways-login"
UNKNOWN_STATE = "This launch does not match a login Pathways started (unknown state)."
UNKNOWN_STATE_HINT = (
    "Open Pathways again from the course. If it keeps failing, the LMS may be sending "
    "launches to a different Pathways server."
)
USED = "This launch was already used. Open Pathways again from the course."
ADMIN_HINT = (
    "An LMS administrator can check the Pathways registration (issuer, client ID, "
    "deployment ID and key set URL) and the server clocks."
)


class PendingDeploymentError(LaunchForbiddenError):
    """The deployment waits for approval; the record of it must be kept (committed)."""


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


@dataclass(frozen=True)
class ValidatedLaunch:
    platform: Platform
    deployment: Deployment
    claims: dict[str, Any]
    login_nonce: str
    """Stored with the launch session, whose unique column makes the login single-use."""

    @property
    def message_type(self) -> str:
        return str(self.claims[CLAIM + "message_type"])


def browser_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def state_cookie_name(state: str) -> str:
    # One cookie per login, so two launches in two tabs don't overwrite each other.
    return "lti1p3_state_" + hashlib.sha256(state.encode()).hexdigest()[:16]


def storage_key(state: str) -> str:
    """The key the login's browser secret has in the platform's storage (lti.put_data)."""
    return "lti_state_" + state


def find_platform(session: Session, issuer: str, client_id: str | None) -> Platform:
    """Find the registration; without client_id only an issuer with one registration works.

    Login initiation reads registrations through a short-lived cache (LOGIN_REGISTRATIONS).
    """
    if not issuer:
        raise LaunchError("The LMS did not say who it is (no issuer, 'iss').", hint=ADMIN_HINT)
    return _choose_platform(_registrations_for_login(session, issuer), issuer, client_id)


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
        raise LaunchForbiddenError("This Pathways registration is disabled.", hint=ADMIN_HINT)
    return platform


def _find_platform_and_deployment(
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
    platform = find_platform(session, issuer, params.get("client_id") or None)
    if not login_hint:
        raise LaunchError("The LMS did not send a login_hint.", hint=ADMIN_HINT)
    if not target:
        raise LaunchError("The LMS did not send a target_link_uri.", hint=ADMIN_HINT)
    target_parts = urlsplit(target)
    if f"{target_parts.scheme}://{target_parts.netloc}" != tool_origin:
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
    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": redirect_uri,
        "login_hint": login_hint,
        "state": state,
        "nonce": nonce,
    }
    if params.get("lti_message_hint"):
        query["lti_message_hint"] = params["lti_message_hint"]
    separator = "&" if "?" in platform.auth_login_url else "?"
    return LoginRedirect(
        auth_url=platform.auth_login_url + separator + urlencode(query),
        state=state,
        browser_secret=secret,
        storage_target=storage_target,
    )


def purge_expired(session: Session) -> None:
    """Drop launch sessions that can no longer be used (with them, the record of their
    logins, whose signed states expired long before)."""
    session.execute(delete(LaunchSession).where(LaunchSession.expires_at < utcnow()))


_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
    """PyJWT 2.15's strict segment check with one regular expression instead of a Python
    loop over every character (~0.1 ms for a 3 KB id_token, a twentieth of a launch). The
    same rules: at most two '=' and only where the length needs them, nothing outside the
    base64url alphabet, and the canonical encoding."""
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if (
        padding > 2
        or (padding and len(segment) % 4)
        or len(stripped) % 4 == 1
        or _BASE64URL.fullmatch(stripped) is None
    ):
        raise jwt.DecodeError(f"Invalid {name} padding")
    try:
        decoded = base64url_decode(stripped)
    except (TypeError, binascii.Error) as err:
        raise jwt.DecodeError(f"Invalid {name} padding") from err
    if base64url_encode(decoded) != stripped:
        raise jwt.DecodeError(f"Invalid {name} padding")
    return decoded


def _id_token_decoder() -> jwt.PyJWT:
    decoder = jwt.PyJWT()
    jws = getattr(decoder, "_jws", None)
    # Only where this PyJWT has the slow check (2.15+); older ones decode segments directly.
    if jws is not None and hasattr(jws, "_decode_base64url_segment"):
        jws._decode_base64url_segment = _decode_base64url_segment
    return decoder


ID_TOKEN_DECODER = _id_token_decoder()


def _json_segment(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _unverified(id_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before the signature is checked, to find the registration and key.

    Plain base64 and json here: PyJWT's strict decoding, which checks the token character by
    character in Python, runs once, when the signature is verified.
    """
    parts = id_token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three segments")
        header, body = _json_segment(parts[0]), _json_segment(parts[1])
    except (ValueError, binascii.Error, RecursionError) as err:  # json's are ValueErrors
        raise LaunchError("The launch message is not a valid JWT.", hint=ADMIN_HINT) from err
    if not isinstance(header, dict) or not isinstance(body, dict):
        raise LaunchError("The launch message is not a valid JWT.", hint=ADMIN_HINT)
    return header, body


def _client_id_from_aud(body: dict[str, Any]) -> str:
    aud = body.get("aud")
    if isinstance(aud, str) and aud:
        return aud
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        if len(aud) == 1:
            return str(aud[0])
        azp = body.get("azp")
        if not isinstance(azp, str) or azp not in aud:
            raise LaunchError(
                "The launch names several audiences but no authorized party (azp) among them.",
                hint=ADMIN_HINT,
            )
        return azp
    raise LaunchError("The launch message has no audience (aud).", hint=ADMIN_HINT)


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


def validate_launch(
    session: Session,
    *,
    id_token: str,
    login: LoginState,
    presented_secret: str | None,
    jwks: JwksCache,
    leeway: int,
) -> ValidatedLaunch:
    """Check everything about an id_token (its login is consumed later, by the launch
    session's insert in tool.services.sync_launch); raise LaunchError otherwise."""
    header, unverified = _unverified(id_token)
    if header.get("alg") != "RS256":
        raise LaunchError(
            f"The launch is signed with {header.get('alg')!r}; Pathways accepts only RS256.",
            hint=ADMIN_HINT,
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise LaunchError("The launch JWT has no key id (kid) in its header.", hint=ADMIN_HINT)

    issuer = unverified.get("iss")
    client_id = _client_id_from_aud(unverified)
    platform, deployment = _find_platform_and_deployment(
        session,
        issuer if isinstance(issuer, str) and "\x00" not in issuer else "",
        client_id,
        _id_claim(unverified.get(CLAIM + "deployment_id"), "deployment_id"),
    )

    now = time.time()
    if login.platform_id != platform.id:
        raise LaunchError("This launch came from a different LMS than its login.", hint=ADMIN_HINT)
    if login.expires_at <= now:
        raise LaunchError("The launch took too long and expired. Open Pathways again.")
    if not presented_secret or not hmac.compare_digest(
        browser_hash(presented_secret), login.browser_hash
    ):
        if login_was_used(session, login):  # the browser's state cookie went with the launch
            raise LaunchError(USED)
        raise LaunchError(
            "This launch was started in a different browser window, or your browser blocked "
            "Pathways' cookie.",
            hint="Open Pathways again from the course. If your browser blocks third-party "
            "cookies, open Pathways in a new window.",
        )

    try:
        published = jwks.get_keys(session, platform.jwks_url, kid)
    except UnknownKeyError as err:
        raise LaunchError(
            f"The launch is signed with a key ({kid}) the LMS does not publish.", hint=ADMIN_HINT
        ) from err
    except JwksUnavailableError as err:
        raise LaunchError(
            "Pathways could not fetch the LMS's public keys to check this launch.",
            hint=f"An LMS administrator can check that the key set URL {platform.jwks_url} "
            "is right and reachable from the Pathways server.",
        ) from err
    candidates = _rs256_keys(kid, published)
    try:
        claims = _decode_with_any(id_token, candidates, client_id, platform.issuer, leeway)
    except jwt.ExpiredSignatureError as err:
        raise LaunchError("The launch message has expired (exp).", hint=ADMIN_HINT) from err
    except jwt.ImmatureSignatureError as err:
        which = "nbf" if "nbf" in str(err) else "iat"
        raise LaunchError(
            f"The launch message is dated in the future ({which}).", hint=ADMIN_HINT
        ) from err
    except jwt.InvalidAudienceError as err:
        raise LaunchError("The launch is meant for another tool (aud).", hint=ADMIN_HINT) from err
    except jwt.MissingRequiredClaimError as err:
        raise LaunchError(
            f"The launch message lacks the {err.claim} claim.", hint=ADMIN_HINT
        ) from err
    except jwt.InvalidSignatureError as err:
        raise LaunchError("The launch signature does not verify.", hint=ADMIN_HINT) from err
    except jwt.InvalidTokenError as err:
        raise LaunchError(f"The launch message is invalid: {err}.", hint=ADMIN_HINT) from err
    for name in ("exp", "iat", "nbf"):
        # NumericDate (RFC 7519): PyJWT would take "9999999999" as a number.
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise LaunchError(f"The launch's {name} claim is not a number.", hint=ADMIN_HINT)
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat > now + leeway:
        raise LaunchError("The launch message is dated in the future (iat).", hint=ADMIN_HINT)

    if not hmac.compare_digest(str(claims.get("nonce", "")), login.nonce):
        raise LaunchError("The launch nonce does not match its login.", hint=ADMIN_HINT)
    if claims.get(CLAIM + "target_link_uri") != login.target_link_uri:
        raise LaunchError(
            "The launch points somewhere other than its login asked for (target_link_uri).",
            hint=ADMIN_HINT,
        )
    _validate_message(claims)
    deployment = _resolve_deployment(session, platform, deployment, claims)
    # The login is consumed by the launch session's insert (tool.services.sync_launch).
    return ValidatedLaunch(
        platform=platform, deployment=deployment, claims=claims, login_nonce=login.nonce
    )


MAX_ID_LENGTH = 255
"""The spec's limit for sub, and what Pathways stores for deployment, course and link ids."""


def _id_claim(value: Any, what: str) -> str:
    """An identifier claim as text: numbers are taken as their digits; anything else that is
    not 1-255 characters of text is refused rather than stored as something else."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        raise LaunchError(f"The launch has no {what}.", hint=ADMIN_HINT)
    if not isinstance(value, str):
        raise LaunchError(f"The launch's {what} is not text.", hint=ADMIN_HINT)
    if len(value) > MAX_ID_LENGTH:
        raise LaunchError(
            f"The launch's {what} is longer than {MAX_ID_LENGTH} characters.", hint=ADMIN_HINT
        )
    if "\x00" in value:
        raise LaunchError(f"The launch's {what} contains a NUL character.", hint=ADMIN_HINT)
    return value


def check_deep_linking_settings(settings: Any) -> None:
    if not isinstance(settings, dict) or not settings:
        raise LaunchError("The deep linking request has no deep linking settings.", hint=ADMIN_HINT)
    url = settings.get("deep_link_return_url")
    parts = urlsplit(url) if isinstance(url, str) and len(url) <= 2048 else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        # Never an action for the form that posts the signed response (javascript:, data:,
        # a path on Pathways itself).
        raise LaunchError(
            "The deep linking request has no usable return address (deep_link_return_url).",
            hint=ADMIN_HINT,
        )
    types = settings.get("accept_types")
    if isinstance(types, list) and "ltiResourceLink" not in types:
        # Canvas's conference_selection asks for link/html and migration_selection for file
        # (lib/lti/messages/deep_linking_request.rb): the teacher opened Pathways from a place
        # that cannot take what Pathways adds. Nothing is wrong with the registration.
        asked = ", ".join(str(t)[:40] for t in types[:6]) or "nothing"
        raise LaunchError(
            f"This part of the LMS accepts only other content ({asked}), not activity links "
            "(LTI resource links), and activity links are what Pathways adds.",
            hint="Add Pathways from the course's modules or assignments instead, where the LMS "
            "accepts activity links.",
        )


MIN_RSA_KEY_BITS = 2048  # RFC 7518 §3.3


def _rs256_keys(kid: str, published: list[tuple[str, RSAPublicKey]]) -> list[RSAPublicKey]:
    """The keys under kid that may check an RS256 signature: published for RS256 (a key is for
    one algorithm, RFC 8725 §3.1) and of at least 2048 bits."""
    for_rs256 = [key for alg, key in published if alg == "RS256"]
    if not for_rs256:
        algs = ", ".join(sorted({alg for alg, _key in published}))
        raise LaunchError(
            f"The LMS publishes its key {kid} for {algs}, not for RS256.", hint=ADMIN_HINT
        )
    strong = [key for key in for_rs256 if key.key_size >= MIN_RSA_KEY_BITS]
    if not strong:
        raise LaunchError(
            f"The LMS signs with a {for_rs256[0].key_size}-bit key; Pathways needs "
            f"{MIN_RSA_KEY_BITS} bits or more.",
            hint=ADMIN_HINT,
        )
    return strong


def _decode_with_any(
    id_token: str, keys: list[RSAPublicKey], client_id: str, issuer: str, leeway: int
) -> dict[str, Any]:
    """The verified claims; each key published under the kid is tried in turn."""
    for key in keys[:-1]:
        try:
            return _decode(id_token, key, client_id, issuer, leeway)
        except jwt.InvalidSignatureError:
            continue
    return _decode(id_token, keys[-1], client_id, issuer, leeway)


def _decode(
    id_token: str, key: RSAPublicKey, client_id: str, issuer: str, leeway: int
) -> dict[str, Any]:
    claims: dict[str, Any] = ID_TOKEN_DECODER.decode(
        id_token,
        key,
        algorithms=["RS256"],
        audience=client_id,
        issuer=issuer,
        leeway=leeway,
        options={"require": ["exp", "iat", "iss", "aud", "nonce"]},
    )
    return claims


def _validate_message(claims: dict[str, Any]) -> None:
    if claims.get(CLAIM + "version") != "1.3.0":
        raise LaunchError("The launch is not an LTI 1.3.0 message (version).", hint=ADMIN_HINT)
    message_type = claims.get(CLAIM + "message_type")
    if not message_type:
        raise LaunchError("The launch does not say what it is (message_type).", hint=ADMIN_HINT)
    if not isinstance(message_type, str):
        raise LaunchError("The launch's message_type is not text.", hint=ADMIN_HINT)
    if message_type not in SUPPORTED_MESSAGES:
        raise LaunchError(f"Pathways does not handle {message_type!r} messages.", hint=ADMIN_HINT)
    _id_claim(claims.get(CLAIM + "deployment_id"), "deployment_id")
    roles = claims.get(CLAIM + "roles")
    if roles is not None and not isinstance(roles, list):
        raise LaunchError("The launch's roles claim is not a list.", hint=ADMIN_HINT)
    link = claims.get(CLAIM + "resource_link")
    # pylti1p3's validators assume these claims are objects (a 500 otherwise).
    if message_type == "LtiResourceLinkRequest" and not isinstance(link, dict):
        raise LaunchError(
            "The launch's resource link claim is not an object with an id.", hint=ADMIN_HINT
        )
    if message_type == "LtiDeepLinkingRequest":
        check_deep_linking_settings(claims.get(CLAIM_DL + "deep_linking_settings"))
    for validator in get_validators():  # type: ignore[no-untyped-call]
        if validator.can_validate(claims):
            try:
                validator.validate(claims)
            except LtiException as err:
                raise LaunchError(
                    f"The launch message is incomplete: {err}.", hint=ADMIN_HINT
                ) from err
    context = claims.get(CLAIM + "context")
    if context is not None and (not isinstance(context, dict) or not context.get("id")):
        raise LaunchError("The launch's course (context) claim has no id.", hint=ADMIN_HINT)
    if isinstance(context, dict):
        _id_claim(context["id"], "course (context) id")
    if isinstance(link, dict) and link.get("id") is not None:
        _id_claim(link["id"], "resource link id")
    _id_claim(claims.get("sub"), "user id (sub)")


def _resolve_deployment(
    session: Session, platform: Platform, deployment: Deployment | None, claims: dict[str, Any]
) -> Deployment:
    deployment_id = str(claims[CLAIM + "deployment_id"])
    if deployment is None or deployment.deployment_id != deployment_id:
        deployment = record_new_deployment(session, platform, deployment_id)
    if deployment.status is DeploymentStatus.PENDING:
        raise PendingDeploymentError(
            f"This installation of Pathways (deployment {deployment_id}) is waiting for approval.",
            hint="A Pathways administrator must approve it: lti-app platform approve-deployment "
            f"--issuer {platform.issuer} --client-id {platform.client_id} "
            f"--deployment-id {deployment_id}",
        )
    if deployment.status is DeploymentStatus.DISABLED:
        raise LaunchForbiddenError(
            f"This installation of Pathways (deployment {deployment_id}) is disabled.",
            hint=ADMIN_HINT,
        )
    return deployment


def record_new_deployment(session: Session, platform: Platform, deployment_id: str) -> Deployment:
    """Record an unknown deployment of a known registration (Canvas makes one per install).

    A pending deployment fails its launch with PendingDeploymentError, which the view commits
    so the administrator sees the request.
    """
    status = (
        DeploymentStatus.ACTIVE if platform.auto_approve_deployments else DeploymentStatus.PENDING
    )
    deployment = Deployment(
        platform_id=platform.id,
        deployment_id=deployment_id,
        status=status,
        approved_at=utcnow() if status is DeploymentStatus.ACTIVE else None,
    )
    try:
        with session.begin_nested():
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
