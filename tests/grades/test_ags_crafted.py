"""A badly behaved LMS answering the gradebook service (AGS) and its token endpoint.

The fake LMS of tests/roster/test_nrps_crafted.py plays a small gradebook (`FakeGradebook`:
line items under /ags/c1/lineitems, scores POSTed to <item>/scores); each test scripts the
answers it needs through `gradebook.override`. Expectations: no score lost (sent, or kept
and retried, or failed with a message the teacher sees), nothing hangs, the worker survives.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.db import Database, utcnow
from lti_app.grades.columns import set_gradebook_competencies
from lti_app.grades.gradebook import remember_ags_claim
from lti_app.grades.models import Gradebook, LineItem, LineItemState, OutboxStatus
from lti_app.grades.outbox_status import list_problems, retry
from lti_app.grades.worker import GradeWorker
from lti_app.tool.client import SCOPE_LINEITEM, SCOPE_NRPS, SCOPE_SCORE
from lti_app.tool.models import Context, Membership, MembershipStatus, Person
from tests.conftest import ToolServer
from tests.grades.conftest import GradeCourse, outbox_rows
from tests.roster.test_nrps_crafted import (
    Answer,
    FakeLms,
    Seen,
    make_lms,  # noqa: F401 - fixture
    register_platform,
)

SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEMS_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
CONTAINER = "/ags/c1/lineitems"


class FakeGradebook:
    """Line items and scores on a FakeLms; `override(seen)` answers first when it returns."""

    def __init__(self, lms: FakeLms, *, item_suffix: str = "") -> None:
        self.lms = lms
        self.item_suffix = item_suffix
        self.items: dict[int, dict[str, Any]] = {}
        self.scores: list[tuple[int, dict[str, Any], Seen]] = []
        self.created = 0
        self._ids = itertools.count(1)
        self.override: Callable[[Seen], Answer | None] | None = None
        self.lock = threading.Lock()
        lms.route = self.route

    @property
    def container_url(self) -> str:
        return self.lms.url(CONTAINER)

    def item_url(self, n: int) -> str:
        return self.lms.url(f"{CONTAINER}/{n}") + self.item_suffix

    def item_json(self, n: int) -> dict[str, Any]:
        return {**self.items[n], "id": self.item_url(n)}

    def accepted(self) -> dict[tuple[int, str], dict[str, Any]]:
        """(item number, userId) -> the last score body accepted."""
        with self.lock:
            return {(n, body["userId"]): body for n, body, _ in self.scores}

    def route(self, seen: Seen) -> Answer:
        if self.override is not None:
            answer = self.override(seen)
            if answer is not None:
                return answer
        path = seen.path.rstrip("/")
        if path == CONTAINER:
            if seen.method == "POST":
                n = next(self._ids)
                with self.lock:
                    self.items[n] = json.loads(seen.body)
                    self.created += 1
                return Answer(201, self.item_json(n))
            return Answer(
                200, [self.item_json(n) for n in self.items], [("Content-Type", LINEITEMS_TYPE)]
            )
        parts = path[len(CONTAINER) + 1 :].split("/") if path.startswith(CONTAINER + "/") else []
        if not parts or not parts[0].isdigit() or int(parts[0]) not in self.items:
            return Answer(404, {"error": "not found"})
        n = int(parts[0])
        if parts[1:] == ["scores"] and seen.method == "POST":
            with self.lock:
                self.scores.append((n, json.loads(seen.body), seen))
            return Answer(200, b"")
        if parts[1:]:
            return Answer(404, {"error": "not found"})
        if seen.method == "PUT":
            with self.lock:
                self.items[n] = {k: v for k, v in json.loads(seen.body).items() if k != "id"}
        return Answer(200, self.item_json(n))


def score_posts(lms: FakeLms) -> list[Seen]:
    return [s for s in lms.seen if s.method == "POST" and s.path.rstrip("/").endswith("/scores")]


@pytest.fixture
def make_ags(
    make_lms: Callable[[], FakeLms],  # noqa: F811
    db: Database,
    tool_server: ToolServer,
) -> Iterator[Callable[..., tuple[GradeCourse, FakeGradebook]]]:
    httpx.get(tool_server.url + "/.well-known/jwks.json", timeout=10).raise_for_status()
    made: list[GradeCourse] = []

    def make(*, students: int = 3, item_suffix: str = "") -> tuple[GradeCourse, FakeGradebook]:
        lms = make_lms()
        gradebook = FakeGradebook(lms, item_suffix=item_suffix)
        platform_id = register_platform(db, lms)
        with db.begin() as session:
            context = Context(platform_id=platform_id, context_id=f"ags-{uuid.uuid4().hex}")
            session.add(context)
            session.flush()
            people: dict[str, int] = {}
            for sub, learner in [("teacher", False)] + [(f"s{i}", True) for i in range(students)]:
                person = Person(platform_id=platform_id, sub=sub, name=sub)
                session.add(person)
                session.flush()
                session.add(
                    Membership(
                        context_id=context.id,
                        person_id=person.id,
                        roles=[],
                        status=MembershipStatus.ACTIVE,
                        is_learner=learner,
                        is_teacher=not learner,
                    )
                )
                people[sub] = person.id
            competency = create_competency(
                session, context_id=context.id, code="C1", title="Competency 1"
            )
            remember_ags_claim(
                session,
                context_id=context.id,
                claim={
                    "lineitems": gradebook.container_url,
                    "scope": [SCOPE_LINEITEM, SCOPE_SCORE],
                },
                resource_link_id=None,
            )
            set_gradebook_competencies(
                session, context_id=context.id, competency_ids=[competency.id]
            )
            teacher = people.pop("teacher")
            course = GradeCourse(
                lms=None,  # type: ignore[arg-type]
                db=db,
                lms_context_id=context.context_id,
                context_id=context.id,
                platform_id=platform_id,
                teacher_id=teacher,
                students=people,
                competency_ids=[competency.id],
                settings=tool_server.settings,
            )
        made.append(course)
        return course, gradebook

    yield make
    for course in made:
        for worker in course.workers:
            worker.close()


def line_item(course: GradeCourse) -> LineItem:
    (item,) = course.line_items().values()
    return item


def remote_item(course: GradeCourse, **fields: Any) -> dict[str, Any]:
    """The JSON of a line item the LMS already has for our competency."""
    ours = line_item(course)
    return {
        "label": ours.label,
        "scoreMaximum": float(ours.score_maximum),
        "resourceId": ours.resource_id,
        "tag": ours.tag,
        **fields,
    }


def drain_bounded(worker: GradeWorker, seconds: float) -> tuple[bool, BaseException | None]:
    """Drain in a thread, asking it to stop after `seconds`: (ended on its own, its error)."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.drain(stop)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    ended = not thread.is_alive()
    stop.set()
    thread.join(10)
    return ended, (errors[0] if errors else None)


