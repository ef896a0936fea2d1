"""What an LMS admin's platform, or a buggy or hostile one, can send during Dynamic Registration.

Written from LTI Dynamic Registration 1.0 (https://www.imsglobal.org/spec/lti-dr/v1p0) and from
what Canvas and Moodle really send: Canvas puts the registration token in the
openid_configuration URL as well as handing it over, answers errors as `{"errors": [...]}` with
422, and may keep its endpoints on other hosts than its issuer; Moodle's issuer is its site URL.
Every platform here is a real HTTP server on loopback (tests/registration/lms.py); Pathways runs
as a real server too, so what is asserted is what the admin's browser gets.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from flask import Flask, Response, request
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lti_app import create_app
from lti_app.registration.errors import PlatformRefusedError, RegistrationError
from lti_app.registration.models import PlatformRegistration
from lti_app.registration.platform_configuration import (
    check_public_hosts,
    parse_platform_configuration,
)
from lti_app.settings import Settings
from lti_app.tool.models import Deployment
from tests.registration.conftest import hidden_fields, serve_fresh_lms
from tests.registration.lms import PLATFORM_CONFIG, TOOL_CONFIG, PlatformDouble, serve
from tests.registration.test_dynamic_registration import (  # noqa: F401 (a fixture)
    confirm,
    log_records,
    open_registration,
    platforms_for,
)

CLOSE = {"subject": "org.imsglobal.lti.close"}
UNEXPECTED = "unexpected problem"


@dataclass
class Seen:
    """One request the platform received."""

    method: str
    path: str
    query: str
    body: bytes
    headers: dict[str, str]


@dataclass
class CraftedLms(PlatformDouble):
    """The test LMS, recording every request, whose two registration answers can be replaced."""

    seen: list[Seen] = field(default_factory=list)
    on_config: Callable[[], Response] | None = None
    on_register: Callable[[], Response] | None = None
    config_query: str = ""
    """Appended to the configuration URL (Canvas carries the token there too)."""

    @property
    def config_url(self) -> str:
        return self.base_url + self.config_path + self.config_query

    def app(self) -> Flask:
        app = super().app()

        @app.before_request
        def record_and_override() -> Response | None:
            body = request.get_data()
            self.seen.append(
                Seen(
                    request.method,
                    request.path,
                    request.query_string.decode(),
                    body,
                    dict(request.headers),
                )
            )
            if request.path == self.config_path and self.on_config is not None:
                return self.on_config()
            if request.path == self.paths["registration_endpoint"] and self.on_register:
                return self.on_register()
            return None

        return app


MakeCrafted = Callable[..., CraftedLms]


@pytest.fixture
def crafted(engine: Engine) -> Iterator[MakeCrafted]:
    with ExitStack() as stack:

        def factory(flavour: str = "moodle", **changes: Any) -> CraftedLms:
            lms = CraftedLms(flavour, **changes)
            lms.base_url = serve_fresh_lms(stack, engine, lms.app())
            return lms

        yield factory


@pytest.fixture
def make_tool(tool_settings: Settings, engine: Engine) -> Iterator[Callable[..., str]]:
    """Another running Pathways with some settings changed (production, short timeouts)."""
    with ExitStack() as stack:

        def factory(**changes: Any) -> str:
            app = create_app(dataclasses.replace(tool_settings, **changes))
            stack.callback(app.extensions["lti_app.db"].dispose)
            stack.callback(app.extensions["lti_app.http"].close)
            stack.callback(app.extensions["lti_app.registration_http"].close)
            url: str = stack.enter_context(serve(app))
            return url

        yield factory


def raw(body: bytes | str, status: int = 200, content_type: str = "application/json") -> Any:
    return lambda: Response(body, status=status, content_type=content_type)


def page_text(response: httpx.Response) -> str:
    """The page as a person reads it: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", response.text))


