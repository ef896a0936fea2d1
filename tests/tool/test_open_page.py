"""A page left open in the LMS frame: a teacher opens the evidence form at the start of a
lesson and sends it at the end; a student writes a long reflection. Each page's links and
forms carry a launch token valid for an hour (`launch_token_ttl`); frame.js asks
`/lti/session/token` for a fresh one every few minutes while the page stays open."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from markupsafe import escape

from lti_app.db import Database
from lti_app.tool.models import LaunchSession
from lti_app.web import token_renewal_seconds
from tests.conftest import LtiActions, ToolServer
from tests.security_support import (
    Frame,
    aged_launch_token,
    frame_of,
    launch_session_id,
)

IN_FRAME = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}


@pytest.fixture
def student(lti: LtiActions, tool_server: ToolServer) -> Frame:
    return frame_of(tool_server, lti.launch("user-s05", context_id="course-bio9"))


def _renew(frame: Frame, token: str, **headers: str) -> tuple[int, str]:
    answer = frame.client.get(
        frame.base + "/lti/session/token",
        headers={**IN_FRAME, "X-Launch-Token": token, **headers},
    )
    if answer.status_code != 200:
        return answer.status_code, ""
    assert "no-store" in answer.headers["Cache-Control"]
    return 200, str(answer.json()["token"])


def _send_reflection(frame: Frame, token: str, text: str) -> int:
    sent = frame.client.post(
        frame.base + "/reports/reflection",
        data={"lt": token, "csrf_token": frame.csrf, "reflection": text},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    return sent.status_code


def test_a_page_open_for_most_of_an_hour_gets_a_token_that_sends_its_form_later(
    student: Frame, tool_server: ToolServer
) -> None:
    settings = tool_server.settings
    launch_id = launch_session_id(settings.secret_key, student.token)
    nearly_expired = aged_launch_token(
        settings.secret_key, launch_id, settings.launch_token_ttl - 30
    )

    status, fresh = _renew(student, nearly_expired)

    assert status == 200
    assert launch_session_id(settings.secret_key, fresh) == launch_id
    # The fresh token counts its hour from now: a form sent with it later is accepted.
    assert _send_reflection(student, fresh, "I finally understood osmosis.") == 303
    body = student.client.get(student.base + "/reports/reflection", params={"lt": fresh}).text
    assert "I finally understood osmosis." in body


def test_an_expired_token_renews_nothing_and_the_page_says_so(
    student: Frame, tool_server: ToolServer
) -> None:
    settings = tool_server.settings
    launch_id = launch_session_id(settings.secret_key, student.token)
    expired = aged_launch_token(settings.secret_key, launch_id, settings.launch_token_ttl + 5)
    assert _renew(student, expired)[0] == 401
    assert _send_reflection(student, expired, "too late") == 401


def test_a_form_refused_because_the_session_ended_shows_what_was_typed(
    student: Frame, tool_server: ToolServer
) -> None:
    """The laptop slept through the renewal: the form is refused, and what the student wrote
    over the lesson comes back on the page to copy (escaped like everything else)."""
    settings = tool_server.settings
    launch_id = launch_session_id(settings.secret_key, student.token)
    expired = aged_launch_token(settings.secret_key, launch_id, settings.launch_token_ttl + 5)
    written = "Osmosis moves water <b>across</b> a membrane.\nDiffusion moves the rest."
    refused = student.client.post(
        student.base + "/reports/reflection",
        data={"lt": expired, "csrf_token": student.csrf, "reflection": written},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert refused.status_code == 401
    assert "What you typed (not saved)" in refused.text
    # The session is over: no page of it opens again, so the words are to copy.
    assert "Copy it before you open Pathways again." in refused.text
    assert "go back to the page you were on" not in refused.text
    assert str(escape(written)) in refused.text
    assert "<b>across</b>" not in refused.text
    assert expired not in refused.text  # the token and the CSRF token are not "typed"
    assert student.csrf not in refused.text


@pytest.mark.parametrize(
    ("token", "fetch_site"),
    [("not-a-token", "cross-site"), ("not-a-token", None), ("theirs", "cross-site")],
    ids=["forged-from-another-site", "forged-no-fetch-metadata", "real-token-from-another-site"],
)
def test_another_site_cannot_make_pathways_show_its_words_as_what_you_typed(
    student: Frame, tool_server: ToolServer, token: str, fetch_site: str | None
) -> None:
    """A page of another site posting to Pathways with a made-up or copied token gets its words
    shown nowhere: "What you typed" under Pathways' address would be a ready-made phishing page
    ("Your session has ended. Sign in again at...")."""
    lure = "Your Pathways session has ended. Sign in again at https://pathways-login.example"
    refused = student.client.post(
        student.base + "/reports/reflection",
        data={
            "lt": student.token if token == "theirs" else token,
            "reflection": lure,
            "Important: read this first": "Type your school password at the link above",
        },
        headers={"Sec-Fetch-Site": fetch_site} if fetch_site else {},
    )
    assert refused.status_code in (400, 401, 403)
    assert "What you typed" not in refused.text
    assert "pathways-login.example" not in refused.text
    assert "Important: read this first" not in refused.text


def test_renewal_stops_with_the_launch_session(
    student: Frame, tool_server: ToolServer, db: Database
) -> None:
    """A launch session lives 12 hours whatever the page does: renewing never extends it."""
    launch_id = launch_session_id(tool_server.settings.secret_key, student.token)
    with db.begin() as session:
        row = session.get(LaunchSession, launch_id)
        assert row is not None
        row.expires_at = datetime(2000, 1, 1, tzinfo=UTC)
    assert _renew(student, student.token)[0] == 401
    # A form sent now is refused, and what was typed comes back on the page to copy.
    refused = student.client.post(
        student.base + "/reports/reflection",
        data={"lt": student.token, "csrf_token": student.csrf, "reflection": "My last words"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert refused.status_code == 401
    assert "My last words" in refused.text


def test_a_token_sent_from_another_site_renews_nothing(student: Frame) -> None:
    """A link copied out of the frame opens nothing (Sec-Fetch-Site); neither may its token be
    traded for a fresh one by a page on another site, or by the LMS's own page when it shares
    the school's domain with Pathways (same-site)."""
    assert _renew(student, student.token, **{"Sec-Fetch-Site": "cross-site"})[0] == 401
    assert _renew(student, student.token, **{"Sec-Fetch-Site": "same-site"})[0] == 401
    assert _renew(student, student.token)[0] == 200


