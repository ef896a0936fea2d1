"""The score outbox worker: claims rows, sends them concurrently, records what the LMS said.

Guarantees, for one (line item, student):
- only the newest row is sent (older unsent rows are superseded when a new one is queued);
- a row is not claimed while an older row for the pair is in flight, so the LMS never sees
  an older score after a newer one;
- a row's lease expires if its worker dies (SIGKILL), and it is sent again only if no newer
  row exists; outcomes are committed in small batches as they arrive.

Several workers may share the outbox: on PostgreSQL the claim uses
`SELECT ... FOR UPDATE SKIP LOCKED`; SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session

from lti_app.db import Database, utcnow
from lti_app.grades.client import CANVAS_SUBMISSION, AgsClient, LmsRequestError, utc_iso
from lti_app.grades.models import (
    Gradebook,
    LineItem,
    LineItemState,
    OutboxStatus,
    ScoreOutbox,
)
from lti_app.tool.models import Membership, MembershipStatus, Person, Platform, ResourceLink

LOG = logging.getLogger(__name__)
NOT_A_LEARNER = "Not sent: this person is not an active student of the course."
NO_AGS = (
    "The LMS has not offered Pathways a gradebook for this course (no Assignment and Grade "
    "Services claim in the launches). An LMS administrator can enable that service for "
    "Pathways; then a teacher opens Pathways again from the course."
)


@dataclass(frozen=True)
class WorkerConfig:
    """Tuning; tests use small backoffs, the CLI reads options."""

    concurrency: int = 16
    """Concurrent requests per platform."""
    batch_size: int = 64
    lease: timedelta = timedelta(seconds=120)
    backoff_base: float = 2.0
    backoff_cap: float = 600.0
    max_attempts: int = 15
    config_retry: float = 600.0
    """Seconds before retrying after a problem only an admin can fix (token, scopes)."""
    poll_interval: float = 1.0
    commit_every: int = 64
    context_ids: frozenset[int] | None = None
    """Only these courses (tests, or an admin draining one course)."""


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class _Outcome:
    job: _Job
    error: LmsRequestError | None = None


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
        self.db = database
        self.ags = ags
        self.config = config or WorkerConfig()
        self.worker_id = worker_id or f"w-{uuid.uuid4().hex[:12]}"
        self._platforms: dict[int, Platform] = {}
        self._semaphores: dict[int, threading.Semaphore] = {}
        self._blocked: dict[int, LmsRequestError] = {}
        self._guard = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, self.config.concurrency * 2), thread_name_prefix="ags-send"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)

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
        return max(delay, retry_after or 0.0)

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
                    )
                )
        done = 0
        for item_id, context_id, platform, lineitems_url, url, body, needs_update in work:
            error: LmsRequestError | None = None
            try:
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
            self._save_line_item(item_id, context_id, url, error)
            done += error is None
        return done

    def _save_line_item(
        self, item_id: int, context_id: int, url: str | None, error: LmsRequestError | None
    ) -> None:
        now = utcnow()
        with self.db.begin() as session:
            item = session.get(LineItem, item_id)
            if item is None:
                return
            item.url = url or item.url
            if error is None:
                item.state, item.needs_update, item.last_error = LineItemState.READY, False, ""
                item.lease_until = None
                LOG.info("line item ready context=%s line_item=%s", context_id, item_id)
                return
            item.last_error = str(error)
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
                .values(last_error=message[:2000])
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
            self._reclaim_expired(session, now)
            # Plain index scans only: per-row correlated subqueries cost O(pending) per claim.
            stmt = (
                select(ScoreOutbox.id, ScoreOutbox.line_item_id, ScoreOutbox.person_id)
                .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
                .where(
                    ScoreOutbox.status == OutboxStatus.PENDING,
                    ScoreOutbox.next_attempt_at <= now,
                    LineItem.is_enabled.is_(True),
                    LineItem.state == LineItemState.READY,
                )
                .order_by(ScoreOutbox.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=ScoreOutbox)
            )
            candidates = list(session.execute(self._scope(stmt, ScoreOutbox)))
            if not candidates:
                return []
            pairs = {(c.line_item_id, c.person_id) for c in candidates}
            pair_key = tuple_(ScoreOutbox.line_item_id, ScoreOutbox.person_id)
            newest: dict[tuple[int, int], int] = {}
            busy: set[tuple[int, int]] = set()
            chunked = sorted(pairs)
            for start in range(0, len(chunked), 300):
                chunk = chunked[start : start + 300]
                for line_item_id, person_id, top in session.execute(
                    select(
                        ScoreOutbox.line_item_id, ScoreOutbox.person_id, func.max(ScoreOutbox.id)
                    )
                    .where(pair_key.in_(chunk))
                    .group_by(ScoreOutbox.line_item_id, ScoreOutbox.person_id)
                ):
                    newest[(line_item_id, person_id)] = top
                busy.update(
                    (line_item_id, person_id)
                    for line_item_id, person_id in session.execute(
                        select(ScoreOutbox.line_item_id, ScoreOutbox.person_id).where(
                            ScoreOutbox.status == OutboxStatus.SENDING, pair_key.in_(chunk)
                        )
                    )
                )
            stale = [c.id for c in candidates if newest[(c.line_item_id, c.person_id)] != c.id]
            if stale:
                session.execute(
                    update(ScoreOutbox)
                    .where(ScoreOutbox.id.in_(stale), ScoreOutbox.status == OutboxStatus.PENDING)
                    .values(status=OutboxStatus.SUPERSEDED),
                    execution_options={"synchronize_session": False},
                )
            # An older row of the pair is in flight: this one waits, so order is kept.
            ids = [
                c.id
                for c in candidates
                if newest[(c.line_item_id, c.person_id)] == c.id
                and (c.line_item_id, c.person_id) not in busy
            ]
            if not ids:
                return []
            rows = list(
                session.execute(
                    select(ScoreOutbox, LineItem.url, Person.sub)
                    .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
                    .join(Person, Person.id == ScoreOutbox.person_id)
                    .where(ScoreOutbox.id.in_(ids))
                    .order_by(ScoreOutbox.id)
                )
            )
            pairs = {(row.context_id, row.person_id) for row, _url, _sub in rows}
            learners = set(
                session.execute(
                    select(Membership.context_id, Membership.person_id).where(
                        tuple_(Membership.context_id, Membership.person_id).in_(pairs),
                        Membership.is_learner.is_(True),
                        Membership.status == MembershipStatus.ACTIVE,
                    )
                )
            )
            jobs: list[_Job] = []
            skipped: list[int] = []
            for row, url, sub in rows:
                if (row.context_id, row.person_id) not in learners or not url:
                    skipped.append(row.id)
                    continue
                jobs.append(
                    _Job(
                        id=row.id,
                        platform=self._platform(session, row.platform_id),
                        context_id=row.context_id,
                        line_item_id=row.line_item_id,
                        person_id=row.person_id,
                        url=url,
                        body=_score_body(row, sub),
                        attempts=row.attempts + 1,
                        scored_at=row.scored_at,
                    )
                )
            if skipped:
                session.execute(
                    update(ScoreOutbox)
                    .where(ScoreOutbox.id.in_(skipped))
                    .values(status=OutboxStatus.SKIPPED, last_error=NOT_A_LEARNER),
                    execution_options={"synchronize_session": False},
                )
            if jobs:
                session.execute(
                    update(ScoreOutbox)
                    .where(ScoreOutbox.id.in_([j.id for j in jobs]))
                    .values(
                        status=OutboxStatus.SENDING,
                        lease_until=now + self.config.lease,
                        claimed_by=self.worker_id,
                        attempts=ScoreOutbox.attempts + 1,
                    ),
                    execution_options={"synchronize_session": False},
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
                return _Outcome(job, err)
            except Exception as err:  # pragma: no cover - a bug must not kill the worker
                LOG.exception("score %s: unexpected error", job.id)
                return _Outcome(job, LmsRequestError(f"internal error: {err}", retryable=True))
        return _Outcome(job)

    def _record(self, outcomes: Sequence[_Outcome], stats: DrainStats) -> None:
        now = utcnow()
        ok = [o.job.id for o in outcomes if o.error is None]
        with self.db.begin() as session:
            mine = (ScoreOutbox.status == OutboxStatus.SENDING) & (
                ScoreOutbox.claimed_by == self.worker_id
            )
            for start in range(0, len(ok), 500):
                session.execute(
                    update(ScoreOutbox)
                    .where(ScoreOutbox.id.in_(ok[start : start + 500]), mine)
                    .values(
                        status=OutboxStatus.SENT,
                        sent_at=now,
                        lease_until=None,
                        last_error="",
                        last_status=200,
                    ),
                    execution_options={"synchronize_session": False},
                )
            stats.sent += len(ok)
            if ok:
                contexts = {o.job.context_id for o in outcomes if o.error is None}
                session.execute(
                    update(Gradebook)
                    .where(Gradebook.context_id.in_(contexts), Gradebook.last_error != "")
                    .values(last_error="")
                )
            config_errors: dict[int, str] = {}
            for outcome in outcomes:
                if outcome.error is not None:
                    self._record_failure(session, outcome.job, outcome.error, now, stats)
                    if outcome.error.config:
                        config_errors[outcome.job.context_id] = str(outcome.error)
            self._note_gradebook_error(session, config_errors)

    def _record_failure(
        self, session: Session, job: _Job, err: LmsRequestError, now: datetime, stats: DrainStats
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
            "last_error": str(err)[:2000],
            "last_status": err.status,
        }
        if newer:
            values["status"] = OutboxStatus.SUPERSEDED
            stats.superseded += 1
        elif err.config:
            # Not the row's fault: wait for the admin, without using up attempts.
            values.update(
                status=OutboxStatus.PENDING,
                attempts=max(0, job.attempts - 1),
                next_attempt_at=now + timedelta(seconds=self.config.config_retry),
            )
            stats.retried += 1
        elif err.status == 409:
            # Moodle keeps second resolution: move past the stored grade's second.
            values.update(
                status=OutboxStatus.PENDING,
                scored_at=max(now, job.scored_at + timedelta(seconds=1)),
                next_attempt_at=now,
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
        stats.line_items = self.sync_line_items()
        inflight: dict[Future[_Outcome], _Job] = {}
        done: list[_Outcome] = []
        exhausted = False
        last_record = time.monotonic()
        window = self.config.concurrency * 2
        while True:
            stopping = stop is not None and stop.is_set()
            if not stopping and not exhausted and len(inflight) < window:
                jobs = self._claim(min(self.config.batch_size, window * 2 - len(inflight)))
                exhausted = not jobs
                for job in jobs:
                    inflight[self._pool.submit(self._send, job)] = job
            if inflight:
                finished, _ = wait(list(inflight), timeout=0.05, return_when=FIRST_COMPLETED)
                for future in finished:
                    inflight.pop(future)
                    done.append(future.result())
            if done and (
                len(done) >= self.config.commit_every
                or not inflight
                or time.monotonic() - last_record > 0.02
            ):
                self._record(done, stats)
                done = []
                last_record = time.monotonic()
                exhausted = False  # pairs whose older row just finished may be claimable
                continue
            if not inflight and (exhausted or stopping):
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


def _score_body(row: ScoreOutbox, user_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "userId": user_id,
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