def assert_plain_refusal(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, page_text(response)[-600:]
    assert "Pathways could not be registered" in response.text
    assert UNEXPECTED not in response.text
    assert "Traceback" not in response.text
    for word in words:
        assert word in page_text(response), page_text(response)


def registration_posts(lms: CraftedLms) -> list[Seen]:
    return [s for s in lms.seen if s.path == lms.paths["registration_endpoint"]]


# --- The configuration document ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"[]", "not a JSON object"),
        (b'"https://lms.example"', "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"42", "not a JSON object"),
        (b"<!DOCTYPE html><html><body>Please log in</body></html>", "is not JSON"),
        (b"\xff\xfe{", "is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "JSON"),
    ],
    ids=["list", "string", "null", "number", "html", "not-utf8", "deep-list", "deep-object"],
)
def test_configuration_that_is_no_json_object_is_refused_in_plain_words(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted, body: bytes, words: str
) -> None:
    lms = crafted(on_config=raw(body))
    response = open_registration(browser, tool_url, lms)
    assert_plain_refusal(response, 502, words)
    assert registration_posts(lms) == []


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"issuer": 42}, "lacks a valid issuer"),
        ({"jwks_uri": ["https://lms.example/jwks"]}, "lacks a valid jwks_uri"),
        # Addresses no request can use (httpx refuses them), as `lti-app platform add` does.
        ({"jwks_uri": "https://1.2.3.999/jwks"}, "lacks a valid jwks_uri"),
        ({"token_endpoint": "https://lms\u200b.example/token"}, "lacks a valid token_endpoint"),
        ({"token_endpoint": {"url": "x"}}, "lacks a valid token_endpoint"),
        ({"authorization_endpoint": "/mod/lti/auth.php"}, "lacks a valid authorization_endpoint"),
        ({"registration_endpoint": "javascript:alert(1)"}, "lacks a valid registration_endpoint"),
        ({PLATFORM_CONFIG: ["moodle"]}, "LTI support"),
        ({PLATFORM_CONFIG: {"messages_supported": 5}}, "LtiResourceLinkRequest"),
        ({PLATFORM_CONFIG: {"messages_supported": True}}, "LtiResourceLinkRequest"),
        ({PLATFORM_CONFIG: {"messages_supported": "LtiResourceLinkRequest"}}, "LtiResourceLink"),
        ({PLATFORM_CONFIG: {"messages_supported": {"type": "LtiResourceLinkRequest"}}}, "LtiRes"),
        ({PLATFORM_CONFIG: {"messages_supported": [{"type": ["LtiResourceLinkRequest"]}]}}, "Lti"),
        ({"token_endpoint_auth_methods_supported": ["client_secret_basic"]}, "private_key_jwt"),
        ({"response_types_supported": ["code"]}, "does not support id_token"),
    ],
)
def test_missing_or_wrongly_typed_fields_are_refused_in_plain_words(
    browser: httpx.Client,
    tool_url: str,
    crafted: MakeCrafted,
    overrides: dict[str, Any],
    words: str,
) -> None:
    lms = crafted(config_overrides=overrides)
    response = open_registration(browser, tool_url, lms)
    assert_plain_refusal(response, 502, words)
    assert registration_posts(lms) == []


@pytest.mark.parametrize("name", ["jwks_uri", "token_endpoint", "authorization_endpoint"])
@pytest.mark.parametrize("bad", ["\x00", "\n", " "])
def test_endpoint_with_control_characters_is_refused_before_registering(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted, name: str, bad: str
) -> None:
    # Stored as is, it would break every launch (and PostgreSQL refuses NUL outright), after
    # the LMS already created the tool.
    lms = crafted()
    lms.config_overrides = {name: lms.base_url + "/mod/lti/x" + bad + "y"}
    response = open_registration(browser, tool_url, lms)
    assert_plain_refusal(response, 502, f"lacks a valid {name}")
    assert registration_posts(lms) == []


def test_platform_messages_and_scopes_of_odd_shapes_still_register(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted
) -> None:
    lms = crafted(
        "canvas",
        config_overrides={
            "scopes_supported": "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "claims_supported": None,
            PLATFORM_CONFIG: {
                "product_family_code": 7,
                "version": ["4", "4"],
                "messages_supported": [
                    "LtiDeepLinkingRequest",
                    None,
                    {"type": "LtiResourceLinkRequest", "placements": "course_navigation"},
                    {"type": "LtiDeepLinkingRequest", "placements": [1, "link_selection"]},
                ],
                "variables": {"Canvas.user.id": True},
            },
        },
    )
    page = open_registration(browser, tool_url, lms)
    assert page.status_code == 200, page.text
    done = confirm(browser, tool_url, page.text)
    assert done.status_code == 200, done.text
    [tool] = lms.tools.values()
    messages = {m["type"]: m.get("placements") for m in tool.body[TOOL_CONFIG]["messages"]}
    assert messages["LtiDeepLinkingRequest"] == ["link_selection"]
    assert "custom_parameters" not in tool.body[TOOL_CONFIG]


def test_html_error_page_and_redirect_for_the_configuration_are_explained_not_followed(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted
) -> None:
    elsewhere = crafted()
    lms = crafted(
        on_config=lambda: Response(
            "<html>moved</html>",
            status=302,
            headers={"Location": elsewhere.config_url},
            content_type="text/html",
        )
    )
    response = open_registration(browser, tool_url, lms)
    assert_plain_refusal(response, 502, "answered 302")
    assert "moved" not in page_text(response)
    assert elsewhere.seen == []  # the token was not carried to the redirect's target

    lms.on_config = raw("<html><h1>500 Internal Server Error</h1></html>", 500, "text/html")
    response = open_registration(browser, tool_url, lms)
    assert_plain_refusal(response, 502, "answered 500")
    assert "Internal Server Error" not in page_text(response)


def test_configuration_over_one_megabyte_is_refused(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted
) -> None:
    lms = crafted()
    lms.config_overrides = {"claims_supported": ["x" * 1000] * 1100}
    response = open_registration(browser, tool_url, lms)
    assert_plain_refusal(response, 502, "too large")


def test_large_but_acceptable_configuration_can_be_confirmed(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted, engine: Engine
) -> None:
    # 600 KB of variables and claims is under the 1 MB bound; the confirm form that carries
    # the pending registration must still be small enough for the server to accept it.
    lms = crafted("canvas")
    lms.config_overrides = {"claims_supported": ["claim-" + "x" * 994] * 600}
    page = open_registration(browser, tool_url, lms)
    assert page.status_code == 200, page.text
    done = confirm(browser, tool_url, page.text)
    assert done.status_code == 200, done.text[:500]
    assert len(platforms_for(engine, lms.base_url)) == 1


