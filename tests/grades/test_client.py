"""LMS quirks of the AGS client, at the HTTP transport (no server needed)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import urllib3
from urllib3.exceptions import (
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from lti_app.grades.client import (
    CANVAS_SUBMISSION,
    SCORE_TYPE,
    AgsClient,
    LmsRequestError,
    adds_every_comment,
    score_url,
)
from lti_app.grades.client.errors import retry_after_seconds
from lti_app.http import make_score_pool
from lti_app.roster.client import parse_links, parse_member, with_query
from lti_app.settings import Settings
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
        return AccessToken(f"t{self.dropped}", scopes, datetime.now(UTC) + timedelta(hours=1))

    def drop(self, platform: Platform, scopes: frozenset[str], refused: str | None = None) -> None:
        self.dropped += 1


@dataclass
class _Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


class _Pool:
    """Stands in for urllib3's PoolManager: headers given to a request replace its own."""

    def __init__(self, answer: Callable[[_Sent], urllib3.BaseHTTPResponse]) -> None:
        self.answer = answer
        self.headers = {"User-Agent": "Pathways-test"}
        self.sent: list[_Sent] = []

    def request(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None = None
    ) -> urllib3.BaseHTTPResponse:
        self.sent.append(_Sent(method, url, headers, body))
        return self.answer(self.sent[-1])

    def clear(self) -> None:
        pass


def _response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(body=body, status=status, headers=headers, preload_content=True)


def _client(
    answer: Callable[[_Sent], urllib3.BaseHTTPResponse],
) -> tuple[AgsClient, _Pool, _Tokens]:
    tokens, pool = _Tokens(), _Pool(answer)
    return AgsClient(pool, tokens), pool, tokens  # type: ignore[arg-type]


PLATFORM = Platform(id=1, issuer="https://lms.test", client_id="c", token_url="https://lms.test/t")


def test_a_score_uses_moodles_media_type_and_a_401_retries_once_with_a_new_token() -> None:
    def answer(sent: _Sent) -> urllib3.BaseHTTPResponse:
        return _response(401 if sent.headers["Authorization"] == "Bearer t0" else 200, b"{}")

    client, pool, tokens = _client(answer)
    body = {"userId": "u", CANVAS_SUBMISSION: {"new_submission": False}}
    client.post_score(PLATFORM, "https://lms.test/li/1?type_id=3", body)
    assert tokens.dropped == 1
    assert [s.headers["Authorization"] for s in pool.sent] == ["Bearer t0", "Bearer t1"]
    last = pool.sent[-1]
    assert last.headers["Content-Type"] == SCORE_TYPE
    assert last.headers["User-Agent"] == "Pathways-test"
    assert last.url == "https://lms.test/li/1/scores?type_id=3"
    assert last.body is not None
    assert json.loads(last.body)[CANVAS_SUBMISSION] == {"new_submission": False}


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
    client, _, _ = _client(lambda _sent: _response(status, body.encode()))
    with pytest.raises(LmsRequestError) as info:
        client.post_score(PLATFORM, "https://lms.test/li/1", {"userId": "u"})
    assert (info.value.retryable, info.value.config, info.value.status) == (
        retryable,
        config,
        status,
    )


def test_throttling_says_when_to_come_back() -> None:
    client, _, _ = _client(lambda _sent: _response(429, headers={"Retry-After": "7"}))
    with pytest.raises(LmsRequestError) as info:
        client.post_score(PLATFORM, "https://lms.test/li/1", {"userId": "u"})
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize(
    "failure",
    [
        ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
        ReadTimeoutError(None, "https://lms.test/li/1/scores", "Read timed out."),  # type: ignore[arg-type]
        NewConnectionError(None, "Connection refused"),  # type: ignore[arg-type]
    ],
)
def test_dropped_connections_and_timeouts_are_retryable(failure: Exception) -> None:
    def fail(_sent: _Sent) -> urllib3.BaseHTTPResponse:
        raise failure

    client, _, _ = _client(fail)
    with pytest.raises(LmsRequestError) as info:
        client.post_score(PLATFORM, "https://lms.test/li/1", {"userId": "u"})
    assert info.value.retryable


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (NewConnectionError(None, "Connection refused"), "connection was refused"),  # type: ignore[arg-type]
        (
            NameResolutionError("lms.test", None, socket.gaierror(-2, "Name not known")),  # type: ignore[arg-type]
            "host name was not found",
        ),
    ],
)
def test_an_unreachable_lms_is_not_called_slow(failure: Exception, words: str) -> None:
    """urllib3 counts both as connect timeouts: "did not answer in time" sent IT looking for a
    slow LMS instead of an unreachable one."""

    def fail(_sent: _Sent) -> urllib3.BaseHTTPResponse:
        raise failure

    client, _, _ = _client(fail)
    with pytest.raises(LmsRequestError) as info:
        client.post_score(PLATFORM, "https://lms.test/li/1", {"userId": "u"})
    assert info.value.retryable
    assert "could not connect to the LMS" in str(info.value)
    assert words in str(info.value)
    assert "in time" not in str(info.value)


def test_the_score_pool_sends_the_product_user_agent_over_one_kept_connection(
    tool_settings: Settings,
) -> None:
    seen: list[tuple[str, int]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.headers["User-Agent"], self.client_address[1]))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = AgsClient(make_score_pool(tool_settings, 2), _Tokens())  # type: ignore[arg-type]
        url = f"http://127.0.0.1:{server.server_port}/li/1"
        for _ in range(3):
            client.post_score(PLATFORM, url, {"userId": "u"})
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    assert [agent for agent, _port in seen] == [tool_settings.user_agent] * 3
    assert len({port for _agent, port in seen}) == 1, "a new connection per score"


@pytest.mark.parametrize(
    ("url", "adds"),
    [
        ("https://school.instructure.com/api/lti/courses/4021/line_items/77", True),
        ("https://canvas.school.edu/api/lti/courses/4021/line_items/77/", True),
        ("https://moodle.school.edu/mod/lti/services.php/2/lineitems/7/lineitem?type_id=3", False),
        ("https://lms.example/api/contexts/c1/lineitems/7", False),
        ("https://evil.example/x?u=/api/lti/courses/1/line_items/2", False),
    ],
)
def test_only_canvas_columns_collect_a_comment_per_score(url: str, adds: bool) -> None:
    assert adds_every_comment(url) is adds