def all_sent(course: GradeCourse, gradebook: FakeGradebook) -> None:
    counts = course.counts()
    assert counts[OutboxStatus.SENT] == len(course.students), counts
    assert {user for _, user in gradebook.accepted()} == set(course.students)


# --- 4. line items: wrong shapes, URLs, paging ------------------------------------------------


@pytest.mark.parametrize("suffix", ["?type_id=3", "/?type_id=3", "/", ""])
def test_scores_path_goes_before_the_query_string(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]], suffix: str
) -> None:
    course, gradebook = make_ags(item_suffix=suffix)
    course.record(3)
    worker = course.worker(timeout=2)
    course.drain_until_settled(worker)
    all_sent(course, gradebook)
    for post in score_posts(gradebook.lms):
        assert post.path == f"{CONTAINER}/1/scores"
        assert post.query == ({"type_id": "3"} if "type_id" in suffix else {})
        assert post.headers["content-type"] == SCORE_TYPE
        assert post.authorization
        assert post.authorization.startswith("Bearer ")
        assert post.headers.get("user-agent", "").startswith("Pathways")
    body = gradebook.accepted()[(1, "s0")]
    assert {"userId", "activityProgress", "gradingProgress", "timestamp"} <= set(body)
    assert body["timestamp"].endswith("+00:00")


