"""A badly behaved LMS answering the roster service (NRPS) and its token endpoint.

A scriptable fake LMS runs on loopback (`FakeLms`, also used by tests/grades/
test_ags_crafted.py): the token endpoint answers as scripted, every other request goes to
`lms.route(seen) -> Answer`, and every request is recorded with its headers. Expectations:
nothing lost (a failed sync keeps the roster), nothing hangs, a clear message, no 500.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import select

from lti_app.db import Database, utcnow
from lti_app.http import make_http_client
from lti_app.roster import services, sync_lease
from lti_app.roster.client import NrpsClient
from lti_app.roster.jobs import SyncResult, sync_roster
from lti_app.roster.models import RosterSync
from lti_app.settings import Settings
from lti_app.tool.client import (
    SCOPE_LINEITEM,
    SCOPE_NRPS,
    SCOPE_SCORE,
    TokenClient,
    _expires_at,
)
from lti_app.tool.keys import KeyRing
from lti_app.tool.models import Context, Membership, MembershipStatus, Person, Platform
from tests.conftest import POSTGRES_URL_ENV, ToolServer

ON_POSTGRES = bool(os.environ.get(POSTGRES_URL_ENV))
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
TEST_USER = "http://purl.imsglobal.org/vocab/lti/system/person#TestUser"
ALL_SCOPES = f"{SCOPE_NRPS} {SCOPE_LINEITEM} {SCOPE_SCORE}"
_numbers = itertools.count(1)


# --- the fake LMS ----------------------------------------------------------------------------


@dataclass
class Answer:
    """One scripted HTTP answer. `body` may be bytes, str, or anything JSON-encodable."""

    status: int = 200
    body: Any = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    """Seconds before the status line (a hang when longer than the client's read timeout)."""
    hold: bool = False
    """No status line until the test ends: a hang with no end of its own."""
    trickle: float | None = None
    """Send the body one byte at a time, this many seconds apart (never a silent gap)."""
    drop: bool = False
    """Close the connection without an answer."""


@dataclass(frozen=True)
class Seen:
    method: str
    target: str
    """Path and query string as requested."""
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


def _encode(body: Any) -> tuple[bytes, str]:
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/html; charset=utf-8"
    return json.dumps(body).encode(), "application/json"


class FakeLms:
    """A loopback LMS: `/token` issues tokens as scripted; everything else goes to `route`."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.granted: str | None = None
        """The token answer's `scope`; None echoes what was asked."""
        self.expires_in: Any = 3600
        self.token_answer: Callable[[Seen], Answer] | None = None
        self.route: Callable[[Seen], Answer] = lambda seen: Answer(404, {"error": "not found"})
        self._tokens = itertools.count(1)
        self.closing = threading.Event()
        """Set when the test ends: slow answers stop at once."""
        self.hung_up = threading.Event()
        """Set when a client hung up while an answer was still being sent."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.token_url = self.base + "/token"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def requests(self, path_prefix: str = "/", method: str | None = None) -> list[Seen]:
        with self.lock:
            return [
                s
                for s in self.seen
                if s.path.startswith(path_prefix) and (method is None or s.method == method)
            ]

    @property
    def token_requests(self) -> int:
        return len(self.requests("/token"))

    def _token(self, seen: Seen) -> Answer:
        if self.token_answer is not None:
            return self.token_answer(seen)
        asked = dict(parse_qsl(seen.body.decode())).get("scope", "")
        return Answer(
            200,
            {
                "access_token": f"tok-{next(self._tokens)}-{uuid.uuid4().hex[:6]}",
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "scope": asked if self.granted is None else self.granted,
            },
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        lms = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with lms.lock:
                    lms.seen.append(seen)
                answer = lms._token(seen) if seen.path == "/token" else lms.route(seen)
                self._write(answer)

            def _write(self, answer: Answer) -> None:
                try:
                    if answer.hold:
                        lms.closing.wait()
                    elif answer.delay:
                        lms.closing.wait(answer.delay)
                    if answer.drop:
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    body, content_type = _encode(answer.body)
                    if answer.status in (204, 304):
                        body = b""
                    names = {k.lower() for k, _ in answer.headers}
                    head = [f"HTTP/1.1 {answer.status} X"]
                    head += [f"{k}: {v}" for k, v in answer.headers]
                    if "content-type" not in names and body:
                        head.append(f"Content-Type: {content_type}")
                    if "content-length" not in names:
                        head.append(f"Content-Length: {len(body)}")
                    # No keep-alive: a client the test does not close leaves no socket open.
                    head.append("Connection: close")
                    self.close_connection = True
                    # Raw UTF-8 header bytes, as PHP sends them (Moodle's curly quotes).
                    self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode())
                    if answer.trickle is None:
                        self.wfile.write(body)
                    else:
                        for i in range(len(body)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            if lms.closing.wait(answer.trickle):
                                self.connection.shutdown(socket.SHUT_RDWR)
                                break
                    self.wfile.flush()
                except OSError:  # the client gave up: fine
                    if not lms.closing.is_set():
                        lms.hung_up.set()
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server's names

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def stop(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def register_platform(db: Database, lms: FakeLms) -> int:
    n = next(_numbers)
    with db.begin() as session:
        platform = Platform(
            issuer=f"{lms.base}/crafted-{n}-{uuid.uuid4().hex[:6]}",
            client_id=f"crafted-{n}",
            name="Crafted LMS",
            auth_login_url=lms.url("/auth"),
            token_url=lms.token_url,
            jwks_url=lms.url("/jwks"),
        )
        session.add(platform)
        session.flush()
        return platform.id


@pytest.fixture
def make_lms() -> Iterator[Callable[[], FakeLms]]:
    made: list[FakeLms] = []

    def make() -> FakeLms:
        lms = FakeLms()
        made.append(lms)
        return lms

    yield make
    for lms in made:
        lms.stop()


# --- a course whose roster comes from the fake LMS -------------------------------------------


def member(user_id: Any, role: str = LEARNER, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"user_id": user_id, "roles": [role], "status": "Active"}
    if isinstance(user_id, str):
        data.update(name=f"Student {user_id}", email=f"{user_id}@lms.test")
    data.update(fields)
    return data


def page(members: Any, *, next_url: str | None = None, **extra: Any) -> Answer:
    headers = [("Link", f'<{next_url}>; rel="next"')] if next_url else []
    body = {"id": "x", "context": {"id": "c"}, "members": members, **extra}
    return Answer(
        200,
        body,
        [*headers, ("Content-Type", "application/vnd.ims.lti-nrps.v2.membershipcontainer+json")],
    )


@dataclass
class Roster:
    lms: FakeLms
    db: Database
    settings: Settings
    platform_id: int
    context_id: int
    members_url: str
    timeout: float = 2.0
    clients: list[httpx.Client] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def close(self) -> None:
        self.lms.closing.set()  # a sync still running ends now, before its database goes
        for thread in self.threads:
            thread.join(15)
        for http in self.clients:
            http.close()

    def client(self) -> NrpsClient:
        settings = dataclasses.replace(
            self.settings, http_read_timeout=self.timeout, http_connect_timeout=self.timeout
        )
        http = make_http_client(settings)
        self.clients.append(http)
        keyring = KeyRing(secret=self.settings.effective_key_secret)
        return NrpsClient(http, TokenClient(self.db, http, keyring))

    def sync(self, **kwargs: Any) -> SyncResult:
        return sync_roster(self.db, self.client(), context_id=self.context_id, **kwargs)

    def sync_bounded(self, seconds: float) -> SyncResult | BaseException | None:
        """Run a sync in a thread: its result or error, or None if it is still running after
        `seconds` (a guard that keeps a sync that never ends from hanging the suite)."""
        out: list[SyncResult | BaseException] = []

        def run() -> None:
            try:
                out.append(self.sync())
            except BaseException as err:
                out.append(err)

        thread = threading.Thread(target=run, daemon=True)
        self.threads.append(thread)
        thread.start()
        thread.join(seconds)
        return out[0] if out else None

    def statuses(self) -> dict[str, MembershipStatus]:
        with self.db.session_factory() as session:
            rows = session.execute(
                select(Person.sub, Membership.status)
                .join(Membership, Membership.person_id == Person.id)
                .where(Membership.context_id == self.context_id)
            )
            return {sub: status for sub, status in rows}  # noqa: C416 - Result acts as a mapping

    def people(self) -> dict[str, Person]:
        with self.db.session_factory() as session:
            rows = session.scalars(
                select(Person)
                .join(Membership, Membership.person_id == Person.id)
                .where(Membership.context_id == self.context_id)
            )
            return {p.sub: p for p in rows}

    def sync_row(self) -> RosterSync:
        with self.db.session_factory() as session:
            row = services.get_roster_sync(session, context_id=self.context_id)
            assert row is not None
            return row

    def seed(self, subs: list[str]) -> None:
        """A first, successful sync with these learners (all active)."""
        saved = self.lms.route
        self.lms.route = lambda seen: page([member(s) for s in subs])
        result = self.sync()
        assert result.ok, result.message
        self.lms.route = saved
        assert set(self.statuses()) == set(subs)
        with self.db.begin() as session:  # let the next sync run at once
            row = services.get_roster_sync(session, context_id=self.context_id)
            assert row is not None
            row.succeeded_at = utcnow() - timedelta(hours=1)

    def members_requests(self) -> list[Seen]:
        return self.lms.requests("/nrps/")


@pytest.fixture
def make_roster(
    make_lms: Callable[[], FakeLms], db: Database, tool_server: ToolServer
) -> Iterator[Callable[..., Roster]]:
    # The tool makes its signing key on first use: make it before a token request signs.
    httpx.get(tool_server.url + "/.well-known/jwks.json", timeout=10).raise_for_status()

    def make(lms: FakeLms | None = None, *, path: str = "/nrps/c1/members") -> Roster:
        lms = lms or make_lms()
        platform_id = register_platform(db, lms)
        with db.begin() as session:
            context = Context(platform_id=platform_id, context_id=f"crafted-{uuid.uuid4().hex}")
            session.add(context)
            session.flush()
            sync_lease.remember_nrps_url(session, context_id=context.id, nrps_url=lms.url(path))
            context_id = context.id
        made.append(Roster(lms, db, tool_server.settings, platform_id, context_id, lms.url(path)))
        return made[-1]

    made: list[Roster] = []
    yield make
    for roster in made:
        roster.close()


@pytest.fixture
def roster(make_roster: Callable[..., Roster]) -> Roster:
    return make_roster()


def assert_kept(roster: Roster, subs: list[str], result: SyncResult) -> None:
    """The sync failed with a message and the class stayed as it was."""
    assert not result.ok
    assert result.message
    assert roster.statuses() == dict.fromkeys(subs, MembershipStatus.ACTIVE)
    assert roster.sync_row().last_error == result.message


# --- 1. Link: rel="next" -----------------------------------------------------------------------


def test_a_next_link_to_the_same_page_is_followed_once(roster: Roster) -> None:
    roster.lms.route = lambda seen: page([member("s1")], next_url=roster.lms.base + seen.target)
    result = roster.sync_bounded(20)
    assert isinstance(result, SyncResult), result
    assert result.ok, result.message
    assert len(roster.members_requests()) == 1
    assert roster.statuses() == {"s1": MembershipStatus.ACTIVE}


def test_a_next_link_cycle_a_b_a_ends(roster: Roster) -> None:
    a = roster.members_url + "?role=" + LEARNER.replace("#", "%23") + "&p=a"
    b = roster.members_url + "?p=b"

    def route(seen: Seen) -> Answer:
        if seen.query.get("p") == "b":
            return page([member("s2")], next_url=a)
        return page([member("s1")], next_url=b)

    roster.lms.route = route
    result = roster.sync_bounded(20)
    assert isinstance(result, SyncResult), result
    assert result.ok, result.message
    assert len(roster.members_requests()) <= 3
    assert set(roster.statuses()) == {"s1", "s2"}


def test_curly_quotes_and_lowercase_link_header_are_followed(roster: Roster) -> None:
    second = roster.members_url + "?page=2"

    def route(seen: Seen) -> Answer:
        if seen.query.get("page") == "2":
            return page([member("s2")])
        answer = page([member("s1")])
        answer.headers = [("link", f"<{second}>; rel=\u201cnext\u201d")]
        return answer

    roster.lms.route = route
    result = roster.sync()
    assert result.ok, result.message
    assert set(roster.statuses()) == {"s1", "s2"}
    assert roster.members_requests()[-1].target.endswith("?page=2")


def test_next_link_url_case_is_kept(roster: Roster) -> None:
    second = roster.members_url + "?Page=2&Token=AbC"

    def route(seen: Seen) -> Answer:
        if seen.query.get("Token") == "AbC":
            return page([member("s2")])
        return page([member("s1")], next_url=second)

    roster.lms.route = route
    result = roster.sync()
    assert result.ok, result.message
    assert set(roster.statuses()) == {"s1", "s2"}


def test_a_relative_next_url_is_resolved_against_the_page(roster: Roster) -> None:
    def route(seen: Seen) -> Answer:
        if seen.query.get("page") == "2":
            return page([member("s2")])
        return page([member("s1")], next_url="/nrps/c1/members?page=2")

    roster.lms.route = route
    result = roster.sync()
    assert result.ok, result.message
    assert set(roster.statuses()) == {"s1", "s2"}


def test_a_next_link_to_another_host_gets_no_token(
    roster: Roster, make_lms: Callable[[], FakeLms]
) -> None:
    foreign = make_lms()
    foreign.route = lambda seen: page([member("evil")])
    roster.lms.route = lambda seen: page([member("s1")], next_url=foreign.url("/steal?page=2"))
    result = roster.sync()
    leaked = [s for s in foreign.seen if s.authorization]
    assert not leaked, f"token sent to {foreign.base}: {leaked[0].authorization}"
    assert "evil" not in roster.statuses()
    assert result.message or result.ok


# --- 2. members of the wrong shape ------------------------------------------------------------


def test_members_with_wrong_types_are_skipped_or_stored_safely(roster: Roster) -> None:
    long_name = "N" * 10_000
    roster.lms.route = lambda seen: page(
        [
            member("ok1"),
            {"roles": [LEARNER], "name": "no id"},
            member(None),
            member(12345),  # a number: stored as its text
            member(1.5),
            member(["x"]),
            member({"id": "x"}),
            member("num-fields", name=42, email=7, given_name=[], family_name={}),
            member("long", name=long_name, email="e" * 10_000),
            member("odd-status", status="Suspended"),
            member("no-status", status=None),
            "not an object",
            None,
            member("ok2"),
        ]
    )
    result = roster.sync()
    assert result.ok, result.message
    people = roster.people()
    assert set(people) == {"ok1", "12345", "num-fields", "long", "odd-status", "no-status", "ok2"}
    assert (
        people["num-fields"].name in ("", None) or people["num-fields"].name == "Student num-fields"
    )
    assert len(people["long"].name) <= 1024
    assert len(people["long"].email) <= 512
    assert all(s is MembershipStatus.ACTIVE for s in roster.statuses().values())


def test_a_nul_character_in_a_name_does_not_break_the_sync(roster: Roster) -> None:
    roster.lms.route = lambda seen: page(
        [member("s1", name="Ann\x00Lee", email="a\x00@x.test"), member("s2\x00b"), member("s3")]
    )
    try:
        result = roster.sync()
    except Exception as err:
        pytest.fail(f"the sync raised {type(err).__name__}: {err}")
    assert result.ok, result.message
    assert {"s1", "s3"} <= set(roster.statuses())


def test_a_boolean_or_empty_user_id_is_not_a_person(roster: Roster) -> None:
    roster.lms.route = lambda seen: page([member("s1"), member(True), member(""), member("  ")])
    result = roster.sync()
    assert result.ok, result.message
    assert set(roster.statuses()) == {"s1"}


def test_roles_as_a_single_string_keep_the_learner(roster: Roster) -> None:
    roster.seed(["s1", "s2"])
    roster.lms.route = lambda seen: page([member("s1"), member("s2", roles=LEARNER)])
    result = roster.sync()
    assert result.ok, result.message
    with roster.db.session_factory() as session:
        learners = {
            s.person_id for s in services.list_students(session, context_id=roster.context_id)
        }
    assert len(learners) == 2


def test_canvas_test_student_is_not_one_of_the_class(roster: Roster) -> None:
    # Canvas's roster lists the Student View's "Test Student" as Learner + TestUser.
    roster.lms.route = lambda seen: page(
        [member("s1"), member("fake", roles=[LEARNER, TEST_USER], name="Test Student")]
    )
    result = roster.sync()
    assert result.ok, result.message
    people = {sub: p.id for sub, p in roster.people().items()}
    with roster.db.session_factory() as session:
        students = services.list_students(
            session, context_id=roster.context_id, include_inactive=True
        )
        picked = services.student_ids_in_course(
            session, context_id=roster.context_id, person_ids=people.values()
        )
    assert [s.name for s in students] == ["Student s1"]
    assert picked == {people["s1"]}


def test_duplicate_user_ids_across_pages_make_one_person(roster: Roster) -> None:
    def route(seen: Seen) -> Answer:
        if seen.query.get("page") == "2":
            return page([member("s1", name="Second Spelling"), member("s3")])
        return page(
            [member("s1"), member("s2"), member("s2")], next_url=roster.members_url + "?page=2"
        )

    roster.lms.route = route
    result = roster.sync()
    assert result.ok, result.message
    assert set(roster.statuses()) == {"s1", "s2", "s3"}
    assert roster.people()["s1"].name == "Second Spelling"  # the last page wins


def test_duplicate_user_ids_are_counted_once(roster: Roster) -> None:
    def route(seen: Seen) -> Answer:
        if seen.query.get("page") == "2":
            return page([member("s1"), member("s3")])
        return page([member("s1"), member("s2")], next_url=roster.members_url + "?page=2")

    roster.lms.route = route
    result = roster.sync()
    assert result.ok, result.message
    assert result.members == 3
    assert roster.sync_row().member_count == 3


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x", "members": None},
        {"id": "x", "members": {"user_id": "s1"}},
        {"errors": [{"message": "internal"}]},
        [{"user_id": "s1", "roles": [LEARNER]}],
        "null",
    ],
    ids=["members-null", "members-object", "error-json", "top-level-list", "json-null"],
)
def test_a_body_without_a_members_list_keeps_the_class(roster: Roster, body: Any) -> None:
    roster.seed(["s1", "s2", "s3"])
    if body == "null":
        body = b"null"
    roster.lms.route = lambda seen: Answer(200, body, [("Content-Type", "application/json")])
    result = roster.sync()
    assert_kept(roster, ["s1", "s2", "s3"], result)


def test_a_second_page_without_members_keeps_the_class(roster: Roster) -> None:
    roster.seed(["s1", "s2", "s3"])

    def route(seen: Seen) -> Answer:
        if seen.query.get("page") == "2":
            return page({"oops": True})
        return page([member("s1")], next_url=roster.members_url + "?page=2")

    roster.lms.route = route
    result = roster.sync()
    assert_kept(roster, ["s1", "s2", "s3"], result)


@pytest.mark.parametrize(
    "members",
    [
        [],
        [member("fake", roles=[LEARNER, TEST_USER])],
        [member("t1", role=INSTRUCTOR)],
    ],
    ids=["nobody", "test-student-only", "teacher-only"],
)
def test_a_roster_listing_no_students_keeps_the_class_and_says_why(
    roster: Roster, members: list[dict[str, Any]]
) -> None:
    # A concluded Canvas course: its roster lists active enrolments only, so none.
    roster.seed(["s1", "s2", "s3"])
    roster.lms.route = lambda seen: page(members)
    result = roster.sync(role_filter=None)
    assert not result.ok
    assert "listed no students" in result.message
    learners = {s: roster.statuses()[s] for s in ("s1", "s2", "s3")}
    assert learners == dict.fromkeys(["s1", "s2", "s3"], MembershipStatus.ACTIVE)
    assert roster.sync_row().last_error == result.message


def test_an_empty_roster_of_a_course_without_students_is_a_success(roster: Roster) -> None:
    roster.lms.route = lambda seen: page([])
    result = roster.sync()
    assert result.ok, result.message
    assert roster.sync_row().last_error == ""


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, "<html><body>Please log in</body></html>"),
        Answer(200, b"{not json", [("Content-Type", "application/json")]),
        Answer(200, b""),
    ],
    ids=["html-200", "broken-json", "empty-200"],
)
def test_a_non_json_200_fails_with_a_message_and_keeps_the_class(
    roster: Roster, answer: Answer
) -> None:
    roster.seed(["s1", "s2"])
    roster.lms.route = lambda seen: answer
    result = roster.sync()
    assert_kept(roster, ["s1", "s2"], result)
    assert "not JSON" in result.message


def test_a_401_then_200_after_a_new_token(roster: Roster) -> None:
    calls = itertools.count()
    roster.lms.route = lambda seen: (
        Answer(401, {"error": "invalid_token"}) if next(calls) == 0 else page([member("s1")])
    )
    result = roster.sync()
    assert result.ok, result.message
    assert roster.lms.token_requests == 2
    tokens = [s.authorization for s in roster.members_requests()]
    assert len(tokens) == 2
    assert tokens[0] != tokens[1]


def test_a_401_twice_names_the_web_server_problem(roster: Roster) -> None:
    roster.seed(["s1"])
    roster.lms.route = lambda seen: Answer(401, {"error": "invalid_token"})
    result = roster.sync()
    assert_kept(roster, ["s1"], result)
    assert "Authorization header" in result.message
    assert roster.lms.token_requests == 2  # the seed's (cached), then one new token only


def test_a_401_on_a_later_page_says_access_was_withdrawn_not_the_web_server(
    roster: Roster,
) -> None:
    roster.seed(["s1", "s2"])

    def route(seen: Seen) -> Answer:
        if seen.query.get("page") == "2":  # say, the developer key switched off mid-sync
            return Answer(401, {"errors": [{"message": "Invalid access token"}]})
        return page([member("s1")], next_url=roster.members_url + "?page=2")

    roster.lms.route = route
    result = roster.sync()
    assert_kept(roster, ["s1", "s2"], result)
    assert "CGIPassAuth" not in result.message
    assert "withdrew" in result.message
    assert "try again" in result.message


@pytest.mark.parametrize(
    ("status", "headers", "words"),
    [
        (403, [], "refused the course roster (403)"),
        (404, [], "does not exist (404)"),
        (500, [], "busy or unavailable (500)"),
        (503, [("Retry-After", "120")], "busy or unavailable (503)"),
        (429, [], "busy or unavailable (429)"),
        (429, [("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")], "busy or unavailable (429)"),
        (429, [("Retry-After", "soon")], "busy or unavailable (429)"),
        (418, [], "answered 418"),
        (302, [("Location", "https://elsewhere.test/login")], "answered 302"),
    ],
)
def test_error_statuses_fail_with_a_message_and_keep_the_class(
    roster: Roster, status: int, headers: list[tuple[str, str]], words: str
) -> None:
    roster.seed(["s1", "s2"])
    roster.lms.route = lambda seen: Answer(status, "<html>error</html>", headers)
    result = roster.sync()
    assert_kept(roster, ["s1", "s2"], result)
    assert words in result.message


def test_a_hung_roster_page_times_out_and_keeps_the_class(roster: Roster) -> None:
    roster.seed(["s1", "s2"])
    roster.timeout = 0.5
    # The LMS holds the page until the test ends: only a sync that gives up can finish.
    roster.lms.route = lambda seen: Answer(200, page([member("s1")]).body, hold=True)
    result = roster.sync_bounded(30)
    assert result is not None, "the sync was still waiting for the hung LMS after 30 s"
    assert isinstance(result, SyncResult), result
    assert_kept(roster, ["s1", "s2"], result)
    assert "did not answer" in result.message


def test_a_roster_page_that_never_finishes_is_given_up(roster: Roster) -> None:
    roster.seed(["s1", "s2"])
    roster.timeout = 1.0
    # A byte every 0.2 s (never a silent gap) of a page that would take hours to arrive.
    body = json.dumps({"members": [member("s1")], "pad": " " * 100_000}).encode()
    roster.lms.route = lambda seen: Answer(200, body, trickle=0.2)
    roster.lms.hung_up.clear()
    result = roster.sync_bounded(30)
    assert result is not None, "the sync was still reading the trickling page after 30 s"
    assert isinstance(result, SyncResult)
    assert_kept(roster, ["s1", "s2"], result)
    # The LMS sees the hang-up at its next byte; 10 s only keeps a failure from hanging.
    assert roster.lms.hung_up.wait(10), "the sync ended but left the LMS's connection open"


def test_a_50_mb_roster_page_is_refused(roster: Roster) -> None:
    roster.seed(["s1", "s2"])
    roster.timeout = 10
    big = json.dumps({"members": [member("s1"), member("s2", name="x" * (50 * 1024 * 1024))]})
    body = big.encode()
    roster.lms.route = lambda seen: Answer(200, body)
    result = roster.sync()
    assert not result.ok
    assert "large" in result.message.lower() or "size" in result.message.lower()


# --- 3. a sync that fails halfway ------------------------------------------------------------


@pytest.mark.parametrize(
    "second",
    [
        Answer(500, "oops"),
        Answer(drop=True),
        Answer(200, "<html>maintenance</html>"),
        Answer(404, "gone"),
        Answer(200, b"", delay=3),
    ],
    ids=["500", "dropped", "html", "404", "timeout"],
)
def test_a_sync_that_fails_halfway_deactivates_no_one(roster: Roster, second: Answer) -> None:
    roster.seed(["s1", "s2", "s3", "s4"])
    roster.timeout = 0.5

    def route(seen: Seen) -> Answer:
        if seen.query.get("page") == "2":
            return second
        return page([member("s1"), member("s2")], next_url=roster.members_url + "?page=2")

    roster.lms.route = route
    result = roster.sync_bounded(15)
    assert isinstance(result, SyncResult), result
    assert_kept(roster, ["s1", "s2", "s3", "s4"], result)


def test_members_gone_only_after_every_page_arrived(roster: Roster) -> None:
    roster.seed(["s1", "s2", "s3", "s4"])

    def route(seen: Seen) -> Answer:
        if seen.query.get("page") == "2":
            return page([member("s3")])
        return page([member("s1")], next_url=roster.members_url + "?page=2")

    roster.lms.route = route
    result = roster.sync()
    assert result.ok
    assert result.deactivated == 2
    assert roster.statuses() == {
        "s1": MembershipStatus.ACTIVE,
        "s2": MembershipStatus.INACTIVE,
        "s3": MembershipStatus.ACTIVE,
        "s4": MembershipStatus.INACTIVE,
    }


# --- 6. token endpoint answers, seen from the roster --------------------------------------------


@pytest.mark.parametrize(
    ("token_answer", "words"),
    [
        (
            Answer(200, {"token_type": "Bearer", "expires_in": 3600}),
            "refused Pathways a service token",
        ),
        (Answer(200, {"access_token": "", "expires_in": 3600}), "refused Pathways a service token"),
        (Answer(400, {"error": "invalid_client"}), "invalid_client"),
        (Answer(401, {"error": "invalid_client"}), "client ID"),
        (Answer(200, "<html>Moodle login</html>"), "refused Pathways a service token"),
        (Answer(400, {"error": "invalid_scope"}), "course roster (Names and Role Provisioning)"),
        (Answer(503, "down"), "token endpoint answered 503"),
        (Answer(drop=True), "did not answer"),
    ],
    ids=[
        "no-token",
        "empty-token",
        "400-invalid_client",
        "401",
        "html",
        "invalid_scope",
        "503",
        "drop",
    ],
)
def test_token_refusals_fail_the_sync_with_a_message(
    roster: Roster, token_answer: Answer, words: str
) -> None:
    roster.lms.route = lambda seen: page([member("s1")])
    roster.lms.token_answer = lambda seen: token_answer
    result = roster.sync()
    assert not result.ok
    assert words in result.message
    assert roster.members_requests() == []


def test_a_token_address_stored_before_addresses_were_checked_fails_the_sync_plainly(
    roster: Roster,
) -> None:
    """A port that is not a number passes urlsplit but not httpx: the sync must end with the
    address in its message, not an error nobody sees in the worker's log."""
    with roster.db.begin() as session:
        platform = session.get(Platform, roster.platform_id)
        assert platform is not None
        platform.token_url = "https://lms.example:443a/token"
    roster.lms.route = lambda seen: page([member("s1")])
    result = roster.sync()
    assert not result.ok
    assert "https://lms.example:443a/token did not answer" in result.message
    assert roster.members_requests() == []


def test_a_narrower_scope_names_the_roster_service(roster: Roster) -> None:
    roster.lms.granted = f"{SCOPE_LINEITEM} {SCOPE_SCORE}"
    roster.lms.route = lambda seen: page([member("s1")])
    result = roster.sync()
    assert not result.ok
    assert "course roster (Names and Role Provisioning)" in result.message
    assert roster.members_requests() == []


@pytest.mark.parametrize(
    "expires_in",
    ["3600", None, -5, "soon", 0, [1]],
    ids=["string", "null", "negative", "garbage", "zero", "list"],
)
def test_odd_expires_in_still_gives_a_reusable_token(roster: Roster, expires_in: Any) -> None:
    roster.lms.expires_in = expires_in

    def route(seen: Seen) -> Answer:
        if seen.query.get("page") == "2":
            return page([member("s2")])
        return page([member("s1")], next_url=roster.members_url + "?page=2")

    roster.lms.route = route
    assert roster.sync().ok
    assert roster.lms.token_requests == 1


@pytest.mark.parametrize("quoted", ["300", " 300 ", "300.0"])
def test_a_quoted_expires_in_is_the_number_it_quotes(quoted: str) -> None:
    """Some servers quote it: a five-minute token taken for an hour's would be sent expired."""
    before = utcnow()
    expires_at = _expires_at(quoted)
    assert before + timedelta(seconds=299) <= expires_at <= utcnow() + timedelta(seconds=300)


def test_an_odd_token_type_is_still_used_as_bearer(roster: Roster) -> None:
    roster.lms.token_answer = lambda seen: Answer(
        200, {"access_token": "abc", "token_type": "mac", "expires_in": 3600}
    )
    roster.lms.route = lambda seen: page([member("s1")])
    assert roster.sync().ok
    assert roster.members_requests()[0].authorization == "Bearer abc"


def test_a_short_lived_token_is_reused_within_its_life(roster: Roster) -> None:
    roster.lms.expires_in = 100

    def route(seen: Seen) -> Answer:
        n = int(seen.query.get("page", "1"))
        nxt = roster.members_url + f"?page={n + 1}" if n < 4 else None
        return page([member(f"s{n}")], next_url=nxt)

    roster.lms.route = route
    assert roster.sync().ok
    assert roster.lms.token_requests == 1


@pytest.mark.parametrize("raw", [b"1e400", b"1000000000000"], ids=["infinity", "1e12"])
def test_a_huge_expires_in_does_not_crash(roster: Roster, raw: bytes) -> None:
    body = b'{"access_token": "abc", "token_type": "Bearer", "expires_in": ' + raw + b"}"
    roster.lms.token_answer = lambda seen: Answer(200, body, [("Content-Type", "application/json")])
    roster.lms.route = lambda seen: page([member("s1")])
    try:
        result = roster.sync()
    except Exception as err:
        pytest.fail(f"the sync raised {type(err).__name__}: {err}")
    assert result.ok, result.message


# --- Retry-After: an LMS that asks Pathways to wait -----------------------------------------


def _asked_to_wait(roster: Roster, result: SyncResult, seconds: float) -> None:
    """The refusal kept the class, carried the LMS's wait, and holds launch syncs until then."""
    assert not result.ok
    assert result.retry_after == seconds
    row = roster.sync_row()
    assert row.lease_until is not None
    assert abs((row.lease_until - utcnow()).total_seconds() - seconds) < 30
    assert sync_lease.is_asked_to_wait(row, utcnow())


def test_a_roster_page_refused_with_429_and_retry_after_holds_launch_syncs_until_then(
    roster: Roster,
) -> None:
    """Canvas counts every request against one budget per developer key: a teacher's launch
    that asked again while the LMS said to wait would only keep the budget empty."""
    roster.seed(["s1", "s2"])
    roster.lms.route = lambda seen: Answer(429, "slow down", [("Retry-After", "600")])
    asked = len(roster.members_requests())
    result = roster.sync()
    assert_kept(roster, ["s1", "s2"], result)
    _asked_to_wait(roster, result, 600)
    assert len(roster.members_requests()) == asked + 1

    # A teacher's launch meanwhile (a background sync, at most every few minutes) waits.
    launched = roster.sync(min_interval=timedelta(minutes=10))
    assert launched.skipped
    assert len(roster.members_requests()) == asked + 1

    # A teacher's Refresh asks at once all the same, and a success ends the wait.
    roster.lms.route = lambda seen: page([member("s1"), member("s2")])
    assert roster.sync().ok
    assert roster.sync_row().lease_until is None
    with roster.db.begin() as session:  # as if the last success were long ago
        row = services.get_roster_sync(session, context_id=roster.context_id)
        assert row is not None
        row.succeeded_at = utcnow() - timedelta(hours=1)
    assert not roster.sync(min_interval=timedelta(minutes=10)).skipped


def test_a_token_refused_with_429_and_retry_after_holds_launch_syncs_until_then(
    roster: Roster,
) -> None:
    roster.lms.route = lambda seen: page([member("s1")])
    roster.lms.token_answer = lambda seen: Answer(
        429, {"error": "slow_down"}, [("Retry-After", "120")]
    )
    result = roster.sync()
    assert "throttling" in result.message
    _asked_to_wait(roster, result, 120)
    assert roster.sync(min_interval=timedelta(minutes=10)).skipped
    assert roster.members_requests() == []


def test_a_refusal_without_retry_after_does_not_hold_launch_syncs(roster: Roster) -> None:
    roster.seed(["s1"])
    roster.lms.route = lambda seen: Answer(429, "slow down")
    result = roster.sync()
    assert not result.ok
    assert result.retry_after is None
    assert roster.sync_row().lease_until is None
    assert not roster.sync(min_interval=timedelta(minutes=10)).skipped