@dataclass
class _Drip:
    """An answer that drips a byte every 0.2 s and has no end of its own: it stops only when
    the client hangs up (recorded in `hung_up`) or the test is over. Each byte comes well
    within the read timeout, so a Pathways that waited for the end would never answer."""

    first: bytes
    hung_up: threading.Event = field(default_factory=threading.Event)
    over: threading.Event = field(default_factory=threading.Event)

    def body(self) -> Iterator[bytes]:
        yield self.first
        try:
            while not self.over.wait(0.2):
                yield b" "
        except GeneratorExit:  # the server closes the answer when the client has hung up
            self.hung_up.set()
            raise


def _answered_while_dripping(ask: Callable[[], httpx.Response], drip: _Drip) -> httpx.Response:
    """The admin's answer, which must come while the LMS still drips, and Pathways must have
    hung up on the LMS; then the drip is let go."""
    try:
        response = ask()
        # The drip notices a hang-up at its next byte; 10 s only keeps a failure from hanging.
        assert drip.hung_up.wait(10), "Pathways answered but kept reading from the LMS"
    except httpx.ReadTimeout:
        pytest.fail("the browser gave up first: Pathways waited for a drip that never ends")
    finally:
        drip.over.set()
    return response


def test_slowly_dripping_configuration_is_cut_off(
    browser: httpx.Client, make_tool: Callable[..., str], crafted: MakeCrafted
) -> None:
    # Each byte arrives well within the read timeout, so only a bound on the whole answer
    # keeps an admin (and a server thread) from waiting for as long as the LMS likes.
    drip = _Drip(b'{"issuer": "')
    lms = crafted(on_config=lambda: Response(drip.body(), content_type="text/json"))
    tool = make_tool(http_read_timeout=1.0, http_connect_timeout=1.0)
    response = _answered_while_dripping(lambda: open_registration(browser, tool, lms), drip)
    assert_plain_refusal(response, 502, "too long")


def test_slowly_dripping_registration_error_is_cut_off(
    browser: httpx.Client, make_tool: Callable[..., str], crafted: MakeCrafted, engine: Engine
) -> None:
    drip = _Drip(b'{"error": "server_error", "x": "')
    lms = crafted(
        on_register=lambda: Response(drip.body(), status=500, content_type="application/json")
    )
    tool = make_tool(http_read_timeout=1.0, http_connect_timeout=1.0)
    page = open_registration(browser, tool, lms)
    response = _answered_while_dripping(lambda: confirm(browser, tool, page.text), drip)
    assert_plain_refusal(response, 502, "had a problem while registering Pathways (500)")
    assert platforms_for(engine, lms.base_url) == []


