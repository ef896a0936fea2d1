"""Fault tests: each fails if a score is lost, duplicated or sent out of order."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from lti_app.db import Database
from lti_app.demo import seed
from lti_app.demo.seed import Course, Enrollment, Role
from lti_app.demo.state import Fault
from lti_app.grades.client import AGS_SCOPES, utc_iso
from lti_app.grades.models import Gradebook, OutboxStatus, ScoreOutbox
from lti_app.grades.outbox_status import list_problems, retry
from lti_app.settings import Settings
from lti_app.tool.client import SCOPE_LINEITEM
from lti_app.tool.models import Membership, MembershipStatus, Platform, ServiceToken
from tests.conftest import LtiActions

from .conftest import GradeCourse, outbox_rows


def _wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_every_score_arrives_through_5xx_429_drops_and_timeouts(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=8, competencies=2)
    platform = course.lms.platform
    worker = course.worker(timeout=0.4)
    course.drain_until_settled(worker)  # columns exist before the storm
    platform.queue_faults(
        "ags",
        Fault(503),
        Fault(500),
        Fault(429, {"Retry-After": "1"}),
        Fault(429),
        Fault.drop(),
        Fault(503, {"Retry-After": "0"}),
        Fault.drop(),
        Fault(502),
        Fault(500),
        Fault(429),
    )
    course.record(3)
    course.record(1, competency=1)
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()

    # An outage for a while, then the LMS answers too slowly (client timeouts), then recovers.
    platform.set_outage("ags", Fault(503))
    course.record(4)
    worker.drain()
    platform.set_outage("ags", None)
    platform.delay_ms = 600
    course.record(2, competency=1)
    threading.Timer(1.0, lambda: setattr(platform, "delay_ms", 0)).start()
    course.drain_until_settled(worker, rounds=400)
    # A timed-out POST may have been stored by the LMS after we gave up: the retry sends the
    # very same score (same timestamp), which changes nothing there.
    course.assert_lms_matches_mastery(allow_redelivery=len(course.students))
    assert course.counts()[OutboxStatus.FAILED] == 0


def test_retry_after_is_honoured(make_course: Callable[..., GradeCourse]) -> None:
    course = make_course(students=1, competencies=1)
    worker = course.worker()
    course.drain_until_settled(worker)
    course.lms.platform.queue_faults("ags", Fault(429, {"Retry-After": "30"}))
    course.record(3)
    worker.drain()
    (row,) = outbox_rows(course.db, course.context_id)
    assert row.status is OutboxStatus.PENDING
    assert row.last_status == 429
    assert (row.next_attempt_at - row.created_at).total_seconds() >= 29


def test_newest_level_wins_when_evidence_changes_during_a_send(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=1, competencies=1)
    platform = course.lms.platform
    worker = course.worker()
    course.drain_until_settled(worker)
    # Long enough that recording the next level and a second worker's pass finish while the
    # first score is still on the wire, even on a loaded 2-core machine (400 ms was not).
    platform.delay_ms = 2500
    (first,) = course.record(2)
    sending = threading.Thread(target=worker.drain)
    sending.start()

    def in_flight() -> bool:
        with course.db.session_factory() as session:
            return session.get(ScoreOutbox, first).status is OutboxStatus.SENDING  # type: ignore[union-attr]

    _wait_for(in_flight)
    course.record(4)  # while the first score is on the wire
    course.worker().drain()  # another worker must not overtake the score in flight
    (second,) = [r for r in outbox_rows(course.db, course.context_id) if r.id != first]
    assert second.status is OutboxStatus.PENDING
    sending.join()
    platform.delay_ms = 0
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()
    (item,) = platform.state.line_items_in(course.lms_context_id)
    accepted = platform.state.accepted_scores(item.id)
    assert [s.body["comment"] for s in accepted] == ["Developing", "Proficient"]


def test_a_killed_worker_loses_nothing_and_resends_nothing_it_recorded(
    make_course: Callable[..., GradeCourse],
    tool_settings: Settings,
    database_url: str,
) -> None:
    course = make_course(students=30, competencies=3)
    platform = course.lms.platform
    course.drain_until_settled(course.worker())  # columns
    for competency in range(3):
        course.record(2 + competency % 2, competency=competency)
    platform.delay_ms = 40
    env = {
        **os.environ,
        "LTI_APP_ENV": "test",
        "LTI_APP_SECRET_KEY": tool_settings.secret_key,
        # The servers' own: the worker refuses to start with a secret that opens no key.
        "LTI_APP_KEY_ENCRYPTION_SECRET": tool_settings.key_encryption_secret,
        "LTI_APP_DATABASE_URL": database_url,
        "LTI_APP_INSTANCE_PATH": tool_settings.instance_path,
    }
    args = [
        str(Path(sys.executable).with_name("lti-app")),
        "grades",
        "worker",
        "--context-id",
        str(course.context_id),
        "--concurrency",
        "4",
        "--poll",
        "0.05",
        "--backoff-base",
        "0.01",
        "--lease",
        "1.5",
    ]
    received_before = platform.counters.scores_received  # the LMS counts for every test
    worker = subprocess.Popen(  # noqa: S603 - our own command
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(lambda: platform.counters.scores_received - received_before >= 25, timeout=60)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    rows = outbox_rows(course.db, course.context_id)
    recorded = [r for r in rows if r.status is OutboxStatus.SENT]
    in_flight = [r for r in rows if r.status is OutboxStatus.SENDING]
    assert recorded, "the worker was killed before it recorded anything"
    assert len(recorded) < len(rows), "the worker finished before it was killed"
    course.record(4, subs=["user-s01", "user-s02"])  # newer levels while no worker runs

    restarted = subprocess.run(  # noqa: S603
        [*args, "--once"], env=env, capture_output=True, timeout=60, check=False
    )
    assert restarted.returncode == 0, restarted.stderr
    time.sleep(1.6)  # let the dead worker's leases expire
    platform.delay_ms = 0
    course.drain_until_settled(course.worker())
    course.assert_lms_matches_mastery(allow_redelivery=len(in_flight))
    # Nothing recorded as sent before the kill was sent again.
    with platform.state.lock:
        delivered = Counter(
            (s.line_item_id, s.user_id, s.body["timestamp"])
            for s in platform.state.scores
            if s.status == 200
        )
    lms_ids = course.lms_item_ids()
    urls = {li.id: li.url for li in course.line_items().values()}
    subs = {pid: sub for sub, pid in course.students.items()}
    for row in rows:
        if row.status is OutboxStatus.SENT:
            url = urls[row.line_item_id]
            assert url is not None
            key = (lms_ids[url], subs[row.person_id], utc_iso(row.scored_at))
            assert delivered[key] == 1, f"sent again after a recorded success: {key}"


def test_a_non_student_is_a_permanent_error_for_that_student_only(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=3, competencies=1)
    # The LMS now sees s02 as a teacher (Canvas answers 422 for anyone but active students).
    lms_course = seed.COURSES[course.lms_context_id]
    seed.COURSES[course.lms_context_id] = Course(
        lms_course.context_id,
        lms_course.label,
        lms_course.title,
        tuple(
            Enrollment(e.user_id, Role.INSTRUCTOR) if e.user_id == "user-s02" else e
            for e in lms_course.enrollments
        ),
    )
    with course.db.begin() as session:  # and s03 left the course in Pathways' roster
        membership = session.scalar(
            select(Membership).where(
                Membership.context_id == course.context_id,
                Membership.person_id == course.students["user-s03"],
            )
        )
        assert membership is not None
        membership.status = MembershipStatus.INACTIVE
    course.record(3)
    worker = course.worker()
    course.drain_until_settled(worker)
    counts = course.counts()
    assert counts[OutboxStatus.SENT] == 1
    assert counts[OutboxStatus.FAILED] == 1
    assert counts[OutboxStatus.SKIPPED] == 1
    with course.db.session_factory() as session:
        problems = list_problems(session, context_id=course.context_id)
    (problem,) = problems
    assert problem.last_status == 422
    assert "not an active student" in problem.reason
    mine = set(course.lms_item_ids().values())
    received = [
        s
        for s in course.lms.platform.state.scores
        if s.user_id == "user-s02" and s.line_item_id in mine
    ]
    assert len(received) == 1, "a 422 must not be retried"


@pytest.mark.parametrize("refusal", ["partial", "all"])
def test_refused_scopes_or_tokens_say_why_and_lose_nothing(
    make_course: Callable[..., GradeCourse], refusal: str
) -> None:
    course = make_course(students=3, competencies=1)
    platform = course.lms.platform
    worker = course.worker(config_retry=3600)
    course.drain_until_settled(worker)  # columns exist
    worker.ags._tokens.drop(platform_row(course.db, course.platform_id), AGS_SCOPES)
    platform.revoke_tokens()
    if refusal == "partial":
        platform.granted_scopes = frozenset({SCOPE_LINEITEM})
    else:
        platform.token_refusal = (401, "unauthorized_client")
    course.record(3)
    worker.drain()
    rows = outbox_rows(course.db, course.context_id)
    assert all(r.status is OutboxStatus.PENDING for r in rows)
    expected = "sending scores" if refusal == "partial" else "refused Pathways a service token"
    assert all(expected in r.last_error for r in rows), [r.last_error for r in rows]
    with course.db.session_factory() as session:
        gradebook = session.scalar(
            select(Gradebook).where(Gradebook.context_id == course.context_id)
        )
        assert gradebook is not None
        assert expected in gradebook.last_error
    tokens_while_refused = platform.counters.token_requests
    platform.reset_hooks()
    with course.db.begin() as session:  # the teacher presses "Retry" once the admin fixed it
        retry(session, context_id=course.context_id)
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()
    assert platform.counters.token_requests - tokens_while_refused == 1
    with course.db.session_factory() as session:
        gradebook = session.scalar(
            select(Gradebook).where(Gradebook.context_id == course.context_id)
        )
        assert gradebook is not None
        assert gradebook.last_error == ""


def test_a_worker_that_cannot_sign_holds_the_scores_without_using_their_tries(
    make_course: Callable[..., GradeCourse],
) -> None:
    """A worker started with another LTI_APP_KEY_ENCRYPTION_SECRET (or whose key stopped
    opening) cannot sign a token request: that is the operator's to fix, like a registration
    the LMS refuses, and every score used to fail once its tries were used up."""
    course = make_course(students=2, competencies=1)
    course.drain_until_settled(course.worker())  # the columns exist
    with course.db.begin() as session:  # no token cached: the worker must sign for one
        session.execute(delete(ServiceToken).where(ServiceToken.platform_id == course.platform_id))
    servers = course.settings
    assert servers is not None
    course.settings = dataclasses.replace(servers, key_encryption_secret="not the servers'")
    stuck = course.worker(max_attempts=2)
    course.settings = servers
    course.record(3)
    for _ in range(8):  # the configuration wait is 50 ms in tests: well past two tries
        stuck.drain()
        time.sleep(0.06)
    rows = outbox_rows(course.db, course.context_id)
    assert [(r.status, r.attempts) for r in rows] == [(OutboxStatus.PENDING, 0)] * 2
    assert all("LTI_APP_KEY_ENCRYPTION_SECRET" in r.last_error for r in rows)
    with course.db.session_factory() as session:
        gradebook = session.scalar(
            select(Gradebook).where(Gradebook.context_id == course.context_id)
        )
        assert gradebook is not None
        assert "LTI_APP_KEY_ENCRYPTION_SECRET" in gradebook.last_error
    course.drain_until_settled(course.worker())  # restarted with the right secret
    course.assert_lms_matches_mastery()


def platform_row(db: Database, platform_id: int) -> Platform:
    with db.session_factory() as session:
        row = session.get(Platform, platform_id)
        assert row is not None
        return row


def test_a_stopped_worker_hands_back_what_it_had_not_sent(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=20, competencies=3)
    platform = course.lms.platform
    worker = course.worker(concurrency=2)
    course.drain_until_settled(worker)  # columns
    for competency in range(3):
        course.record(3, competency=competency)
    platform.delay_ms = 40
    received_before = platform.counters.scores_received
    stop = threading.Event()
    sending = threading.Thread(target=worker.drain, args=(stop,))
    sending.start()
    _wait_for(lambda: platform.counters.scores_received - received_before >= 4)
    stop.set()  # SIGTERM: the worker finishes what is on the wire and stops
    sending.join(10)
    counts = course.counts()
    assert counts[OutboxStatus.SENDING] == 0
    assert 0 < counts[OutboxStatus.SENT] < 60
    platform.delay_ms = 0
    # Another worker sends the rest now, not once a lease of minutes has run out.
    course.drain_until_settled(course.worker())
    course.assert_lms_matches_mastery()


def test_a_column_deleted_in_the_lms_is_made_again_with_every_current_level(
    make_course: Callable[..., GradeCourse], lti: LtiActions
) -> None:
    course = make_course(students=4, competencies=2)
    state = course.lms.platform.state
    worker = course.worker()
    course.record(3)
    course.record(2, competency=1)
    course.drain_until_settled(worker)
    deleted_url = course.line_items()[course.competency_ids[0]].url
    assert deleted_url is not None
    state.delete_line_item(course.lms_item_ids()[deleted_url])  # the teacher, in the LMS

    first = next(iter(course.students))
    assert course.record(1, subs=[first])  # a new level: its POST answers 404
    course.drain_until_settled(worker)
    course.worker().drain()  # a second worker finds the new column, never adds one

    labels = sorted(li.label for li in state.line_items_in(course.lms_context_id))
    assert labels == ["C1 Competency 1", "C2 Competency 2"]
    new_url = course.line_items()[course.competency_ids[0]].url
    assert new_url is not None
    assert new_url != deleted_url
    new_results = state.results(course.lms_item_ids()[new_url])
    assert sorted(new_results) == sorted(course.students)
    assert new_results[first].body["scoreGiven"] < 3.0
    course.assert_lms_matches_mastery()  # every student's current level, in both columns
    assert course.counts()[OutboxStatus.FAILED] == 0

    teacher = lti.launch("user-t01", context_id=course.lms_context_id)
    token = re.search(r"[?&]lt=([^\"&]+)", teacher.text)
    assert token is not None
    page = teacher.client.get(f"{lti.tool.url}/grades/sync", params={"lt": token.group(1)})
    assert page.status_code == 200
    assert (
        "The column “C1 Competency 1” was deleted in the LMS; Pathways created it again "
        "and resent 4 scores."
    ) in page.text
