"""The gradebook token asks for the AGS scopes the course's launch claim offered.

Canvas refuses a token request whole (400 invalid_scope) when one asked scope is not on the
developer key (canvas-lms lib/canvas/oauth/grant_types/client_credentials.rb `validate_type`,
lib/canvas/oauth/provider.rb `valid_scopes?`): a least-privilege key (score, maybe
lineitem.readonly, no lineitem) still takes scores in the columns Canvas made from its links.
Moodle grants what was asked and allowed: under "grade sync only" (lineitem.readonly,
result.readonly, score; gradebookservices.php `get_permitted_scopes`) Pathways reads the
columns with lineitem.readonly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import urllib3
from flask import request
from sqlalchemy import select, update

from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.demo.launches import SCOPE_LINEITEM_READONLY, SCOPE_NRPS, SCOPE_RESULT_READONLY
from lti_app.demo.oauth import _token_error
from lti_app.grades.client import AGS_SCOPES, AgsClient, LmsRequestError, token_scopes
from lti_app.grades.columns import set_gradebook_competencies
from lti_app.grades.models import Gradebook, LineItem, LineItemState, OutboxStatus
from lti_app.tool.client import (
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READ,
    SCOPE_SCORE,
    AccessToken,
    ServiceTokenError,
)
from lti_app.tool.models import Platform
from tests.conftest import LtiActions
from tests.grades.conftest import GradeCourse, outbox_rows
from tests.tool.test_deep_link_columns import (
    _lms_columns,
    _pick,
    _picker,
    _return_to_lms,
    _without_columns,
)
from tests.tool.test_deep_link_columns import _row as _row_of
from tests.tool.test_placement_columns import _launch, _lms_placement, _place, _row

CourseMaker = Callable[..., GradeCourse]
ALL_AGS = [SCOPE_LINEITEM, SCOPE_LINEITEM_READ, SCOPE_RESULT_READONLY, SCOPE_SCORE]


@contextmanager
def canvas_all_or_nothing(course: GradeCourse) -> Iterator[list[frozenset[str]]]:
    """The demo's token endpoint answering as Canvas does for a scope the key lacks; yields
    the scope sets asked for."""
    app = course.lms.app
    original = app.view_functions["oauth.token"]
    platform = course.lms.platform
    asked: list[frozenset[str]] = []

    def token() -> Any:
        requested = frozenset(request.form.get("scope", "").split())
        asked.append(requested)
        if requested - set(platform.granted_scopes):
            return _token_error("invalid_scope", "scopes not on the developer key")
        return original()

    app.view_functions["oauth.token"] = token
    try:
        yield asked
    finally:
        app.view_functions["oauth.token"] = original


def _forget_tokens(course: GradeCourse, db: Database, scopes: frozenset[str] = AGS_SCOPES) -> Any:
    worker = course.worker()
    with db.session_factory() as session:
        platform = session.get(Platform, course.platform_id)
        assert platform is not None
    worker.ags._tokens.drop(platform, scopes)
    course.lms.platform.revoke_tokens()
    return worker


def _gradebook_note(db: Database, course: GradeCourse) -> str:
    with db.session_factory() as session:
        note = session.scalar(
            select(Gradebook.last_error).where(Gradebook.context_id == course.context_id)
        )
    return note or ""


def test_a_canvas_key_without_the_lineitem_scope_still_fills_its_assignment_column(
    make_course: CourseMaker, lti: LtiActions, db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    _without_columns(course)
    course.record(2)
    competency = course.competency_ids[0]
    _place(lti, course, competency)  # the teacher's launch offered every scope then
    link, column = _lms_placement(course, competency, maximum=4)
    worker = _forget_tokens(course, db)
    # The developer key now: "Can create and update submission results" and "Can view
    # assignment data", not "Can create and view assignment data" (lineitem).
    course.lms.platform.granted_scopes = frozenset({SCOPE_SCORE, SCOPE_LINEITEM_READONLY})

    with canvas_all_or_nothing(course) as asked:
        _launch(lti, course, next(iter(course.students)), link)
        course.drain_until_settled(worker)
        course.record(4)  # a later pass: the level moves
        course.drain_until_settled(worker)

    rows = outbox_rows(db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.SENT] * 4, [r.last_error for r in rows]
    newest = {r.person_id: float(r.score_given or 0) for r in rows}
    results = course.lms.platform.state.results(column.id)
    assert {sub: r.body.get("scoreGiven") for sub, r in results.items()} == {
        sub: newest[person] for sub, person in course.students.items()
    }
    assert _row(course, competency).state is LineItemState.READY
    # Refused (at most once per student: the worker sends both students' scores at once),
    # then the score scope alone, kept to for every later pass.
    ags_asks = [a for a in asked if SCOPE_NRPS not in a]
    score_only = frozenset({SCOPE_SCORE})
    assert score_only in ags_asks, ags_asks
    refused = ags_asks[: ags_asks.index(score_only)]
    assert 1 <= len(refused) <= 2, ags_asks
    assert set(refused) == {frozenset({SCOPE_LINEITEM, SCOPE_SCORE})}, ags_asks
    assert set(ags_asks[len(refused) :]) == {score_only}, ags_asks
    assert "sending scores" not in _gradebook_note(db, course)


def test_a_canvas_key_without_the_lineitem_scope_is_told_only_columns_are_off(
    make_course: CourseMaker, db: Database
) -> None:
    course = make_course(students=2, competencies=1)  # Pathways has to make the column
    worker = _forget_tokens(course, db)
    course.lms.platform.granted_scopes = frozenset({SCOPE_SCORE, SCOPE_LINEITEM_READONLY})
    course.record(3)

    with canvas_all_or_nothing(course):
        worker.drain()

    note = _gradebook_note(db, course)
    assert "gradebook columns (line items)" in note
    assert "sending scores" not in note, "scores are allowed: the admin must not look there"
    rows = outbox_rows(db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.PENDING] * 2


def test_a_canvas_key_without_the_score_scope_is_told_sending_scores_is_off(
    make_course: CourseMaker, db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    course.drain_until_settled(course.worker())  # the column exists
    worker = _forget_tokens(course, db)
    course.lms.platform.granted_scopes = frozenset({SCOPE_LINEITEM})
    course.record(3)

    with canvas_all_or_nothing(course):
        worker.drain()

    rows = outbox_rows(db, course.context_id)
    assert all(r.status is OutboxStatus.PENDING for r in rows)
    assert all("sending scores" in r.last_error for r in rows), [r.last_error for r in rows]
    assert all("gradebook columns" not in r.last_error for r in rows)


def test_grade_sync_only_moodle_fills_the_column_its_deep_link_made(
    make_course: CourseMaker, lti: LtiActions, db: Database
) -> None:
    course = make_course(students=3, competencies=1)
    _without_columns(course)
    course.record(3)
    competency = course.competency_ids[0]
    worker = _forget_tokens(course, db)
    # "Use this service for grade sync only": the launches list what it permits.
    course.lms.platform.granted_scopes = frozenset(
        {SCOPE_NRPS, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE}
    )

    launched = _picker(lti, course)
    _, back = _pick(launched, [f"competency-{competency}"])
    _return_to_lms(launched, back)  # the LMS makes the column (resourceId, tag) itself
    (lms_column,) = _lms_columns(course, f"pathways-competency-{competency}")
    with db.begin() as session:  # no waiting for the next look
        session.execute(
            update(LineItem)
            .where(LineItem.context_id == course.context_id)
            .values(lease_until=None)
        )

    course.drain_until_settled(worker)

    row = _row_of(db, course, competency)
    results = course.lms.platform.state.results(lms_column.id)
    assert {sub: r.body.get("scoreGiven") for sub, r in results.items()} == dict.fromkeys(
        course.students, 3
    ), (row.last_error, _gradebook_note(db, course))
    assert row.state is LineItemState.READY


def test_columns_that_cannot_be_made_do_not_cost_the_scores_their_token(
    make_course: CourseMaker, db: Database
) -> None:
    """The admin switched Moodle to "grade sync only" since the teacher's last launch: the
    course still offers lineitem. Each column Pathways cannot make dropped the token the
    scores use, and the next request fetched another: a token request per column per pass."""
    course = make_course(students=2, competencies=1)
    course.drain_until_settled(course.worker())  # the first column exists
    worker = _forget_tokens(course, db)
    platform = course.lms.platform
    platform.granted_scopes = frozenset({SCOPE_LINEITEM_READONLY, SCOPE_SCORE})
    course.record(2)
    course.drain_until_settled(worker)  # the scores' token, without lineitem
    with db.begin() as session:  # the teacher turns on three more competencies
        added = [
            create_competency(
                session, context_id=course.context_id, code=f"N{i}", title=f"New {i}"
            ).id
            for i in range(3)
        ]
        set_gradebook_competencies(
            session, context_id=course.context_id, competency_ids=course.competency_ids + added
        )
    course.record(4)
    before = platform.counters.token_requests

    worker.drain()

    # Asked again once in the pass (an admin may have allowed it since), not once a column.
    assert platform.counters.token_requests - before == 1
    assert course.counts()[OutboxStatus.SENT] == 4
    columns = course.line_items()
    assert all("gradebook columns (line items)" in columns[c].last_error for c in added), [
        columns[c].last_error for c in added
    ]


def _set_scopes(db: Database, course: GradeCourse, scopes: list[str]) -> None:
    """The scopes the course's last launch claim offered."""
    with db.begin() as session:
        session.execute(
            update(Gradebook).where(Gradebook.context_id == course.context_id).values(scopes=scopes)
        )