@contextmanager
def _lms_dripping_its_headers(hung_up: threading.Event) -> Iterator[str]:
    """A host that answers 'HTTP/1.1 200 OK' and then one header byte every 0.2 s, with no end
    of its own: it stops when the client hangs up (then sets `hung_up`) or the test is over."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                conn.settimeout(0.2)
                while not stop.is_set():
                    try:
                        if not conn.recv(65536):
                            break  # the client closed its end
                    except TimeoutError:  # nothing from the client for 0.2 s: one more byte
                        conn.sendall(b"a")
            except OSError:
                pass
            if not stop.is_set():
                hung_up.set()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/openid-configuration"
    finally:
        stop.set()
        listener.close()


def test_lms_dripping_its_headers_is_cut_off(
    browser: httpx.Client, make_tool: Callable[..., str]
) -> None:
    # The public registration page must not let any host hold a server thread for as long as
    # it likes: eight such visitors would otherwise stop Pathways for everyone.
    tool = make_tool(http_read_timeout=1.0, http_connect_timeout=1.0)
    hung_up = threading.Event()
    with _lms_dripping_its_headers(hung_up) as config_url:
        query = urlencode({"openid_configuration": config_url, "registration_token": "t"})
        try:
            response = browser.get(tool + "/lti/register?" + query, timeout=30)
        except httpx.ReadTimeout:
            pytest.fail("the browser gave up first: Pathways waited for headers that never end")
        # The host notices the hang-up within a byte; 10 s only keeps a failure from hanging.
        assert hung_up.wait(10), "Pathways answered but kept the host's connection open"
    assert_plain_refusal(response, 502, "could not reach the LMS")


# --- The configuration URL and the token in it ---------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1/openid-configuration",
        "http://127.0.0.1:notaport/openid-configuration",
        "http://127.0.0.1:1/openid\x00configuration",
        "http://127.0.0.1:1/openid\r\nHost: evil.example",
        "http://127.0.0.1:1/openid configuration",
        "https://",
    ],
    ids=["bad-ipv6", "bad-port", "nul", "crlf", "space", "no-host"],
)
def test_malformed_configuration_address_is_refused_in_plain_words(
    browser: httpx.Client, tool_url: str, url: str
) -> None:
    response = browser.get(tool_url + "/lti/register?" + urlencode({"openid_configuration": url}))
    assert_plain_refusal(response, 400, "not a secure web address")


@pytest.mark.parametrize(
    "token", ["é-token", "abc\r\nX-Injected: 1", "a b", "x" * 20_000], ids=str.__len__
)
def test_unusable_registration_token_is_refused_before_the_lms_sees_it(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted, token: str
) -> None:
    lms = crafted()
    query = urlencode({"openid_configuration": lms.config_url, "registration_token": token})
    response = browser.get(tool_url + "/lti/register?" + query)
    assert_plain_refusal(response, 400, "registration token")
    assert lms.seen == []


def test_plain_http_lms_is_refused_in_production_without_sending_the_token(
    browser: httpx.Client, make_tool: Callable[..., str], crafted: MakeCrafted
) -> None:
    lms = crafted()
    tool = make_tool(env="production", public_url="https://pathways.example")
    response = open_registration(browser, tool, lms)
    assert_plain_refusal(response, 400, "not a secure web address")
    assert lms.seen == []


def test_an_lms_on_a_private_network_is_refused_unless_the_operator_allows_it(
    browser: httpx.Client, make_tool: Callable[..., str], crafted: MakeCrafted
) -> None:
    # /lti/register is public: it must not let anyone have Pathways fetch from its own network.
    lms = crafted()
    guarded = make_tool(registration_private_hosts=False)
    response = open_registration(browser, guarded, lms)
    assert_plain_refusal(response, 400, "on a private network", "REGISTRATION_PRIVATE_HOSTS")
    assert lms.seen == []
    allowed = make_tool(registration_private_hosts=True)
    assert open_registration(browser, allowed, lms).status_code == 200


def test_a_name_that_turns_private_after_the_check_is_still_not_reached(
    browser: httpx.Client,
    make_tool: Callable[..., str],
    crafted: MakeCrafted,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name answers with a public address for the check and a private one
    for the fetch. The check is made to pass here; the connection itself must still refuse."""
    import lti_app.registration.views as registration_views

    monkeypatch.setattr(registration_views, "check_public_hosts", lambda *urls: None)
    lms = crafted()
    guarded = make_tool(registration_private_hosts=False)
    response = open_registration(browser, guarded, lms)
    assert_plain_refusal(response, 502, "could not reach the LMS")
    assert lms.seen == []


def test_the_public_only_client_connects_to_the_address_it_checked(
    crafted: MakeCrafted, tool_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guarded client still reaches an LMS whose every address passes the check (here the
    test LMS's loopback address is let through in place of a public one)."""
    import lti_app.http as http_module

    lms = crafted()
    checked: list[str] = []
    allowed = {"127.0.0.1"}

    def public(address: str) -> bool:
        checked.append(address)
        return address in allowed

    monkeypatch.setattr(http_module, "is_public_address", public)
    with http_module.make_guarded_http_client(
        tool_settings, policy=http_module.AddressPolicy(private_allowed=False)
    ) as client:
        assert client.get(lms.config_url).status_code == 200
        assert checked == ["127.0.0.1"]
        allowed.clear()
        with pytest.raises(httpx.ConnectError) as refused:
            client.get(lms.config_url + "?again")
        assert isinstance(refused.value.__cause__, http_module.PrivateAddressError)
    assert [s.path for s in lms.seen] == [lms.config_path]


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/config",
        "https://192.168.1.20/config",
        "https://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "https://[::1]/config",
        "https://[::ffff:10.0.0.5]/config",
        "https://localhost/config",
    ],
)
def test_private_addresses_are_named_as_such(url: str) -> None:
    with pytest.raises(RegistrationError, match="private network"):
        check_public_hosts(url)


def test_public_addresses_and_unresolvable_names_pass_the_private_network_check() -> None:
    check_public_hosts("https://93.184.215.14/config", "https://[2606:4700::1]/x")
    check_public_hosts("https://no-such-host.invalid/config")  # the fetch says: cannot reach


def test_production_refuses_private_networks_by_default() -> None:
    from lti_app.settings import load_settings

    production = load_settings(
        secret_key="x" * 40, env="production", database_url="sqlite:////srv/pathways.sqlite3"
    )
    assert production.registration_private_hosts is False
    assert load_settings(secret_key="x" * 40, env="test").registration_private_hosts is True


def test_plain_http_endpoints_are_refused_in_production() -> None:
    body = {
        "issuer": "https://lms.example",
        "authorization_endpoint": "https://lms.example/auth",
        "token_endpoint": "http://lms.example/token",
        "jwks_uri": "http://127.0.0.1/jwks",
        "registration_endpoint": "https://lms.example/register",
        PLATFORM_CONFIG: {"messages_supported": [{"type": "LtiResourceLinkRequest"}]},
    }
    with pytest.raises(PlatformRefusedError, match="token_endpoint, jwks_uri"):
        parse_platform_configuration("https://lms.example/openid", body, allow_loopback_http=False)


