"""The one way Pathways makes outbound HTTP requests: timeouts and a product User-Agent."""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import urllib3

from lti_app.settings import Settings

LOG = logging.getLogger(__name__)

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


def is_throttled(status: int, body: bytes) -> bool:
    """Whether an LMS answer says "too many requests, try later".

    Canvas's request throttle answers 403 with the body "403 Forbidden (Rate Limit Exceeded)"
    (instructure/canvas-lms app/middleware/request_throttle.rb `rate_limit_exceeded`;
    doc/api/throttling.md), not 429, and shares one bucket per developer key between every
    LTI Advantage service. Read as a permission error it sent admins to check settings that
    were right, and gave up work that only had to wait.
    """
    return status == 429 or (status == 403 and b"rate limit" in body[:300].lower())


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


class PrivateAddressError(httpcore.ConnectError):
    """The host resolved, as the connection opened, to an address off the public internet."""


class _ExchangeTimeoutError(httpcore.ReadTimeout):
    pass


class _DeadlineStream(httpcore.NetworkStream):
    """A connection that ends at a set moment, however steadily the other side drips bytes:
    socket timeouts bound each wait for a byte, not the headers or the answer as a whole."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def _remaining(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise _ExchangeTimeoutError("the exchange took longer than allowed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._remaining(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._remaining(timeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """Connections for addresses a stranger may have named (see make_guarded_http_client).

    Each connection lasts at most `exchange_seconds`, so a host that drips its answer cannot
    hold a server thread. With `public_only`, it opens only to public addresses, checked on
    the very DNS answer it connects to: checking a name before the request is not enough, as
    its DNS can answer public for the check and private a moment later (DNS rebinding). TLS
    still verifies the certificate against the name.
    """

    def __init__(self, *, public_only: bool, exchange_seconds: float) -> None:
        self.public_only = public_only
        self.exchange_seconds = exchange_seconds

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        deadline = time.monotonic() + self.exchange_seconds
        addresses = [host]
        if self.public_only:
            addresses = _public_addresses(host, port)
        last = httpcore.ConnectError(f"{host}: no address")
        for address in addresses:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                stream = super().connect_tcp(
                    address,
                    port,
                    left if timeout is None else min(timeout, left),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as err:
                last = err
                continue
            return _DeadlineStream(stream, deadline)
        raise last


def is_public_address(address: str) -> bool:
    return ipaddress.ip_address(address).is_global


def _public_addresses(host: str, port: int) -> list[str]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise httpcore.ConnectError(str(err)) from err
    addresses = list(dict.fromkeys(str(sockaddr[0]).split("%", 1)[0] for *_, sockaddr in found))
    if not addresses or not all(is_public_address(a) for a in addresses):
        LOG.warning("refused a connection to a private address host=%s", host)
        raise PrivateAddressError(f"{host} resolves to an address off the public internet")
    return addresses


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, backend: GuardedBackend) -> None:
        super().__init__()
        # No connection is kept: each exchange's deadline is its connection's.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_keepalive_connections=0,
            network_backend=backend,
        )


def make_guarded_http_client(settings: Settings, *, public_only: bool) -> httpx.Client:
    """A client for addresses a stranger may have named (the public registration page, the key
    set of a registered LMS): every exchange ends within one connect plus one read timeout,
    and with `public_only` it reaches only hosts on the public internet. Through an HTTP proxy
    from the environment the proxy connects, and its own rules apply."""
    timeout = httpx.Timeout(
        settings.http_read_timeout, connect=settings.http_connect_timeout, pool=5.0
    )
    exchange = settings.http_connect_timeout + settings.http_read_timeout + 1.0
    return httpx.Client(
        timeout=timeout,
        headers={"User-Agent": settings.user_agent},
        follow_redirects=False,
        transport=_GuardedTransport(
            GuardedBackend(public_only=public_only, exchange_seconds=exchange)
        ),
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
