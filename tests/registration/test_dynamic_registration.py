"""LTI Dynamic Registration end to end: Pathways and a test LMS over HTTP on loopback."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from lti_app.registration import views as registration_views
from lti_app.registration.models import PlatformRegistration, RegistrationMethod
from lti_app.tool.client import assertion_audience
from lti_app.tool.models import Deployment, DeploymentStatus, Platform
from tests.registration.conftest import hidden_fields
from tests.registration.lms import TOOL_CONFIG, PlatformDouble

MakeLms = Callable[[str], PlatformDouble]


def open_registration(browser: httpx.Client, tool_url: str, lms: PlatformDouble) -> httpx.Response:
    """What the LMS does: open the tool's registration URL with its two parameters."""
    return browser.get(lms.registration_url(tool_url + "/lti/register"))


def confirm(browser: httpx.Client, tool_url: str, page: str, **extra: str) -> httpx.Response:
    return browser.post(tool_url + "/lti/register", data={**hidden_fields(page), **extra})


def platforms_for(engine: Engine, issuer: str) -> list[Platform]:
    with Session(engine) as session:
        return list(session.scalars(select(Platform).where(Platform.issuer == issuer)))


@pytest.fixture
def log_records() -> Iterator[list[logging.LogRecord]]:
    """Everything Pathways logs (its logger does not propagate to the root)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.DEBUG)
    logger = logging.getLogger("lti_app")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_canvas_registration_end_to_end(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms, engine: Engine
) -> None:
    lms = make_lms("canvas")
    page = open_registration(browser, tool_url, lms)
    assert page.status_code == 200, page.text
    # Canvas needs the registration token as a bearer on the configuration GET.
    assert lms.config_requests[-1]["Authorization"] == f"Bearer {lms.token}"
    assert "link_selection, assignment_selection" in page.text
    assert "course_navigation" in page.text
    assert "sending scores" in page.text
    assert "Names of the people" in page.text
    assert lms.token not in page.text  # the pending registration is encrypted
    assert page.headers["Cache-Control"] == "no-store"

    done = confirm(browser, tool_url, page.text)
    assert done.status_code == 200, done.text
    assert "Pathways is registered" in done.text
    [tool] = lms.tools.values()
    assert lms.registration_requests[-1]["Authorization"] == f"Bearer {lms.token}"
    body = tool.body
    assert body["redirect_uris"] == [tool_url + "/lti/launch"]
    assert body["initiate_login_uri"] == tool_url + "/lti/login"
    assert body["jwks_uri"].startswith(tool_url + "/")
    assert set(body["scope"].split()) >= {
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    }
    config = body[TOOL_CONFIG]
    assert config["domain"] == urlsplit(tool_url).netloc
    assert config["https://canvas.instructure.com/lti/privacy_level"] == "name_only"
    assert config["custom_parameters"]["canvas_user_id"] == "$Canvas.user.id"
    placements = {p for m in config["messages"] for p in m.get("placements", [])}
    # Canvas listed account_navigation as a URI: still recognised.
    assert placements == {
        "link_selection",
        "assignment_selection",
        "course_navigation",
        "account_navigation",
    }

    [platform] = platforms_for(engine, lms.base_url)
    assert platform.client_id == tool.client_id
    assert platform.name == "Test School (canvas)"
    assert platform.auth_login_url == lms.base_url + "/api/lti/authorize_redirect"
    assert platform.token_url == lms.base_url + "/login/oauth2/token"
    # Canvas names its authorization server as a bare host, and its token endpoint wants the
    # token URL in `aud`: the assertion carries both.
    assert platform.token_audience == urlsplit(lms.base_url).netloc
    assert assertion_audience(platform) == [platform.token_url, urlsplit(lms.base_url).netloc]
    assert platform.jwks_url == lms.base_url + "/api/lti/security/jwks"
    with Session(engine) as session:
        [deployment] = session.scalars(
            select(Deployment).where(Deployment.platform_id == platform.id)
        ).all()
        assert deployment.deployment_id == tool.deployment_id
        assert deployment.status is DeploymentStatus.ACTIVE
        record = session.scalars(
            select(PlatformRegistration).where(PlatformRegistration.platform_id == platform.id)
        ).one()
        assert record.method is RegistrationMethod.DYNAMIC
        assert record.product_family_code == "canvas"

    # The done page hands control back with the close message, from a same-origin script.
    assert "/lti/register/close.js" in done.text
    script = browser.get(tool_url + "/lti/register/close.js")
    assert '{"subject": "org.imsglobal.lti.close"}' in script.text
    assert "window.opener || " in script.text


def test_registered_canvas_tool_launches_admin_into_console(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms
) -> None:
    lms = make_lms("canvas")
    page = open_registration(browser, tool_url, lms)
    assert confirm(browser, tool_url, page.text).status_code == 200
    [tool] = lms.tools.values()

    # The LMS starts a launch with what it registered: OIDC login, then the signed id_token.
    login = browser.post(
        tool.body["initiate_login_uri"],
        data={
            "iss": lms.base_url,
            "client_id": tool.client_id,
            "login_hint": "admin",
            "target_link_uri": tool.body[TOOL_CONFIG]["target_link_uri"],
            "lti_deployment_id": tool.deployment_id,
        },
    )
    assert login.status_code == 302, login.text
    auth = browser.get(login.headers["Location"])
    assert auth.status_code == 200, auth.text  # redirect_uri matched a registered one
    launch = browser.post(tool.body["redirect_uris"][0], data=auth.json())
    assert launch.status_code == 200, launch.text
    assert "Pathways admin console" in launch.text
    assert tool.client_id in launch.text
    assert "LMS administrator" in launch.text


def launch_as_admin(browser: httpx.Client, lms: PlatformDouble, client_id: str) -> httpx.Response:
    """An LMS administrator opens Pathways from the tool's current install."""
    tool = lms.tools[client_id]
    login = browser.post(
        tool.body["initiate_login_uri"],
        data={
            "iss": lms.base_url,
            "client_id": tool.client_id,
            "login_hint": "admin",
            "target_link_uri": tool.body[TOOL_CONFIG]["target_link_uri"],
            "lti_deployment_id": tool.deployment_id,
        },
    )
    assert login.status_code == 302, login.text
    auth = browser.get(login.headers["Location"])
    assert auth.status_code == 200, auth.text
    return browser.post(tool.body["redirect_uris"][0], data=auth.json())


