"""Serve WSGI apps on loopback in background threads (tests and the demo command)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.serving import make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

    from lti_app.demo.platform import DemoPlatform


def serve_in_thread(
    app: WSGIApplication, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, Callable[[], None]]:
    """Start `app` on `host:port` (0: any free port); return its base URL and a stop function."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"serve-{server.port}",
        daemon=True,
    )
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://{host}:{server.port}", stop


class LateApp:
    """A WSGI app whose target is set after the server is bound (the URL is part of config)."""

    def __init__(self) -> None:
        self.target: WSGIApplication | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Delegate to the target app."""
        if self.target is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting"]
        return self.target(environ, start_response)


@dataclass(frozen=True)
class RunningPlatform:
    """A demo platform served on loopback."""

    base_url: str
    app: Flask
    platform: DemoPlatform
    stop: Callable[[], None]


def start_demo_platform(
    tool_base_url: str, host: str = "127.0.0.1", port: int = 0, **overrides: Any
) -> RunningPlatform:
    """Serve a demo platform for the tool at `tool_base_url`; call `.stop()` when done."""
    from lti_app.demo.app import build_demo_platform

    late = LateApp()
    base_url, stop = serve_in_thread(late, host, port)
    app, platform = build_demo_platform(base_url, tool_base_url, **overrides)
    late.target = app
    return RunningPlatform(base_url, app, platform, stop)
