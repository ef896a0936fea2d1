"""OAuth2 client-credentials tokens for LMS services (NRPS, AGS).

One token per (registration, token URL, scope set), kept in the database so every worker and
host reuses it until shortly before it expires; a token request per call gets a tool
rate-limited by Canvas and costs ~200 ms against a distant LMS.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import jwt
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from lti_app.db import Database, utcnow
from lti_app.http import is_throttled, retry_after_seconds
from lti_app.tool.keys import ISSUED_AT_SKEW_SECONDS, KeyRing, ToolKeyError
from lti_app.tool.models import Platform, ServiceToken

LOG = logging.getLogger(__name__)

SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READ = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READ = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NAMES = {
    SCOPE_NRPS: "course roster (Names and Role Provisioning)",
    SCOPE_LINEITEM: "gradebook columns (line items)",
    SCOPE_LINEITEM_READ: "reading gradebook columns",
    SCOPE_RESULT_READ: "reading results",
    SCOPE_SCORE: "sending scores",
}
# Refresh this long before expiry so a token never expires in flight.
REFRESH_MARGIN = timedelta(seconds=120)
DEFAULT_EXPIRES_IN = 3600.0
# A day at most: a huge (or infinite) expires_in would overflow datetime, and a token the LMS
# revokes early is dropped on its first 401 anyway.
MAX_EXPIRES_IN = 86400.0
MAX_TOKEN_BODY_BYTES = 1024 * 1024


class ServiceTokenError(Exception):
    """No token could be had (the LMS would not give one, or Pathways could not sign the
    request); the message says what an admin should check."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        throttled: bool = False,
        retry_after: float | None = None,
        error: str = "",
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.throttled = throttled
        """The LMS asked Pathways to slow down: nothing is wrong with the registration."""
        self.retry_after = retry_after
        """Seconds the LMS asked Pathways to wait (Retry-After), if it said."""
        self.error = error
        """The OAuth 2 error code of the LMS's refusal (RFC 6749 §5.2), e.g. invalid_scope."""

    def again(self) -> ServiceTokenError:
        """The same refusal, for another caller (one exception object raised in several
        threads would share its traceback)."""
        return ServiceTokenError(
            str(self),
            retryable=self.retryable,
            status=self.status,
            throttled=self.throttled,
            retry_after=self.retry_after,
            error=self.error,
        )


@dataclass(frozen=True)
class AccessToken:
    value: str
    granted: frozenset[str]
    expires_at: datetime

    def is_fresh(self) -> bool:
        return self.expires_at - REFRESH_MARGIN > utcnow()


def missing_scopes_message(missing: set[str]) -> str:
    names = ", ".join(sorted(SCOPE_NAMES.get(s, s) for s in missing))
    return (
        f"The LMS did not allow Pathways to use: {names}. An LMS administrator can turn these "
        "services on in the Pathways registration (in Moodle: the tool's 'Services' settings; "
        "in Canvas: the developer key's scopes)."
    )


def assertion_audience(platform: Platform) -> str | list[str]:
    """The `aud` of a client assertion: the token URL, or the authorization server the LMS or
    its admin named (LTI-DR §3.5 `authorization_server`; D2L's, say).

    Canvas's dynamic registration names its authorization server as a bare host
    ("sso.canvaslms.com") while its token endpoint wants the token URL: a string `aud` equal to
    it, or a list holding it (Canvas::Security::JwtValidator). Such a host goes in a list with
    the token URL, which both readings accept.
    """
    audience = platform.token_audience
    if not audience or audience == platform.token_url:
        return platform.token_url
    if "://" in audience:
        return audience
    return [platform.token_url, audience]


