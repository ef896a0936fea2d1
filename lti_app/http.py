"""The one way Pathways makes outbound HTTP requests: timeouts and a product User-Agent."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import urllib3

from lti_app.settings import Settings

_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(url: str, other: str) -> bool:
    """Whether `url` is http(s) on the scheme, host and port of `other`: only there may the
    LMS's bearer token go, whatever address (next page, line item) the LMS names."""
    origin = _origin(url)
    return origin is not None and origin == _origin(other)


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number
        return None
    if scheme not in _DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    return scheme, parts.hostname.lower(), port


def make_http_client(settings: Settings, **kwargs: object) -> httpx.Client:
    """A pooled client; pylti1p3's default of no timeout would let a hung LMS hold a worker."""
    timeout = httpx.Timeout(
        settings.http_read_timeout, connect=settings.http_connect_timeout, pool=5.0
    )
    return httpx.Client(
        timeout=timeout,
        headers={"User-Agent": settings.user_agent},
        follow_redirects=False,
        **kwargs,  # type: ignore[arg-type]
    )


def make_score_pool(settings: Settings, connections: int) -> urllib3.PoolManager:
    """Keep-alive connections for the score worker, where CPU per request caps the rate.

    `connections` per LMS host: a worker sending with concurrency C to one host needs C, or
    connections are closed after each request and opened again. When more requests than that
    run at once, they wait for a free connection (bounded by the read timeout of the others).
    No retries or redirects here: the caller decides what to retry, with backoff.
    """
    return urllib3.PoolManager(
        num_pools=64,  # LMS hosts whose idle connections are kept
        maxsize=connections,
        block=True,
        retries=False,
        timeout=urllib3.Timeout(
            connect=settings.http_connect_timeout, read=settings.http_read_timeout
        ),
        headers={"User-Agent": settings.user_agent},
    )
