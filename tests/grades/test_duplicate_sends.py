"""A score goes to the LMS once: a slow LMS, rows claimed ahead, leases, and two workers.

Each copy of a score sent to Canvas opens a new submission attempt and adds the level comment
again, so a duplicate is something a teacher sees.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from lti_app.db import utcnow
from lti_app.demo.state import Fault
from lti_app.grades.claiming import reclaim_expired
from lti_app.grades.models import OutboxStatus
from lti_app.grades.outcomes import DrainStats
from tests.grades.conftest import GradeCourse, outbox_rows

CANVAS_SUBMISSION = "https://canvas.instructure.com/lti/submission"


def _deliveries(course: GradeCourse) -> Counter[tuple[int, str, str]]:
    """(LMS line item, user, timestamp) -> how many times the LMS received that score."""
    state = course.lms.platform.state
    mine = set(course.lms_item_ids().values())
    with state.lock:
        return Counter(
            (s.line_item_id, s.user_id, s.body["timestamp"])
            for s in state.scores
            if s.line_item_id in mine
        )


def test_a_slow_lms_gets_each_score_once_when_rows_wait_past_their_lease(
    make_course: Callable[..., GradeCourse],
) -> None:
    # Scaled down from production (a 60 s lease, 16 at once, 256 claimed ahead, and an LMS
    # taking more than 3.3 s per score): a 1 s lease, 2 at once, 50 claimed ahead, 0.1 s per
    # score, so the rows claimed ahead wait far longer than their lease.
    course = make_course(students=30, competencies=4)
    worker = course.worker(concurrency=2, batch_size=50, lease=timedelta(seconds=1))
    course.drain_until_settled(worker)  # columns
    for c in range(4):
        course.record(3, competency=c)
    course.lms.platform.delay_ms = 100
    try:
        course.drain_until_settled(worker)
    finally:
        course.lms.platform.delay_ms = 0
    twice = {k: n for k, n in _deliveries(course).items() if n > 1}
    assert not twice, f"{len(twice)} scores POSTed more than once, e.g. {list(twice.items())[:3]}"
    course.assert_lms_matches_mastery()
    assert course.counts()[OutboxStatus.SENT] == 120


def test_two_workers_and_a_slow_lms_send_each_score_once(
    make_course: Callable[..., GradeCourse],
) -> None:
    # On PostgreSQL (LTI_APP_TEST_DATABASE_URL) the workers claim side by side (SKIP LOCKED).
    course = make_course(students=30, competencies=4)
    course.drain_until_settled(course.worker())  # columns
    for c in range(4):
        course.record(3, competency=c)
    a = course.worker(concurrency=2, batch_size=50, lease=timedelta(seconds=1))
    b = course.worker(concurrency=2, batch_size=50, lease=timedelta(seconds=1))
    course.lms.platform.delay_ms = 100
    try:
        threads = [threading.Thread(target=w.drain) for w in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        course.drain_until_settled(a)
    finally:
        course.lms.platform.delay_ms = 0
    twice = {k: n for k, n in _deliveries(course).items() if n > 1}
    assert not twice, f"{len(twice)} scores POSTed more than once, e.g. {list(twice.items())[:3]}"
    course.assert_lms_matches_mastery()


def test_a_copy_whose_row_was_claimed_again_is_not_sent(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=1, competencies=1)
    first = course.worker(lease=timedelta(seconds=0.2))
    course.drain_until_settled(first)  # columns
    course.record(3)
    (stale,) = first._claim(10)
    # Its lease runs out before its turn (a slow LMS), and another worker claims the row.
    time.sleep(0.3)
    with course.db.begin() as session:
        reclaim_expired(session, utcnow(), context_ids=None)
    second = course.worker()
    (fresh,) = second._claim(10)
    assert fresh.id == stale.id
    before = sum(_deliveries(course).values())
    outcome = first._send(stale)
    assert outcome.lost
    assert sum(_deliveries(course).values()) == before  # the first worker did not POST it
    stats = DrainStats()
    first._record([outcome], stats)
    assert stats.sent == 0
    (row,) = outbox_rows(course.db, course.context_id)
    assert row.status is OutboxStatus.SENDING  # still the second worker's claim
    second._record([second._send(fresh)], stats)
    assert sum(_deliveries(course).values()) == before + 1
    (row,) = outbox_rows(course.db, course.context_id)
    assert row.status is OutboxStatus.SENT


def test_a_score_sent_again_does_not_open_a_new_canvas_submission(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    worker = course.worker()
    course.drain_until_settled(worker)  # columns
    course.lms.platform.queue_faults("ags", Fault(503))  # one of the two first tries
    course.record(3)
    course.drain_until_settled(worker)
    state = course.lms.platform.state
    mine = set(course.lms_item_ids().values())
    with state.lock:
        bodies = [s.body for s in state.scores if s.line_item_id in mine]
    # A first score opens the submission; its try after a 503 (the first may have reached the
    # LMS all the same) must not open a second one.
    assert sorted(str(b.get(CANVAS_SUBMISSION)) for b in bodies) == [
        "None",
        "{'new_submission': False}",
    ]


def test_rows_waiting_for_a_sending_slot_keep_their_lease(
    make_course: Callable[..., GradeCourse], caplog: pytest.LogCaptureFixture
) -> None:
    course = make_course(students=12, competencies=1)
    worker = course.worker(concurrency=4, lease=timedelta(seconds=1))
    course.drain_until_settled(worker)  # columns
    course.record(3)
    # As after throttles halved the slots: one score at a time, the others wait their turn in
    # the sending threads for longer than the lease.
    slots = worker._throttles._slots_of(course.platform_id)
    slots.ceiling = slots.limit = 1
    course.lms.platform.delay_ms = 200
    try:
        with caplog.at_level(logging.WARNING, logger="lti_app.grades.worker"):
            worker.drain()
    finally:
        course.lms.platform.delay_ms = 0
    assert "claimed again meanwhile" not in caplog.text  # none lost its claim while waiting
    assert course.counts()[OutboxStatus.SENT] == 12
    assert max(_deliveries(course).values()) == 1


def test_a_post_that_outlasts_its_lease_is_not_sent_again_by_another_worker(
    make_course: Callable[..., GradeCourse],
) -> None:
    # A POST may take longer than what was left of the lease when it started (a slow LMS, a
    # 401 and a new token, a wait for a connection): the draining worker keeps renewing the
    # lease of a row on the wire, so another worker looking for expired leases finds none.
    course = make_course(students=1, competencies=1)
    first = course.worker(lease=timedelta(seconds=1))
    course.drain_until_settled(first)  # columns
    course.record(3)
    course.lms.platform.delay_ms = 1800
    try:
        sending = threading.Thread(target=first.drain)
        sending.start()
        time.sleep(1.3)  # past the lease set at the claim; the POST is still on the wire
        second = course.worker()
        with course.db.begin() as session:
            reclaim_expired(session, utcnow(), context_ids=None)
        again = second._claim(10)
        for job in again:
            second._send(job)
        sending.join(30)
    finally:
        course.lms.platform.delay_ms = 0
    assert not again, "another worker claimed a score whose POST was still on the wire"
    assert max(_deliveries(course).values()) == 1
    assert course.counts()[OutboxStatus.SENT] == 1


def test_a_database_blip_before_a_post_leaves_the_score_to_be_sent_later(
    make_course: Callable[..., GradeCourse], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one statement a sending thread makes (checking its claim) meets a restarting
    # database: the score is kept for later, and a stopping worker still stops.
    course = make_course(students=1, competencies=1)
    # A lease longer than the test: with 1 s, a loaded machine's pass outlived it and the score
    # was (rightly) claimed and sent again before the assertions looked.
    worker = course.worker(lease=timedelta(seconds=30), concurrency=1)
    course.drain_until_settled(worker)  # columns
    course.record(3)
    calls = 0
    real = worker._still_holds

    def restarting_database(job: object) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OperationalError("UPDATE score_outbox", {}, Exception("server closed"))
        return real(job)  # type: ignore[arg-type]

    monkeypatch.setattr(worker, "_still_holds", restarting_database)
    stop = threading.Event()
    draining = threading.Thread(target=worker.drain, args=(stop,), daemon=True)
    draining.start()
    draining.join(10)
    stop.set()
    draining.join(5)
    assert not draining.is_alive(), "the worker's pass never ended"
    assert course.counts()[OutboxStatus.PENDING] == 1  # kept, to be sent again
    assert not _deliveries(course)