def page_text(response: httpx.Response) -> str:
    """The words a reader sees: no markup, one space between words."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def deployment_statuses(engine: Engine, platform_id: int) -> dict[str, DeploymentStatus]:
    with Session(engine) as session:
        rows = session.scalars(select(Deployment).where(Deployment.platform_id == platform_id))
        return {d.deployment_id: d.status for d in rows}


def test_canvas_answer_without_a_deployment_approves_the_first_install_at_its_launch(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms, engine: Engine
) -> None:
    """Canvas answers the registration with no deployment ID: it makes one when its admin
    enables the tool. Left waiting for approval, that launch would lock out the only people
    who could approve it (the console needs a launch that worked)."""
    lms = make_lms("canvas")
    lms.answers_deployment_id = False
    page = open_registration(browser, tool_url, lms)
    done = confirm(browser, tool_url, page.text)  # "approve automatically" left unticked
    assert done.status_code == 200, done.text
    assert "Pathways approves it at its first launch" in page_text(done)
    assert "Installs made after that wait for approval" in page_text(done)
    [tool] = lms.tools.values()
    [platform] = platforms_for(engine, lms.base_url)
    assert deployment_statuses(engine, platform.id) == {}

    first = lms.install(tool.client_id)  # Canvas's "Enable & Close"
    launch = launch_as_admin(browser, lms, tool.client_id)
    assert launch.status_code == 200, launch.text
    assert "Pathways admin console" in launch.text
    assert deployment_statuses(engine, platform.id) == {first: DeploymentStatus.ACTIVE}

    # Installed in another account later: that one waits, and the refusal says who approves it.
    second = lms.install(tool.client_id)
    refused = launch_as_admin(browser, lms, tool.client_id)
    assert refused.status_code == 403
    said = page_text(refused)
    assert "waiting for approval" in said
    assert "An LMS administrator can approve it in the Pathways admin console" in said
    assert "(/admin/ on the Pathways server" in said
    assert f"--deployment-id {second}" in said
    assert deployment_statuses(engine, platform.id) == {
        first: DeploymentStatus.ACTIVE,
        second: DeploymentStatus.PENDING,
    }

    # The admin approves it from the console, opened through the first install.
    lms.tools[tool.client_id].deployment_id = first
    console = launch_as_admin(browser, lms, tool.client_id)
    with Session(engine) as session:
        pending_id = session.scalars(
            select(Deployment.id).where(Deployment.deployment_id == second)
        ).one()
    approved = browser.post(
        f"{tool_url}/admin/deployments/{pending_id}/approve", data=hidden_fields(console.text)
    )
    assert approved.status_code == 302, approved.text
    lms.tools[tool.client_id].deployment_id = second
    assert launch_as_admin(browser, lms, tool.client_id).status_code == 200


def test_moodle_registration_leaves_tool_pending_until_activated(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms, engine: Engine
) -> None:
    lms = make_lms("moodle")
    page = open_registration(browser, tool_url, lms)
    assert page.status_code == 200, page.text
    assert "moodle" in page.text
    assert "where the LMS puts tools" in page.text  # Moodle lists only ContentArea
    done = confirm(browser, tool_url, page.text, auto_approve="on")
    assert done.status_code == 200, done.text
    assert "Activate" in done.text
    [tool] = lms.tools.values()
    assert tool.status == "pending"
    deep_linking = [
        m for m in tool.body[TOOL_CONFIG]["messages"] if m["type"] == "LtiDeepLinkingRequest"
    ]
    assert deep_linking
    assert "placements" not in deep_linking[0]
    assert "custom_parameters" not in tool.body[TOOL_CONFIG]  # no $Canvas variables here

    [platform] = platforms_for(engine, lms.base_url)
    assert platform.auto_approve_deployments is True
    assert platform.auth_login_url == lms.base_url + "/mod/lti/auth.php"
    assert platform.token_audience is None

    login_params = {
        "iss": lms.base_url,
        "client_id": tool.client_id,
        "login_hint": "admin",
        "target_link_uri": tool.body[TOOL_CONFIG]["target_link_uri"],
    }
    login = browser.post(tool.body["initiate_login_uri"], data=login_params)
    assert browser.get(login.headers["Location"]).status_code == 403  # Moodle: pending
    lms.activate(tool.client_id)
    login = browser.post(tool.body["initiate_login_uri"], data=login_params)
    auth = browser.get(login.headers["Location"])
    assert auth.status_code == 200
    launch = browser.post(tool.body["redirect_uris"][0], data=auth.json())
    assert launch.status_code == 200, launch.text


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ((200, {"client_name": "Pathways"}), "no client ID"),
        ((200, "<html>Log in</html>"), "is not JSON"),
        ((201, ["client_id"]), "not a JSON object"),
        (
            (400, {"error": "invalid_client_metadata", "error_description": "bad redirect"}),
            "did not accept what Pathways sent (400). The LMS said: &#34;invalid_client_metadata "
            "bad redirect&#34;",
        ),
        ((401, {"error": "invalid_token"}), "expired or been used already"),
        ((503, "down"), "had a problem"),
    ],
)
def test_refused_or_malformed_answer_is_shown_and_nothing_is_stored(
    browser: httpx.Client,
    tool_url: str,
    make_lms: MakeLms,
    engine: Engine,
    answer: tuple[int, Any],
    words: str,
) -> None:
    lms = make_lms("canvas")
    lms.answer = answer
    page = open_registration(browser, tool_url, lms)
    response = confirm(browser, tool_url, page.text)
    assert response.status_code == 502
    assert words in response.text
    assert "Pathways could not be registered" in response.text
    assert platforms_for(engine, lms.base_url) == []


def test_configuration_get_without_the_token_is_refused_in_plain_words(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms
) -> None:
    lms = make_lms("canvas")
    url = tool_url + "/lti/register?openid_configuration=" + lms.config_url
    response = browser.get(url)
    assert response.status_code == 502
    assert "refused to show its configuration (401)" in response.text


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"issuer": "http://127.0.0.1:1"}, "comes from another address"),
        ({"registration_endpoint": None}, "lacks a valid registration_endpoint"),
        ({"https://purl.imsglobal.org/spec/lti-platform-configuration": None}, "LTI support"),
        ({"id_token_signing_alg_values_supported": ["HS256"]}, "does not support RS256"),
    ],
)
def test_unsuitable_platform_is_refused_before_anything_is_registered(
    browser: httpx.Client,
    tool_url: str,
    make_lms: MakeLms,
    overrides: dict[str, Any],
    words: str,
) -> None:
    lms = make_lms("moodle")
    lms.config_overrides = overrides
    response = open_registration(browser, tool_url, lms)
    assert response.status_code == 502
    assert words in response.text
    assert lms.registration_requests == []


def test_issuer_prefix_on_another_host_is_refused(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms
) -> None:
    lms = make_lms("moodle")
    # http://127.0.0.1:80 is a prefix of http://127.0.0.1:8080...: not the same site.
    lms.config_overrides = {"issuer": lms.base_url[:-1]}
    response = open_registration(browser, tool_url, lms)
    assert response.status_code == 502
    assert "comes from another address" in response.text


def test_configuration_url_must_be_a_web_address(browser: httpx.Client, tool_url: str) -> None:
    response = browser.get(tool_url + "/lti/register?openid_configuration=file:///etc/passwd")
    assert response.status_code == 400
    assert "not a secure web address" in response.text


def test_tampered_or_expired_pending_registration_is_refused(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms
) -> None:
    lms = make_lms("canvas")
    page = open_registration(browser, tool_url, lms)
    response = confirm(
        browser, tool_url, page.text, pending="x" + hidden_fields(page.text)["pending"]
    )
    assert response.status_code == 400
    assert "expired or its form was changed" in response.text
    assert lms.registration_requests == []


def test_confirm_without_csrf_token_is_refused(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms
) -> None:
    lms = make_lms("canvas")
    page = open_registration(browser, tool_url, lms)
    fields = hidden_fields(page.text)
    del fields["csrf_token"]
    response = browser.post(tool_url + "/lti/register", data=fields)
    assert response.status_code == 400
    assert "could not confirm that this form came from this browser" in response.text
    assert lms.registration_requests == []


def test_storage_failure_is_reported_with_the_issued_client_id(
    browser: httpx.Client,
    tool_url: str,
    make_lms: MakeLms,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Platform:
        raise OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(registration_views, "store_registration", broken)
    lms = make_lms("canvas")
    page = open_registration(browser, tool_url, lms)
    response = confirm(browser, tool_url, page.text)
    assert response.status_code == 500
    [tool] = lms.tools.values()
    assert f"client ID {tool.client_id}" in response.text
    assert "could not save the registration" in response.text
    assert platforms_for(engine, lms.base_url) == []


def test_registering_again_updates_the_registration_instead_of_duplicating(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms, engine: Engine
) -> None:
    lms = make_lms("canvas")
    for _ in range(2):
        lms.start_again()
        page = open_registration(browser, tool_url, lms)
        assert confirm(browser, tool_url, page.text).status_code == 200
    assert len(platforms_for(engine, lms.base_url)) == 2  # the LMS issued two client ids
    assert {p.client_id for p in platforms_for(engine, lms.base_url)} == set(lms.tools)


def test_registration_token_never_reaches_the_logs(
    browser: httpx.Client,
    tool_url: str,
    make_lms: MakeLms,
    log_records: list[logging.LogRecord],
) -> None:
    lms = make_lms("canvas")
    tokens = [lms.token]
    page = open_registration(browser, tool_url, lms)
    confirm(browser, tool_url, page.text)
    lms.answer = (400, {"error": "invalid_token"})
    lms.start_again()
    tokens.append(lms.token)
    page = open_registration(browser, tool_url, lms)
    assert confirm(browser, tool_url, page.text).status_code == 502
    messages = [record.getMessage() for record in log_records]
    assert any("registered iss=" in m for m in messages)
    assert any("registration refused" in m for m in messages)
    assert all(token not in m for m in messages for token in tokens)


@pytest.mark.parametrize("path", ["/lti/register", "/"])
def test_registration_url_and_the_tools_own_address_explain_themselves(
    browser: httpx.Client, tool_url: str, path: str
) -> None:
    """The README sends a newcomer to the tool's own address, which answered "not found"."""
    page = browser.get(tool_url + path)
    assert page.status_code == 200
    assert tool_url + "/lti/register" in page.text
    assert tool_url + "/lti/canvas.json" in page.text
    assert tool_url + "/lti/launch" in page.text
    assert "open from their course in the LMS" in page.text


