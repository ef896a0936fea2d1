"""A demo platform and a throwaway fake tool, both served over HTTP on loopback."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from flask import Flask, Response, jsonify, redirect, request

from lti_app.demo.browser import follow_launch
from lti_app.demo.keys import SigningKey
from lti_app.demo.launches import LaunchSpec
from lti_app.demo.platform import DemoPlatform
from lti_app.demo.server import RunningPlatform, serve_in_thread, start_demo_platform


@dataclass
class FakeTool:
    """Just enough of a tool: JWKS, login initiation that redirects, a launch that records."""

    key: SigningKey
    client_id: str = "pathways-demo"
    base_url: str = ""
    auth_url: str = ""
    logins: list[dict[str, str]] = field(default_factory=list)
    launches: list[dict[str, str]] = field(default_factory=list)
    nonces: dict[str, str] = field(default_factory=dict)
    redirect_uri: str | None = None
    """None: the tool's own launch URL."""
    published: list[dict[str, Any]] | None = None
    """None: the public JWK of `key`."""

    def app(self) -> Flask:
        app = Flask("fake_tool")

        @app.get("/.well-known/jwks.json")
        def jwks() -> Response:
            keys = self.published if self.published is not None else [self.key.public_jwk]
            resp = jsonify({"keys": keys})
            resp.headers["Cache-Control"] = "max-age=60"
            return resp

        @app.route("/lti/login", methods=["GET", "POST"])
        def login() -> Any:
            params = request.values.to_dict()
            self.logins.append(params)
            state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
            self.nonces[state] = nonce
            query = {
                "response_type": "id_token",
                "scope": "openid",
                "response_mode": "form_post",
                "prompt": "none",
                "client_id": params["client_id"],
                "redirect_uri": self.redirect_uri or f"{self.base_url}/lti/launch",
                "login_hint": params["login_hint"],
                "lti_message_hint": params["lti_message_hint"],
                "state": state,
                "nonce": nonce,
            }
            return redirect(f"{self.auth_url}?{urlencode(query)}")

        @app.post("/lti/launch")
        def launch() -> str:
            self.launches.append(request.form.to_dict())
            return "launched"

        return app

    def assertion(self, aud: str, **claims: Any) -> str:
        """A client assertion for the platform's token endpoint."""
        now = int(time.time())
        payload = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": aud,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return self.key.sign(payload)

    def signed(self, payload: dict[str, Any]) -> str:
        return self.key.sign(payload)


@pytest.fixture(scope="session")
def tool_key() -> SigningKey:
    return SigningKey.generate("tool-key-1")


@pytest.fixture
def tool(tool_key: SigningKey) -> Iterator[FakeTool]:
    fake = FakeTool(tool_key)
    fake.base_url, stop = serve_in_thread(fake.app())
    yield fake
    stop()


@pytest.fixture
def running(tool: FakeTool) -> Iterator[RunningPlatform]:
    served = start_demo_platform(tool.base_url, nrps_page_size=7, ags_page_size=2)
    tool.auth_url = f"{served.base_url}/auth"
    yield served
    served.stop()


@pytest.fixture
def lms(running: RunningPlatform) -> DemoPlatform:
    return running.platform


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def access_token(lms: DemoPlatform, tool: FakeTool, http: httpx.Client) -> str:
    """A token holding every scope the platform grants."""
    resp = http.post(
        lms.token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": tool.assertion(lms.token_url),
            "scope": " ".join(sorted(lms.granted_scopes)),
        },
    )
    assert resp.status_code == 200, resp.text
    token: str = resp.json()["access_token"]
    return token


def launch(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool, spec: LaunchSpec
) -> tuple[str, dict[str, Any]]:
    """Run the OIDC flow for `spec`; return the raw id_token and its unverified claims."""
    before = len(tool.launches)
    resp = follow_launch(http, lms.login_url(spec))
    assert resp.status_code == 200, resp.text
    assert len(tool.launches) == before + 1
    form = tool.launches[-1]
    assert tool.nonces[form["state"]]
    token = form["id_token"]
    return token, jwt.decode(token, options={"verify_signature": False})
