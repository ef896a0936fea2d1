"""Platform public keys, cached per JWKS URL in process and in the database.

pylti1p3 fetches the JWKS on every launch; a fixed TTL breaks when the platform rotates.
Here: honour Cache-Control within bounds, share entries between workers through the
database, refetch once (single-flight) on an unknown kid, and serve stale keys if the
platform's JWKS endpoint is down.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWK
from jwt.exceptions import PyJWTError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.tool.models import JwksCacheEntry

LOG = logging.getLogger(__name__)

# An unknown kid triggers at most one refetch per URL in this window, so a stream of
# forged kids cannot turn Pathways into a load generator against the LMS.
UNKNOWN_KID_REFETCH_INTERVAL = 10.0
# With no keys at all, a failed fetch is not retried for this long: launches queued behind a
# hung or broken key set endpoint fail at once instead of each waiting out a timeout.
FAILED_FETCH_BACKOFF = 10.0
MAX_KEY_SET_BYTES = 4 * 1024 * 1024
_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)", re.IGNORECASE)


class JwksUnavailableError(Exception):
    """The platform's keys could not be fetched and none are cached."""


class UnknownKeyError(Exception):
    """The JWT names a key the platform does not publish."""


KeySet = dict[str, list[tuple[str, rsa.RSAPublicKey]]]
"""kid -> [(alg, key)]: a platform may (wrongly) publish two keys under one kid."""


@dataclass
class _Entry:
    keys: KeySet
    expires_at: float  # wall clock (time.time), comparable across workers
    last_unknown_kid_refetch: float = 0.0
    failed_until: float = 0.0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