def test_access_code_is_required_when_configured(
    browser: httpx.Client, make_lms: MakeLms, tool_settings: Any, engine: Engine
) -> None:
    import dataclasses

    from lti_app import create_app
    from tests.registration.lms import serve

    settings = dataclasses.replace(tool_settings, registration_access_code="open-sesame")
    app = create_app(settings)
    with serve(app) as url:
        lms = make_lms("moodle")
        page = open_registration(browser, url, lms)
        assert 'id="access_code"' in page.text
        refused = confirm(browser, url, page.text, access_code="guess")
        assert refused.status_code == 400
        assert lms.registration_requests == []
        accepted = confirm(browser, url, page.text, access_code="open-sesame")
        assert accepted.status_code == 200, accepted.text
    app.extensions["lti_app.db"].dispose()
    app.extensions["lti_app.http"].close()


def test_confirm_works_without_the_cookie_its_page_set(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms
) -> None:
    """The LMS opens registration in a frame of its own site, where Safari keeps no cookie
    of ours: the form's token is bound to the registration it confirms, not to a cookie."""
    lms = make_lms("moodle")
    page = open_registration(browser, tool_url, lms)
    browser.cookies.clear()
    done = confirm(browser, tool_url, page.text)
    assert done.status_code == 200
    assert "Pathways is registered" in done.text
    assert len(lms.registration_requests) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://attacker.example"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://attacker.example"},
    ],
)
def test_confirm_sent_from_another_site_is_refused(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms, headers: dict[str, str]
) -> None:
    lms = make_lms("canvas")
    page = open_registration(browser, tool_url, lms)
    response = browser.post(
        tool_url + "/lti/register", data=hidden_fields(page.text), headers=headers
    )
    assert response.status_code == 400
    assert "could not confirm that this form came from this browser" in response.text
    assert lms.registration_requests == []


