"""The grades benchmark's LMS: the demo platform (lti_app.demo) in its own process.

    python bench/grades_platform.py --port P --tool URL --delay-ms 20 [--server asyncio]

One process, as the platform keeps its gradebook in memory and the bench reads it back. On a
2-core machine shared with the tool, the LMS's CPU per request is taken from the tool, and
BENCH.md asks that the platform not be the bottleneck. Measured per request with the 20 ms
delay at 32 concurrent requests (bench/RESULTS.md): werkzeug's threaded server ~1.25 ms of
CPU and ~720 answers/s at most; gunicorn gthread (one worker, 96 threads) ~0.85 ms and
~1,050/s: a thread per waiting request, each wake-up a GIL hand-off. So by default a small
asyncio front serves it: it waits the 20 ms on a timer, not in a thread, then calls the same
Flask app inline (~0.2 ms). The delay stays on every platform answer; the demo app's own
in-thread delay is off so it is not added twice. A request the app handles slowly (the token
endpoint fetches the tool's JWKS) holds the others for that long: it happens once per run.

Bench-only paths, answered without the delay:
  GET  /bench/ready              200 once serving
  POST /bench/course             JSON {"name": ..., "subs": [...]}: a course of learners
  GET  /bench/counters           JSON: token_requests, accepted scores, this process's CPU s
  GET  /bench/scores?context=C   JSON: [[line item URL, userId, scoreGiven, timestamp], ...]
                                 the newest accepted score of every student in course C
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import resource
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from embedded_gunicorn import EmbeddedGunicorn
from werkzeug.serving import WSGIRequestHandler, make_server

from lti_app.demo import seed
from lti_app.demo.app import build_demo_platform
from lti_app.demo.platform import DemoPlatform
from lti_app.demo.seed import Course, Enrollment, Role
from lti_app.demo.state import PlatformState, ScoreRecord, ScoreRejectedError, parse_timestamp

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def _indexed_record_score(self: Any, item: Any, user_id: str, body: dict[str, Any]) -> None:
    """The demo platform's record_score with the latest score per pair indexed.

    The demo scans its whole score log for each score (O(n) per score, quadratic in a
    benchmark); a real LMS looks the result up by key. Bench-only, same answers.
    """
    now = datetime.now(UTC)
    latest_by_pair = self.__dict__.setdefault("_bench_latest", {})
    with self.lock:
        self.counters.scores_received += 1
        latest = latest_by_pair.get((item.id, user_id))
        try:
            stamp = parse_timestamp(body.get("timestamp"))
            if latest is not None and stamp < parse_timestamp(latest.body["timestamp"]):
                raise ScoreRejectedError(400, "score timestamp is older than the stored one")
        except ScoreRejectedError as err:
            self.scores.append(ScoreRecord(item.id, user_id, body, err.status, now))
            raise
        except ValueError as err:
            self.scores.append(ScoreRecord(item.id, user_id, body, 400, now))
            raise ScoreRejectedError(400, f"bad timestamp: {err}") from err
        record = ScoreRecord(item.id, user_id, body, 200, now)
        self.scores.append(record)
        latest_by_pair[(item.id, user_id)] = record


class BenchPlatform:
    """WSGI: the /bench/ paths here, everything else to the demo platform app."""

    def __init__(self, app: WSGIApplication, platform: DemoPlatform) -> None:
        self.app = app
        self.platform = platform

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/bench/"):
            return self.app(environ, start_response)
        state = self.platform.state
        data: Any = "ok"
        if path == "/bench/course":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            spec = json.loads(environ["wsgi.input"].read(size))
            name = spec["name"]
            seed.COURSES[name] = Course(
                name, name, name, tuple(Enrollment(s, Role.LEARNER) for s in spec["subs"])
            )
        elif path == "/bench/counters":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            with state.lock:
                accepted = sum(1 for r in state.scores if r.status == 200)
            data = {
                "token_requests": self.platform.counters.token_requests,
                "accepted": accepted,
                "cpu": usage.ru_utime + usage.ru_stime,
            }
        elif path == "/bench/scores":
            context = parse_qs(environ.get("QUERY_STRING", ""))["context"][0]
            latest: dict[tuple[int, str], ScoreRecord] = state.__dict__.get("_bench_latest", {})
            urls = {
                item.id: self.platform.line_item_url(context, item.id)
                for item in state.line_items_in(context)
            }
            with state.lock:
                data = [
                    [urls[item_id], user_id, r.body.get("scoreGiven"), r.body.get("timestamp")]
                    for (item_id, user_id), r in latest.items()
                    if item_id in urls
                ]
        body = json.dumps(data).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


class _Connection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive for a well-behaved client: one request at a time, bodies with
    Content-Length (what the tool sends). Not a general server: a bench-only front."""

    def __init__(self, app: WSGIApplication, port: int, delay: float) -> None:
        self.app = app
        self.port = port
        self.delay = delay
        self.buffer = b""
        self.busy = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        size = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + size:
            return
        body = self.buffer[end + 4 : end + 4 + size]
        self.buffer = self.buffer[end + 4 + size :]
        self.busy = True
        method, target, version = head[0].split(" ", 2)
        path = target.partition("?")[0]
        delay = 0.0 if path.startswith("/bench/") else self.delay
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self._answer, method, target, version, headers, body)

    def _answer(
        self, method: str, target: str, version: str, headers: dict[str, str], body: bytes
    ) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        path, _, query = target.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, encoding="latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.port),
            "SERVER_PROTOCOL": version,
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                environ[f"HTTP_{key}"] = value
        answer: list[Any] = []

        def start_response(status: str, response_headers: list[tuple[str, str]], *_: Any) -> Any:
            answer[:] = [status, response_headers]
            return lambda _data: None

        chunks = self.app(environ, start_response)
        try:
            content = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        status, response_headers = answer
        keep = headers.get("connection", "").lower() != "close"
        lines = [f"HTTP/1.1 {status}"]
        lines += [f"{k}: {v}" for k, v in response_headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(content)}")
        lines.append("Connection: keep-alive" if keep else "Connection: close")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + content)
        if not keep:
            self.transport.close()
            return
        self.busy = False
        self._next()


