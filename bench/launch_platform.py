"""The benchmark's LMS: the demo platform (lti_app.demo) in its own process, under gunicorn.

    python bench/launch_platform.py --port P --tool URL --floor URL --delay-ms 20 --db-url URL

It registers itself in the tool's database (as `lti-app demo` does), builds its launches and
signing key (parsed once, lti_app.demo.keys), then forks gunicorn workers (gthread, many threads,
so delayed answers do not queue behind each other) that share them. Two workers by default: one
GIL must not cap the floor. Counters are kept in shared memory, across workers. Only learners
launch (a teacher's launch also starts a roster sync, whose token state is per worker).

Besides the platform it answers, without the delay, three bench-only paths:
  /bench/ready          200 once serving
  /bench/login_urls     JSON: {"tool": [...], "floor": [...]}: one login URL per learner of the
                        Biology course; a hint is not used up, so URLs are reused
  /bench/counters       JSON: jwks_fetches, auth_requests (all workers), jwks_fetch_times
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from embedded_gunicorn import EmbeddedGunicorn

from lti_app.db import Database
from lti_app.demo.app import build_demo_platform
from lti_app.demo.platform import DemoPlatform
from lti_app.demo.run import register_demo_platform
from lti_app.demo.seed import COURSES, Role

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

COURSE = "course-bio9"


class BenchPlatform:
    """WSGI: the /bench/ paths here, everything else to the demo platform app."""

    def __init__(self, app: WSGIApplication, urls: dict[str, list[str]]) -> None:
        self.app = app
        self.urls = json.dumps(urls).encode()
        # Made before gunicorn forks: shared by every worker.
        shared = multiprocessing.get_context("fork")
        self.counters = {
            "jwks_fetches": shared.Value("q", 0),
            "auth_requests": shared.Value("q", 0),
        }
        self.counted = {"/jwks": "jwks_fetches", "/auth": "auth_requests"}
        self.jwks_times = shared.Array("d", 256)  # time.time() of the first 256 JWKS fetches

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/bench/"):
            if path in self.counted:
                counter = self.counters[self.counted[path]]
                with counter.get_lock():
                    if path == "/jwks" and counter.value < len(self.jwks_times):
                        self.jwks_times[counter.value] = time.time()
                    counter.value += 1
            return self.app(environ, start_response)
        if path == "/bench/login_urls":
            body = self.urls
        elif path == "/bench/counters":
            counts: dict[str, object] = {k: v.value for k, v in self.counters.items()}
            counts["jwks_fetch_times"] = list(
                self.jwks_times[: self.counters["jwks_fetches"].value]
            )
            body = json.dumps(counts).encode()
        else:
            body = b'"ok"'
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


def build(port: int, tool: str, floor: str, delay_ms: int) -> tuple[BenchPlatform, DemoPlatform]:
    base = f"http://127.0.0.1:{port}"
    floor = floor.rstrip("/")
    app, platform = build_demo_platform(
        base, tool, delay_ms=delay_ms, extra_redirect_uris=(f"{floor}/lti/launch",)
    )
    tool_login = platform.config.tool_login_url
    urls: dict[str, list[str]] = {"tool": [], "floor": []}
    for enrollment in COURSES[COURSE].enrollments:
        if enrollment.role is not Role.LEARNER:
            continue
        spec = platform.make_launch(enrollment.user_id, COURSE)
        urls["tool"].append(platform.login_url(spec))
        floor_spec = platform.make_launch(
            enrollment.user_id, COURSE, target_link_uri=f"{floor}/lti/launch"
        )
        url = platform.login_url(floor_spec)
        assert url.startswith(tool_login)
        urls["floor"].append(f"{floor}/lti/login" + url.removeprefix(tool_login))
    return BenchPlatform(app, urls), platform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tool", required=True, help="the tool's base URL")
    parser.add_argument("--floor", required=True, help="the floor app's base URL")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--db-url", required=True, help="the tool's database, to register in")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=64)
    args = parser.parse_args()

    wsgi, platform = build(args.port, args.tool, args.floor, args.delay_ms)
    db = Database(args.db_url)
    with db.begin() as session:
        register_demo_platform(session, platform)
    db.dispose()
    EmbeddedGunicorn(
        wsgi,
        {
            "bind": f"127.0.0.1:{args.port}",
            "workers": args.workers,
            "worker_class": "gthread",
            "threads": args.threads,
            "backlog": 2048,
            "accesslog": None,
            "loglevel": "warning",
            "keepalive": 5,
        },
    ).run()


if __name__ == "__main__":
    main()