@pytest.mark.parametrize(
    "shape",
    ["wrapped-in-object", "items-without-id", "score-maximum-string", "not-json-list-items"],
)
def test_a_line_item_list_of_the_wrong_shape_still_gives_one_column(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]], shape: str
) -> None:
    course, gradebook = make_ags()
    existing = remote_item(course)

    def listing(seen: Seen) -> Answer | None:
        if seen.method != "GET" or seen.path != CONTAINER:
            return None
        items = [gradebook.item_json(n) for n in gradebook.items]
        if shape == "wrapped-in-object":
            return Answer(200, {"lineItems": items})
        if shape == "items-without-id":
            return Answer(200, [{k: v for k, v in i.items() if k != "id"} for i in items])
        if shape == "not-json-list-items":
            return Answer(200, ["x", 3, None, [], *items])
        return Answer(200, [{**i, "scoreMaximum": str(i["scoreMaximum"])} for i in items])

    if shape == "score-maximum-string":
        gradebook.items[1] = existing  # the column exists already; its maximum comes as text
        next(gradebook._ids)
    gradebook.override = listing
    course.record(3)
    worker = course.worker(timeout=2)
    course.drain_until_settled(worker)
    all_sent(course, gradebook)
    assert line_item(course).state is LineItemState.READY
    if shape == "score-maximum-string":
        assert gradebook.created == 0
        assert len(gradebook.items) == 1
    else:
        assert gradebook.created == 1


@pytest.mark.parametrize("relative", ["/ags/c1/lineitems/1", "1"])
def test_a_relative_line_item_id_is_resolved_or_refused(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]], relative: str
) -> None:
    course, gradebook = make_ags()
    gradebook.items[1] = remote_item(course)
    next(gradebook._ids)

    def listing(seen: Seen) -> Answer | None:
        if seen.method == "GET" and seen.path == CONTAINER:
            return Answer(200, [{**remote_item(course), "id": relative}])
        return None

    gradebook.override = listing
    course.record(3)
    worker = course.worker(timeout=2, max_attempts=3)
    course.drain_until_settled(worker)
    all_sent(course, gradebook)


def test_a_line_item_on_another_host_gets_no_token(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
    make_lms: Callable[[], FakeLms],  # noqa: F811
) -> None:
    course, gradebook = make_ags()
    foreign = make_lms()
    foreign.route = lambda seen: Answer(200, b"")

    def listing(seen: Seen) -> Answer | None:
        if seen.method == "GET" and seen.path == CONTAINER:
            return Answer(200, [{**remote_item(course), "id": foreign.url("/steal/1")}])
        return None

    gradebook.override = listing
    course.record(3)
    worker = course.worker(timeout=2, max_attempts=2)
    course.drain_until_settled(worker)
    leaked = [s for s in foreign.seen if s.authorization]
    assert not leaked, f"{len(leaked)} requests with our token reached {foreign.base}"


