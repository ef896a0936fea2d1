"""The demo LMS's Flask app: its blueprints, and the delays, faults and throttling tests set."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request

from lti_app.demo import api, deep_linking, oauth, pages
from lti_app.demo.platform import EXTENSION_KEY, DemoPlatform, PlatformConfig
from lti_app.demo.state import EndpointKind, Fault


def _endpoint_kind(endpoint: str | None) -> EndpointKind | None:
    kinds: dict[str, EndpointKind] = {
        "oauth.authorize": "auth",
        "oauth.jwks": "jwks",
        "oauth.token": "token",
        "api.memberships": "nrps",
        "deep_linking.deep_link_return": "deep_link",
    }
    if endpoint in kinds:
        return kinds[endpoint]
    return "ags" if endpoint and endpoint.startswith("api.") else None


CANVAS_THROTTLED = Fault(
    403, {"X-Rate-Limit-Remaining": "0.0"}, "403 Forbidden (Rate Limit Exceeded)\n"
)
"""Canvas's answer to a throttled request (app/middleware/request_throttle.rb): not a 429."""


def _answer_fault(fault: Fault) -> Response:
    if fault.drop_connection:
        sock = request.environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            # After this the server's write fails quietly; the client sees a closed connection.
            sock.shutdown(socket.SHUT_RDWR)
    return Response(
        fault.body, status=fault.status or 503, headers=dict(fault.headers), mimetype="text/plain"
    )


def create_platform_app(config: PlatformConfig, platform: DemoPlatform | None = None) -> Flask:
    """Build the platform's Flask app (pass `platform` to keep a handle on its hooks)."""
    platform = platform or DemoPlatform(config)
    app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"))
    app.config.update(SECRET_KEY=config.secret_key)
    app.extensions[EXTENSION_KEY] = platform
    for bp in (oauth.bp, api.bp, deep_linking.bp, pages.bp):
        app.register_blueprint(bp)

    @app.before_request
    def _delay_and_faults() -> Response | None:
        kind = _endpoint_kind(request.endpoint)
        if kind == "ags" and not platform.enter_ags():
            return _answer_fault(CANVAS_THROTTLED)
        if platform.delay_ms > 0:
            time.sleep(platform.delay_ms / 1000)
        if kind is None:
            return None
        fault = platform.state.take_fault(kind)
        return _answer_fault(fault) if fault else None

    @app.teardown_request
    def _leave(_: BaseException | None) -> None:
        if g.get("ags_in_flight"):
            platform.leave_ags()

    # Always: a test may switch `canvas_line_items` on while the platform runs.
    app.wsgi_app = _CanvasLineItemPaths(app.wsgi_app)  # type: ignore[method-assign]
    return app


class _CanvasLineItemPaths:
    """Serves Canvas's line item addresses with the demo's own AGS routes."""

    CANVAS = re.compile(r"/api/lti/courses/([^/]+)/line_items(/.*)?")

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        found = self.CANVAS.fullmatch(environ.get("PATH_INFO", ""))
        if found:
            environ["PATH_INFO"] = f"/api/contexts/{found[1]}/lineitems{found[2] or ''}"
        return self.app(environ, start_response)


def build_demo_platform(
    base_url: str, tool_base_url: str, **overrides: Any
) -> tuple[Flask, DemoPlatform]:
    """A platform at `base_url` registered with the Pathways tool at `tool_base_url`.

    `overrides` are other PlatformConfig fields (client_id, delay_ms, nrps_page_size, ...).
    """
    tool = tool_base_url.rstrip("/")
    config = PlatformConfig(
        issuer=base_url.rstrip("/"),
        tool_login_url=f"{tool}/lti/login",
        tool_launch_url=f"{tool}/lti/launch",
        tool_jwks_url=f"{tool}/.well-known/jwks.json",
        **overrides,
    )
    platform = DemoPlatform(config)
    return create_platform_app(config, platform), platform