def test_a_course_launched_before_the_admin_allowed_scores_sends_them_without_a_new_launch(
    make_course: CourseMaker, db: Database
) -> None:
    """The teacher last launched when the registration had no score scope; the admin has
    since allowed it. The token asked only what that claim offered, so the scores failed on
    "sending scores" (which the LMS was never asked for) until a teacher launched again."""
    course = make_course(students=2, competencies=1)
    course.drain_until_settled(course.worker())  # the column exists
    worker = _forget_tokens(course, db)
    _set_scopes(db, course, [SCOPE_LINEITEM])
    course.record(3)

    course.drain_until_settled(worker)
    course.record(2)  # a later pass asks for the same scopes, without a refusal first
    before = course.lms.platform.counters.token_requests
    course.drain_until_settled(worker)

    rows = outbox_rows(db, course.context_id)
    assert [r.status for r in rows] == [OutboxStatus.SENT] * 4, [r.last_error for r in rows]
    course.assert_lms_matches_mastery()
    assert course.lms.platform.counters.token_requests == before
    assert "sending scores" not in _gradebook_note(db, course)


def test_a_key_still_without_the_score_scope_says_so_and_keeps_the_course_columns(
    make_course: CourseMaker, db: Database
) -> None:
    """The same old claim on a Canvas key that still lacks the score scope: the LMS is asked
    once a pass, refuses, and the message names what it refused; the course's own scopes
    still make its columns."""
    course = make_course(students=2, competencies=1)
    worker = _forget_tokens(course, db)
    _set_scopes(db, course, [SCOPE_LINEITEM])
    course.lms.platform.granted_scopes = frozenset({SCOPE_LINEITEM})
    course.record(3)

    with canvas_all_or_nothing(course) as asked:
        worker.drain()
        worker.drain()
        with db.begin() as session:  # the teacher turns on another competency
            added = create_competency(
                session, context_id=course.context_id, code="N1", title="New"
            ).id
            set_gradebook_competencies(
                session,
                context_id=course.context_id,
                competency_ids=[*course.competency_ids, added],
            )
        worker.drain()

    rows = outbox_rows(db, course.context_id)
    assert all(r.status is OutboxStatus.PENDING for r in rows)
    assert all("sending scores" in r.last_error for r in rows), [r.last_error for r in rows]
    assert all("gradebook columns" not in r.last_error for r in rows)
    columns = course.line_items()
    assert [columns[c].state for c in (course.competency_ids[0], added)] == [
        LineItemState.READY
    ] * 2, [columns[c].last_error for c in (course.competency_ids[0], added)]
    with_score = [a for a in asked if SCOPE_SCORE in a]
    assert len(with_score) <= 4, "the score scope is asked for twice at most a pass"


