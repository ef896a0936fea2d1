"""Helpers for the security probes: frames of launches, extra Pathways servers sharing the
test database (an operator console with a secret, one with Secure cookies), and header checks."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from flask import Flask, url_for
from flask_wtf.csrf import generate_csrf
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from werkzeug.routing import AnyConverter, IntegerConverter, Rule

from lti_app import create_app
from lti_app.demo.server import serve_in_thread
from lti_app.settings import Settings, load_settings
from tests.conftest import Launched, ToolServer
from tests.courses.frames import token_in

OPERATOR_SECRET = "probe-operator-secret-" + "k" * 24
CSRF_EXEMPT = {"tool.login", "tool.launch"}
"""Posted cross-site by the LMS; state, nonce and the signed id_token protect them."""
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Frame:
    """One launch's in-frame requests: its launch token and a CSRF token of that launch."""

    client: httpx.Client
    base: str
    token: str
    csrf: str
    page: httpx.Response

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(self.base + path, params={"lt": self.token, **params})

    def post(self, path: str, data: dict[str, Any], **kw: Any) -> httpx.Response:
        return self.client.post(self.base + path, data={"lt": self.token, **data}, **kw)


def csrf_for(app: Flask, token: str) -> str:
    """The CSRF token a page of this launch carries (derived from the launch, lti_app.web)."""
    with app.test_request_context(f"/?lt={token}"):
        return str(generate_csrf())


def frame_of(tool: ToolServer, launched: Launched) -> Frame:
    assert launched.response.status_code == 200, launched.text[:1500]
    token = token_in(launched.text)
    return Frame(launched.client, tool.url, token, csrf_for(tool.app, token), launched.response)


class _AgedSigner(TimestampSigner):
    age = 0

    def get_timestamp(self) -> int:
        return int(time.time()) - self.age


def aged_launch_token(secret_key: str, launch_session_id: str, age_seconds: int) -> str:
    """A correctly signed launch token, issued age_seconds ago."""
    signer = type("Aged", (_AgedSigner,), {"age": age_seconds})
    serializer = URLSafeTimedSerializer(secret_key, salt="pathways-launch", signer=signer)
    return serializer.dumps(launch_session_id)


def launch_session_id(secret_key: str, token: str) -> str:
    return str(URLSafeTimedSerializer(secret_key, salt="pathways-launch").loads(token))


def sample_path(app: Flask, rule: Rule) -> str:
    """A concrete path for a rule: ids 1, the first allowed word for other arguments."""
    values: dict[str, Any] = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        if isinstance(converter, AnyConverter):
            values[name] = sorted(getattr(converter, "items", ["x"]))[0]
        elif isinstance(converter, IntegerConverter):
            values[name] = 1
        else:
            values[name] = "approve"
    with app.test_request_context():
        return url_for(rule.endpoint, **values)


def state_changing_rules(app: Flask) -> Iterator[tuple[str, Rule]]:
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) & STATE_CHANGING):
            yield method, rule


@dataclass(frozen=True)
class ExtraServer:
    url: str
    app: Flask
    settings: Settings


@contextmanager
def extra_server(
    base: Settings, tmp: Path, configure: Callable[[Flask], None] | None = None, **overrides: Any
) -> Iterator[ExtraServer]:
    """Another Pathways process on the same database and secret key as the tool server."""
    settings = load_settings(
        {},
        env="test",
        secret_key=base.secret_key,
        key_encryption_secret=base.key_encryption_secret,
        database_url=base.database_url,
        instance_path=str(tmp),
        **overrides,
    )
    app = create_app(settings)
    if configure is not None:
        configure(app)
    url, stop = serve_in_thread(app)
    try:
        yield ExtraServer(url, app, settings)
    finally:
        stop()
        app.extensions["lti_app.db"].dispose()


CSRF_INPUT = re.compile(
    r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"'
)


def csrf_in(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1) or match.group(2)


def directives(csp: str) -> dict[str, str]:
    """A Content-Security-Policy header as {directive: sources}."""
    out: dict[str, str] = {}
    for part in csp.split(";"):
        words = part.strip().split(None, 1)
        if words:
            out[words[0].lower()] = words[1] if len(words) > 1 else ""
    return out


SAFE_REFERRER_POLICIES = {
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "origin",
}


def header_problems(response: httpx.Response) -> list[str]:
    """What an IT reviewer's header scan flags on any page of the tool."""
    problems = []
    csp = response.headers.get("Content-Security-Policy", "")
    found = directives(csp)
    script = found.get("script-src", found.get("default-src", ""))
    if not csp:
        problems.append("no Content-Security-Policy")
    elif not script or "'unsafe-inline'" in script or "'unsafe-eval'" in script or "*" in script:
        problems.append(f"script-src allows inline or any script: {script!r}")
    if found.get("object-src") not in {"'none'"}:
        problems.append("object-src is not 'none'")
    if response.headers.get("X-Content-Type-Options", "").lower() != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    policy = response.headers.get("Referrer-Policy", "").lower()
    if policy not in SAFE_REFERRER_POLICIES:
        problems.append(f"Referrer-Policy {policy!r} sends full URLs (with lt=) to other sites")
    return problems


def cache_forbids_storing(response: httpx.Response) -> bool:
    directives_ = {d.strip().lower() for d in response.headers.get("Cache-Control", "").split(",")}
    return "no-store" in directives_


def frame_ancestors(response: httpx.Response) -> str:
    return directives(response.headers.get("Content-Security-Policy", "")).get(
        "frame-ancestors", ""
    )


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers by cookie name (the whole header, attributes included)."""
    out = {}
    for raw in response.headers.get_list("set-cookie"):
        out[raw.split("=", 1)[0].strip()] = raw
    return out


def attributes(set_cookie: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in set_cookie.split(";")[1:]}


def attribute(set_cookie: str, name: str) -> str:
    for part in set_cookie.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == name:
            return value
    return ""


HREF = re.compile(r"""(?:href|src|action|formaction)\s*=\s*["']([^"']+)["']""", re.I)


def links_in(html: str) -> list[str]:
    return [m.group(1).replace("&amp;", "&") for m in HREF.finditer(html)]
