"""The score outbox worker: claims rows, sends them concurrently, records what the LMS said.

Guarantees, for one (line item, student):
- only the newest row is sent (older unsent rows are superseded when a new one is queued);
- a row is not claimed while an older row for the pair is in flight, so the LMS never sees
  an older score after a newer one;
- a row's lease expires if its worker dies (SIGKILL), and it is sent again only if no newer
  row exists; outcomes are committed in small batches as they arrive (at most `commit_every`
  rows or `commit_interval` seconds old), so a crash re-sends at most those and the ones on
  the wire (same score, same timestamp: the LMS keeps what it has). Rows claimed ahead but
  not sent yet wait for their lease after a crash; a stopping worker hands them back at once.

Several workers may share the outbox: on PostgreSQL the claim uses
`SELECT ... FOR UPDATE SKIP LOCKED`; SQLite has one writer at a time anyway.

A column the teacher deleted in the LMS answers 404: the worker checks the line item's own
URL, and when that answers 404 too, holds the column's scores, finds or creates the column
again (find first, so retries and other workers never duplicate it) and queues every active
learner's current level for it, with a note for the teacher's "Gradebook sync" page.

Throughput: the database work (claim, record) runs in the draining thread while the sending
threads work through jobs claimed ahead, so a claim or a commit never leaves the connections
idle; claims and records are a few set-based statements per batch of rows, not per row.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, case, func, select, tuple_, update
from sqlalchemy.orm import Session

from lti_app.db import Database, utcnow
from lti_app.grades import services
from lti_app.grades.client import (
    CANVAS_SUBMISSION,
    MAX_RETRY_AFTER,
    AgsClient,
    LmsRequestError,
    utc_iso,
    without_nul,
)
from lti_app.grades.models import (
    Gradebook,
    LineItem,
    LineItemState,
    OutboxStatus,
    ScoreOutbox,
)
from lti_app.tool.models import Membership, MembershipStatus, Person, Platform, ResourceLink

LOG = logging.getLogger(__name__)
OUTBOX = cast(Table, ScoreOutbox.__table__)
"""The hot path writes through the table: no ORM objects or unit of work per row."""
NOT_A_LEARNER = "Not sent: this person is not an active student of the course."
NO_AGS = (
    "The LMS has not offered Pathways a gradebook for this course (no Assignment and Grade "
    "Services claim in the launches). An LMS administrator can enable that service for "
    "Pathways; then a teacher opens Pathways again from the course."
)
SCORE_NOT_FOUND = (
    "The LMS answered 404 (not found) for this score although its gradebook column exists."
)


def column_deleted_note(label: str) -> str:
    return f"The column “{label}” was deleted in the LMS; Pathways is creating it again."


def column_recreated_note(label: str, resent: int) -> str:
    scores = "1 score" if resent == 1 else f"{resent} scores"
    return (
        f"The column “{label}” was deleted in the LMS; Pathways created it again and "
        f"resent {scores}."
    )


@dataclass(frozen=True)
class WorkerConfig:
    """Tuning; tests use small backoffs, the CLI reads options."""

    concurrency: int = 16
    """Concurrent requests per platform."""
    batch_size: int = 256
    """Rows per claim; a claim is made when fewer than two rounds of requests are queued."""
    lease: timedelta = timedelta(seconds=120)
    backoff_base: float = 2.0
    backoff_cap: float = 600.0
    max_attempts: int = 15
    config_retry: float = 600.0
    """Seconds before retrying after a problem only an admin can fix (token, scopes)."""
    poll_interval: float = 1.0
    commit_every: int = 256
    commit_interval: float = 0.05
    """Seconds an outcome may wait to be committed with others."""
    context_ids: frozenset[int] | None = None
    """Only these courses (tests, or an admin draining one course)."""


@dataclass(frozen=True, slots=True)
class _Job:
    id: int
    platform: Platform
    context_id: int
    line_item_id: int
    person_id: int
    url: str
    body: dict[str, Any]
    attempts: int
    scored_at: datetime


@dataclass(frozen=True, slots=True)
class _Outcome:
    job: _Job
    error: LmsRequestError | None = None
    column_gone: bool = False
    """The score's line item URL answers 404: the column was deleted in the LMS."""