@contextmanager
def score_only_with_lineitem(course: GradeCourse) -> Iterator[None]:
    """A token endpoint that grants the score scope only with lineitem (as one scope set)."""
    app = course.lms.app
    original = app.view_functions["oauth.token"]

    def token() -> Any:
        requested = frozenset(request.form.get("scope", "").split())
        if SCOPE_SCORE in requested and SCOPE_LINEITEM not in requested:
            return _token_error("invalid_scope", "score goes with lineitem on this key")
        return original()

    app.view_functions["oauth.token"] = token
    try:
        yield
    finally:
        app.view_functions["oauth.token"] = original


def test_scopes_refused_to_one_course_do_not_hold_back_another_course_on_the_lms(
    make_course: CourseMaker, db: Database
) -> None:
    """Tokens are per scope set: a scope refused to one course's claim held back the scores
    of every course on the LMS for the rest of the pass."""
    refused = make_course(students=2, competencies=1)
    fine = make_course(students=2, competencies=1)
    refused.drain_until_settled(refused.worker())
    fine.drain_until_settled(fine.worker())  # the columns exist
    _set_scopes(db, refused, [SCOPE_LINEITEM_READ, SCOPE_SCORE])
    refused.record(3)
    fine.record(3)
    worker = refused.worker(
        concurrency=1, context_ids=frozenset({refused.context_id, fine.context_id})
    )

    with score_only_with_lineitem(refused):
        worker.drain()

    rows = outbox_rows(db, fine.context_id)
    assert [r.status for r in rows] == [OutboxStatus.SENT] * 2, [r.last_error for r in rows]
    rows = outbox_rows(db, refused.context_id)
    assert all("sending scores" in r.last_error for r in rows), [r.last_error for r in rows]