@pytest.mark.parametrize(
    ("issuer", "words"),
    [
        ("https://127.0.0.1", "comes from another address"),  # https: not the http LMS's origin
        ("http://127.0.0.1", "comes from another address"),  # no port: another origin
        ("http://127.0.0.1:1@evil.example", "lacks a valid issuer"),  # http on another host
        ("http://127.0.0.1:1#", "comes from another address"),
    ],
)
def test_issuer_of_another_origin_is_refused(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted, issuer: str, words: str
) -> None:
    lms = crafted()
    lms.config_overrides = {"issuer": issuer}
    response = open_registration(browser, tool_url, lms)
    assert_plain_refusal(response, 502, words)
    assert registration_posts(lms) == []


def test_registration_endpoint_on_another_host_receives_the_token_as_bearer_only(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted, engine: Engine
) -> None:
    # Canvas keeps its OIDC endpoints on sso.canvaslms.com and its token URL on the school's
    # domain: endpoints elsewhere than the issuer are normal. The configuration came from the
    # issuer's own address, so its registration_endpoint is where the token belongs.
    registrar = crafted("canvas")
    lms = crafted("canvas", token=registrar.token)
    lms.config_overrides = {"registration_endpoint": registrar.base_url + "/api/lti/registrations"}
    lms.config_query = "?" + urlencode({"registration_token": lms.token})
    page = open_registration(browser, tool_url, lms)
    assert page.status_code == 200, page.text
    done = confirm(browser, tool_url, page.text)
    assert done.status_code == 200, done.text
    [post] = registration_posts(registrar)
    assert post.headers["Authorization"] == f"Bearer {lms.token}"
    assert lms.token not in post.query
    assert lms.token.encode() not in post.body
    assert registration_posts(lms) == []
    for response in (page, done):
        assert lms.token not in response.text
        assert quote(lms.token) not in response.text


def test_registration_token_is_not_kept_in_the_database(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted, engine: Engine
) -> None:
    # Canvas's openid_configuration URL carries ?registration_token=...: what Pathways records
    # of that address must not keep a credential that opens the LMS's registration API.
    lms = crafted("canvas")
    lms.config_query = "?" + urlencode({"registration_token": lms.token, "lang": "en"})
    page = open_registration(browser, tool_url, lms)
    assert confirm(browser, tool_url, page.text).status_code == 200
    [platform] = platforms_for(engine, lms.base_url)
    with Session(engine) as session:
        record = session.scalars(
            select(PlatformRegistration).where(PlatformRegistration.platform_id == platform.id)
        ).one()
    assert record.openid_configuration_url.startswith(lms.base_url + lms.config_path)
    assert lms.token not in record.openid_configuration_url
    assert "lang=en" in record.openid_configuration_url


# --- The registration answer ---------------------------------------------------------------


def test_lms_error_that_echoes_the_token_or_html_is_shown_safely(
    browser: httpx.Client,
    tool_url: str,
    crafted: MakeCrafted,
    engine: Engine,
    log_records: list[Any],  # noqa: F811
) -> None:
    lms = crafted()
    token = lms.token
    lms.on_register = lambda: Response(
        json.dumps(
            {
                "error": "invalid_token",
                "error_description": f"<img src=x onerror=alert(1)> token {token} rejected",
            }
        ),
        status=400,
        content_type="application/json",
    )
    page = open_registration(browser, tool_url, lms)
    response = confirm(browser, tool_url, page.text)
    assert_plain_refusal(response, 502, "did not accept what Pathways sent (400)", "rejected")
    assert token not in response.text
    assert "<img" not in response.text
    assert platforms_for(engine, lms.base_url) == []
    assert all(token not in record.getMessage() for record in log_records)


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        # Canvas (instructure/canvas-lms#2396): 422 with a list of messages, not OAuth's shape.
        (422, {"errors": ["Redirect uris is invalid"]}, 'said: "Redirect uris is invalid"'),
        (422, {"errors": [{"message": "Scopes are invalid"}]}, 'said: "Scopes are invalid"'),
        (400, {"error": "invalid_redirect_uri"}, 'said: "invalid_redirect_uri"'),
        # Moodle (mod/lti/openid-registration.php): a few plain words, served as text/html.
        (400, "Unsupported conf, missing scope", 'said: "Unsupported conf, missing scope"'),
        (500, "<html><body><h1>Whoops</h1><pre>Stack trace</pre></body></html>", "problem"),
        (302, "", "(302)"),
    ],
)
def test_lms_refusal_is_reported_in_its_own_words_without_markup(
    browser: httpx.Client,
    tool_url: str,
    crafted: MakeCrafted,
    engine: Engine,
    status: int,
    body: Any,
    words: str,
) -> None:
    lms = crafted()
    elsewhere = crafted()
    headers = {"Location": elsewhere.base_url + "/register"} if status == 302 else {}
    lms.on_register = lambda: Response(
        json.dumps(body) if isinstance(body, dict) else body,
        status=status,
        headers=headers,
        content_type="application/json" if isinstance(body, dict) else "text/html",
    )
    page = open_registration(browser, tool_url, lms)
    response = confirm(browser, tool_url, page.text)
    assert_plain_refusal(response, 502, words)
    text = page_text(response)
    assert "[" not in text.split("said:")[-1]
    assert "Stack trace" not in text
    assert elsewhere.seen == []
    assert platforms_for(engine, lms.base_url) == []


