"""A light load generator for the launch benchmark: simulated browsers on asyncio.

httpx costs a few hundred microseconds of Python per request; on a 2-core machine shared with
the servers that would make the load generator a bottleneck. This is a minimal HTTP/1.1 client
on asyncio streams (Content-Length and chunked bodies, keep-alive, Connection: close) with a
per-launch cookie jar, and just enough HTML reading to submit the platform's auto-post form.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin, urlsplit

AUTO_POST_FORM_ID = "lti-auto-post"
_FORM = re.compile(
    rb'<form\b[^>]*\bid="' + AUTO_POST_FORM_ID.encode() + rb'"[^>]*>(.*?)</form>', re.S
)
_ACTION = re.compile(rb'\baction="([^"]*)"')
_INPUT = re.compile(rb"<input\b[^>]*>")
_ATTR = re.compile(rb'\b(name|value)="([^"]*)"')


class LaunchFailedError(Exception):
    """A launch did not end on the tool's page."""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key == lname:
                return value
        return None

    def all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.headers if k == lname]


class Connection:
    """One keep-alive HTTP/1.1 connection to host:port."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.host_header = f"{host}:{port}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes = b""
    ) -> Response:
        # A kept-alive connection the server closed meanwhile fails on first use: retry once.
        for attempt in (0, 1):
            fresh = self._writer is None
            if fresh:
                await self._open()
            try:
                return await self._exchange(method, target, headers, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Response:
        assert self._reader is not None
        assert self._writer is not None
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        reader = self._reader
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        parsed: list[tuple[str, str]] = []
        for line in header_lines:
            key, _, value = line.partition(":")
            parsed.append((key.strip().lower(), value.strip()))
        response = Response(status, parsed, b"")
        length = response.header("content-length")
        if length is not None:
            response.body = await reader.readexactly(int(length))
        elif (response.header("transfer-encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            response.body = b"".join(chunks)
        elif status not in (204, 304) and not 100 <= status < 200:
            response.body = await reader.read()
            self.close()
        if (response.header("connection") or "").lower() == "close":
            self.close()
        return response


@dataclass
class Browser:
    """One simulated browser: connections kept per origin, a cookie jar per launch."""

    connections: dict[tuple[str, int], Connection] = field(default_factory=dict)
    cookies: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict)

    def conn(self, host: str, port: int) -> Connection:
        key = (host, port)
        found = self.connections.get(key)
        if found is None:
            found = self.connections[key] = Connection(host, port)
        return found

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()
        self.connections.clear()

    async def fetch(self, method: str, url: str, form: dict[str, str] | None = None) -> Response:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        headers = {"Accept": "text/html"}
        jar = self.cookies.setdefault((host, port), {})
        if jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        body = b""
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = await self.conn(host, port).request(method, target, headers, body)
        for raw in response.all("set-cookie"):
            _store_cookie(jar, raw)
        return response


def _store_cookie(jar: dict[str, str], raw: str) -> None:
    first, *attrs = raw.split(";")
    name, _, value = first.strip().partition("=")
    expired = any(
        a.strip().lower() in ("max-age=0", "max-age=-1")
        or a.strip().lower().startswith("expires=thu, 01 jan 1970")
        for a in attrs
    )
    if expired:
        jar.pop(name, None)
    else:
        jar[name] = value


def auto_post_form(body: bytes, base_url: str) -> tuple[str, dict[str, str]] | None:
    """The platform's auto-post form in `body`, as (absolute action, fields), or None."""
    match = _FORM.search(body)
    if match is None:
        return None
    start_tag = body[match.start() : body.index(b">", match.start()) + 1]
    action_match = _ACTION.search(start_tag)
    action = html.unescape(action_match.group(1).decode()) if action_match else ""
    fields: dict[str, str] = {}
    for tag in _INPUT.findall(match.group(1)):
        attrs = {k.decode(): html.unescape(v.decode()) for k, v in _ATTR.findall(tag)}
        if attrs.get("name"):
            fields[attrs["name"]] = attrs.get("value", "")
    return urljoin(base_url, action), fields


async def run_launch(browser: Browser, login_url: str, max_steps: int = 6) -> int:
    """Follow one launch from the tool's login URL to the page; return the HTTP steps taken.

    Like lti_app.demo.browser.follow_launch: follow redirects, submit the auto-post form.
    """
    browser.cookies.clear()  # every launch is a fresh browser profile
    url = login_url
    response = await browser.fetch("GET", url)
    steps = 1
    for _ in range(max_steps):
        if response.status in (301, 302, 303, 307):
            url = urljoin(url, response.header("location") or "")
            response = await browser.fetch("GET", url)
            steps += 1
            continue
        form = auto_post_form(response.body, url)
        if form is None:
            break
        url, fields = form
        response = await browser.fetch("POST", url, fields)
        steps += 1
    if response.status != 200:
        raise LaunchFailedError(f"{response.status} at {url}: {response.body[:300]!r}")
    return steps


@dataclass
class PhaseResult:
    concurrency: int
    elapsed: float
    latencies: list[float]
    failures: int
    steps: int
    first_error: str = ""

    @property
    def launches(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.launches / self.elapsed if self.elapsed > 0 else 0.0

    def pct(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[index] * 1000


async def run_phase(
    login_urls: list[str],
    concurrency: int,
    *,
    duration: float,
    max_launches: int,
    launch_timeout: float = 30.0,
) -> PhaseResult:
    """`concurrency` browsers launching back to back until `duration` or `max_launches`."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = {"started": 0, "steps": 0}
    start = time.perf_counter()
    deadline = start + duration

    async def browser_loop(slot: int) -> None:
        browser = Browser()
        # Each browser is one person (seeded users, round-robin), launching again and again.
        index = slot
        try:
            while time.perf_counter() < deadline and counter["started"] < max_launches:
                counter["started"] += 1
                url = login_urls[index % len(login_urls)]
                index += concurrency
                t0 = time.perf_counter()
                try:
                    async with asyncio.timeout(launch_timeout):
                        counter["steps"] += await run_launch(browser, url)
                except (
                    LaunchFailedError,
                    OSError,
                    TimeoutError,
                    asyncio.IncompleteReadError,
                ) as err:
                    errors.append(f"{type(err).__name__}: {err}")
                    browser.close()
                    continue
                latencies.append(time.perf_counter() - t0)
        finally:
            browser.close()

    await asyncio.gather(*(browser_loop(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - start
    return PhaseResult(
        concurrency,
        elapsed,
        latencies,
        len(errors),
        counter["steps"],
        errors[0] if errors else "",
    )
