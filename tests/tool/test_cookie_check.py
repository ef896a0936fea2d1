"""A launch in the LMS's frame from a browser that keeps no cookie there (Safari before 26.2,
any browser set to block third-party cookies) on a platform without LTI Platform Storage
(Moodle): the login checks that its state cookie comes back before the LMS spends its one-time
authorization, and offers Pathways in a window of its own when it does not."""

from __future__ import annotations

import re
import time
from html import unescape
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo.browser import follow_launch
from lti_app.tool.login import state_cookie_name
from lti_app.tool.models import Platform
from tests.conftest import LtiActions, ToolServer
from tests.tool.test_keyset_and_login_edges import forged_state

IN_A_FRAME = {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"}
STUDENT_BADGE = 'role-badge">Student<'
WINDOW_LINK = re.compile(r'id="open-in-window" href="([^"]+)" target="_blank"')


def _login_in_a_frame(lti: LtiActions, user: str) -> tuple[httpx.Client, httpx.Response, str]:
    client = lti.browser()
    login_url = lti.platform.login_url(lti.spec(user))
    answer = client.get(login_url, headers=IN_A_FRAME)
    return client, answer, login_url


def test_a_login_in_a_frame_that_keeps_its_cookie_goes_on_to_the_lms(lti: LtiActions) -> None:
    client, answer, _ = _login_in_a_frame(lti, "user-s04")
    assert answer.status_code == 302
    check = urljoin(str(answer.url), answer.headers["location"])
    assert urlsplit(check).path == "/lti/login/check"

    to_the_lms = client.get(check, headers=IN_A_FRAME)
    assert to_the_lms.status_code == 302
    auth = urlsplit(to_the_lms.headers["location"])
    assert auth.netloc == urlsplit(lti.platform.config.issuer).netloc
    home = follow_launch(client, str(to_the_lms.url))
    assert home.status_code == 200
    assert STUDENT_BADGE in home.text

    # The next login in this frame goes straight to the LMS: cookies were seen to work.
    again = client.get(lti.platform.login_url(lti.spec("user-s04")), headers=IN_A_FRAME)
    assert urlsplit(again.headers["location"]).netloc == urlsplit(lti.platform.config.issuer).netloc


def test_a_login_in_a_frame_that_keeps_no_cookie_offers_a_window_of_its_own(
    lti: LtiActions,
) -> None:
    issued = lti.platform.counters.id_tokens_issued
    client, answer, login_url = _login_in_a_frame(lti, "user-s05")
    client.cookies.clear()  # what Safari does with a cookie set in a cross-site frame
    offer = client.get(urljoin(str(answer.url), answer.headers["location"]), headers=IN_A_FRAME)

    assert offer.status_code == 200
    assert "Open Pathways in a new window" in offer.text
    assert "no-store" in offer.headers["Cache-Control"]
    # The LMS has not been asked yet: Moodle's one-time lti_message_hint is still good.
    assert lti.platform.counters.id_tokens_issued == issued
    found = WINDOW_LINK.search(offer.text)
    assert found is not None
    window_url = urljoin(str(offer.url), unescape(found.group(1)))
    assert dict(parse_qsl(urlsplit(window_url).query)) == {
        k: v for k, v in parse_qsl(urlsplit(login_url).query) if v
    }

    # The new window is a page of its own (Sec-Fetch-Dest: document): first-party cookies.
    window = lti.browser()
    home = follow_launch(window, window_url)
    assert home.status_code == 200
    assert STUDENT_BADGE in home.text
    assert lti.platform.counters.id_tokens_issued == issued + 1


def test_a_stolen_check_address_does_not_sign_in_another_browser(lti: LtiActions) -> None:
    """The check sends a browser on only with the cookie the login gave it: another browser
    with the same address, and a state cookie of the right name, is offered the new window,
    never the LMS's authorization."""
    _, answer, _ = _login_in_a_frame(lti, "user-s06")
    check = urljoin(str(answer.url), answer.headers["location"])
    state = dict(parse_qsl(urlsplit(check).query))["state"]
    other = lti.browser()
    other.cookies.set(state_cookie_name(state), "guess", domain="127.0.0.1", path="/lti/")
    offer = other.get(check, headers=IN_A_FRAME)
    assert offer.status_code == 200
    assert "Open Pathways in a new window" in offer.text


def test_a_load_balancers_cookie_does_not_skip_the_check(lti: LtiActions) -> None:
    """Only a login cookie of Pathways' proves cookies work in the frame."""
    client = lti.browser()
    client.cookies.set("AWSALB", "sticky", domain="127.0.0.1", path="/")
    answer = client.get(lti.platform.login_url(lti.spec("user-s09")), headers=IN_A_FRAME)
    assert urlsplit(answer.headers["location"]).path == "/lti/login/check"


def test_a_check_after_the_login_expired_is_refused_in_plain_words(
    lti: LtiActions, tool_server: ToolServer, db: Database
) -> None:
    config = lti.platform.config
    with db.begin() as session:
        platform_id = session.scalars(
            select(Platform.id).where(
                Platform.issuer == config.issuer, Platform.client_id == config.client_id
            )
        ).one()
    state = forged_state(
        tool_server.settings.secret_key,
        platform_id,
        "nonce",
        "secret",
        tool_server.url + "/lti/launch",
        time.time() - 1,
    )
    client = lti.browser()
    client.cookies.set(state_cookie_name(state), "secret", domain="127.0.0.1", path="/lti/")
    answer = client.get(
        tool_server.url + "/lti/login/check",
        params={"state": state, "iss": config.issuer, "login_hint": "user-s09"},
        headers=IN_A_FRAME,
    )
    assert answer.status_code == 400
    assert "took too long and expired" in answer.text


def test_a_returning_browser_and_a_top_level_login_go_straight_to_the_lms(
    lti: LtiActions,
) -> None:
    lms_origin = urlsplit(lti.platform.config.issuer).netloc
    client = lti.browser()
    top_level = client.get(lti.platform.login_url(lti.spec("user-s07")))
    assert urlsplit(top_level.headers["location"]).netloc == lms_origin

    # A cookie of Pathways' came along: cookies work in this frame.
    again = client.get(lti.platform.login_url(lti.spec("user-s07")), headers=IN_A_FRAME)
    assert urlsplit(again.headers["location"]).netloc == lms_origin


def test_a_check_with_a_forged_state_is_refused_in_plain_words(lti: LtiActions) -> None:
    client = lti.browser()
    answer = client.get(
        lti.tool.url + "/lti/login/check",
        params={"state": "forged", "iss": lti.platform.config.issuer, "login_hint": "x"},
        headers=IN_A_FRAME,
    )
    assert answer.status_code == 400
    assert "does not match a login Pathways started" in answer.text
    assert "Traceback" not in answer.text