def _answer(client_id: Any, deployment_id: Any = "absent") -> Callable[[], Response]:
    def answer() -> Response:
        body: dict[str, Any] = {"client_id": client_id} if client_id != "absent" else {}
        if deployment_id != "absent":
            body[TOOL_CONFIG] = {"deployment_id": deployment_id}
        return Response(json.dumps(body), status=201, content_type="application/json")

    return answer


@pytest.mark.parametrize(
    ("client_id", "deployment_id", "stored_client", "stored_deployments"),
    [
        (10000000000042, 7, "10000000000042", ["7"]),
        ("moodle-abc", "absent", "moodle-abc", []),
        ("moodle-abc", None, "moodle-abc", []),
        ("moodle-abc", "", "moodle-abc", []),
        ("moodle-abc", True, "moodle-abc", []),
        ("moodle-abc", {"id": 3}, "moodle-abc", []),
    ],
    ids=["numbers", "absent", "null", "empty", "bool", "object"],
)
def test_issued_client_and_deployment_ids_of_every_shape(
    browser: httpx.Client,
    tool_url: str,
    crafted: MakeCrafted,
    engine: Engine,
    client_id: Any,
    deployment_id: Any,
    stored_client: str,
    stored_deployments: list[str],
) -> None:
    lms = crafted(on_register=_answer(client_id, deployment_id))
    page = open_registration(browser, tool_url, lms)
    done = confirm(browser, tool_url, page.text)
    assert done.status_code == 200, done.text
    assert stored_client in done.text
    [platform] = platforms_for(engine, lms.base_url)
    assert platform.client_id == stored_client
    with Session(engine) as session:
        deployments = session.scalars(
            select(Deployment.deployment_id).where(Deployment.platform_id == platform.id)
        ).all()
    assert list(deployments) == stored_deployments
    if not stored_deployments:
        assert "Not given yet" in done.text


@pytest.mark.parametrize(
    ("client_id", "deployment_id", "words"),
    [
        (1.5, "absent", "has no client ID"),
        (["abc"], "absent", "has no client ID"),
        ({"id": "abc"}, "absent", "has no client ID"),
        ("abc\x00def", "absent", "client ID with control characters"),
        ("abc\ndef", "absent", "client ID with control characters"),
        ("abc", "dep\x00loyment", "deployment ID with control characters"),
    ],
    ids=["float", "list", "object", "nul", "newline", "deployment-nul"],
)
def test_unusable_client_or_deployment_id_is_refused_in_plain_words(
    browser: httpx.Client,
    tool_url: str,
    crafted: MakeCrafted,
    engine: Engine,
    client_id: Any,
    deployment_id: Any,
    words: str,
) -> None:
    # Stored, such an id would never match a launch; on PostgreSQL NUL cannot even be stored,
    # and the admin would be told Pathways "could not save", blaming the wrong side.
    lms = crafted(on_register=_answer(client_id, deployment_id))
    page = open_registration(browser, tool_url, lms)
    response = confirm(browser, tool_url, page.text)
    assert_plain_refusal(response, 502, words, "Remove the new Pathways tool in the LMS")
    assert "could not save" not in response.text
    assert platforms_for(engine, lms.base_url) == []


def test_same_platform_registering_twice_keeps_one_registration_per_client_id(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted, engine: Engine
) -> None:
    # Some platforms answer a second registration of the same tool with the same client_id
    # and a new deployment: one registration, both deployments, the latest details.
    lms = crafted(on_register=_answer("same-client", "1"))
    page = open_registration(browser, tool_url, lms)
    assert confirm(browser, tool_url, page.text).status_code == 200
    lms.on_register = _answer("same-client", "2")
    lms.config_overrides = {PLATFORM_CONFIG: {**lms.openid_configuration()[PLATFORM_CONFIG]}}
    lms.config_overrides[PLATFORM_CONFIG]["version"] = "4.5"
    lms.start_again()
    page = open_registration(browser, tool_url, lms)
    assert confirm(browser, tool_url, page.text, auto_approve="on").status_code == 200
    [platform] = platforms_for(engine, lms.base_url)
    assert platform.auto_approve_deployments is True
    with Session(engine) as session:
        deployments = session.scalars(
            select(Deployment.deployment_id).where(Deployment.platform_id == platform.id)
        ).all()
        record = session.scalars(
            select(PlatformRegistration).where(PlatformRegistration.platform_id == platform.id)
        ).one()
    assert sorted(deployments) == ["1", "2"]
    assert record.platform_version == "4.5"