def parse_key_set(document: Any) -> KeySet:
    """Every usable RSA signing key of a JWKS document by kid; members that are not one, or
    are malformed, are skipped (RFC 7517 §5), so one bad key cannot hide the others."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    parsed: KeySet = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not jwk.get("kid"):
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK(jwk, algorithm="RS256").key
        except (PyJWTError, ValueError, TypeError):
            continue
        if isinstance(key, rsa.RSAPublicKey):
            parsed.setdefault(str(jwk["kid"]), []).append((str(jwk.get("alg", "RS256")), key))
    return parsed


class JwksCache:
    """Process-wide cache of platform keys, backed by the jwks_cache_entry table.

    The shared row is read and written through the caller's session (a second connection
    would wait on SQLite's write lock that the caller may hold); before fetching from the
    LMS the caller's transaction is committed, so no lock waits on the network.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        min_ttl: int,
        max_ttl: int,
        default_ttl: int,
    ) -> None:
        self._http = http
        self._min_ttl, self._max_ttl, self._default_ttl = min_ttl, max_ttl, default_ttl
        self._entries: dict[str, _Entry] = {}
        self._entries_lock = threading.Lock()
        self.fetch_count = 0

    def _entry(self, url: str) -> _Entry:
        with self._entries_lock:
            entry = self._entries.get(url)
            if entry is None:
                entry = self._entries[url] = _Entry(keys={}, expires_at=0.0)
            return entry

    def get_key(self, session: Session, jwks_url: str, kid: str) -> tuple[str, rsa.RSAPublicKey]:
        """Return (alg, public key) for kid: the first the platform publishes under it."""
        return self.get_keys(session, jwks_url, kid)[0]

    def get_keys(
        self, session: Session, jwks_url: str, kid: str
    ) -> list[tuple[str, rsa.RSAPublicKey]]:
        """Every (alg, public key) published under kid, fetching the key set only when needed."""
        entry = self._entry(jwks_url)
        now = time.time()
        if now < entry.expires_at and kid in entry.keys:
            return entry.keys[kid]
        # The launch fetching under this lock will write the shared row: on SQLite it would
        # wait for a write lock this caller holds while it waits here (a deadlock until the
        # busy timeout). The caller has only read so far.
        session.commit()
        with entry.lock:  # single flight per URL within this process
            now = time.time()
            if now >= entry.expires_at:
                self._load_shared(session, jwks_url, entry)
            if not entry.keys and now < entry.failed_until:
                raise JwksUnavailableError(entry.last_error)
            if now >= entry.expires_at:
                self._refresh(session, jwks_url, entry, reason="expired")
            elif (
                kid not in entry.keys
                and now - entry.last_unknown_kid_refetch >= UNKNOWN_KID_REFETCH_INTERVAL
            ):
                # The platform may have rotated: one refetch, then trust the answer.
                entry.last_unknown_kid_refetch = now
                self._refresh(session, jwks_url, entry, reason=f"unknown kid {kid}")
            if kid in entry.keys:
                return entry.keys[kid]
        raise UnknownKeyError(kid)

    def _load_shared(self, session: Session, url: str, entry: _Entry) -> None:
        row = session.get(JwksCacheEntry, url)
        if row is None:
            return
        try:
            keys = parse_key_set(row.keys)
        except ValueError:
            return
        expires = row.expires_at.timestamp()
        if expires > entry.expires_at:
            entry.keys, entry.expires_at = keys, expires

    def _refresh(self, session: Session, url: str, entry: _Entry, *, reason: str) -> None:
        # The caller has only read so far; ending its transaction here means no database lock
        # (SQLite's write lock, a PostgreSQL connection idle in transaction) waits on the LMS.
        session.commit()
        try:
            document, cache_control = self._fetch(url)
            keys = parse_key_set(document)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, RecursionError) as err:
            # InvalidURL: an address stored before registrations were checked as strictly
            # (`http.is_http_url`) is a key set Pathways cannot reach, not an internal error.
            LOG.warning("JWKS fetch failed url=%s reason=%s error=%s", url, reason, err)
            if entry.keys:
                # Stale-if-error: keep using what we had, try again shortly.
                entry.expires_at = time.time() + min(self._min_ttl, 60)
                return
            entry.failed_until = time.time() + FAILED_FETCH_BACKOFF
            entry.last_error = f"{url}: {err}"
            raise JwksUnavailableError(entry.last_error) from err
        entry.failed_until = 0.0
        ttl = self._ttl(cache_control)
        LOG.info("JWKS fetched url=%s reason=%s keys=%d ttl=%ds", url, reason, len(keys), ttl)
        entry.keys = keys
        entry.expires_at = time.time() + ttl
        self._store_shared(session, url, document, ttl)

    def _fetch(self, url: str) -> tuple[Any, str]:
        """The key set document and its Cache-Control, read within one read timeout in all
        and at most MAX_KEY_SET_BYTES: httpx's timeout is per read, and an endpoint that
        drips a byte at a time would otherwise hold the launch (and this URL's lock)."""
        deadline = time.monotonic() + (self._http.timeout.read or 15.0)
        with self._http.stream("GET", url, headers={"Accept": "application/json"}) as response:
            self.fetch_count += 1
            response.raise_for_status()
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_KEY_SET_BYTES:
                    raise ValueError(f"key set larger than {MAX_KEY_SET_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the key set took too long to arrive")
            return json.loads(body), response.headers.get("Cache-Control", "")

    def _ttl(self, cache_control: str) -> int:
        lowered = cache_control.lower()
        if "no-store" in lowered or "no-cache" in lowered:
            return self._min_ttl
        match = _MAX_AGE.search(cache_control)
        ttl = int(match.group(1)) if match else self._default_ttl
        return max(self._min_ttl, min(self._max_ttl, ttl))

    def _store_shared(self, session: Session, url: str, document: dict[str, Any], ttl: int) -> None:
        now = utcnow()
        row = session.get(JwksCacheEntry, url)
        if row is None:
            row = JwksCacheEntry(
                jwks_url=url, keys=document, fetched_at=now, expires_at=now + timedelta(seconds=ttl)
            )
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:
                # Another worker stored the same URL at the same moment; refresh theirs.
                row = session.get(JwksCacheEntry, url, populate_existing=True)
                if row is None:  # pragma: no cover
                    return
        row.keys, row.fetched_at = document, now
        row.expires_at = now + timedelta(seconds=ttl)
        session.flush()