def test_a_created_line_item_without_id_is_found_again_not_duplicated(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags()

    def create(seen: Seen) -> Answer | None:
        if seen.method == "POST" and seen.path == CONTAINER:
            n = next(gradebook._ids)
            gradebook.items[n] = json.loads(seen.body)
            gradebook.created += 1
            return Answer(201, {"label": "created, id withheld"})
        return None

    gradebook.override = create
    course.record(3)
    worker = course.worker(timeout=2)
    course.drain_until_settled(worker)
    all_sent(course, gradebook)
    assert gradebook.created == 1


def test_a_created_line_item_without_id_does_not_create_columns_forever(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags()

    def create(seen: Seen) -> Answer | None:
        if seen.method == "POST" and seen.path == CONTAINER:
            gradebook.created += 1
            return Answer(201, {"label": "created, id withheld"})
        if seen.method == "GET" and seen.path == CONTAINER:
            return Answer(200, [])  # its filters are broken
        return None

    gradebook.override = create
    course.record(3)
    worker = course.worker(timeout=2)
    for _ in range(10):
        worker.drain()
        time.sleep(0.06)  # past the line item's (test-sized) backoff
    assert gradebook.created <= 3, f"{gradebook.created} columns created in the LMS"
    item = line_item(course)
    assert item.state is LineItemState.FAILED
    assert item.last_error


def test_a_line_item_page_linking_to_itself_is_read_once(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags()

    def listing(seen: Seen) -> Answer | None:
        if seen.method == "GET" and seen.path == CONTAINER:
            return Answer(200, [], [("Link", f'<{gradebook.lms.base}{seen.target}>; rel="next"')])
        return None

    gradebook.override = listing
    course.record(3)
    worker = course.worker(timeout=2)
    course.drain_until_settled(worker)
    all_sent(course, gradebook)
    gets = [s for s in gradebook.lms.seen if s.method == "GET" and s.path == CONTAINER]
    assert len(gets) <= 2


def _paged_listing(
    course: GradeCourse, gradebook: FakeGradebook, link: Callable[[str], tuple[str, bytes | str]]
) -> None:
    """Page 1 is empty with a Link header; page 2 holds the existing column."""
    gradebook.items[1] = remote_item(course)
    next(gradebook._ids)

    def listing(seen: Seen) -> Answer | None:
        if seen.method == "GET" and seen.path == CONTAINER:
            if seen.query.get("page") == "2":
                return Answer(200, [gradebook.item_json(1)])
            name, value = link(gradebook.container_url + "?page=2")
            return Answer(200, [], [(name, value)])  # type: ignore[list-item]
        return None

    gradebook.override = listing


def test_lowercase_link_header_on_line_items_is_followed(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags()
    _paged_listing(course, gradebook, lambda url: ("link", f'<{url}>; rel="next"'))
    course.record(3)
    course.drain_until_settled(course.worker(timeout=2))
    all_sent(course, gradebook)
    assert gradebook.created == 0


def test_moodle_curly_quote_link_on_line_items_is_followed(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags()
    _paged_listing(course, gradebook, lambda url: ("Link", f"<{url}>; rel=\u201cnext\u201d"))
    course.record(3)
    worker = course.worker(timeout=2)
    _ended, error = drain_bounded(worker, 10)
    assert error is None, f"drain raised {type(error).__name__}: {error}"
    course.drain_until_settled(worker)
    all_sent(course, gradebook)
    assert gradebook.created == 0


def test_a_relative_next_link_on_line_items_is_resolved(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags()
    _paged_listing(course, gradebook, lambda url: ("Link", f'<{CONTAINER}?page=2>; rel="next"'))
    course.record(3)
    worker = course.worker(timeout=2)
    for _ in range(5):
        worker.drain()
        time.sleep(0.06)
    all_sent(course, gradebook)
    assert gradebook.created == 0


# --- 5. score POST answers ------------------------------------------------------------------


def _scores_answer(gradebook: FakeGradebook, answers: Iterator[Answer | None]) -> None:
    """Score POSTs get the next scripted answer (None, or when exhausted: accept)."""

    def override(seen: Seen) -> Answer | None:
        if seen.method == "POST" and seen.path.rstrip("/").endswith("/scores"):
            return next(answers, None)
        return None

    gradebook.override = override


def _ready(course: GradeCourse, gradebook: FakeGradebook) -> GradeWorker:
    """A column exists in the LMS and our row is READY before the scripted answers."""
    worker = course.worker(timeout=0.5)
    worker.sync_line_items()
    assert line_item(course).state is LineItemState.READY
    return worker


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, "<html>thanks</html>"),
        Answer(201, {"resultUrl": "x"}),
        Answer(204),
        Answer(200, b"\x00\xff garbage"),
        Answer(202, b""),
    ],
    ids=["200-html", "201-json", "204", "200-binary", "202"],
)
def test_any_2xx_answer_sends_the_score(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]], answer: Answer
) -> None:
    course, gradebook = make_ags()
    worker = _ready(course, gradebook)
    _scores_answer(gradebook, itertools.repeat(answer))
    course.record(3)
    course.drain_until_settled(worker)
    assert course.counts()[OutboxStatus.SENT] == len(course.students)
    assert len(score_posts(gradebook.lms)) == len(course.students)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (
            Answer(400, {"errors": [{"message": "Score timestamp is older than the last one"}]}),
            "Score timestamp is older",
        ),
        (Answer(422, {"errors": {"type": "unprocessable"}}), "not an active student"),
        (
            # Canvas's scores_controller.rb, a student out of attempts.
            Answer(
                422,
                {
                    "errors": {
                        "type": "unprocessable_entity",
                        "message": "The maximum number of allowed attempts has been reached",
                    }
                },
            ),
            'It says: "The maximum number of allowed attempts has been reached".',
        ),
        # Moodle's gradebookservices answer, in words rather than its JSON.
        (
            Answer(400, {"status": 400, "reason": "Incorrect score received"}),
            "(400): Incorrect score received",
        ),
        (Answer(418, "<html>teapot</html>"), "(418)"),
        (Answer(405, ""), "(405)"),
    ],
    ids=["400-canvas", "422", "422-attempts", "400-moodle", "418", "405"],
)
def test_a_refused_score_fails_with_a_message_the_teacher_sees(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]], answer: Answer, words: str
) -> None:
    course, gradebook = make_ags()
    worker = _ready(course, gradebook)
    _scores_answer(gradebook, itertools.repeat(answer))
    course.record(3)
    course.drain_until_settled(worker)
    assert course.counts()[OutboxStatus.FAILED] == len(course.students)
    assert len(score_posts(gradebook.lms)) == len(course.students)  # not retried
    with course.db.session_factory() as session:
        problems = list_problems(session, context_id=course.context_id)
    assert len(problems) == len(course.students)
    assert all(words in p.reason for p in problems), [p.reason for p in problems]


