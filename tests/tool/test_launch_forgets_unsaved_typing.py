"""A launch is someone starting afresh, maybe the next student at a shared computer: typing
another launch kept in a cookie for the whole site (unsaved_forms.js before it kept it for its
page only, for the browser session) is expired by the launch's answer."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.conftest import LtiActions

TEACHER = "user-t01"


def test_a_launch_expires_typing_kept_by_an_earlier_launch(lti: LtiActions) -> None:
    browser = lti.browser()
    host = urlsplit(lti.tool.url).hostname or ""
    browser.cookies.set("pathways_unsaved_earlier", "%7B%22secret%22%7D", domain=host, path="/")
    launched = lti.launch(TEACHER, client=browser)
    assert "Signed in as" in launched.text
    set_cookies = launched.response.headers.get_list("set-cookie")
    expired = [c for c in set_cookies if "pathways_unsaved_" in c]
    assert expired
    assert all("Max-Age=0" in c and "Path=/;" in c for c in expired)
    assert "pathways_unsaved_earlier" not in browser.cookies


def test_a_launch_without_such_typing_sets_no_cookie_for_it(lti: LtiActions) -> None:
    launched = lti.launch(TEACHER)
    assert not [c for c in launched.response.headers.get_list("set-cookie") if "unsaved" in c]
