"""The platform's key set (JWKS) and the OIDC login/state flow, probed the way an independent
conformance run would: odd key sets, broken or slow JWKS endpoints, the cache's bounds, forged
or stale states, and the hygiene of the login redirect (LTI 1.3 Core, 1EdTech Security
Framework 1.0, RFC 7517/7518/8725).

Every bad input must get a clear 4xx page in plain words (no stack trace, no token, no
secret), never a 500, and a hung or broken LMS must never hold a worker for long.

A fake platform runs on loopback with a JWKS endpoint this file controls; a Pathways of its
own (short HTTP timeouts) is started for this module so that hung endpoints fail fast.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import update
from sqlalchemy.engine import Engine

from lti_app import create_app
from lti_app.cli import main
from lti_app.db import Database, utcnow
from lti_app.demo.keys import SigningKey
from lti_app.demo.server import serve_in_thread
from lti_app.settings import Settings
from lti_app.tool import jwks as jwks_module
from lti_app.tool.cache import clear_all
from lti_app.tool.jwks import JwksCache
from lti_app.tool.login import _login_signer, browser_hash, state_cookie_name
from lti_app.tool.models import Deployment, DeploymentStatus, JwksCacheEntry, Platform
from tests.conftest import POSTGRES_URL_ENV, Launched, ToolServer
from tests.tool.test_launch import CLAIM, assert_refused

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
READ_TIMEOUT = 2.0
"""This module's Pathways gives up on a silent LMS after this many seconds."""
ON_SQLITE = not os.environ.get(POSTGRES_URL_ENV)


# --- a Pathways with short outbound timeouts ---------------------------------------------------


@pytest.fixture(scope="module")
def tool(tool_settings: Settings, engine: Engine) -> Iterator[ToolServer]:
    settings = dataclasses.replace(
        tool_settings, http_connect_timeout=READ_TIMEOUT, http_read_timeout=READ_TIMEOUT
    )
    app = create_app(settings)
    url, stop = serve_in_thread(app)
    yield ToolServer(url, app, settings)
    stop()
    app.extensions["lti_app.http"].close()
    app.extensions["lti_app.db"].dispose()


def key_cache(tool: ToolServer) -> JwksCache:
    cache: JwksCache = tool.app.extensions["lti_app.jwks"]
    return cache


def expire_keys(tool: ToolServer, lms: FakeLms, database_url: str) -> None:
    """Let time pass for this platform's cached keys, in this process and the shared row."""
    key_cache(tool)._entries[lms.jwks_url].expires_at = 0
    db = Database(database_url)
    with db.begin() as session:
        session.execute(
            update(JwksCacheEntry)
            .where(JwksCacheEntry.jwks_url == lms.jwks_url)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    db.dispose()


# --- a platform whose key set this file controls -----------------------------------------------


Answer = Callable[[BaseHTTPRequestHandler], None]


class FakeLms:
    """Issuer, OIDC auth URL and JWKS URL under a random path of a loopback server."""

    def __init__(self) -> None:
        self.key = SigningKey.generate(f"kid-{secrets.token_hex(4)}")
        self.document: Any = {"keys": [self.key.public_jwk]}
        self.headers = {"Content-Type": "application/json", "Cache-Control": "max-age=600"}
        self.status = 200
        self.answer: Answer | None = None  # replaces the normal JWKS answer
        self.jwks_requests: list[dict[str, str]] = []
        self.other_hits: list[str] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.stalling = threading.Event()
        """Set once a key set request is being stalled (see `stall`)."""
        self.hung_up = threading.Event()
        """Set when the client hung up on a stalled key set request."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        prefix = "/lms-" + secrets.token_hex(5)
        self.prefix = prefix
        self.issuer = self.base + prefix
        self.auth_url = self.base + prefix + "/auth"
        self.jwks_url = self.base + prefix + "/jwks"
        self.client_id = "client-" + secrets.token_hex(4)
        self.deployment_id = "deployment-1"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def jwks_hits(self) -> int:
        return len(self.jwks_requests)

    def body(self) -> bytes:
        if isinstance(self.document, bytes):
            return self.document
        return json.dumps(self.document).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        lms = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if not self.path.startswith(lms.prefix + "/jwks"):
                    with lms.lock:
                        lms.other_hits.append(self.path)
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with lms.lock:
                    lms.jwks_requests.append(dict(self.headers.items()))
                if lms.answer is not None:
                    lms.answer(self)
                    return
                body = lms.body()
                self.send_response(lms.status)
                for name, value in lms.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def stall(self, handler: BaseHTTPRequestHandler, *, drip: bytes = b"") -> None:
        """Hold the request with no end of its own: send `drip` every READ_TIMEOUT / 3 s
        (never a silent gap), or without one nothing at all, until the client hangs up (then
        set `hung_up`) or the test ends (`closing`). A Pathways that waited for the end of
        it would never answer the launch."""
        handler.close_connection = True
        self.stalling.set()
        conn = handler.connection
        conn.settimeout(READ_TIMEOUT / 3)
        while not self.closing.is_set():
            try:
                if not conn.recv(1024):
                    break  # the client closed its end
            except TimeoutError:
                if drip:
                    try:
                        handler.wfile.write(drip)
                        handler.wfile.flush()
                    except OSError:
                        break
            except OSError:
                break
        if not self.closing.is_set():
            self.hung_up.set()

    def stop(self) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()

    # -- the platform's side of a launch --------------------------------------------------------

    def claims(self, nonce: str, target: str, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": "keyset-learner",
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            "name": "Kim Keyset",
            CLAIM + "version": "1.3.0",
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "deployment_id": self.deployment_id,
            CLAIM + "target_link_uri": target,
            CLAIM + "resource_link": {"id": "keyset-link", "title": "Keyset link"},
            CLAIM + "roles": [LEARNER],
            CLAIM + "context": {"id": "keyset-course", "title": "Keyset Course"},
        }
        claims.update(changes)
        return claims

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
    ) -> str:
        return jwt.encode(
            claims,
            key or self.key.private_key,
            algorithm="RS256",
            headers={"kid": kid or self.key.kid},
        )


def register(database_url: str, lms: FakeLms, *, active: bool = True) -> None:
    db = Database(database_url)
    with db.begin() as session:
        platform = Platform(
            issuer=lms.issuer,
            client_id=lms.client_id,
            name="Keyset LMS",
            auth_login_url=lms.auth_url,
            token_url=lms.base + lms.prefix + "/token",
            jwks_url=lms.jwks_url,
            is_active=active,
        )
        session.add(platform)
        session.flush()
        session.add(
            Deployment(
                platform_id=platform.id,
                deployment_id=lms.deployment_id,
                status=DeploymentStatus.ACTIVE,
                approved_at=utcnow(),
            )
        )
    db.dispose()


@pytest.fixture
def make_fake(tool: ToolServer, database_url: str) -> Iterator[Callable[..., FakeLms]]:
    """New registered platforms; `jwks_url` overrides where Pathways looks for the keys."""
    made: list[FakeLms] = []

    def build(*, jwks_url: str | None = None, active: bool = True) -> FakeLms:
        lms = FakeLms()
        if jwks_url is not None:
            lms.jwks_url = jwks_url
        register(database_url, lms, active=active)
        made.append(lms)
        return lms

    yield build
    for lms in made:
        lms.stop()


@pytest.fixture
def fake(make_fake: Callable[..., FakeLms]) -> FakeLms:
    return make_fake()


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


def login_params(tool: ToolServer, lms: FakeLms, **changes: Any) -> dict[str, str]:
    params = {
        "iss": lms.issuer,
        "login_hint": "keyset-learner",
        "target_link_uri": tool.url + "/lti/launch",
        "client_id": lms.client_id,
        "lti_deployment_id": lms.deployment_id,
        "lti_message_hint": "hint-1",
    }
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return params


def login(
    tool: ToolServer, lms: FakeLms, browser: httpx.Client, method: str = "GET", **changes: Any
) -> httpx.Response:
    params = login_params(tool, lms, **changes)
    if method == "POST":
        return browser.post(tool.url + "/lti/login", data=params)
    return browser.get(tool.url + "/lti/login", params=params)


def auth_request(response: httpx.Response) -> dict[str, str]:
    """The OIDC authentication request Pathways sent the browser to (its query)."""
    assert response.status_code == 302, response.text[:2000]
    return dict(parse_qsl(urlsplit(response.headers["location"]).query))


def post_launch(
    browser: httpx.Client, request: dict[str, str], id_token: str, **form: str
) -> Launched:
    data = {"id_token": id_token, "state": request["state"], **form}
    return Launched(browser.post(request["redirect_uri"], data=data), browser)


def launch(
    tool: ToolServer,
    lms: FakeLms,
    browser: httpx.Client,
    *,
    key: rsa.RSAPrivateKey | None = None,
    kid: str | None = None,
    **claims: Any,
) -> Launched:
    """The whole flow: login, the platform's answer signed with its key (or `key`/`kid`)."""
    request = auth_request(login(tool, lms, browser))
    token = lms.sign(
        lms.claims(request["nonce"], tool.url + "/lti/launch", **claims), key=key, kid=kid
    )
    return post_launch(browser, request, token)


def assert_accepted(launched: Launched) -> None:
    assert launched.response.status_code == 200, launched.text[:2000]
    assert "Keyset Course" in launched.text
    assert "Traceback" not in launched.text


def launch_against_stall(tool: ToolServer, lms: FakeLms, browser: httpx.Client) -> Launched:
    """A launch while `lms` stalls its key set (FakeLms.stall, with no end of its own): it is
    answered only if Pathways gives up on the key set, and Pathways must have hung up."""
    try:
        launched = launch(tool, lms, browser)
    except httpx.ReadTimeout:
        pytest.fail("the browser gave up first: Pathways waited for a key set that never comes")
    assert lms.stalling.is_set(), "the key set was never asked for"
    # The host sees a hang-up within READ_TIMEOUT / 3; 10 s only keeps a failure from hanging.
    assert lms.hung_up.wait(10), "the launch was answered, but the key set connection stayed"
    return launched


# === 0. the fake platform works =================================================================


def test_a_plain_launch_from_the_fake_platform_works(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    assert_accepted(launch(tool, fake, browser))
    assert fake.jwks_hits == 1
    request = fake.jwks_requests[0]
    assert request.get("User-Agent", "").startswith("Pathways")
    assert "json" in request.get("Accept", "")


# === 1. what the key set contains ===============================================================


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str, **fields: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig", **fields})
    return {k: v for k, v in jwk.items() if v is not None}


def other_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_jwk(kid: str) -> dict[str, Any]:
    from jwt.algorithms import ECAlgorithm

    key = ec.generate_private_key(ec.SECP256R1())
    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "ES256", "use": "sig"})
    return jwk