class TokenClient:
    """Fetches and caches access tokens; thread-safe, one request in flight per key."""

    def __init__(self, database: Database, http: httpx.Client, keyring: KeyRing) -> None:
        self._db = database
        self._http = http
        self._keyring = keyring
        self._memory: dict[tuple[int, str, str], AccessToken] = {}
        self._locks: dict[tuple[int, str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._refused: dict[tuple[int, str, str], tuple[float, ServiceTokenError]] = {}
        """The last failed token request per key, and when it ended (time.monotonic())."""
        self.requests_made = 0

    def _lock(self, key: tuple[int, str, str]) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def token(self, platform: Platform, scopes: frozenset[str]) -> AccessToken:
        """A fresh token for these scopes: from memory, the database, or the LMS."""
        key = (platform.id, platform.token_url, " ".join(sorted(scopes)))
        cached = self._memory.get(key)
        if cached is not None and cached.is_fresh():
            return cached
        waiting_since = time.monotonic()
        with self._lock(key):
            refused = self._refused.get(key)
            if refused is not None and refused[0] >= waiting_since:
                # The request made while this caller waited for the lock has just failed: a
                # token endpoint that is down, hung or throttling would only fail again, and
                # every score in flight asking in turn kept the worker waiting out one timeout
                # per score.
                raise refused[1].again()
            cached = self._memory.get(key)
            if cached is not None and cached.is_fresh():
                return cached
            stored = self._load(key)
            if stored is not None and stored.is_fresh():
                self._memory[key] = stored
                return stored
            try:
                fresh = self._request(platform, scopes)
            except ServiceTokenError as err:
                self._refused[key] = (time.monotonic(), err)
                raise
            self._refused.pop(key, None)
            self._memory[key] = fresh
            self._store(key, fresh)
            return fresh

    def drop(self, platform: Platform, scopes: frozenset[str], refused: str | None = None) -> None:
        """Forget a token the LMS refused (401), everywhere.

        :param refused: the token the LMS refused. When this process already holds another
            one, a thread fetched it after the refusal: it is kept. Every score in flight
            answers 401 when a token expires, and dropping whatever token is current threw
            away the one another thread had just fetched, so each 401 fetched its own (a
            token storm; Security Framework §4.1 expects one token reused for its lifetime,
            and Canvas throttles token requests).
        """
        key = (platform.id, platform.token_url, " ".join(sorted(scopes)))
        # Under the key's lock: a concurrent token() must not reload the refused token from
        # the database before its deletion is committed.
        with self._lock(key):
            current = self._memory.get(key)
            if refused is not None and current is not None and current.value != refused:
                return
            self._memory.pop(key, None)
            with self._db.begin() as session:
                session.execute(
                    delete(ServiceToken).where(
                        ServiceToken.platform_id == key[0],
                        ServiceToken.token_url == key[1],
                        ServiceToken.scopes == key[2],
                    )
                )

    def _load(self, key: tuple[int, str, str]) -> AccessToken | None:
        with self._db.session_factory() as session:
            row = session.scalar(
                select(ServiceToken).where(
                    ServiceToken.platform_id == key[0],
                    ServiceToken.token_url == key[1],
                    ServiceToken.scopes == key[2],
                )
            )
            if row is None:
                return None
            return AccessToken(
                row.access_token, frozenset(row.granted_scopes.split()), row.expires_at
            )

    def _store(self, key: tuple[int, str, str], token: AccessToken) -> None:
        try:
            with self._db.begin() as session:
                row = session.scalar(
                    select(ServiceToken).where(
                        ServiceToken.platform_id == key[0],
                        ServiceToken.token_url == key[1],
                        ServiceToken.scopes == key[2],
                    )
                )
                if row is None:
                    row = ServiceToken(
                        platform_id=key[0],
                        token_url=key[1],
                        scopes=key[2],
                        access_token="",
                        expires_at=token.expires_at,
                    )
                    session.add(row)
                row.access_token = token.value
                row.granted_scopes = " ".join(sorted(token.granted))
                row.expires_at = token.expires_at
        except IntegrityError:
            LOG.debug("service token row raced platform=%s", key[0])

    def client_assertion(self, platform: Platform) -> str:
        snapshot = self._keyring.snapshot_without_session(self._db)
        now = int(time.time())
        claims = {
            "iss": platform.client_id,
            "sub": platform.client_id,
            "aud": assertion_audience(platform),
            "iat": now - ISSUED_AT_SKEW_SECONDS,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(
            claims,
            snapshot.signing.private_key,
            algorithm="RS256",
            headers={"kid": snapshot.signing.kid},
        )

    def _request(self, platform: Platform, scopes: frozenset[str]) -> AccessToken:
        try:
            assertion = self.client_assertion(platform)
        except ToolKeyError as err:
            # Not retryable, like a registration the LMS refuses: the score worker holds the
            # scores without using up their tries until the operator fixes the setting (as
            # an unexpected error, every score failed after its last try).
            LOG.error("cannot sign a service token request iss=%s: %s", platform.issuer, err)
            raise ServiceTokenError(err.for_people, retryable=False) from err
        data = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
            "scope": " ".join(sorted(scopes)),
        }
        try:
            self.requests_made += 1
            response, content = self._post(platform.token_url, data)
        except (httpx.HTTPError, httpx.InvalidURL) as err:  # InvalidURL: stored before checks
            raise ServiceTokenError(
                f"The LMS token endpoint {platform.token_url} did not answer ({err}).",
                retryable=True,
            ) from err
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        if is_throttled(response.status_code, content):
            raise ServiceTokenError(
                f"The LMS token endpoint is throttling Pathways ({response.status_code}); "
                "Pathways will retry.",
                retryable=True,
                status=response.status_code,
                throttled=True,
                retry_after=retry_after,
            )
        if response.status_code >= 500:
            raise ServiceTokenError(
                f"The LMS token endpoint answered {response.status_code}; Pathways will retry.",
                retryable=True,
                status=response.status_code,
                retry_after=retry_after,
            )
        try:
            body = json.loads(content)
        except (ValueError, RecursionError):  # not JSON, or nested past Python's limit
            body = {}
        if (
            response.status_code != 200
            or not isinstance(body, dict)
            or not body.get("access_token")
        ):
            error = body.get("error", "") if isinstance(body, dict) else ""
            error = error if isinstance(error, str) else ""
            raise ServiceTokenError(
                f"The LMS refused Pathways a service token ({response.status_code} {error}). "
                "An LMS administrator can check that the Pathways registration's client ID and "
                "key set URL are right and that its services are enabled.",
                retryable=False,
                status=response.status_code,
                error=error,
            )
        granted_text = body.get("scope")
        granted = frozenset(str(granted_text).split()) if granted_text else scopes
        expires_at = _expires_at(body.get("expires_in"))
        LOG.info(
            "service token issued iss=%s client_id=%s scopes=%d granted=%d",
            platform.issuer,
            platform.client_id,
            len(scopes),
            len(granted),
        )
        return AccessToken(str(body["access_token"]), granted, expires_at)

    def _post(self, url: str, data: dict[str, str]) -> tuple[httpx.Response, bytes]:
        """The answer and its body, read within one read timeout in all and at most
        MAX_TOKEN_BODY_BYTES: httpx's timeout is per read, and an endpoint that drips a byte
        at a time would otherwise hold the sync or grade worker."""
        deadline = time.monotonic() + (self._http.timeout.read or 15.0)
        with self._http.stream(
            "POST", url, data=data, headers={"Accept": "application/json"}
        ) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_TOKEN_BODY_BYTES:
                    # Not a token answer; read as one that has no access_token.
                    return response, b""
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the token answer took too long to arrive")
            return response, bytes(body)


def _expires_at(expires_in: object) -> datetime:
    """The expiry to store for a new token, from the LMS's `expires_in` (any JSON value)."""
    if isinstance(expires_in, str):
        # RFC 6749 §5.1 says a number, but some servers send it quoted ("300"): an hour assumed
        # for a five-minute token would fail each service call for the rest of the hour.
        try:
            expires_in = float(expires_in.strip())
        except ValueError:
            expires_in = None
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or (isinstance(expires_in, float) and not math.isfinite(expires_in))
        or expires_in <= 0
    ):
        expires_in = DEFAULT_EXPIRES_IN
    # min() before float(): an integer like 10**400 has no float.
    seconds = float(min(expires_in, MAX_EXPIRES_IN))
    margin = REFRESH_MARGIN.total_seconds()
    if seconds <= 2 * margin:
        # A token living no longer than twice the refresh margin would be stale at once (or
        # after a moment) and fetched again for every request: Canvas rate-limits that. Use it
        # for the first half of its life instead, so it still has half its life left when sent.
        return utcnow() + timedelta(seconds=seconds / 2) + REFRESH_MARGIN
    return utcnow() + timedelta(seconds=seconds)
