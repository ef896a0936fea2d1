"""The tool's public keys, fetched over HTTP and cached, and checks of JWTs the tool signs."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

DEFAULT_TTL = 300.0
MAX_TTL = 3600.0
LEEWAY_SECONDS = 5


class ToolJwtError(Exception):
    """A JWT from the tool is malformed, badly signed, or has the wrong claims."""


class ToolJwksCache:
    """Keys from the tool's JWKS URL, kept for its Cache-Control max-age, refetched on new kid."""

    def __init__(self, url: str, on_fetch: Callable[[], None] | None = None) -> None:
        self.url = url
        self._on_fetch = on_fetch
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, Any]] = {}
        self._expires_at = 0.0

    def _fetch(self) -> None:
        if self._on_fetch:
            self._on_fetch()
        try:
            resp = httpx.get(self.url, timeout=5.0, headers={"User-Agent": "PathwaysDemoLMS/1"})
            resp.raise_for_status()
            keys = resp.json()["keys"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as err:
            raise ToolJwtError(f"cannot fetch the tool's JWKS from {self.url}: {err}") from err
        match = re.search(r"max-age=(\d+)", resp.headers.get("cache-control", ""))
        ttl = min(float(match.group(1)), MAX_TTL) if match else DEFAULT_TTL
        self._keys = {k["kid"]: k for k in keys if isinstance(k, dict) and "kid" in k}
        self._expires_at = time.monotonic() + ttl

    def get(self, kid: str) -> dict[str, Any]:
        """The JWK with this kid; refetch once when it is unknown or the cache is stale."""
        with self._lock:
            fetched = time.monotonic() >= self._expires_at
            if fetched:
                self._fetch()
            if kid not in self._keys and not fetched:
                self._fetch()
            jwk = self._keys.get(kid)
        if jwk is None:
            raise ToolJwtError(f"the tool's JWKS has no key with kid {kid!r}")
        # Canvas refuses tool keys without these; so does this platform, to catch it early.
        missing = [name for name in ("alg", "use") if name not in jwk]
        if missing:
            raise ToolJwtError(f"the tool's JWK {kid!r} lacks {', '.join(missing)}")
        return jwk

    def clear(self) -> None:
        """Forget the keys (the next verification fetches)."""
        with self._lock:
            self._keys, self._expires_at = {}, 0.0


def verify_tool_jwt(
    token: str, cache: ToolJwksCache, *, audience: str, issuer: str | None = None
) -> dict[str, Any]:
    """Verify an RS256 JWT signed by a tool key; return its claims or raise ToolJwtError."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as err:
        raise ToolJwtError(f"not a JWT: {err}") from err
    if header.get("alg") != "RS256":
        raise ToolJwtError(f"alg must be RS256, not {header.get('alg')!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ToolJwtError("the JWT header has no kid")
    jwk = cache.get(kid)
    try:
        key = jwt.PyJWK(jwk, algorithm="RS256").key
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat"]},
        )
    except jwt.PyJWTError as err:
        raise ToolJwtError(f"invalid JWT: {err}") from err
    return claims