def the_key(lms: FakeLms, **fields: Any) -> dict[str, Any]:
    """The platform's real signing key as a JWK, with fields changed (None removes one)."""
    jwk = {**rsa_jwk(lms.key.private_key, lms.key.kid), **fields}
    return {k: v for k, v in jwk.items() if v is not None}


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(lambda lms: [ec_jwk(lms.key.kid)], id="ec-key-under-the-kid"),
        pytest.param(
            lambda lms: [{"kty": "oct", "kid": lms.key.kid, "k": "c2VjcmV0LWtleQ", "alg": "HS256"}],
            id="oct-key-under-the-kid",
        ),
        pytest.param(lambda lms: [the_key(lms, use="enc")], id="use-enc"),
        pytest.param(lambda lms: [the_key(lms, n=None)], id="no-n"),
        pytest.param(lambda lms: [the_key(lms, e=None)], id="no-e"),
        pytest.param(
            lambda lms: [the_key(lms, n="!!!not base64!!!")],
            id="n-not-base64",
        ),
        pytest.param(lambda lms: [the_key(lms, n="")], id="n-empty"),
        pytest.param(lambda lms: [the_key(lms, n=12345)], id="n-number"),
        pytest.param(lambda lms: [the_key(lms, e=["AQAB"])], id="e-list"),
        pytest.param(lambda lms: [the_key(lms, kty=None)], id="no-kty"),
        pytest.param(lambda lms: [the_key(lms, kty="rsa")], id="kty-lowercase"),
        pytest.param(lambda lms: [the_key(lms, kid=None)], id="no-kid-in-the-set"),
        pytest.param(lambda lms: [], id="empty-keys"),
        pytest.param(lambda lms: ["a string", 5, None, []], id="keys-not-objects"),
    ],
)
def test_a_key_set_without_a_usable_key_under_the_kid_is_refused(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, keys: Callable[[FakeLms], Any]
) -> None:
    fake.document = {"keys": keys(fake)}
    assert_refused(launch(tool, fake, browser), 400, "does not publish")