@dataclass
class DrainStats:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    superseded: int = 0
    skipped: int = 0
    line_items: int = 0
    errors: list[str] = field(default_factory=list)


class GradeWorker:
    """Drain the score outbox; one per process (`lti-app grades worker` or the demo thread)."""

    def __init__(
        self,
        database: Database,
        ags: AgsClient,
        config: WorkerConfig | None = None,
        worker_id: str | None = None,
    ) -> None:
        config = config or WorkerConfig()
        if config.concurrency < 1:
            # With no sending slot, drain would wait for room that never comes, spinning a CPU.
            raise ValueError(f"GradeWorker concurrency must be 1 or more, got {config.concurrency}")
        self.db = database
        self.ags = ags
        self.config = config
        self.worker_id = worker_id or f"w-{uuid.uuid4().hex[:12]}"
        self._platforms: dict[int, Platform] = {}
        self._semaphores: dict[int, threading.Semaphore] = {}
        self._blocked: dict[int, LmsRequestError] = {}
        self._guard = threading.Lock()
        self._column_exists: dict[str, bool] = {}
        self._probe_locks: dict[str, threading.Lock] = {}
        self._reclaim_at = 0.0
        self._pool = ThreadPoolExecutor(
            max_workers=self.config.concurrency * 2, thread_name_prefix="ags-send"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.ags.close()

    # -- helpers ------------------------------------------------------------------------------
    def _scope(self, stmt: Any, model: Any) -> Any:
        if self.config.context_ids is not None:
            return stmt.where(model.context_id.in_(self.config.context_ids))
        return stmt

    def _backoff(self, attempts: int, retry_after: float | None = None) -> float:
        ceiling = min(
            self.config.backoff_cap, self.config.backoff_base * float(2 ** max(0, attempts - 1))
        )
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not crypto
        # A day at most: a configured cap or Retry-After beyond it would only overflow datetime.
        return min(MAX_RETRY_AFTER, max(delay, retry_after or 0.0))

    def _platform(self, session: Session, platform_id: int) -> Platform:
        platform = self._platforms.get(platform_id)
        if platform is None:
            platform = session.get(Platform, platform_id)
            if platform is None:
                raise LookupError(f"no platform {platform_id}")
            session.expunge(platform)
            self._platforms[platform_id] = platform
        return platform

    @contextmanager
    def _slot(self, platform_id: int) -> Iterator[None]:
        with self._guard:
            sem = self._semaphores.setdefault(
                platform_id, threading.Semaphore(self.config.concurrency)
            )
        with sem:
            yield

    # -- line items ---------------------------------------------------------------------------
    def sync_line_items(self) -> int:
        """Find or create (or update) the columns that need it; return how many are done."""
        now = utcnow()
        with self.db.begin() as session:
            stmt = (
                select(LineItem)
                .where(
                    LineItem.is_enabled.is_(True),
                    (LineItem.state == LineItemState.PENDING) | LineItem.needs_update.is_(True),
                    LineItem.state != LineItemState.FAILED,
                    (LineItem.lease_until.is_(None)) | (LineItem.lease_until < now),
                )
                .order_by(LineItem.id)
                .limit(50)
                .with_for_update(skip_locked=True, of=LineItem)
            )
            items = list(session.scalars(self._scope(stmt, LineItem)))
            work = []
            for item in items:
                item.lease_until = now + self.config.lease
                # Being tried again: Retry resets only columns with an error, so it leaves this
                # lease alone and no second worker takes the column meanwhile.
                item.last_error = ""
                gradebook = session.scalar(
                    select(Gradebook).where(Gradebook.context_id == item.context_id)
                )
                link = (
                    session.get(ResourceLink, item.resource_link_id)
                    if item.resource_link_id
                    else None
                )
                work.append(
                    (
                        item.id,
                        item.context_id,
                        self._platform(session, item.platform_id),
                        gradebook.lineitems_url if gradebook else None,
                        item.url,
                        {
                            "label": item.label,
                            "scoreMaximum": float(item.score_maximum),
                            "resourceId": item.resource_id,
                            "tag": item.tag,
                            **({"resourceLinkId": link.resource_link_id} if link else {}),
                        },
                        item.needs_update,
                        item.state is LineItemState.PENDING,
                    )
                )
        done = 0
        for (
            item_id,
            context_id,
            platform,
            lineitems_url,
            known_url,
            body,
            needs_update,
            pending,
        ) in work:
            error: LmsRequestError | None = None
            url = known_url
            try:
                # A known column marked pending (a score answered 404, or a retry after a
                # failure) may have been deleted in the LMS: ask before trusting it.
                if (
                    url is not None
                    and pending
                    and not needs_update
                    and not self.ags.line_item_exists(platform, url)
                ):
                    url = None
                if url is not None and needs_update:
                    try:
                        self.ags.update_line_item(platform, url, body)
                        needs_update = False
                    except LmsRequestError as err:
                        if err.status != 404:
                            raise
                        url = None
                if url is None:
                    if not lineitems_url:
                        raise LmsRequestError(NO_AGS, retryable=False, config=True)
                    found = next(
                        self.ags.find_line_items(
                            platform, lineitems_url, resource_id=body["resourceId"], tag=body["tag"]
                        ),
                        None,
                    )
                    if found is None:
                        url = self.ags.create_line_item(platform, lineitems_url, body).url
                    else:
                        url = found.url
                        needs_update = needs_update or found.score_maximum != body["scoreMaximum"]
                if needs_update:
                    self.ags.update_line_item(platform, url, body)
            except LmsRequestError as err:
                error = err
            replaced = known_url if known_url is not None and url != known_url else None
            self._save_line_item(item_id, context_id, url, error, replaced=replaced)
            done += error is None
        return done

    def _save_line_item(
        self,
        item_id: int,
        context_id: int,
        url: str | None,
        error: LmsRequestError | None,
        *,
        replaced: str | None = None,
    ) -> None:
        """Record the outcome; `replaced` is the URL of a column deleted in the LMS."""
        now = utcnow()
        with self.db.begin() as session:
            item = session.get(LineItem, item_id)
            if item is None:
                return
            if replaced is not None and error is None and item.url != replaced:
                replaced = None  # someone else already re-created it and re-queued its scores
            item.url = url or item.url
            if error is None:
                item.state, item.needs_update, item.last_error = LineItemState.READY, False, ""
                item.lease_until = None
                if replaced is not None:
                    # The new column is empty: every learner's current level goes again,
                    # superseding scores still waiting for the old one.
                    session.flush()
                    resent = services.requeue_current(
                        session, context_id=context_id, competency_ids=[item.competency_id]
                    )
                    item.last_error = column_recreated_note(item.label, len(resent))
                    LOG.warning(
                        "line item %s was deleted in the LMS; re-created context=%s, "
                        "%d scores queued again",
                        item_id,
                        context_id,
                        len(resent),
                    )
                LOG.info("line item ready context=%s line_item=%s", context_id, item_id)
                return
            item.last_error = without_nul(str(error))[:2000]
            if error.config:
                self._note_gradebook_error(session, {context_id: str(error)})
            if error.retryable or error.config:
                delay = self.config.config_retry if error.config else self._backoff(2)
                item.lease_until = now + timedelta(seconds=delay)
            else:
                item.state, item.lease_until = LineItemState.FAILED, None
            LOG.warning("line item %s failed context=%s: %s", item_id, context_id, error)

    @staticmethod
    def _note_gradebook_error(session: Session, errors: dict[int, str]) -> None:
        for context_id, message in errors.items():
            session.execute(
                update(Gradebook)
                .where(Gradebook.context_id == context_id)
                .values(last_error=without_nul(message)[:2000])
            )

    # -- claiming -----------------------------------------------------------------------------
    def _reclaim_expired(self, session: Session, now: datetime) -> None:
        expired = [
            (row_id, line_item_id, person_id)
            for row_id, line_item_id, person_id in session.execute(
                self._scope(
                    select(ScoreOutbox.id, ScoreOutbox.line_item_id, ScoreOutbox.person_id).where(
                        ScoreOutbox.status == OutboxStatus.SENDING, ScoreOutbox.lease_until < now
                    ),
                    ScoreOutbox,
                )
            )
        ]
        for row_id, line_item_id, person_id in expired:
            newer = session.scalar(
                select(func.count()).where(
                    ScoreOutbox.line_item_id == line_item_id,
                    ScoreOutbox.person_id == person_id,
                    ScoreOutbox.id > row_id,
                )
            )
            status = OutboxStatus.SUPERSEDED if newer else OutboxStatus.PENDING
            session.execute(
                update(ScoreOutbox)
                .where(ScoreOutbox.id == row_id, ScoreOutbox.status == OutboxStatus.SENDING)
                .values(status=status, lease_until=None, claimed_by="")
            )
            LOG.info("score %s lease expired; now %s", row_id, status.value)

    def _claim(self, limit: int) -> list[_Job]:
        now = utcnow()
        with self.db.begin() as session:
            if time.monotonic() >= self._reclaim_at:
                self._reclaim_expired(session, now)
                # Leases last minutes: looking for expired ones on every claim is wasted work.
                self._reclaim_at = time.monotonic() + min(5.0, self.config.lease.total_seconds())
            # Plain index scans only: per-row correlated subqueries cost O(pending) per claim.
            stmt = (
                select(
                    OUTBOX.c.id,
                    OUTBOX.c.platform_id,
                    OUTBOX.c.context_id,
                    OUTBOX.c.line_item_id,
                    OUTBOX.c.person_id,
                    OUTBOX.c.score_given,
                    OUTBOX.c.score_maximum,
                    OUTBOX.c.level_name,
                    OUTBOX.c.activity_progress,
                    OUTBOX.c.grading_progress,
                    OUTBOX.c.scored_at,
                    OUTBOX.c.is_update,
                    OUTBOX.c.attempts,
                    LineItem.url,
                    Person.sub,
                )
                .join(LineItem, LineItem.id == OUTBOX.c.line_item_id)
                .join(Person, Person.id == OUTBOX.c.person_id)
                .where(
                    OUTBOX.c.status == OutboxStatus.PENDING,
                    OUTBOX.c.next_attempt_at <= now,
                    LineItem.is_enabled.is_(True),
                    LineItem.state == LineItemState.READY,
                )
                .order_by(OUTBOX.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=OUTBOX)
            )
            if self.config.context_ids is not None:
                stmt = stmt.where(OUTBOX.c.context_id.in_(self.config.context_ids))
            candidates = list(session.execute(stmt))
            if not candidates:
                return []
            pairs = sorted({(c.line_item_id, c.person_id) for c in candidates})
            pair_key = tuple_(OUTBOX.c.line_item_id, OUTBOX.c.person_id)
            in_flight = func.max(case((OUTBOX.c.status == OutboxStatus.SENDING, 1), else_=0))
            newest: dict[tuple[int, int], int] = {}
            busy: set[tuple[int, int]] = set()
            for start in range(0, len(pairs), 300):
                for line_item_id, person_id, top, sending in session.execute(
                    select(OUTBOX.c.line_item_id, OUTBOX.c.person_id, func.max(OUTBOX.c.id))
                    .add_columns(in_flight)
                    .where(pair_key.in_(pairs[start : start + 300]))
                    .group_by(OUTBOX.c.line_item_id, OUTBOX.c.person_id)
                ):
                    newest[(line_item_id, person_id)] = top
                    if sending:
                        busy.add((line_item_id, person_id))
            stale = [c.id for c in candidates if newest[(c.line_item_id, c.person_id)] != c.id]
            if stale:
                session.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id.in_(stale), OUTBOX.c.status == OutboxStatus.PENDING)
                    .values(status=OutboxStatus.SUPERSEDED)
                )
            # An older row of the pair is in flight: this one waits, so order is kept.
            rows = [
                c
                for c in candidates
                if newest[(c.line_item_id, c.person_id)] == c.id
                and (c.line_item_id, c.person_id) not in busy
            ]
            if not rows:
                return []
            members = {(row.context_id, row.person_id) for row in rows}
            learners = {
                (context_id, person_id)  # plain tuples: hashing Row objects is slow
                for context_id, person_id in session.execute(
                    select(Membership.context_id, Membership.person_id).where(
                        tuple_(Membership.context_id, Membership.person_id).in_(members),
                        Membership.is_learner.is_(True),
                        Membership.status == MembershipStatus.ACTIVE,
                    )
                )
            }
            jobs: list[_Job] = []
            skipped: list[int] = []
            for row in rows:
                if (row.context_id, row.person_id) not in learners or not row.url:
                    skipped.append(row.id)
                    continue
                jobs.append(
                    _Job(
                        id=row.id,
                        platform=self._platform(session, row.platform_id),
                        context_id=row.context_id,
                        line_item_id=row.line_item_id,
                        person_id=row.person_id,
                        url=row.url,
                        body=_score_body(row),
                        attempts=row.attempts + 1,
                        scored_at=row.scored_at,
                    )
                )
            if skipped:
                session.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id.in_(skipped))
                    .values(status=OutboxStatus.SKIPPED, last_error=NOT_A_LEARNER)
                )
            if jobs:
                session.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id.in_([j.id for j in jobs]))
                    .values(
                        status=OutboxStatus.SENDING,
                        lease_until=now + self.config.lease,
                        claimed_by=self.worker_id,
                        attempts=OUTBOX.c.attempts + 1,
                    )
                )
            return jobs

    # -- sending ------------------------------------------------------------------------------
    def _send(self, job: _Job) -> _Outcome:
        blocked = self._blocked.get(job.platform.id)
        if blocked is not None:
            return _Outcome(job, blocked)
        with self._slot(job.platform.id):
            blocked = self._blocked.get(job.platform.id)
            if blocked is not None:
                return _Outcome(job, blocked)
            try:
                self.ags.post_score(job.platform, job.url, job.body)
            except LmsRequestError as err:
                if err.config:
                    # The token or scope is refused: the rest of the batch would be too.
                    self._blocked[job.platform.id] = err
                if err.status == 404:
                    return self._not_found(job, err)
                return _Outcome(job, err)
            except Exception as err:  # pragma: no cover - a bug must not kill the worker
                LOG.exception("score %s: unexpected error", job.id)
                return _Outcome(job, LmsRequestError(f"internal error: {err}", retryable=True))
        return _Outcome(job)

    def _not_found(self, job: _Job, err: LmsRequestError) -> _Outcome:
        """A score answered 404: was its column deleted, or is it this score alone?"""
        with self._guard:
            lock = self._probe_locks.setdefault(job.url, threading.Lock())
        # Every score of a deleted column answers 404 at once: one GET answers for all.
        with lock:
            exists = self._column_exists.get(job.url)
            if exists is None:
                try:
                    exists = self.ags.line_item_exists(job.platform, job.url)
                except LmsRequestError as probe_err:
                    return _Outcome(job, probe_err)
                self._column_exists[job.url] = exists
        if exists:
            return _Outcome(job, LmsRequestError(SCORE_NOT_FOUND, retryable=False, status=404))
        return _Outcome(job, err, column_gone=True)

    def _release(self, jobs: Sequence[_Job]) -> None:
        """Give back rows claimed but not sent (stopping), so no one waits for their lease."""
        with self.db.begin() as session:
            session.execute(
                update(OUTBOX)
                .where(
                    OUTBOX.c.id.in_([j.id for j in jobs]),
                    OUTBOX.c.status == OutboxStatus.SENDING,
                    OUTBOX.c.claimed_by == self.worker_id,
                )
                .values(
                    status=OutboxStatus.PENDING,
                    lease_until=None,
                    claimed_by="",
                    attempts=OUTBOX.c.attempts - 1,
                )
            )

    def _record(self, outcomes: Sequence[_Outcome], stats: DrainStats) -> None:
        now = utcnow()
        ok = [o.job.id for o in outcomes if o.error is None]
        with self.db.begin() as session:
            mine = (OUTBOX.c.status == OutboxStatus.SENDING) & (
                OUTBOX.c.claimed_by == self.worker_id
            )
            for start in range(0, len(ok), 500):
                session.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id.in_(ok[start : start + 500]), mine)
                    .values(
                        status=OutboxStatus.SENT,
                        sent_at=now,
                        lease_until=None,
                        last_error="",
                        last_status=200,
                    )
                )
            stats.sent += len(ok)
            if ok:
                contexts = {o.job.context_id for o in outcomes if o.error is None}
                session.execute(
                    update(Gradebook)
                    .where(Gradebook.context_id.in_(contexts), Gradebook.last_error != "")
                    .values(last_error="")
                )
            self._mark_deleted_columns(session, [o.job for o in outcomes if o.column_gone])
            config_errors: dict[int, str] = {}
            for outcome in outcomes:
                if outcome.error is not None:
                    self._record_failure(
                        session, outcome.job, outcome.error, now, stats, outcome.column_gone
                    )
                    if outcome.error.config:
                        config_errors[outcome.job.context_id] = str(outcome.error)
            self._note_gradebook_error(session, config_errors)

    @staticmethod
    def _mark_deleted_columns(session: Session, jobs: Sequence[_Job]) -> None:
        """Hold the columns whose URL answers 404 until `sync_line_items` re-creates them."""
        for line_item_id, url in sorted({(j.line_item_id, j.url) for j in jobs}):
            item = session.get(LineItem, line_item_id)
            # Only the column as this score knew it: another worker may have re-created it.
            if item is None or item.url != url or item.state is not LineItemState.READY:
                continue
            item.state, item.lease_until = LineItemState.PENDING, None
            item.last_error = column_deleted_note(item.label)
            LOG.warning("line item %s answers 404 context=%s", line_item_id, item.context_id)

    def _record_failure(
        self,
        session: Session,
        job: _Job,
        err: LmsRequestError,
        now: datetime,
        stats: DrainStats,
        column_gone: bool = False,
    ) -> None:
        newer = session.scalar(
            select(func.count()).where(
                ScoreOutbox.line_item_id == job.line_item_id,
                ScoreOutbox.person_id == job.person_id,
                ScoreOutbox.id > job.id,
            )
        )
        values: dict[str, Any] = {
            "lease_until": None,
            "last_error": without_nul(str(err))[:2000],
            "last_status": err.status,
        }
        if newer:
            values["status"] = OutboxStatus.SUPERSEDED
            stats.superseded += 1
        elif column_gone:
            # Not the row's fault: it waits for the column to exist again (or for the
            # re-queue that comes with it), without using up attempts.
            values.update(
                status=OutboxStatus.PENDING,
                attempts=max(0, job.attempts - 1),
                next_attempt_at=now,
                last_error="",
            )
            stats.retried += 1
        elif err.config:
            # Not the row's fault: wait for the admin, without using up attempts.
            values.update(
                status=OutboxStatus.PENDING,
                attempts=max(0, job.attempts - 1),
                next_attempt_at=now + timedelta(seconds=self.config.config_retry),
            )
            stats.retried += 1
        elif err.status == 409 and job.attempts < self.config.max_attempts:
            # Moodle keeps second resolution: move past the stored grade's second. The backoff
            # lets the clock move too, so the timestamp stays near the present.
            values.update(
                status=OutboxStatus.PENDING,
                scored_at=max(now, job.scored_at + timedelta(seconds=1)),
                next_attempt_at=now + timedelta(seconds=self._backoff(job.attempts)),
            )
            stats.retried += 1
        elif err.retryable and job.attempts < self.config.max_attempts:
            delay = self._backoff(job.attempts, err.retry_after)
            values.update(
                status=OutboxStatus.PENDING, next_attempt_at=now + timedelta(seconds=delay)
            )
            stats.retried += 1
        else:
            values["status"] = OutboxStatus.FAILED
            stats.failed += 1
            LOG.warning(
                "score %s failed iss=%s status=%s: %s",
                job.id,
                job.platform.issuer,
                err.status,
                err,
            )
        session.execute(
            update(ScoreOutbox)
            .where(
                ScoreOutbox.id == job.id,
                ScoreOutbox.status == OutboxStatus.SENDING,
                ScoreOutbox.claimed_by == self.worker_id,
            )
            .values(**values),
            execution_options={"synchronize_session": False},
        )

    # -- loops --------------------------------------------------------------------------------
    def drain(self, stop: threading.Event | None = None) -> DrainStats:
        """Send everything due now; return when nothing more can be claimed."""
        stats = DrainStats()
        self._blocked.clear()
        self._platforms.clear()  # pick up registration changes
        self._column_exists.clear()
        self._probe_locks.clear()
        self._reclaim_at = 0.0
        stats.line_items = self.sync_line_items()
        window = self.config.concurrency * 2
        # The sending threads wake this one once per few outcomes, not per outcome: each
        # wake-up is a GIL hand-off, and a window of queued jobs keeps them busy meanwhile.
        wake_at = max(1, self.config.concurrency // 2)
        arrived: list[_Outcome] = []
        ready = threading.Condition()

        def send(job: _Job) -> None:
            outcome = self._send(job)
            with ready:
                arrived.append(outcome)
                if len(arrived) >= wake_at:
                    ready.notify()

        claimed: deque[_Job] = deque()
        in_flight = 0
        done: list[_Outcome] = []
        first_done = 0.0
        exhausted = False
        while True:
            stopping = stop is not None and stop.is_set()
            if stopping:
                if claimed:
                    self._release(list(claimed))
                    claimed.clear()
            elif not exhausted and len(claimed) < window:
                # Idle connections: a small first claim starts sending sooner.
                jobs = self._claim(self.config.batch_size if in_flight else window)
                exhausted = not jobs
                claimed.extend(jobs)
            # Two rounds of requests in flight or queued to the sending threads: a thread that
            # finishes finds its next job at once, whatever the database is doing meanwhile.
            while claimed and in_flight < window:
                self._pool.submit(send, claimed.popleft())
                in_flight += 1
            if in_flight:
                with ready:
                    if len(arrived) < min(wake_at, in_flight):
                        # Not past the moment the batch is due, nor long when few are left.
                        due = first_done + self.config.commit_interval - time.monotonic()
                        ready.wait(max(0.0, min(due, 0.01)) if done else 0.01)
                    got, arrived[:] = arrived[:], []
                in_flight -= len(got)
                done.extend(got)
                if done and not first_done:
                    first_done = time.monotonic()
            if done and (
                len(done) >= self.config.commit_every
                or not in_flight
                or time.monotonic() - first_done >= self.config.commit_interval
            ):
                self._record(done, stats)
                done, first_done = [], 0.0
                exhausted = False  # pairs whose older row just finished may be claimable
                continue
            if not in_flight and not claimed and (exhausted or stopping):
                break
        return stats

    def next_due_in(self) -> float | None:
        """Seconds until the earliest pending row is due (None: nothing pending)."""
        with self.db.session_factory() as session:
            due: datetime | None = session.scalar(
                self._scope(
                    select(func.min(ScoreOutbox.next_attempt_at)).where(
                        ScoreOutbox.status == OutboxStatus.PENDING
                    ),
                    ScoreOutbox,
                )
            )
        if due is None:
            return None
        return max(0.0, float((due - utcnow()).total_seconds()))

    def run(self, stop: threading.Event, wake: threading.Event | None = None) -> None:
        """Drain, then sleep until woken, a row is due, or the poll interval passes."""
        wake = wake or threading.Event()
        while not stop.is_set():
            try:
                self.drain(stop)
                due = self.next_due_in()
            except Exception:
                LOG.exception("grade worker pass failed; retrying")
                due = None
            timeout = (
                self.config.poll_interval
                if due is None
                else min(self.config.poll_interval, max(0.01, due))
            )
            wake.wait(timeout)
            wake.clear()


def _score_body(row: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "userId": row.sub,
        "activityProgress": row.activity_progress,
        "gradingProgress": row.grading_progress,
        "timestamp": utc_iso(row.scored_at),
    }
    if row.score_given is not None and row.score_maximum is not None:
        body["scoreGiven"] = float(row.score_given)
        body["scoreMaximum"] = float(row.score_maximum)
    if row.level_name:
        body["comment"] = row.level_name
    if row.is_update:
        # Canvas: an update must not start a new submission attempt.
        body[CANVAS_SUBMISSION] = {"new_submission": False}
    return body