@pytest.mark.parametrize(
    "first",
    [
        Answer(500, "oops"),
        Answer(502),
        Answer(503, "", [("Retry-After", "0")]),
        Answer(429, "", [("Retry-After", "soon")]),
        Answer(429, "", [("retry-after", "0.01")]),
        Answer(403, "403 Forbidden (Rate Limit Exceeded)"),
        Answer(drop=True),
        Answer(200, b"", delay=1.5),  # a hang: the client gives up after 0.5 s
    ],
    ids=["500", "502", "503-retry-after-0", "429-garbage", "429-lower", "403-rate", "drop", "hang"],
)
def test_transient_answers_are_retried_until_sent(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]], first: Answer
) -> None:
    course, gradebook = make_ags()
    worker = _ready(course, gradebook)
    _scores_answer(gradebook, iter([first] * len(course.students)))
    course.record(3)
    course.drain_until_settled(worker)
    assert course.counts()[OutboxStatus.SENT] == len(course.students)
    assert {u for _, u in gradebook.accepted()} == set(course.students)


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [
        ("30", 30),
        (None, 45),  # an HTTP date 45 s ahead
    ],
    ids=["seconds", "http-date"],
)
def test_429_retry_after_is_honoured(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
    retry_after: str | None,
    seconds: int,
) -> None:
    course, gradebook = make_ags(students=1)
    worker = _ready(course, gradebook)
    value = retry_after or email.utils.formatdate(time.time() + seconds, usegmt=True)
    _scores_answer(gradebook, iter([Answer(429, "slow down", [("Retry-After", value)])]))
    before = utcnow()
    course.record(3)
    worker.drain()
    (row,) = outbox_rows(course.db, course.context_id)
    assert row.status is OutboxStatus.PENDING
    assert row.last_status == 429
    assert "throttling" in row.last_error
    wait = (row.next_attempt_at - before).total_seconds()
    assert seconds - 2 <= wait <= seconds + 5, wait


@pytest.mark.parametrize("value", ["999999999999", "1e999"])
def test_an_enormous_retry_after_does_not_kill_the_worker(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]], value: str
) -> None:
    course, gradebook = make_ags(students=1)
    worker = _ready(course, gradebook)
    _scores_answer(gradebook, iter([Answer(429, "slow down", [("Retry-After", value)])]))
    course.record(3)
    _ended, error = drain_bounded(worker, 10)
    assert error is None, f"drain raised {type(error).__name__}: {error}"
    (row,) = outbox_rows(course.db, course.context_id)
    if value == "1e999":
        # Not a number of seconds (inf): the worker's own short test backoff applies, so the
        # score goes on a later pass (or already went, on a slow machine).
        course.drain_until_settled(worker)
        all_sent(course, gradebook)
    else:
        assert row.status is OutboxStatus.PENDING
        assert utcnow() + timedelta(hours=23) < row.next_attempt_at < utcnow() + timedelta(days=1)