def test_the_platform_key_is_found_among_unusable_ones(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    junk: list[Any] = [
        ec_jwk("ec-1"),
        {"kty": "oct", "kid": "oct-1", "k": "c2VjcmV0"},
        "not a key",
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": "ed",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        },
    ]
    fake.document = {"keys": [*junk, the_key(fake)], "x-vendor": {"note": "extra members"}}
    assert_accepted(launch(tool, fake, browser))


@pytest.mark.parametrize(
    "broken",
    [
        {"kty": "RSA", "kid": "broken", "n": "@@", "e": "AQAB"},
        {"kty": "RSA", "kid": "no-modulus", "e": "AQAB"},
        {"kty": "RSA", "kid": "odd", "n": 5, "e": "AQAB"},
    ],
    ids=["bad-base64", "no-n", "n-number"],
)
def test_one_malformed_key_beside_the_right_one_does_not_break_launches(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, broken: dict[str, Any]
) -> None:
    # RFC 7517 5: members of a JWK Set that cannot be used are to be ignored.
    fake.document = {"keys": [broken, the_key(fake)]}
    assert_accepted(launch(tool, fake, browser))


def test_a_malformed_key_added_later_does_not_break_launches_with_cached_keys(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, database_url: str
) -> None:
    assert_accepted(launch(tool, fake, browser))
    fake.document = {"keys": [the_key(fake), {"kty": "RSA", "kid": "next", "n": "", "e": "AQAB"}]}
    expire_keys(tool, fake, database_url)
    assert_accepted(launch(tool, fake, browser))


def test_a_key_without_use_or_alg_is_taken_as_a_signing_key(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    # RFC 7517: both members are optional; most platforms send them, some do not.
    fake.document = {"keys": [the_key(fake, use=None, alg=None)]}
    assert_accepted(launch(tool, fake, browser))


def test_a_key_published_for_another_algorithm_is_not_used_for_rs256(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    fake.document = {"keys": [the_key(fake, alg="RS512")]}
    launched = launch(tool, fake, browser)
    assert_refused(launched, 400, fake.key.kid)


@pytest.mark.parametrize("right_first", [True, False], ids=["right-first", "right-last"])
def test_a_duplicate_kid_with_a_non_rsa_key_does_not_hide_the_rsa_key(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, right_first: bool
) -> None:
    keys = [the_key(fake), ec_jwk(fake.key.kid)]
    fake.document = {"keys": keys if right_first else keys[::-1]}
    assert_accepted(launch(tool, fake, browser))


@pytest.mark.parametrize(
    "right_first",
    [
        pytest.param(
            True,
            id="right-first",
        ),
        pytest.param(False, id="right-last"),
    ],
)
def test_two_rsa_keys_under_one_kid(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, right_first: bool
) -> None:
    """RFC 7517 4.5: kids SHOULD be distinct. With two RSA keys under one kid, the answer
    must not depend on the order the platform lists them in."""
    wrong = rsa_jwk(other_rsa_key(), fake.key.kid)
    keys = [the_key(fake), wrong]
    fake.document = {"keys": keys if right_first else keys[::-1]}
    launched = launch(tool, fake, browser)
    assert launched.response.status_code == 200, launched.text[:2000]


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the fake LMS signs
def test_a_weak_1024_bit_platform_key_is_refused(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    weak = other_rsa_key(1024)
    fake.document = {"keys": [rsa_jwk(weak, fake.key.kid)]}
    assert_refused(launch(tool, fake, browser, key=weak), 400, "2048")


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        pytest.param({"keys": {"kid": "x"}}, "application/json", id="keys-an-object"),
        pytest.param({"keys": "[]"}, "application/json", id="keys-a-string"),
        pytest.param({"keys": None}, "application/json", id="keys-null"),
        pytest.param({"no": "keys"}, "application/json", id="no-keys-member"),
        pytest.param([], "application/json", id="a-json-list"),
        pytest.param("keys", "application/json", id="a-json-string"),
        pytest.param(b"{not json", "application/json", id="not-json"),
        pytest.param(b"", "application/json", id="empty-body"),
        pytest.param(b"\xff\xfe\x00garbage", "application/json", id="binary"),
        pytest.param(
            b"<!doctype html><html><body><h1>Log in to the LMS</h1></body></html>",
            "text/html",
            id="html-login-page",
        ),
        pytest.param(
            b"[" * 100_000 + b"]" * 100_000,
            "application/json",
            id="deeply-nested",
        ),
    ],
)
def test_a_key_set_that_is_not_a_jwks_is_a_clear_error(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, document: Any, content_type: str
) -> None:
    fake.document = document
    fake.headers["Content-Type"] = content_type
    launched = launch(tool, fake, browser)
    assert_refused(launched, 400, "could not fetch the LMS", fake.jwks_url)


def test_a_3_mb_key_set_is_handled_within_bounds(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    """Thousands of keys (or padding), under the size bound, must not break the launch."""
    filler = the_key(fake)
    keys = [{**filler, "kid": f"filler-{i}"} for i in range(3_000_000 // (len(json.dumps(filler))))]
    fake.document = {"keys": [*keys, the_key(fake)]}
    assert len(fake.body()) > 3_000_000
    launched = launch(tool, fake, browser)
    assert launched.response.status_code in {200, 400}, launched.text[:2000]
    assert "Traceback" not in launched.text


# === 1b. the key set endpoint misbehaves ========================================================


@pytest.mark.parametrize("status", [500, 502, 503, 404, 401, 403, 204, 304])
def test_a_key_set_endpoint_error_is_a_clear_error(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, status: int
) -> None:
    fake.status = status
    if status in (204, 304):
        fake.document = b""
    launched = launch(tool, fake, browser)
    assert_refused(launched, 400, "could not fetch the LMS", fake.jwks_url)


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_a_key_set_redirect_to_another_host_is_not_followed(
    tool: ToolServer,
    fake: FakeLms,
    make_fake: Callable[..., FakeLms],
    browser: httpx.Client,
    code: int,
) -> None:
    elsewhere = make_fake()  # serves a valid key set with the right key, on another port
    elsewhere.document = {"keys": [the_key(fake)]}

    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        handler.send_header("Location", elsewhere.jwks_url)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    fake.answer = redirect
    launched = launch(tool, fake, browser)
    assert_refused(launched, 400, "could not fetch the LMS")
    assert elsewhere.jwks_hits == 0


def test_a_key_set_endpoint_that_never_answers_is_given_up_on(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    fake.answer = fake.stall
    assert_refused(launch_against_stall(tool, fake, browser), 400, "could not fetch the LMS")


def test_a_key_set_endpoint_that_stops_mid_body_is_given_up_on(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    def half(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b'{"keys": [')
        handler.wfile.flush()
        fake.stall(handler)

    fake.answer = half
    assert_refused(launch_against_stall(tool, fake, browser), 400, "could not fetch the LMS")


def test_a_key_set_endpoint_that_closes_the_connection_is_a_clear_error(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    def close(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        handler.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{"ke')
        handler.wfile.flush()

    fake.answer = close
    assert_refused(launch(tool, fake, browser), 400, "could not fetch the LMS")


def test_a_key_set_endpoint_that_drips_fails_within_a_bounded_time(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        fake.stall(handler, drip=b" ")

    fake.answer = drip
    launched = launch_against_stall(tool, fake, browser)
    assert launched.response.status_code == 400, launched.text[:2000]


def test_a_key_set_endpoint_that_drips_its_headers_fails_within_a_bounded_time(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    # Each header byte comes well within the read timeout: only a bound on the whole exchange
    # keeps the launch (and a server thread) from waiting for as long as the host likes.
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        fake.stall(handler, drip=b"a")

    fake.answer = drip
    assert_refused(launch_against_stall(tool, fake, browser), 400, "could not fetch the LMS")


def test_a_key_set_url_nobody_listens_on_is_a_clear_error(
    tool: ToolServer, make_fake: Callable[..., FakeLms], browser: httpx.Client
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lms = make_fake(jwks_url=f"http://127.0.0.1:{port}/jwks")
    launched = launch(tool, lms, browser)
    assert_refused(launched, 400, "could not fetch the LMS", f"127.0.0.1:{port}/jwks")


@pytest.mark.parametrize(
    "jwks_url",
    [
        "http://keyset-host.invalid/jwks",
        "not a url",
        "ftp://127.0.0.1/jwks",
        "",
        # Stored before `lti-app platform add` refused them: httpx refuses them as URLs.
        "https://lms.example:443a/jwks",
        "https://[fd00::1/jwks",
        "https://1.2.3.999/jwks",
    ],
    ids=["unresolvable", "words", "ftp", "empty", "bad-port", "unclosed-ipv6", "bad-ipv4"],
)
def test_an_unusable_key_set_url_is_a_clear_error(
    tool: ToolServer, make_fake: Callable[..., FakeLms], browser: httpx.Client, jwks_url: str
) -> None:
    lms = make_fake(jwks_url=jwks_url)
    assert_refused(launch(tool, lms, browser), 400, "could not fetch the LMS")


# === 2. the key cache ===========================================================================


def cached_for(tool: ToolServer, lms: FakeLms) -> float:
    """Seconds until Pathways next fetches this platform's key set."""
    return key_cache(tool)._entries[lms.jwks_url].expires_at - time.time()


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [
        ("max-age=0", "min"),
        ("no-store", "min"),
        ("no-cache, no-store, must-revalidate", "min"),
        ("max-age=1", "min"),
        ("public, max-age=1800", 1800),
        ("max-age=315360000", "max"),
        ("max-age=99999999999999999999999999999999", "max"),
        ("", "default"),
        ("private", "default"),
        ("max-age=garbage", "default"),
    ],
)
def test_cache_control_of_the_key_set_is_honoured_within_bounds(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, cache_control: str, seconds: Any
) -> None:
    if cache_control:
        fake.headers["Cache-Control"] = cache_control
    else:
        fake.headers.pop("Cache-Control")
    assert_accepted(launch(tool, fake, browser))
    expected = {
        "min": tool.settings.jwks_min_ttl,
        "max": tool.settings.jwks_max_ttl,
        "default": tool.settings.jwks_default_ttl,
    }.get(seconds, seconds)
    assert expected - 5 <= cached_for(tool, fake) <= expected
    # Whatever the header said, the next launch does not fetch again.
    assert_accepted(launch(tool, fake, browser))
    assert fake.jwks_hits == 1


def test_a_key_set_with_etag_and_last_modified_works(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, database_url: str
) -> None:
    """Conditional requests are not required; the validators must at least do no harm."""
    fake.headers.update({"ETag": '"v1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"})
    assert_accepted(launch(tool, fake, browser))
    expire_keys(tool, fake, database_url)
    assert_accepted(launch(tool, fake, browser))
    assert fake.jwks_hits == 2


@pytest.fixture
def quick_refetch(monkeypatch: pytest.MonkeyPatch) -> float:
    interval = 1.0
    monkeypatch.setattr(jwks_module, "UNKNOWN_KID_REFETCH_INTERVAL", interval)
    return interval


def test_a_new_kid_published_late_is_found_after_the_refetch_interval(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, quick_refetch: float
) -> None:
    """The platform signs with a new key before its key set shows it (a CDN lags): refused
    at first, no refetch per launch meanwhile, found once the refetch interval has passed."""
    assert_accepted(launch(tool, fake, browser))
    new = SigningKey.generate("rotated-" + secrets.token_hex(3))
    signed_new = {"key": new.private_key, "kid": new.kid}
    assert_refused(launch(tool, fake, browser, **signed_new), 400, "does not publish")
    assert fake.jwks_hits == 2  # one refetch for the unknown kid
    fake.document = {"keys": [fake.key.public_jwk, new.public_jwk]}
    assert_refused(launch(tool, fake, browser, **signed_new), 400, "does not publish")
    assert fake.jwks_hits == 2  # within the interval: no refetch
    time.sleep(quick_refetch + 0.1)
    assert_accepted(launch(tool, fake, browser, **signed_new))
    assert fake.jwks_hits == 3
    assert_accepted(launch(tool, fake, browser))  # the old key still works
    assert fake.jwks_hits == 3


def test_a_platform_that_drops_the_old_key_is_followed(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    assert_accepted(launch(tool, fake, browser))
    new = SigningKey.generate("rotated-" + secrets.token_hex(3))
    fake.document = {"keys": [new.public_jwk]}
    assert_accepted(launch(tool, fake, browser, key=new.private_key, kid=new.kid))
    # The old key is gone from the set Pathways now holds.
    assert_refused(launch(tool, fake, browser), 400, "does not publish")


def launches_in_parallel(
    tool: ToolServer, lms: FakeLms, count: int, workers: int, **kwargs: Any
) -> list[Launched]:
    def one(_: int) -> Launched:
        with httpx.Client(timeout=60) as client:
            return Launched(launch(tool, lms, client, **kwargs).response, client)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(count)))


def test_a_flood_of_unknown_kids_does_not_fetch_the_key_set_each_time(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    assert_accepted(launch(tool, fake, browser))
    forged = other_rsa_key()
    results = []
    for i in range(12):
        results.append(launch(tool, fake, browser, key=forged, kid=f"forged-{i}"))
    results += launches_in_parallel(
        tool, fake, 12, 6, key=forged, kid="forged-" + secrets.token_hex(4)
    )
    for launched in results:
        assert_refused(launched, 400, "does not publish")
    assert fake.jwks_hits <= 2
    assert_accepted(launch(tool, fake, browser))


def test_concurrent_first_launches_fetch_the_key_set_once(tool: ToolServer, fake: FakeLms) -> None:
    for launched in launches_in_parallel(tool, fake, 8, 8):
        assert_accepted(launched)
    assert fake.jwks_hits == 1


def test_a_down_key_set_endpoint_is_not_fetched_for_every_launch(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    fake.status = 503
    for _ in range(10):
        assert_refused(launch(tool, fake, browser), 400, "could not fetch the LMS")
    assert fake.jwks_hits <= 2


def test_launches_queued_behind_a_hung_key_set_endpoint_each_fail_fast(
    tool: ToolServer, fake: FakeLms
) -> None:
    """Six launches at once while the key set endpoint hangs (with no end of its own): one
    fetch gives up, and the launches queued behind it fail with it instead of each fetching
    again and waiting out a timeout of its own."""
    fake.answer = fake.stall
    try:
        results = launches_in_parallel(tool, fake, 6, 6)
    except httpx.ReadTimeout:
        pytest.fail("a browser gave up first: a launch waited for a key set that never comes")
    for launched in results:
        assert_refused(launched, 400, "could not fetch the LMS")
    assert fake.jwks_hits == 1
    assert fake.hung_up.wait(10), "the launches were answered, but the key set connection stayed"


def test_a_hung_key_set_endpoint_does_not_stall_launches_from_other_platforms(
    tool_settings: Settings, make_fake: Callable[..., FakeLms]
) -> None:
    """One platform's key set endpoint hangs while a launch waits for it; a launch from
    another platform (its keys cached) is answered meanwhile. This Pathways waits 30 s for a
    silent LMS, so the hung launch is still waiting when the other one is answered, unless
    the other one was held behind it."""
    settings = dataclasses.replace(tool_settings, http_connect_timeout=30.0, http_read_timeout=30.0)
    app = create_app(settings)
    url, stop = serve_in_thread(app)
    patient = ToolServer(url, app, settings)
    slow, healthy = make_fake(), make_fake()
    try:
        with httpx.Client(timeout=60) as client:
            assert_accepted(launch(patient, healthy, client))  # its keys are cached
        slow.answer = slow.stall
        with ThreadPoolExecutor(1) as pool:
            stuck = pool.submit(launches_in_parallel, patient, slow, 1, 1)
            try:
                assert slow.stalling.wait(30), "the hung launch never asked for its key set"
                with httpx.Client(timeout=60) as client:
                    launched = launch(patient, healthy, client)
                still_waiting = not stuck.done() and not slow.hung_up.is_set()
            finally:
                slow.closing.set()  # the hung launch ends now
            assert_refused(stuck.result()[0], 400, "could not fetch the LMS")
        assert_accepted(launched)
        assert still_waiting, "the launch from the healthy platform waited for the hung one"
    finally:
        stop()
        app.extensions["lti_app.http"].close()
        app.extensions["lti_app.db"].dispose()


# === 3. login and state =========================================================================


def token_for(tool: ToolServer, lms: FakeLms, request: dict[str, str], **claims: Any) -> str:
    return lms.sign(lms.claims(request["nonce"], tool.url + "/lti/launch", **claims))


def platform_id(database_url: str, lms: FakeLms) -> int:
    db = Database(database_url)
    with db.begin() as session:
        found = session.query(Platform.id).filter(Platform.issuer == lms.issuer).scalar()
    db.dispose()
    assert found is not None
    return int(found)


def forged_state(
    secret_key: str, pid: int, nonce: str, browser_secret: str, target: str, expires_at: float
) -> str:
    """A state exactly as start_login makes one, signed with `secret_key`."""
    return _login_signer(secret_key).dumps(
        [pid, nonce, browser_hash(browser_secret), target, None, expires_at]
    )


def set_state_cookie(tool: ToolServer, browser: httpx.Client, state: str, value: str) -> None:
    browser.cookies.set(state_cookie_name(state), value, domain="127.0.0.1", path="/lti/")


def flip(text: str, index: int) -> str:
    """`text` with the character at `index` replaced by a different base64url character."""
    old = text[index]
    new = "B" if old != "B" else "C"
    return text[:index] + new + text[index + 1 :]


@pytest.mark.parametrize("where", ["payload-start", "payload-middle", "signature-middle", "last"])
def test_a_tampered_state_is_refused(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, where: str
) -> None:
    request = auth_request(login(tool, fake, browser))
    state = request["state"]
    dot = state.rindex(".")
    index = {
        "payload-start": 0,
        "payload-middle": dot // 2,
        "signature-middle": dot + (len(state) - dot) // 2,
        "last": len(state) - 1,
    }[where]
    tampered = {**request, "state": flip(state, index)}
    launched = post_launch(browser, tampered, token_for(tool, fake, request))
    assert_refused(launched, 400)
    text = launched.text.lower()
    assert "unknown state" in text or "different browser" in text, text[:2000]


def test_a_state_signed_with_another_secret_is_refused(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, database_url: str
) -> None:
    request = auth_request(login(tool, fake, browser))
    state = forged_state(
        "some-other-secret-" + "y" * 32,
        platform_id(database_url, fake),
        request["nonce"],
        "forged-browser-secret",
        tool.url + "/lti/launch",
        time.time() + 300,
    )
    set_state_cookie(tool, browser, state, "forged-browser-secret")
    launched = post_launch(browser, {**request, "state": state}, token_for(tool, fake, request))
    assert_refused(launched, 400, "unknown state")


def test_a_state_from_an_expired_login_is_refused(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, database_url: str
) -> None:
    request = auth_request(login(tool, fake, browser))
    state = forged_state(
        tool.settings.secret_key,
        platform_id(database_url, fake),
        request["nonce"],
        "the-browser-secret",
        tool.url + "/lti/launch",
        time.time() - 1,
    )
    set_state_cookie(tool, browser, state, "the-browser-secret")
    launched = post_launch(browser, {**request, "state": state}, token_for(tool, fake, request))
    assert_refused(launched, 400, "expired")


def test_a_state_made_with_the_apps_secret_for_this_login_works(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, database_url: str
) -> None:
    """The control for the two tests above: the forged state is right in every other way."""
    request = auth_request(login(tool, fake, browser))
    state = forged_state(
        tool.settings.secret_key,
        platform_id(database_url, fake),
        request["nonce"],
        "the-browser-secret",
        tool.url + "/lti/launch",
        time.time() + 60,
    )
    set_state_cookie(tool, browser, state, "the-browser-secret")
    assert_accepted(
        post_launch(browser, {**request, "state": state}, token_for(tool, fake, request))
    )


@pytest.mark.parametrize(
    "state",
    ["", "x", "a.b", "[]", "W10.sig", "." * 5000, "\x00", "é" * 10, "s" * 20_000],
    ids=["empty", "one-char", "two-parts", "json", "json-sig", "dots", "nul", "unicode", "huge"],
)
def test_states_we_never_issued_are_refused(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, state: str
) -> None:
    request = auth_request(login(tool, fake, browser))
    launched = post_launch(browser, {**request, "state": state}, token_for(tool, fake, request))
    assert_refused(launched, 400)


def test_a_login_completed_twice_is_refused_the_second_time(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    request = auth_request(login(tool, fake, browser))
    cookie = browser.cookies.get(state_cookie_name(request["state"]))
    assert cookie
    assert_accepted(post_launch(browser, request, token_for(tool, fake, request)))
    # A fresh id_token for the same login (same nonce): the cookie is gone, the login used.
    assert_refused(
        post_launch(browser, request, token_for(tool, fake, request)), 400, "already used"
    )
    # Even with the browser's state cookie put back (a second tab, a copied request).
    set_state_cookie(tool, browser, request["state"], cookie)
    assert_refused(
        post_launch(browser, request, token_for(tool, fake, request)), 400, "already used"
    )


def test_two_logins_in_one_browser_complete_in_reverse_order(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    first = auth_request(login(tool, fake, browser))
    second = auth_request(login(tool, fake, browser))
    assert first["state"] != second["state"]
    assert first["nonce"] != second["nonce"]
    assert_accepted(post_launch(browser, second, token_for(tool, fake, second)))
    assert_accepted(post_launch(browser, first, token_for(tool, fake, first)))


def test_a_nonce_from_the_other_login_in_the_same_browser_is_refused(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    first = auth_request(login(tool, fake, browser))
    second = auth_request(login(tool, fake, browser))
    launched = post_launch(browser, first, token_for(tool, fake, second))
    assert_refused(launched, 400, "nonce")


def test_a_launch_without_the_state_cookie_says_so(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    request = auth_request(login(tool, fake, browser))
    browser.cookies.clear()
    launched = post_launch(browser, request, token_for(tool, fake, request))
    assert_refused(launched, 400, "cookie", "new window")


def test_a_wrong_storage_secret_is_refused(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    request = auth_request(login(tool, fake, browser))
    browser.cookies.clear()
    launched = post_launch(
        browser, request, token_for(tool, fake, request), lti_storage_secret="guessed"
    )
    assert_refused(launched, 400, "different browser")


def storage_login(
    tool: ToolServer, lms: FakeLms, browser: httpx.Client
) -> tuple[httpx.Response, dict[str, str]]:
    """A login with LTI platform storage: the page that stores the browser secret."""
    response = login(tool, lms, browser, lti_storage_target="_parent")
    assert response.status_code == 200, response.text[:2000]
    found = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', response.text))
    return response, found


def test_platform_storage_login_and_launch_without_cookies(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    page, data = storage_login(tool, fake, browser)
    assert page.headers.get("Cache-Control") == "no-store"
    auth_url = html.unescape(data["auth-url"])
    assert auth_url.startswith(fake.auth_url + "?")
    assert data["origin"] == fake.base  # the secret is posted to the platform only, never "*"
    request = dict(parse_qsl(urlsplit(auth_url).query))
    assert data["key"] == "lti_state_" + request["state"]
    secret = data["value"]
    assert secret not in auth_url

    browser.cookies.clear()  # third-party cookies blocked
    token = token_for(tool, fake, request)
    relay = post_launch(browser, request, token)
    assert relay.response.status_code == 200, relay.text[:2000]
    assert "lti_storage_secret" in relay.text
    assert re.search(r'data-origin="' + re.escape(fake.base) + '"', relay.text), relay.text
    # The relay page posts the answer from Pathways' own origin, as a browser says (Origin).
    answer = {"id_token": token, "state": request["state"], "lti_storage_secret": secret}
    relayed = browser.post(request["redirect_uri"], data=answer, headers={"Origin": tool.url})
    assert_accepted(Launched(relayed, browser))
    # Once used, a relay page is not offered again: the answer is a clear refusal.
    assert_refused(post_launch(browser, request, token), 400, "already used")


@pytest.mark.parametrize(
    ("registered", "origin"),
    [
        ("HTTPS://Canvas.School.EDU/api/lti/authorize_redirect", "https://canvas.school.edu"),
        ("https://sso.school.edu:443/auth", "https://sso.school.edu"),
        ("http://LMS.School.edu:80/auth", "http://lms.school.edu"),
        ("https://sso.school.edu:8443/auth", "https://sso.school.edu:8443"),
        ("https://[2001:DB8::1]:443/auth", "https://[2001:db8::1]"),
        ("https://Bücher.example/auth", "https://xn--bcher-kva.example"),
    ],
)
def test_platform_storage_talks_to_the_platforms_origin_as_the_browser_writes_it(
    tool: ToolServer,
    fake: FakeLms,
    browser: httpx.Client,
    database_url: str,
    registered: str,
    origin: str,
) -> None:
    """The OIDC auth URL as an admin typed it (capitals, a default port): the browser writes
    the origin its platform answers from in lower case and without the port, and
    platform_storage.js compares that string with the one Pathways gives it. Copied as typed,
    every answer was ignored and no launch by platform storage ever worked."""
    db = Database(database_url)
    with db.begin() as session:
        session.execute(
            update(Platform).where(Platform.issuer == fake.issuer).values(auth_login_url=registered)
        )
    db.dispose()
    clear_all()  # the platform row this process remembers
    _, data = storage_login(tool, fake, browser)
    assert data["origin"] == origin  # where the secret is put
    request = dict(parse_qsl(urlsplit(html.unescape(data["auth-url"])).query))
    token = token_for(tool, fake, request)
    without_cookie = httpx.Client(timeout=60)
    with without_cookie:
        relay = post_launch(without_cookie, request, token)
    assert relay.response.status_code == 200, relay.text[:2000]
    assert f'data-origin="{origin}"' in relay.text  # where it is read back
    _, data = storage_login(tool, fake, browser)
    request = dict(parse_qsl(urlsplit(html.unescape(data["auth-url"])).query))
    launched = post_launch(browser, request, token_for(tool, fake, request))
    assert_accepted(launched)  # the cookie carried it: the stored copy is taken away again
    assert f'data-mode="clear" data-key="lti_state_{request["state"]}"' in launched.text
    assert f'data-origin="{origin}"' in launched.text


def test_login_target_on_our_site_but_another_path_than_the_token_names_is_refused(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    response = login(tool, fake, browser, target_link_uri=tool.url + "/lti/launch?resource=7")
    request = auth_request(response)
    token = fake.sign(fake.claims(request["nonce"], tool.url + "/lti/launch"))
    assert_refused(post_launch(browser, request, token), 400, "target_link_uri")


def test_login_parameters_cannot_choose_the_redirect_uri_or_the_auth_url(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    response = login(
        tool,
        fake,
        browser,
        redirect_uri="https://evil.example/steal",
        login_hint="x&redirect_uri=https://evil.example/steal#",
        auth_login_url="https://evil.example/auth",
        response_mode="query",
        prompt="login",
        scope="openid profile",
    )
    location = response.headers["location"]
    assert location.startswith(fake.auth_url + "?")
    pairs = parse_qsl(urlsplit(location).query)
    names = [name for name, _ in pairs]
    assert names.count("redirect_uri") == 1
    request = dict(pairs)
    assert request["redirect_uri"] == tool.url + "/lti/launch"
    assert request["login_hint"] == "x&redirect_uri=https://evil.example/steal#"
    assert (request["scope"], request["response_mode"], request["prompt"]) == (
        "openid",
        "form_post",
        "none",
    )
    assert "evil.example" not in urlsplit(location).netloc


def test_a_launch_whose_redirect_uri_was_changed_at_the_platform_goes_nowhere_else(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    """Pathways only ever answers at its own launch URL; a form posted elsewhere on Pathways
    with a valid id_token does not launch."""
    request = auth_request(login(tool, fake, browser))
    token = token_for(tool, fake, request)
    for path in ("/lti/login", "/"):
        response = browser.post(
            tool.url + path, data={"id_token": token, "state": request["state"]}
        )
        assert response.status_code < 500, response.text[:2000]
        assert "Keyset Course" not in response.text
        assert "location" not in response.headers or "evil" not in response.headers["location"]
    # The login itself is still good at the right address.
    assert_accepted(post_launch(browser, request, token))


def test_login_for_a_disabled_registration_is_refused(
    tool: ToolServer, make_fake: Callable[..., FakeLms], browser: httpx.Client
) -> None:
    lms = make_fake(active=False)
    launched = Launched(login(tool, lms, browser), browser)
    assert_refused(launched, 403, "disabled")
    assert not any(name.startswith("lti1p3_state_") for name in browser.cookies)


def test_a_registration_disabled_between_login_and_launch_is_refused(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, database_url: str
) -> None:
    assert_accepted(launch(tool, fake, browser))  # its registration is cached as active
    request = auth_request(login(tool, fake, browser))
    db = Database(database_url)
    with db.begin() as session:
        session.execute(
            update(Platform).where(Platform.issuer == fake.issuer).values(is_active=False)
        )
    db.dispose()
    assert_refused(post_launch(browser, request, token_for(tool, fake, request)), 403, "disabled")


def test_the_cli_disables_and_enables_a_registration_and_a_deployment(
    tool: ToolServer,
    fake: FakeLms,
    browser: httpx.Client,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LTI_APP_SECRET_KEY", tool.settings.secret_key)
    monkeypatch.setenv("LTI_APP_DATABASE_URL", database_url)
    monkeypatch.setenv("LTI_APP_ENV", "test")
    which = ["--issuer", fake.issuer, "--client-id", fake.client_id]

    def platform(*args: str) -> None:
        result = CliRunner().invoke(main, ["platform", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    assert_accepted(launch(tool, fake, browser))  # its registration is cached as active
    platform("disable", *which)
    # What the operator runs to undo it, for the LMS administrator to pass on.
    enable = f"lti-app platform enable --issuer {fake.issuer} --client-id {fake.client_id}"
    refused = Launched(login(tool, fake, browser), browser)  # at its login already
    assert_refused(refused, 403, "disabled", html.escape(enable))
    platform("enable", *which)
    assert_accepted(launch(tool, fake, browser))

    platform("disable-deployment", *which, "--deployment-id", fake.deployment_id)
    enable_deployment = f"lti-app platform enable-deployment {' '.join(which)}"
    assert_refused(launch(tool, fake, browser), 403, "is disabled", html.escape(enable_deployment))
    platform("enable-deployment", *which, "--deployment-id", fake.deployment_id)
    assert_accepted(launch(tool, fake, browser))


def test_login_with_the_client_id_of_another_issuers_registration_is_refused(
    tool: ToolServer, make_fake: Callable[..., FakeLms], browser: httpx.Client
) -> None:
    mine, theirs = make_fake(), make_fake()
    launched = Launched(login(tool, mine, browser, client_id=theirs.client_id), browser)
    assert_refused(launched, 400, "not registered")


def test_an_id_token_from_another_platform_for_this_login_is_refused(
    tool: ToolServer, make_fake: Callable[..., FakeLms], browser: httpx.Client
) -> None:
    mine, theirs = make_fake(), make_fake()
    request = auth_request(login(tool, mine, browser))
    token = theirs.sign(theirs.claims(request["nonce"], tool.url + "/lti/launch"))
    assert_refused(post_launch(browser, request, token), 400, "different LMS")


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("field", ["login_hint", "lti_message_hint"])
def test_a_10_kb_hint_is_passed_through_or_refused_clearly(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, method: str, field: str
) -> None:
    hint = '{"cmid": 5, "launchid": "' + "h" * 10_000 + '"} &=?#%'
    response = login(tool, fake, browser, method, **{field: hint})
    assert response.status_code in {302, 400}, response.text[:2000]
    assert "Traceback" not in response.text
    if response.status_code == 302:
        assert dict(parse_qsl(urlsplit(response.headers["location"]).query))[field] == hint
    else:
        assert_refused(Launched(response, browser), 400, field)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_whole_launch_works_with_a_login_by_get_or_post(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client, method: str
) -> None:
    request = auth_request(login(tool, fake, browser, method))
    assert_accepted(post_launch(browser, request, token_for(tool, fake, request)))


def test_login_post_with_parameters_in_the_query_string(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    response = browser.post(tool.url + "/lti/login", params=login_params(tool, fake))
    request = auth_request(response)
    assert_accepted(post_launch(browser, request, token_for(tool, fake, request)))


def test_head_on_the_login_url_is_not_a_500(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    good = browser.head(tool.url + "/lti/login", params=login_params(tool, fake))
    assert good.status_code in {200, 302, 405}
    bad = browser.head(tool.url + "/lti/login")
    assert bad.status_code in {400, 405}
    assert bad.content == b""


def test_the_platform_refusing_the_login_is_shown_in_plain_escaped_words(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    request = auth_request(login(tool, fake, browser))
    response = browser.post(
        request["redirect_uri"],
        data={
            "error": "login_required",
            "error_description": "<script>alert(1)</script> please log in",
            "state": request["state"],
        },
    )
    assert_refused(Launched(response, browser), 400, "login_required")
    assert "<script>alert(1)" not in response.text


# === 4. the login redirect's hygiene ============================================================


def test_the_login_redirect_is_not_cached_and_carries_only_the_oidc_request(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    response = login(tool, fake, browser)
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "no-store"
    request = auth_request(response)
    assert set(request) == {
        "scope",
        "response_type",
        "response_mode",
        "prompt",
        "client_id",
        "redirect_uri",
        "login_hint",
        "lti_message_hint",
        "state",
        "nonce",
    }
    assert request["response_type"] == "id_token"
    assert request["client_id"] == fake.client_id
    assert request["login_hint"] == "keyset-learner"
    assert request["lti_message_hint"] == "hint-1"
    assert len(request["nonce"]) >= 32
    assert request["nonce"] not in request["state"]
    cookie = browser.cookies.get(state_cookie_name(request["state"]))
    assert cookie
    assert cookie not in response.headers["location"]
    assert tool.settings.secret_key not in response.headers["location"]
    # The state is short enough for any platform to carry.
    assert len(request["state"]) < 1024


def test_the_state_cookie_attributes_on_plain_http(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    response = login(tool, fake, browser)
    cookie = response.headers["Set-Cookie"]
    parts = [p.strip().lower() for p in cookie.split(";")]
    assert "httponly" in parts
    assert "path=/lti/" in parts
    assert f"max-age={tool.settings.login_state_ttl}" in parts
    assert "samesite=lax" in parts
    assert response.headers.get_list("Set-Cookie") == [cookie]  # only the state cookie


def test_a_refused_login_sets_no_cookie(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    response = login(tool, fake, browser, login_hint=None)
    assert_refused(Launched(response, browser), 400, "login_hint")
    assert "set-cookie" not in response.headers


def test_a_launch_clears_its_state_cookie(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    request = auth_request(login(tool, fake, browser))
    name = state_cookie_name(request["state"])
    launched = post_launch(browser, request, token_for(tool, fake, request))
    assert_accepted(launched)
    cleared = [c for c in launched.response.headers.get_list("Set-Cookie") if c.startswith(name)]
    assert cleared
    assert "path=/lti/" in cleared[0].lower()
    assert name not in browser.cookies


def test_a_refused_launch_clears_its_state_cookie_too(
    tool: ToolServer, fake: FakeLms, browser: httpx.Client
) -> None:
    """Each retry of a launch the LMS sends wrong would otherwise leave one more cookie."""
    request = auth_request(login(tool, fake, browser))
    name = state_cookie_name(request["state"])
    expired = token_for(tool, fake, request, exp=int(time.time()) - 600)
    launched = post_launch(browser, request, expired)
    assert_refused(launched, 400, "expired")
    cleared = [c for c in launched.response.headers.get_list("Set-Cookie") if c.startswith(name)]
    assert cleared
    assert "path=/lti/" in cleared[0].lower()
    assert name not in browser.cookies


@pytest.fixture
def secure_app(database_url: str, tool_settings: Settings) -> Iterator[Any]:
    settings = dataclasses.replace(tool_settings, secure_cookies=True)
    app = create_app(settings)
    yield app
    app.extensions["lti_app.http"].close()
    app.extensions["lti_app.db"].dispose()


@pytest.mark.parametrize("storage", [False, True], ids=["redirect", "platform-storage"])
def test_the_state_cookie_is_made_for_a_cross_site_frame_with_secure_settings(
    tool: ToolServer, fake: FakeLms, secure_app: Any, storage: bool
) -> None:
    extra = {"lti_storage_target": "_parent"} if storage else {}
    extra["target_link_uri"] = "https://pathways.example/lti/launch"
    with secure_app.test_client() as client:
        response = client.get(
            "/lti/login",
            query_string=login_params(tool, fake, **extra),
            base_url="https://pathways.example",
        )
    assert response.status_code == (200 if storage else 302)
    assert response.headers["Cache-Control"] == "no-store"
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("lti1p3_state_")]
    assert len(cookies) == 1
    parts = [p.strip().lower() for p in cookies[0].split(";")]
    for attribute in ("secure", "httponly", "samesite=none", "partitioned", "path=/lti/"):
        assert attribute in parts, cookies[0]


def _set_cookie_parts(response: Any, prefix: str) -> list[str]:
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(prefix)]
    return [p.strip().lower() for p in cookie.split(";")]


@pytest.mark.parametrize(
    ("destination", "partitioned"),
    [("iframe", True), ("document", False), (None, True)],
    ids=["lms-frame", "own-window", "no-fetch-metadata"],
)
def test_cookies_are_partitioned_in_the_lms_frame_and_first_party_in_a_window(
    tool: ToolServer,
    fake: FakeLms,
    tool_settings: Settings,
    destination: str | None,
    partitioned: bool,
) -> None:
    """A window of its own is first-party: there the login's cookie is a plain SameSite=None
    one, which every browser sends back after the LMS's cross-site hops (Safari 26.2 was seen
    to lose partitioned ones there); its deletion matches it."""
    headers = {"Sec-Fetch-Dest": destination} if destination else {}
    base = "https://pathways.example"
    extra = {"target_link_uri": base + "/lti/launch"}
    app = create_app(dataclasses.replace(tool_settings, secure_cookies=True, admin_secret="s" * 32))
    with app.test_client() as client:
        started = client.get(
            "/lti/login",
            query_string=login_params(tool, fake, **extra),
            base_url=base,
            headers=headers | {"Cookie": "lti_cookies_work=1"},
        )
        assert started.status_code == 302, started.text
        state_parts = _set_cookie_parts(started, "lti1p3_state_")
        state = dict(parse_qsl(urlsplit(started.headers["Location"]).query))["state"]
        refused = client.post(
            "/lti/launch",
            data={"id_token": "not.a.token", "state": state},
            base_url=base,
            headers=headers | {"Origin": base},
        )
        assert refused.status_code == 400, refused.text
        deleted_parts = _set_cookie_parts(refused, state_cookie_name(state))
        admin_page = client.get("/admin/login", base_url=base, headers=headers)
        session_parts = _set_cookie_parts(admin_page, "pathways_session=")
    app.extensions["lti_app.http"].close()
    app.extensions["lti_app.db"].dispose()
    for parts in (state_parts, deleted_parts):
        assert {"secure", "samesite=none"} <= set(parts), parts
        assert ("partitioned" in parts) is partitioned, parts
    assert "max-age=0" in deleted_parts
    # The operator console's cookie is first-party only (its pages refuse every frame) and goes
    # through no sign-in across sites: it stays partitioned, so no other site's frame or
    # request to Pathways carries it.
    assert {"secure", "samesite=none", "partitioned"} <= set(session_parts), session_parts


@pytest.mark.parametrize(
    ("base", "headers", "plain_http"),
    [
        ("http://pathways.school.test", {}, True),
        ("http://10.0.0.5:8000", {}, True),
        ("http://localhost:8000", {}, False),
        ("http://127.0.0.1:8000", {}, False),
        ("http://[::1]:8000", {}, False),
        # Fetch Metadata goes only to addresses the browser counts as secure: HTTPS at a proxy
        # that does not say so, where the usual refusal is the right one.
        ("http://pathways.school.test", {"Sec-Fetch-Site": "cross-site"}, False),
    ],
    ids=["plain-http", "plain-http-ip", "localhost", "loopback", "loopback-v6", "https-proxy"],
)
def test_a_launch_without_its_cookie_over_plain_http_says_https_is_needed(
    tool: ToolServer,
    fake: FakeLms,
    tool_settings: Settings,
    base: str,
    headers: dict[str, str],
    plain_http: bool,
) -> None:
    """Browsers drop a Secure cookie set over plain HTTP at another computer's address, so such
    a launch never arrives with its cookie: the page says what the admin must change instead of
    blaming another browser window."""
    app = create_app(dataclasses.replace(tool_settings, secure_cookies=True))
    try:
        with app.test_client() as client:
            started = client.get(
                "/lti/login",
                query_string=login_params(tool, fake, target_link_uri=base + "/lti/launch"),
                base_url=base,
            )
            assert started.status_code == 302, started.text
            state = dict(parse_qsl(urlsplit(started.headers["Location"]).query))["state"]
        with app.test_client() as cookieless:
            refused = cookieless.post(
                "/lti/launch",
                data={"id_token": "not.a.token", "state": state},
                base_url=base,
                headers=headers,
            )
    finally:
        app.extensions["lti_app.http"].close()
        app.extensions["lti_app.db"].dispose()
    assert refused.status_code == 400
    text = html.unescape(refused.text)
    assert (f"served over plain HTTP ({base})" in text) is plain_http, text
    assert ("serve Pathways over HTTPS" in text) is plain_http
