"""LMS quirks of the AGS client, at the HTTP transport (no server needed)."""

from __future__ import annotations

import json

import httpx
import pytest

from lti_app.grades.client import (
    CANVAS_SUBMISSION,
    SCORE_TYPE,
    AgsClient,
    LmsRequestError,
    retry_after_seconds,
    score_url,
)
from lti_app.roster.client import parse_links, parse_member, with_query
from lti_app.tool.client import AccessToken
from lti_app.tool.models import Platform


def test_scores_path_goes_before_moodles_query_string() -> None:
    assert (
        score_url("https://moodle.test/mod/lti/services.php/2/lineitems/7/lineitem?type_id=3")
        == "https://moodle.test/mod/lti/services.php/2/lineitems/7/lineitem/scores?type_id=3"
    )
    assert score_url("https://canvas.test/api/lti/courses/1/line_items/9/") == (
        "https://canvas.test/api/lti/courses/1/line_items/9/scores"
    )


def test_link_headers_in_any_case_and_with_curly_quotes() -> None:
    headers = httpx.Headers(
        [
            (b"link", b'<https://LMS.test/Members?Page=2>; rel="next"'),
            (b"Link", "<https://lms.test/d?since=1>; rel=\u201cdifferences\u201d".encode()),
        ]
    )
    links = parse_links(headers)
    assert links["next"] == "https://LMS.test/Members?Page=2"  # case kept
    assert links["differences"] == "https://lms.test/d?since=1"
    assert with_query("https://LMS.test/Members?Page=2", role="X#Y") == (
        "https://LMS.test/Members?Page=2&role=X%23Y"
    )


def test_members_keep_what_was_sent_and_note_what_was_not() -> None:
    member = parse_member({"user_id": 7, "roles": ["Learner"], "status": "Deleted"})
    assert member is not None
    assert (member.user_id, member.status, member.name, member.email) == (
        "7",
        "Deleted",
        None,
        None,
    )
    assert parse_member({"name": "no id"}) is None


def test_retry_after_as_seconds_or_http_date() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None


class _Tokens:
    def __init__(self) -> None:
        self.dropped = 0

    def token(self, platform: Platform, scopes: frozenset[str]) -> AccessToken:
        from datetime import UTC, datetime, timedelta

        return AccessToken(f"t{self.dropped}", scopes, datetime.now(UTC) + timedelta(hours=1))

    def drop(self, platform: Platform, scopes: frozenset[str]) -> None:
        self.dropped += 1


def _client(handler: httpx.MockTransport) -> tuple[AgsClient, _Tokens]:
    tokens = _Tokens()
    http = httpx.Client(transport=handler, headers={"User-Agent": "Pathways-test"})
    return AgsClient(http, tokens), tokens  # type: ignore[arg-type]


PLATFORM = Platform(id=1, issuer="https://lms.test", client_id="c", token_url="https://lms.test/t")


def test_a_score_uses_moodles_media_type_and_a_401_retries_once_with_a_new_token() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers["Authorization"] == "Bearer t0":
            return httpx.Response(401)
        return httpx.Response(200, json={})

    client, tokens = _client(httpx.MockTransport(handle))
    body = {"userId": "u", CANVAS_SUBMISSION: {"new_submission": False}}
    client.post_score(PLATFORM, "https://lms.test/li/1?type_id=3", body)
    assert tokens.dropped == 1
    assert [r.headers["Authorization"] for r in seen] == ["Bearer t0", "Bearer t1"]
    assert seen[-1].headers["Content-Type"] == SCORE_TYPE
    assert seen[-1].headers["User-Agent"] == "Pathways-test"
    assert seen[-1].url.path == "/li/1/scores"
    assert json.loads(seen[-1].content)[CANVAS_SUBMISSION] == {"new_submission": False}


@pytest.mark.parametrize(
    ("status", "body", "retryable", "config"),
    [
        (401, "", False, True),  # after the retry: a web server stripping Authorization
        (403, "Rate Limit Exceeded", True, False),  # older Canvas throttling
        (403, "nope", False, True),
        (422, "", False, False),
        (429, "", True, False),
        (503, "", True, False),
        (400, "older", False, False),
    ],
)
def test_errors_are_classified(status: int, body: str, retryable: bool, config: bool) -> None:
    client, _ = _client(httpx.MockTransport(lambda _r: httpx.Response(status, text=body)))
    with pytest.raises(LmsRequestError) as info:
        client.post_score(PLATFORM, "https://lms.test/li/1", {"userId": "u"})
    assert (info.value.retryable, info.value.config, info.value.status) == (
        retryable,
        config,
        status,
    )


def test_dropped_connections_and_timeouts_are_retryable() -> None:
    def drop(_request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected")

    client, _ = _client(httpx.MockTransport(drop))
    with pytest.raises(LmsRequestError) as info:
        client.post_score(PLATFORM, "https://lms.test/li/1", {"userId": "u"})
    assert info.value.retryable