def test_a_409_moves_the_timestamp_past_the_stored_one(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags(students=1)
    worker = _ready(course, gradebook)
    _scores_answer(gradebook, iter([Answer(409, "not newer")]))
    course.record(3)
    course.drain_until_settled(worker)
    posts = score_posts(gradebook.lms)
    assert len(posts) == 2
    first, second = (json.loads(p.body)["timestamp"] for p in posts)
    assert second > first
    assert course.counts()[OutboxStatus.SENT] == 1


def test_a_409_on_every_attempt_ends(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags(students=1)
    worker = _ready(course, gradebook)
    _scores_answer(gradebook, itertools.repeat(Answer(409, "not newer")))
    course.record(3)
    ended, error = drain_bounded(worker, 5)
    posts = score_posts(gradebook.lms)
    stamps = [json.loads(p.body)["timestamp"] for p in posts]
    assert error is None
    assert ended, f"drain still running after 5 s ({len(posts)} POSTs, last {stamps[-1]})"
    assert len(posts) <= worker.config.max_attempts
    (row,) = outbox_rows(course.db, course.context_id)
    assert row.status in (OutboxStatus.FAILED, OutboxStatus.PENDING)
    assert row.last_error


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_with_the_token(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
    make_lms: Callable[[], FakeLms],  # noqa: F811
    status: int,
) -> None:
    course, gradebook = make_ags(students=1)
    foreign = make_lms()
    worker = _ready(course, gradebook)
    moved_to = foreign.url("/ags/c1/lineitems/1/scores")
    _scores_answer(gradebook, itertools.repeat(Answer(status, "", [("Location", moved_to)])))
    course.record(3)
    worker.drain()
    assert foreign.seen == []
    (row,) = outbox_rows(course.db, course.context_id)
    # Held for an admin (the LMS's address changed), naming where it pointed; no try used up.
    assert row.status is OutboxStatus.PENDING
    assert row.attempts == 0
    assert f"redirect ({status}) to {moved_to}" in row.last_error
    assert f"redirect ({status}) to {moved_to}" in _gradebook_error(course)


def test_an_error_body_with_nul_does_not_kill_the_worker(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags(students=2)
    worker = _ready(course, gradebook)
    _scores_answer(gradebook, iter([Answer(400, b"bad\x00score")]))
    course.record(3)
    _ended, error = drain_bounded(worker, 10)
    assert error is None, f"drain raised {type(error).__name__}: {error}"
    counts = course.counts()
    assert counts[OutboxStatus.FAILED] == 1, counts
    assert counts[OutboxStatus.SENT] == 1, counts


# --- 6. token endpoint answers ---------------------------------------------------------------


def _gradebook_error(course: GradeCourse) -> str:
    with course.db.session_factory() as session:
        gradebook = session.scalar(
            select(Gradebook).where(Gradebook.context_id == course.context_id)
        )
        assert gradebook is not None
        return gradebook.last_error


@pytest.mark.parametrize(
    ("token_answer", "words"),
    [
        (Answer(200, {"token_type": "Bearer"}), "refused Pathways a service token"),
        (Answer(400, {"error": "invalid_client"}), "invalid_client"),
        (Answer(200, "<html>login</html>"), "refused Pathways a service token"),
        (Answer(400, {"error": "invalid_scope"}), "gradebook columns (line items)"),
    ],
    ids=["no-access-token", "400-invalid_client", "html", "invalid_scope"],
)
def test_a_refused_token_keeps_every_score_and_tells_the_teacher(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]], token_answer: Answer, words: str
) -> None:
    course, gradebook = make_ags()
    gradebook.lms.token_answer = lambda seen: token_answer
    course.record(3)
    worker = course.worker(timeout=2, config_retry=0.2)
    worker.drain()
    assert words in _gradebook_error(course)
    assert words in line_item(course).last_error
    assert score_posts(gradebook.lms) == []
    assert course.counts()[OutboxStatus.PENDING] == len(course.students)
    gradebook.lms.token_answer = None  # the admin fixes it
    time.sleep(0.3)
    course.drain_until_settled(worker)
    all_sent(course, gradebook)
    assert _gradebook_error(course) == ""


def test_retry_after_the_admin_fix_sends_at_once(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags()
    gradebook.lms.token_answer = lambda seen: Answer(400, {"error": "invalid_client"})
    course.record(3)
    course.worker(timeout=2, config_retry=600).drain()
    gradebook.lms.token_answer = None  # the admin fixes it, the teacher presses Retry
    with course.db.begin() as session:
        retry(session, context_id=course.context_id)
    worker = course.worker(timeout=2, config_retry=600)
    for _ in range(3):
        worker.drain()
    all_sent(course, gradebook)


def test_retry_pressed_while_a_worker_is_on_the_column_leaves_it_to_that_worker(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags()
    gradebook.lms.token_answer = lambda seen: Answer(400, {"error": "invalid_client"})
    course.record(3)
    course.worker(timeout=2, config_retry=0.2).drain()
    assert "invalid_client" in line_item(course).last_error
    at_lms, admin_fixed = threading.Event(), threading.Event()

    def slow_token(seen: Seen) -> Answer:
        at_lms.set()
        admin_fixed.wait(10)
        scope = dict(parse_qsl(seen.body.decode())).get("scope", "")
        token = {"access_token": "tok-slow", "token_type": "Bearer", "scope": scope}
        return Answer(200, {**token, "expires_in": 3600})

    gradebook.lms.token_answer = slow_token
    time.sleep(0.3)  # the column's wait after the refusal is over
    first = course.worker(timeout=15, config_retry=600)
    syncing = threading.Thread(target=first.sync_line_items)
    syncing.start()
    try:
        assert at_lms.wait(10), "the first worker never asked for a token"
        asked = gradebook.lms.token_requests
        with course.db.begin() as session:  # the teacher presses Retry meanwhile
            retry(session, context_id=course.context_id)
        course.worker(timeout=2, config_retry=600).sync_line_items()
        assert gradebook.lms.token_requests == asked, "a second worker took the column too"
    finally:
        admin_fixed.set()
        syncing.join(20)
    assert line_item(course).state is LineItemState.READY
    assert line_item(course).last_error == ""


def test_a_token_without_the_score_scope_says_sending_scores_is_off(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags()
    gradebook.lms.granted = f"{SCOPE_LINEITEM} {SCOPE_NRPS}"
    course.record(3)
    worker = course.worker(timeout=2, config_retry=600)
    worker.drain()
    assert line_item(course).state is LineItemState.READY  # columns are allowed
    counts = course.counts()
    assert counts[OutboxStatus.PENDING] == len(course.students), counts
    assert "sending scores" in _gradebook_error(course)
    assert all(r.attempts == 0 for r in outbox_rows(course.db, course.context_id))


def test_a_token_without_the_lineitem_scope_says_columns_are_off(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags()
    gradebook.lms.granted = SCOPE_SCORE
    course.record(3)
    course.worker(timeout=2, config_retry=600).drain()
    assert "gradebook columns (line items)" in line_item(course).last_error
    assert "gradebook columns (line items)" in _gradebook_error(course)
    assert course.counts()[OutboxStatus.PENDING] == len(course.students)


@pytest.mark.parametrize("expires_in", ["3600", None, "soon", -1])
def test_odd_expires_in_works_with_one_token(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]], expires_in: Any
) -> None:
    course, gradebook = make_ags()
    gradebook.lms.expires_in = expires_in
    course.record(3)
    course.drain_until_settled(course.worker(timeout=2))
    all_sent(course, gradebook)
    assert gradebook.lms.token_requests == 1


def test_a_401_on_a_score_gets_one_new_token(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags(students=1)
    worker = _ready(course, gradebook)
    _scores_answer(gradebook, iter([Answer(401, {"error": "invalid_token"})]))
    course.record(3)
    course.drain_until_settled(worker)
    assert course.counts()[OutboxStatus.SENT] == 1
    assert gradebook.lms.token_requests == 2
    tokens = [p.authorization for p in score_posts(gradebook.lms)]
    assert len(tokens) == 2
    assert tokens[0] != tokens[1]


def test_a_huge_expires_in_does_not_kill_the_worker(
    make_ags: Callable[..., tuple[GradeCourse, FakeGradebook]],
) -> None:
    course, gradebook = make_ags()
    body = b'{"access_token": "abc", "token_type": "Bearer", "expires_in": 1e400}'
    gradebook.lms.token_answer = lambda seen: Answer(
        200, body, [("Content-Type", "application/json")]
    )
    course.record(3)
    worker = course.worker(timeout=2)
    _ended, error = drain_bounded(worker, 10)
    assert error is None, f"drain raised {type(error).__name__}: {error}"
    course.drain_until_settled(worker)
    all_sent(course, gradebook)
