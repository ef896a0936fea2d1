"""The one way Pathways makes outbound HTTP requests: timeouts and a product User-Agent."""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import math
import socket
import ssl
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import urllib3
from httpx._utils import get_environment_proxies
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from lti_app.settings import Settings

LOG = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(url: str, other: str) -> bool:
    """Whether `url` is http(s) on the scheme, host and port of `other`: only there may the
    LMS's bearer token go, whatever address (next page, line item) the LMS names."""
    origin = _origin(url)
    return origin is not None and origin == _origin(other)


def origin_of(url: str) -> str | None:
    """`url`'s origin as browsers write it (`event.origin`, the Origin header): scheme and host
    in lower case, the port only when it is not the scheme's default; None unless http(s).

    postMessage compares origins as exact strings: an LMS admin's "https://Canvas.School.edu:443"
    must still match the "https://canvas.school.edu" its window answers from.
    """
    origin = _origin(url)
    if origin is None:
        return None
    scheme, host, port = origin
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")  # browsers write Punycode
        except UnicodeError:
            return None
    if ":" in host:
        host = f"[{host}]"  # IPv6
    return f"{scheme}://{host}" if port == _DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


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


def is_http_url(value: str) -> bool:
    """Whether `value` is an http(s) address Pathways can send requests to: a host, a port
    from 1 to 65535 if any, no whitespace or control characters (never part of a URL, RFC
    3986), and one httpx accepts. Stored, anything less fails later, at every launch or
    score for that LMS, with an error that names neither the address nor the cause."""
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in value):
        return False
    try:
        parts = urlsplit(value)  # ValueError: an unclosed [ of an IPv6 address
        port = parts.port  # ValueError: not a number, or out of range
        httpx.URL(value)  # InvalidURL: an IP address or IDNA name no connection can use
    except (ValueError, httpx.InvalidURL):
        return False
    return parts.scheme in _DEFAULT_PORTS and bool(parts.hostname) and port != 0


MAX_RETRY_AFTER = 86400.0
"""Seconds; a longer Retry-After (or a huge one that overflows datetime) waits a day."""


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "1e999" parses as inf and "nan" as nan: neither is a time to wait.
        return min(MAX_RETRY_AFTER, max(0.0, seconds)) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return min(MAX_RETRY_AFTER, max(0.0, when.timestamp() - now))


def is_throttled(status: int, body: bytes) -> bool:
    """Whether an LMS answer says "too many requests, try later".

    Canvas's request throttle answers 403 with the body "403 Forbidden (Rate Limit Exceeded)"
    (instructure/canvas-lms app/middleware/request_throttle.rb `rate_limit_exceeded`;
    doc/api/throttling.md), not 429, and shares one bucket per developer key between every
    LTI Advantage service. Read as a permission error it sent admins to check settings that
    were right, and gave up work that only had to wait.
    """
    return status == 429 or (status == 403 and b"rate limit" in body[:300].lower())


def make_http_client(settings: Settings, policy: AddressPolicy | None = None) -> httpx.Client:
    """A pooled client for the LMS's services (tokens, roster); pylti1p3's default of no
    timeout would let a hung LMS hold a worker. With a `policy` that allows no private
    hosts, it connects only where the policy allows; requests an HTTP proxy from the
    environment carries (HTTPS_PROXY, HTTP_PROXY, less NO_PROXY) are the proxy's to allow."""
    timeout = httpx.Timeout(
        settings.http_read_timeout, connect=settings.http_connect_timeout, pool=5.0
    )
    client = {
        "timeout": timeout,
        "headers": {"User-Agent": settings.user_agent},
        "follow_redirects": False,
    }
    if policy is None or policy.private_allowed:
        return httpx.Client(**client)  # type: ignore[arg-type]
    guarded = _GuardedTransport(
        GuardedBackend(policy=policy, exchange_seconds=None), keep_alive=True
    )
    # Given a transport, httpx ignores the environment's proxies: mount them again, each
    # pattern with the proxy it names, and NO_PROXY's hosts (no proxy) with the guard.
    mounts: dict[str, httpx.BaseTransport] = {
        pattern: guarded if proxy is None else httpx.HTTPTransport(proxy=proxy)
        for pattern, proxy in get_environment_proxies().items()
    }
    return httpx.Client(**client, transport=guarded, mounts=mounts)  # type: ignore[arg-type]


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