def test_confirm_form_submitted_twice_registers_once(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted
) -> None:
    # Canvas accepts its registration token for an hour: a double click or Back and submit
    # again would make a second developer key unless Pathways remembers the form went.
    lms = crafted("canvas")
    page = open_registration(browser, tool_url, lms)
    assert confirm(browser, tool_url, page.text).status_code == 200
    again = confirm(browser, tool_url, page.text)
    assert again.status_code == 409
    assert "already sent to the LMS" in again.text
    assert len(lms.tools) == 1
    # Back (or a reload) fetches the no-store page again: a new form for the same token.
    reloaded = open_registration(browser, tool_url, lms)
    assert confirm(browser, tool_url, reloaded.text).status_code == 409
    assert len(lms.tools) == 1
    # A registration started again from the LMS has a token of its own, and goes through.
    lms.start_again()
    fresh = open_registration(browser, tool_url, lms)
    assert confirm(browser, tool_url, fresh.text).status_code == 200
    assert len(lms.tools) == 2


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (503, "Try again in a few minutes"),
        (500, "Try again in a few minutes"),
        (400, "did not accept what Pathways sent"),
    ],
)
def test_a_registration_the_lms_refused_can_be_sent_again(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted, status: int, words: str
) -> None:
    # The LMS registered nothing: "Try again" (the same form again, or Back and Register)
    # must reach it, not be taken for a second press.
    lms = crafted("canvas")
    lms.on_register = lambda: Response('{"errors": [{"message": "busy"}]}', status=status)
    page = open_registration(browser, tool_url, lms)
    assert_plain_refusal(confirm(browser, tool_url, page.text), 502, words)
    assert_plain_refusal(confirm(browser, tool_url, page.text), 502, words)
    assert len(registration_posts(lms)) == 2
    lms.on_register = None  # the LMS is back
    again = confirm(browser, tool_url, page.text)
    assert again.status_code == 200, page_text(again)
    assert len(lms.tools) == 1
    # Registered now: Back and Register once more is a second press.
    reloaded = open_registration(browser, tool_url, lms)
    assert confirm(browser, tool_url, reloaded.text).status_code == 409
    assert len(lms.tools) == 1


def test_a_registration_whose_outcome_is_unknown_is_not_sent_again(
    browser: httpx.Client,
    make_tool: Callable[..., str],
    crafted: MakeCrafted,
) -> None:
    # A gateway's 504 or no answer in time: the LMS may have registered Pathways, and sending
    # the same registration again could make a second tool there.
    tool = make_tool(http_read_timeout=1.0, http_connect_timeout=1.0)
    lms = crafted("canvas")
    lms.on_register = lambda: Response("Gateway Timeout", status=504)
    page = open_registration(browser, tool, lms)
    assert_plain_refusal(
        confirm(browser, tool, page.text), 502, "took too long", "start the registration again"
    )
    lms.on_register = None
    again = confirm(browser, tool, page.text)
    assert_plain_refusal(again, 409, "already sent to the LMS")

    lms.start_again()
    answered = threading.Event()

    def slow() -> Response:
        answered.wait(3)  # past Pathways' 1 s read timeout
        return Response("{}", content_type="application/json")

    lms.on_register = slow
    page = open_registration(browser, tool, lms)
    assert_plain_refusal(
        confirm(browser, tool, page.text), 502, "could not reach", "start the registration again"
    )
    answered.set()
    lms.on_register = None
    assert_plain_refusal(confirm(browser, tool, page.text), 409, "already sent to the LMS")
    assert lms.tools == {}


# --- Names the platform chooses --------------------------------------------------------------


def test_names_with_markup_and_control_characters_are_escaped_and_stored_safely(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted, engine: Engine
) -> None:
    lms = crafted("canvas")
    lti = lms.openid_configuration()[PLATFORM_CONFIG]
    lti["product_family_code"] = "<b>canvas</b>\x00\x07"
    lti["version"] = "v\x00Cloud"
    lti["https://canvas.instructure.com/lti/account_name"] = (
        "<script>alert('x')</script> Sch\x00ool\x1b"
    )
    lms.config_overrides = {PLATFORM_CONFIG: lti}
    page = open_registration(browser, tool_url, lms)
    assert page.status_code == 200, page.text
    assert "<b>canvas" not in page.text
    assert "&lt;b&gt;canvas&lt;/b&gt;" in page.text
    assert "\x00" not in page.text
    done = confirm(browser, tool_url, page.text)
    assert done.status_code == 200, done.text  # PostgreSQL refuses NUL in text columns
    assert "<script>alert" not in done.text
    [platform] = platforms_for(engine, lms.base_url)
    assert platform.name == "<script>alert('x')</script> School (<b>canvas</b>)"
    with Session(engine) as session:
        record = session.scalars(
            select(PlatformRegistration).where(PlatformRegistration.platform_id == platform.id)
        ).one()
    assert record.product_family_code == "<b>canvas</b>"
    assert record.platform_version == "vCloud"

    # The operator's console shows the name as text, not as markup.
    login = browser.get(tool_url + "/admin/login")
    fields = {"csrf_token": hidden_fields(login.text)["csrf_token"]}
    browser.post(tool_url + "/admin/login", data={**fields, "admin_secret": "operator-secret"})
    console = browser.get(tool_url + "/admin/")
    assert console.status_code == 200
    assert "&lt;script&gt;alert(" in console.text
    assert "<script>alert" not in console.text


def test_moodle_named_in_capitals_or_with_spaces_still_gets_the_activation_step(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted
) -> None:
    lms = crafted("moodle")
    lti = lms.openid_configuration()[PLATFORM_CONFIG]
    lti["product_family_code"] = " Moodle "
    lms.config_overrides = {PLATFORM_CONFIG: lti}
    page = open_registration(browser, tool_url, lms)
    done = confirm(browser, tool_url, page.text)
    assert done.status_code == 200, done.text
    assert "Activate" in done.text