def serve_asyncio(app: WSGIApplication, port: int, delay: float) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Connection(app, port, delay), "127.0.0.1", port, backlog=2048
        )
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tool", required=True, help="the tool's base URL")
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--threads", type=int, default=96)
    parser.add_argument(
        "--server",
        choices=("asyncio", "gunicorn", "werkzeug"),
        default="asyncio",
        help="gunicorn gthread or werkzeug's threaded server: to compare (see the docstring)",
    )
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    PlatformState.record_score = _indexed_record_score  # type: ignore[method-assign]
    in_app_delay = 0 if args.server == "asyncio" else args.delay_ms
    app, platform = build_demo_platform(
        f"http://127.0.0.1:{args.port}", args.tool, delay_ms=in_app_delay
    )
    wsgi = BenchPlatform(app, platform)
    if args.server == "asyncio":
        serve_asyncio(wsgi, args.port, args.delay_ms / 1000)
        return
    if args.server == "werkzeug":
        # Real LMSs keep connections alive; werkzeug's server speaks HTTP/1.0 unless told.
        WSGIRequestHandler.protocol_version = "HTTP/1.1"
        make_server("127.0.0.1", args.port, wsgi, threaded=True).serve_forever()
        return
    EmbeddedGunicorn(
        wsgi,
        {
            "bind": f"127.0.0.1:{args.port}",
            "workers": 1,  # the gradebook is in this process's memory
            "worker_class": "gthread",
            "threads": args.threads,
            "backlog": 2048,
            "accesslog": None,
            "loglevel": "warning",
            "keepalive": 30,
            "timeout": 120,
        },
    ).run()


if __name__ == "__main__":
    main()