def test_a_refused_registration_still_holds_back_every_course_on_the_lms(
    make_course: CourseMaker, db: Database
) -> None:
    first = make_course(students=2, competencies=1)
    second = make_course(students=2, competencies=1)
    first.drain_until_settled(first.worker())
    second.drain_until_settled(second.worker())
    _set_scopes(db, first, [SCOPE_LINEITEM, SCOPE_SCORE])
    _set_scopes(db, second, [SCOPE_LINEITEM_READ, SCOPE_SCORE])  # another token
    first.record(3)
    second.record(3)
    worker = _forget_tokens(first, db)
    worker = first.worker(
        concurrency=1, context_ids=frozenset({first.context_id, second.context_id})
    )
    platform = first.lms.platform
    platform.token_refusal = (400, "invalid_client")
    before = platform.counters.token_requests
    try:
        worker.drain()
    finally:
        platform.token_refusal = None

    assert platform.counters.token_requests - before == 1, "one refusal says it for all"
    for course in (first, second):
        rows = outbox_rows(db, course.context_id)
        assert all("invalid_client" in r.last_error for r in rows), [r.last_error for r in rows]


# -- the client alone ------------------------------------------------------------------------


class _Key:
    """A token endpoint as Canvas answers: all the asked scopes are on the key, or none."""

    def __init__(self, scopes: set[str]) -> None:
        self.scopes = scopes
        self.asked: list[frozenset[str]] = []
        self.dropped: list[tuple[frozenset[str], str | None]] = []

    def token(self, platform: Platform, scopes: frozenset[str]) -> AccessToken:
        self.asked.append(scopes)
        if scopes - self.scopes:
            raise ServiceTokenError(
                "The LMS refused Pathways a service token (400 invalid_scope).",
                retryable=False,
                status=400,
                error="invalid_scope",
            )
        return AccessToken(f"t{len(self.asked)}", scopes, datetime.now(UTC) + timedelta(hours=1))

    def drop(self, platform: Platform, scopes: frozenset[str], refused: str | None = None) -> None:
        self.dropped.append((scopes, refused))


class _Pool:
    """An LMS that takes everything: an empty list of columns, a new column's address."""

    def __init__(self) -> None:
        self.headers = {"User-Agent": "Pathways-test"}
        self.sent: list[tuple[str, str]] = []

    def request(self, method: str, url: str, **_: Any) -> urllib3.BaseHTTPResponse:
        self.sent.append((method, url))
        body = b"[]" if method == "GET" else b'{"id": "https://lms.test/lineitems/7"}'
        return urllib3.HTTPResponse(body=body, status=200, preload_content=True)

    def clear(self) -> None:
        pass