# --- The confirm form and the end of registration -----------------------------------------


def test_confirm_with_another_browsers_csrf_token_is_refused(
    tool_url: str, crafted: MakeCrafted, engine: Engine
) -> None:
    lms = crafted()
    with (
        httpx.Client(timeout=30) as admin,
        httpx.Client(timeout=30) as attacker,
    ):
        victim_page = open_registration(admin, tool_url, lms)
        attacker_page = open_registration(attacker, tool_url, lms)
        forged = {
            **hidden_fields(victim_page.text),
            "csrf_token": hidden_fields(attacker_page.text)["csrf_token"],
        }
        response = admin.post(tool_url + "/lti/register", data=forged)
        get_is_harmless = admin.get(tool_url + "/lti/register", params=forged)
    assert response.status_code == 400
    assert "could not confirm that this form came from this browser" in response.text
    assert get_is_harmless.status_code == 200
    assert registration_posts(lms) == []
    assert platforms_for(engine, lms.base_url) == []


def test_registration_pages_can_be_framed_by_the_lms_and_run_no_inline_script(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted
) -> None:
    # Canvas and Moodle open the registration URL in an iframe of their own origin.
    lms = crafted("canvas")
    page = open_registration(browser, tool_url, lms)
    done = confirm(browser, tool_url, page.text)
    for response in (page, done):
        assert response.status_code == 200
        assert "X-Frame-Options" not in response.headers
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors *" in policy
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text)
    assert "/lti/register/close.js" in re.findall(r'<script src="([^"]+)"', done.text)


NODE_HARNESS = """
const vm = require("vm");
const fs = require("fs");
const scenario = process.argv[process.argv.length - 1];
const posted = [];
const listeners = {};
const button = { addEventListener: (kind, fn) => { listeners[kind] = fn; } };
const hint = { hidden: true };
const elements = { "finish-registration": button, "finish-hint": hint };
const document = { getElementById: (id) => elements[id] || null };
const lms = { postMessage: (message, origin) => posted.push({ message, origin }) };
const window = {};
window.opener = scenario === "popup" ? lms : null;
window.parent = scenario === "iframe" ? lms : window;
vm.runInNewContext(fs.readFileSync(0, "utf8"), { window, document });
if (listeners.click) { listeners.click(); }
console.log(JSON.stringify({ posted, hintHidden: hint.hidden }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the script")
@pytest.mark.parametrize("scenario", ["iframe", "popup", "top"])
def test_finish_button_posts_the_close_message_to_the_lms(
    browser: httpx.Client, tool_url: str, scenario: str
) -> None:
    script = browser.get(tool_url + "/lti/register/close.js")
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    run = subprocess.run(  # noqa: S603 (fixed arguments)
        [shutil.which("node") or "node", "-e", NODE_HARNESS, scenario],
        input=script.text,
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    result = json.loads(run.stdout)
    if scenario == "top":  # opened as a page of its own: nobody to tell, so say "close it"
        assert result["posted"] == []
    else:
        assert result["posted"] == [{"message": CLOSE, "origin": "*"}]
    assert result["hintHidden"] is False


# --- Canvas's configuration URL --------------------------------------------------------------


def test_canvas_json_behind_a_tls_proxy_names_only_https_addresses(
    browser: httpx.Client, tool_url: str
) -> None:
    # Canvas fetches this from the public address; TLS ends at the proxy in front of Pathways.
    response = browser.get(
        tool_url + "/lti/canvas.json",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pathways.school.example"},
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    config = response.json()
    urls = [
        config["oidc_initiation_url"],
        config["target_link_uri"],
        config["public_jwk_url"],
        *config["redirect_uris"],
        *(p["target_link_uri"] for p in config["extensions"][0]["settings"]["placements"]),
    ]
    assert all(u.startswith("https://pathways.school.example/") for u in urls), urls
    assert config["extensions"][0]["domain"] == "pathways.school.example"
    assert all(isinstance(v, str) for v in config["custom_fields"].values())
    jwks = browser.get(
        config["public_jwk_url"].replace("https://pathways.school.example", tool_url)
    )
    assert jwks.status_code == 200
    assert all({"kid", "alg", "use"} <= set(key) for key in jwks.json()["keys"])


def test_dynamic_registration_behind_a_tls_proxy_registers_https_addresses(
    browser: httpx.Client, tool_url: str, crafted: MakeCrafted
) -> None:
    lms = crafted("moodle")
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pathways.school.example"}
    page = browser.get(lms.registration_url(tool_url + "/lti/register"), headers=proxy)
    assert page.status_code == 200, page.text
    done = browser.post(tool_url + "/lti/register", data=hidden_fields(page.text), headers=proxy)
    assert done.status_code == 200, done.text
    [tool] = lms.tools.values()
    assert tool.body["initiate_login_uri"] == "https://pathways.school.example/lti/login"
    assert tool.body["redirect_uris"] == ["https://pathways.school.example/lti/launch"]
    assert tool.body[TOOL_CONFIG]["domain"] == "pathways.school.example"
