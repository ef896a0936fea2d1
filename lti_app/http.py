"""The one way Pathways makes outbound HTTP requests: timeouts and a product User-Agent."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable
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


def is_public_address(address: str) -> bool:
    return ipaddress.ip_address(address).is_global


class PrivateAddressError(httpcore.ConnectError):
    """The host resolved, as the connection opened, to an address off the public internet."""


class PublicAddressesOnly(httpcore.SyncBackend):
    """Opens connections only to public addresses, checked on the very answer connected to.

    Checking a name before the request is not enough: its DNS can answer with a public address
    for the check and a private one a moment later for the request (DNS rebinding). Here the
    name is resolved once, every address is checked, and the socket goes to a checked address;
    TLS still verifies the certificate against the name.
    """

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as err:
            raise httpcore.ConnectError(str(err)) from err
        addresses = [str(sockaddr[0]).split("%", 1)[0] for *_, sockaddr in found]
        if not addresses or not all(is_public_address(a) for a in addresses):
            LOG.warning("refused a connection to a private address host=%s", host)
            raise PrivateAddressError(f"{host} resolves to an address off the public internet")
        last = httpcore.ConnectError(f"{host}: no address")
        for address in dict.fromkeys(addresses):
            try:
                return super().connect_tcp(
                    address,
                    port,
                    timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as err:
                last = err
        raise last


class _PublicOnlyTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=PublicAddressesOnly()
        )


def make_public_only_http_client(settings: Settings) -> httpx.Client:
    """A client for addresses a stranger may name (the public registration page): it reaches
    only hosts on the public internet, whatever their DNS answers between check and fetch.
    Through an HTTP proxy from the environment the proxy connects, and its own rules apply."""
    timeout = httpx.Timeout(
        settings.http_read_timeout, connect=settings.http_connect_timeout, pool=5.0
    )
    return httpx.Client(
        timeout=timeout,
        headers={"User-Agent": settings.user_agent},
        follow_redirects=False,
        transport=_PublicOnlyTransport(),
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