def test_confirm_with_the_token_of_another_registration_is_refused(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms
) -> None:
    """Two registration pages open in one browser: each form's token is good for its own
    registration only."""
    lms = make_lms("canvas")
    first = hidden_fields(open_registration(browser, tool_url, lms).text)
    second = hidden_fields(open_registration(browser, tool_url, lms).text)
    swapped = browser.post(
        tool_url + "/lti/register", data={**first, "csrf_token": second["csrf_token"]}
    )
    assert swapped.status_code == 400
    assert "could not confirm that this form came from this browser" in swapped.text
    assert lms.registration_requests == []

    own = browser.post(tool_url + "/lti/register", data=first)
    assert own.status_code == 200, own.text
    assert len(lms.registration_requests) == 1


@pytest.mark.parametrize(
    "sent_by",
    ["fetch-metadata", "origin-only", "fetch-metadata-and-null-origin"],
)
def test_confirm_from_pathways_own_page_is_accepted_whatever_the_browser_says_of_it(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms, sent_by: str
) -> None:
    """What browsers send with the form's POST: Fetch Metadata (Chromium, Firefox 90+,
    Safari 16.4+), only Origin (older Safari and Firefox), or Origin "null" beside it (a page
    whose referrer policy is no-referrer)."""
    headers = {
        "fetch-metadata": {"Sec-Fetch-Site": "same-origin", "Origin": tool_url},
        "origin-only": {"Origin": tool_url},
        "fetch-metadata-and-null-origin": {"Sec-Fetch-Site": "same-origin", "Origin": "null"},
    }[sent_by]
    lms = make_lms("moodle")
    page = open_registration(browser, tool_url, lms)
    browser.cookies.clear()
    done = browser.post(tool_url + "/lti/register", data=hidden_fields(page.text), headers=headers)
    assert done.status_code == 200, done.text
    assert "Pathways is registered" in done.text
    assert len(lms.registration_requests) == 1


def test_the_confirm_page_lets_its_form_carry_its_origin(
    browser: httpx.Client, tool_url: str, make_lms: MakeLms
) -> None:
    """A no-referrer page's POST carries Origin "null", which an older browser (no Fetch
    Metadata) would then send alone: the page keeps Referer at home without hiding Origin."""
    page = open_registration(browser, tool_url, make_lms("moodle"))
    assert '<meta name="referrer" content="same-origin">' in page.text