class AddressPolicy:
    """Which hosts Pathways' outbound connections may reach.

    Strangers name some of them: a dynamically registered LMS chooses its key set and token
    addresses, and each of its launches names the roster and gradebook addresses Pathways
    calls later with a bearer token. Where private hosts are not allowed (production), such
    a host must be on the public internet, checked on the very DNS answer the connection
    uses: checking a name before the request is not enough, as its DNS can answer public for
    the check and private a moment later (DNS rebinding). Hosts of platforms an operator
    registered by hand (`operator_origins`: a school's own Moodle at 10.x) stay reachable on
    the port the operator named.
    """

    REFRESH_SECONDS = 10.0

    def __init__(
        self,
        *,
        private_allowed: bool,
        operator_origins: Callable[[], AbstractSet[tuple[str, int]]] | None = None,
    ) -> None:
        self.private_allowed = private_allowed
        self._load_operator_origins = operator_origins
        self._operator_origins: AbstractSet[tuple[str, int]] = frozenset()
        self._loaded_at = -self.REFRESH_SECONDS
        self._lock = threading.Lock()

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for host:port, or PrivateAddressError."""
        if self.private_allowed:
            return [host]
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as err:
            raise httpcore.ConnectError(str(err)) from err
        addresses = list(dict.fromkeys(str(sockaddr[0]).split("%", 1)[0] for *_, sockaddr in found))
        if addresses and all(is_public_address(a) for a in addresses):
            return addresses
        if addresses and (host.rstrip(".").lower(), port) in self._named_by_operators():
            return addresses
        LOG.warning("refused a connection to a private address host=%s port=%s", host, port)
        raise PrivateAddressError(f"{host} resolves to an address off the public internet")

    def _named_by_operators(self) -> AbstractSet[tuple[str, int]]:
        if self._load_operator_origins is None:
            return frozenset()
        with self._lock:
            if time.monotonic() - self._loaded_at >= self.REFRESH_SECONDS:
                self._operator_origins = self._load_operator_origins()
                self._loaded_at = time.monotonic()
            return self._operator_origins


class GuardedBackend(httpcore.SyncBackend):
    """Connections that only open where an AddressPolicy allows, each lasting at most
    `exchange_seconds` when that is set, so a host that drips its answer cannot hold a
    server thread. TLS still verifies the certificate against the name."""

    def __init__(self, *, policy: AddressPolicy, exchange_seconds: float | None) -> None:
        self.policy = policy
        self.exchange_seconds = exchange_seconds

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if self.exchange_seconds is None:
            deadline = None
        else:
            deadline = time.monotonic() + self.exchange_seconds
        last = httpcore.ConnectError(f"{host}: no address")
        for address in self.policy.addresses(host, port):
            left = timeout if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                stream = super().connect_tcp(
                    address,
                    port,
                    left if timeout is None or left is None else min(timeout, left),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as err:
                last = err
                continue
            return stream if deadline is None else _DeadlineStream(stream, deadline)
        raise last


_IPV6_CARRYING_IPV4 = (
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64 (RFC 6052): a gateway reaches the IPv4 inside
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated, still routed by some stacks)
)


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and any(ip in net for net in _IPV6_CARRYING_IPV4):
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None and not inner.is_global:
            return False
    return ip.is_global


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, backend: GuardedBackend, *, keep_alive: bool) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_keepalive_connections=None if keep_alive else 0,
            network_backend=backend,
        )


def make_guarded_http_client(settings: Settings, *, policy: AddressPolicy) -> httpx.Client:
    """A client for addresses a stranger may have named (the public registration page, the key
    set of a registered LMS): every exchange ends within one connect plus one read timeout,
    and it connects only where `policy` allows. Through an HTTP proxy from the environment
    the proxy connects, and its own rules apply."""
    timeout = httpx.Timeout(
        settings.http_read_timeout, connect=settings.http_connect_timeout, pool=5.0
    )
    exchange = settings.http_connect_timeout + settings.http_read_timeout + 1.0
    return httpx.Client(
        timeout=timeout,
        headers={"User-Agent": settings.user_agent},
        follow_redirects=False,
        # No connection is kept: each exchange's deadline is its connection's.
        transport=_GuardedTransport(
            GuardedBackend(policy=policy, exchange_seconds=exchange), keep_alive=False
        ),
    )


def make_score_pool(
    settings: Settings, connections: int, policy: AddressPolicy | None = None
) -> urllib3.PoolManager:
    """Keep-alive connections for the score worker, where CPU per request caps the rate.

    `connections` per LMS host: a worker sending with concurrency C to one host needs C, or
    connections are closed after each request and opened again. When more requests than that
    run at once, they wait for a free connection (bounded by the read timeout of the others).
    No retries or redirects here: the caller decides what to retry, with backoff. With a
    `policy` that allows no private hosts, it connects only where the policy allows.
    """
    manager = urllib3.PoolManager(
        num_pools=64,  # LMS hosts whose idle connections are kept
        maxsize=connections,
        block=True,
        retries=False,
        timeout=urllib3.Timeout(
            connect=settings.http_connect_timeout, read=settings.http_read_timeout
        ),
        headers={"User-Agent": settings.user_agent},
    )
    if policy is not None and not policy.private_allowed:
        manager.pool_classes_by_scheme = _checked_pool_classes(policy)
    return manager


def _checked_pool_classes(policy: AddressPolicy) -> dict[str, type[HTTPConnectionPool]]:
    class Checked(urllib3.connection.HTTPConnection):
        def _new_conn(self) -> socket.socket:
            try:
                addresses = policy.addresses(self._dns_host, self.port)
            except httpcore.ConnectError as err:
                raise NewConnectionError(self, str(err)) from err
            # Connect to an address checked, each in turn as urllib3 itself would; TLS and
            # Host still use the name (self.host).
            name = self._dns_host
            try:
                for address in addresses[:-1]:
                    self._dns_host = address
                    try:
                        return super()._new_conn()
                    except (NewConnectionError, urllib3.exceptions.ConnectTimeoutError):
                        continue
                self._dns_host = addresses[-1]
                return super()._new_conn()
            finally:
                self._dns_host = name

    class CheckedTls(Checked, urllib3.connection.HTTPSConnection):
        pass

    class Pool(HTTPConnectionPool):
        ConnectionCls = Checked

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = CheckedTls

    return {"http": Pool, "https": TlsPool}