def test_every_page_of_a_launch_tells_frame_js_its_token_and_where_to_renew_it(
    student: Frame,
) -> None:
    page = student.get("/progress/").text
    found = re.search(
        r'data-launch-token="([^"]+)" data-renew-url="([^"]+)" data-renew-seconds="(\d+)"', page
    )
    assert found is not None, page[:800]
    assert found.group(2) == "/lti/session/token"
    assert f"lt={found.group(1)}" in page  # the token its links carry, which frame.js swaps
    assert found.group(3) == "600"  # a token of an hour: every ten minutes


@pytest.mark.parametrize(
    ("token_ttl", "every"), [(3600, 600), (7 * 86400, 600), (900, 300), (90, 30), (60, 20)]
)
def test_a_shorter_token_is_renewed_often_enough_to_never_lapse(token_ttl: int, every: int) -> None:
    """An operator who shortens LTI_APP_LAUNCH_TOKEN_TTL to five minutes: renewing every ten
    minutes would let every open page's token lapse."""
    assert token_renewal_seconds(token_ttl) == every
    assert every * 3 <= token_ttl


NAVIGATION_IN_FRAME = {
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "iframe",
}


def _launch_key(page: str) -> str:
    found = re.search(r'data-launch-key="([0-9a-f]+)"', page)
    assert found is not None, page[:800]
    return found.group(1)


def _expired_key(page: str) -> str | None:
    found = re.search(r'data-expired-launch-key="([0-9a-f]+)"', page)
    return found.group(1) if found else None


def test_back_to_a_page_whose_token_expired_lets_frame_js_retry_with_the_newest(
    student: Frame, tool_server: ToolServer, lti: LtiActions
) -> None:
    """Back to a page opened longer ago than a token lives: its address brings back its
    expired token while the launch session lives on. The refusal names the launch session,
    under which frame.js keeps the newest token of this tab; only for a page the browser
    opens, and never another launch's."""
    settings = tool_server.settings
    launch_id = launch_session_id(settings.secret_key, student.token)
    key = _launch_key(student.get("/progress/").text)
    expired = aged_launch_token(settings.secret_key, launch_id, settings.launch_token_ttl + 5)
    back = student.client.get(
        student.base + "/progress/", params={"lt": expired}, headers=NAVIGATION_IN_FRAME
    )
    assert back.status_code == 401
    assert "session has ended" in back.text
    assert _expired_key(back.text) == key
    # A fetch or a form cannot simply be sent again; a token that is no token names nothing.
    fetched = student.client.get(
        student.base + "/progress/", params={"lt": expired}, headers=IN_FRAME
    )
    assert fetched.status_code == 401
    assert _expired_key(fetched.text) is None
    assert _send_reflection(student, expired, "late") == 401
    forged = student.client.get(
        student.base + "/progress/",
        params={"lt": expired[:-3] + "AAA"},
        headers=NAVIGATION_IN_FRAME,
    )
    assert forged.status_code == 401
    assert _expired_key(forged.text) is None
    # Another launch (another person, another course) keeps its tokens under another name.
    other = lti.launch("user-s06", context_id="course-chem-club")
    assert _launch_key(other.text) != key