PLATFORM = Platform(id=1, issuer="https://lms.test", client_id="c", token_url="https://lms.test/t")
COLUMN = "https://lms.test/lineitems/1"


def _client(key: _Key, pool: _Pool | None = None) -> AgsClient:
    return AgsClient(pool or _Pool(), key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("offered", "asked"),
    [
        (ALL_AGS, {SCOPE_LINEITEM, SCOPE_LINEITEM_READ, SCOPE_SCORE}),
        (
            [SCOPE_LINEITEM_READ, SCOPE_RESULT_READONLY, SCOPE_SCORE],
            {SCOPE_LINEITEM_READ, SCOPE_SCORE},
        ),
        ([SCOPE_SCORE, SCOPE_NRPS], {SCOPE_SCORE}),
        (None, AGS_SCOPES),
        ([], AGS_SCOPES),
        ([SCOPE_RESULT_READONLY], AGS_SCOPES),
    ],
)
def test_the_token_asks_what_the_launch_offered(offered: list[str] | None, asked: set[str]) -> None:
    assert token_scopes(offered) == asked


def test_reading_columns_takes_the_read_only_scope_and_writing_needs_lineitem() -> None:
    key = _Key({SCOPE_LINEITEM_READ, SCOPE_SCORE})
    pool = _Pool()
    client = _client(key, pool)
    offered = [SCOPE_LINEITEM_READ, SCOPE_RESULT_READONLY, SCOPE_SCORE]

    assert (
        list(client.find_line_items(PLATFORM, COLUMN, resource_id="r", tag="t", offered=offered))
        == []
    )
    assert client.line_item_exists(PLATFORM, COLUMN + "/1", offered=offered)
    with pytest.raises(LmsRequestError) as refused:
        client.create_line_item(PLATFORM, COLUMN, {"resourceId": "r", "tag": "t"}, offered=offered)
    assert "gradebook columns (line items)" in str(refused.value)
    assert "sending scores" not in str(refused.value)
    assert [method for method, _ in pool.sent] == ["GET", "GET"]


def test_a_refused_scope_set_narrows_to_scores_once_and_asks_again_once_a_pass() -> None:
    key = _Key({SCOPE_SCORE})
    client = _client(key)
    offered = [SCOPE_LINEITEM, SCOPE_RESULT_READONLY, SCOPE_SCORE]
    wide, narrow = frozenset({SCOPE_LINEITEM, SCOPE_SCORE}), frozenset({SCOPE_SCORE})

    for _ in range(3):
        client.post_score(PLATFORM, COLUMN, {"userId": "u"}, offered=offered)
    assert key.asked == [wide, narrow, narrow, narrow]

    key.asked.clear()
    for _ in range(2):  # two columns to make in one pass
        with pytest.raises(LmsRequestError, match="gradebook columns"):
            client.create_line_item(
                PLATFORM, COLUMN, {"resourceId": "r", "tag": "t"}, offered=offered
            )
    assert key.asked == [narrow, wide, narrow, narrow], "the wider set asked once a pass"
    assert key.dropped == [], "the scores' token is kept"

    client.new_pass()
    key.scopes.add(SCOPE_LINEITEM)  # the admin adds the scope to the key
    client.create_line_item(PLATFORM, COLUMN, {"resourceId": "r", "tag": "t"}, offered=offered)
    client.post_score(PLATFORM, COLUMN, {"userId": "u"}, offered=offered)
    assert key.asked[-3:] == [narrow, wide, wide]


def test_a_key_without_the_score_scope_names_only_sending_scores() -> None:
    client = _client(_Key({SCOPE_LINEITEM}))
    with pytest.raises(LmsRequestError) as refused:
        client.post_score(PLATFORM, COLUMN, {"userId": "u"}, offered=ALL_AGS)
    assert refused.value.config
    assert "sending scores" in str(refused.value)
    assert "gradebook columns" not in str(refused.value)
