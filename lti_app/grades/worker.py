"""The score outbox worker: claims rows, sends them concurrently, records what the LMS said.

Guarantees, for one (line item, student):
- only the newest row is sent (older unsent rows are superseded when a new one is queued);
- a row is not claimed while an older row for the pair is in flight, so the LMS never sees
  an older score after a newer one (both kept by `grades.claiming`);
- a row's lease expires if its worker dies (SIGKILL), and it is sent again only if no newer
  row exists; outcomes are committed in small batches as they arrive (at most `commit_every`
  rows or `commit_interval` seconds old), so a crash re-sends at most those and the ones on
  the wire (same score, same timestamp: the LMS keeps what it has). Rows claimed ahead but
  not sent yet wait for their lease after a crash; a stopping worker hands them back at once;
- a row is POSTed only by the newest claim on it: the leases of the rows a worker holds are
  renewed every quarter lease until their outcome is recorded — while they wait (a slow LMS
  takes minutes for a few hundred) and while their POST is on the wire (one can outlast what
  was left of a lease) — and just before the POST the worker checks that its claim still holds
  the row (`_still_holds`; the bookkeeping is `grades.leases`). A row claimed again after its
  lease ran out (by another worker, or this one) went to the LMS twice before: Canvas opened a
  second submission attempt and added the level comment twice.

A column the teacher deleted in the LMS answers 404: see `grades.line_item_sync`, which the
worker runs before each drain. What becomes of a row after each kind of answer (sent, retried
later, superseded, failed) is `grades.outcomes`.

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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.db import Database, utcnow
from lti_app.grades import line_item_sync
from lti_app.grades.claiming import ClaimedJob
from lti_app.grades.client import AgsClient, LmsRequestError, token_scopes
from lti_app.grades.client.errors import MAX_RETRY_AFTER
from lti_app.grades.leases import Leases
from lti_app.grades.models import Gradebook, OutboxStatus, ScoreOutbox
from lti_app.grades.outcomes import DrainStats, Outcome, fail_long_waits, record_outcomes
from lti_app.grades.throttling import Throttles
from lti_app.tool.models import Platform

LOG = logging.getLogger(__name__)
SCORE_NOT_FOUND = (
    "The LMS answered 404 (not found) for this score although its gradebook column exists."
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
    """Tries before a score fails for good; the LMS being down or struggling gets longer."""
    retry_transient_for: timedelta = timedelta(days=3)
    """How long a score is tried through errors that say the LMS is down or struggling (5xx,
    timeouts, lost connections, throttling), past `max_attempts`: once the backoff reaches its
    cap that is one try every 10 minutes. The tries alone gave up after about an hour, and an
    LMS upgrade in maintenance mode, or a hosting incident, lasts longer: every queued score
    failed for good and waited for someone to press Retry. Three days covers an LMS down from
    Friday evening to Monday morning; past that a person should look, and a score arriving a
    week late would surprise the teacher more than one shown as failed.

    Counted only over time in which Pathways could and did try the LMS for the score, from
    `ScoreOutbox.waiting_since`: the clock starts at the first answer saying the LMS is not
    there (throttling, a token endpoint that is down, a 5xx or lost connection on the score's
    own POST, or the LMS failing to set up the column the score waits for), and runs on
    through such answers, which use up no tries. Retry stops it, and so does anything that
    holds the score without letting Pathways try: a registration the operator disabled, a
    course waiting for an LMS administrator (a refused token or scope, no gradebook service).
    Such holds never count, however long, since the README promises those scores wait and
    are sent once enabled; the first failure after one starts the days afresh. (Counted from
    when the score was queued, a registration disabled for four days failed its whole
    backlog at the LMS's first throttle once enabled.) `grades.outcomes` keeps the clock."""
    config_retry: float = 600.0
    """Seconds before retrying after a problem only an admin can fix (token, scopes)."""
    poll_interval: float = 1.0
    commit_every: int = 256
    commit_interval: float = 0.05
    """Seconds an outcome may wait to be committed with others."""
    context_ids: frozenset[int] | None = None
    """Only these courses (tests, or an admin draining one course)."""

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait before trying again after `attempts` tries, with jitter."""
        ceiling = min(self.backoff_cap, self.backoff_base * float(2 ** max(0, attempts - 1)))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not crypto
        # A day at most: a configured cap or Retry-After beyond it would only overflow datetime.
        return min(MAX_RETRY_AFTER, max(delay, retry_after or 0.0))


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
        self._offered: dict[int, tuple[str, ...]] = {}
        """Course (context id) -> the AGS scopes its launch claim offered: what the token asks
        for (`AgsClient`)."""
        self._blocked: dict[tuple[int, frozenset[str]], LmsRequestError] = {}
        """(platform, token scopes) -> the refusal holding its scores back for this pass; the
        empty scope set holds back the whole platform (`_blocks`)."""
        self._throttles = Throttles(config.concurrency, config.backoff)
        self._guard = threading.Lock()
        self._column_exists: dict[str, bool] = {}
        self._probe_locks: dict[str, threading.Lock] = {}
        self._leases = Leases(database, self.worker_id, config.lease, config.context_ids)
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

    def _platform(self, session: Session, platform_id: int) -> Platform:
        platform = self._platforms.get(platform_id)
        if platform is None:
            platform = session.get(Platform, platform_id)
            if platform is None:
                raise LookupError(f"no platform {platform_id}")
            session.expunge(platform)
            self._platforms[platform_id] = platform
        return platform

    # -- line items and claims ----------------------------------------------------------------
    def sync_line_items(self) -> int:
        """Find or create (or update) the columns that need it; return how many are done."""
        return line_item_sync.sync_line_items(
            self.db, self.ags, self.config, self._platform, self._throttles
        )

    def _claim(self, limit: int) -> list[ClaimedJob]:
        return self._leases.claim(limit, platform_of=self._platform, on_claimed=self._load_offered)

    def _load_offered(self, session: Session, jobs: Sequence[ClaimedJob]) -> None:
        new = {job.context_id for job in jobs} - self._offered.keys()
        if not new:
            return
        scopes: dict[int, list[str]] = dict(
            session.execute(
                select(Gradebook.context_id, Gradebook.scopes).where(
                    Gradebook.context_id.in_(sorted(new))
                )
            ).all()
        )
        for context_id in new:
            self._offered[context_id] = tuple(scopes.get(context_id) or ())

    def _still_holds(self, job: ClaimedJob) -> bool:
        """Whether this copy of the row is still the one to send (checked just before its POST)."""
        held = self._leases.still_holds(job)
        if not held:
            LOG.warning("score %s: claimed again meanwhile (lease ran out); not sent here", job.id)
        return held

    # -- sending ------------------------------------------------------------------------------
    def _blocks(self, job: ClaimedJob, err: LmsRequestError) -> tuple[int, frozenset[str]]:
        """What a refusal holds back: the token is per registration and scope set, so a scope
        refused to one course's launch claim holds back the courses asking the same scopes,
        not every course on the LMS; a refused registration holds back all of them."""
        if err.scope:
            return (job.platform.id, token_scopes(self._offered.get(job.context_id)))
        return (job.platform.id, frozenset())

    def _held(self, job: ClaimedJob) -> LmsRequestError | None:
        platform_id = job.platform.id
        blocked = self._blocked.get((platform_id, frozenset())) or self._blocked.get(
            (platform_id, token_scopes(self._offered.get(job.context_id)))
        )
        if blocked is not None:
            return blocked
        return self._throttles.pause(platform_id)

    def _send(self, job: ClaimedJob) -> Outcome:
        held = self._held(job)
        if held is not None:
            return Outcome(job, held)
        # Its lease is renewed while it waits for a slot too: after a throttle halved the slots,
        # a slow LMS keeps rows there for minutes.
        with self._throttles.slot(job.platform.id):
            held = self._held(job)
            if held is not None:
                return Outcome(job, held)
            if not self._still_holds(job):
                return Outcome(job, lost=True)
            try:
                self.ags.post_score(
                    job.platform, job.url, job.body, offered=self._offered.get(job.context_id)
                )
            except LmsRequestError as err:
                if err.config:
                    # The token or scope is refused: the rest of the batch would be too.
                    self._blocked[self._blocks(job, err)] = err
                if err.throttled:
                    self._throttles.throttled(job.platform.id, err)
                elif err.unavailable:
                    self._throttles.unavailable(job.platform.id, err)
                if err.status == 404:
                    return self._not_found(job, err)
                return Outcome(job, err)
            except Exception as err:  # pragma: no cover - a bug must not kill the worker
                LOG.exception("score %s: unexpected error", job.id)
                return Outcome(job, LmsRequestError(f"internal error: {err}", retryable=True))
        self._throttles.accepted(job.platform.id)
        return Outcome(job)

    def _not_found(self, job: ClaimedJob, err: LmsRequestError) -> Outcome:
        """A score answered 404: was its column deleted, or is it this score alone?"""
        with self._guard:
            lock = self._probe_locks.setdefault(job.url, threading.Lock())
        # Every score of a deleted column answers 404 at once: one GET answers for all.
        with lock:
            exists = self._column_exists.get(job.url)
            if exists is None:
                try:
                    exists = self.ags.line_item_exists(
                        job.platform, job.url, offered=self._offered.get(job.context_id)
                    )
                except LmsRequestError as probe_err:
                    return Outcome(job, probe_err)
                self._column_exists[job.url] = exists
        if exists:
            return Outcome(job, LmsRequestError(SCORE_NOT_FOUND, retryable=False, status=404))
        return Outcome(job, err, column_gone=True)

    def _record(self, outcomes: Sequence[Outcome], stats: DrainStats) -> None:
        now = utcnow()
        with self.db.begin() as session:
            record_outcomes(
                session,
                outcomes,
                now,
                config=self.config,
                pause_end=self._throttles.pause_end,
                stats=stats,
            )
        # Renewed until now: a row sent but not yet recorded is still SENDING, and a lease
        # that ran out before the record would hand a delivered score to another claim.
        self._leases.forget(outcome.job for outcome in outcomes)

    # -- loops --------------------------------------------------------------------------------
    def drain(self, stop: threading.Event | None = None) -> DrainStats:
        """Send everything due now; return when nothing more can be claimed."""
        stats = DrainStats()
        self._blocked.clear()
        self._platforms.clear()  # pick up registration changes
        self._offered.clear()  # and the scopes of newer launches
        self.ags.new_pass()
        self._column_exists.clear()
        self._probe_locks.clear()
        self._leases.reset()
        stats.line_items = self.sync_line_items()
        with self.db.begin() as session:
            stats.failed += fail_long_waits(session, utcnow(), config=self.config)
        window = self.config.concurrency * 2
        # The sending threads wake this one once per few outcomes, not per outcome: each
        # wake-up is a GIL hand-off, and a window of queued jobs keeps them busy meanwhile.
        wake_at = max(1, self.config.concurrency // 2)
        arrived: list[Outcome] = []
        ready = threading.Condition()

        def send(job: ClaimedJob) -> None:
            try:
                outcome = self._send(job)
            except Exception as err:
                # A job that brought no outcome would keep this loop waiting for it forever and
                # its row renewed, never sent (the database restarting under `_still_holds`).
                LOG.exception("score %s: could not be sent", job.id)
                outcome = Outcome(job, LmsRequestError(f"internal error: {err}", retryable=True))
            with ready:
                arrived.append(outcome)
                if len(arrived) >= wake_at:
                    ready.notify()

        claimed: deque[ClaimedJob] = deque()
        in_flight = 0
        done: list[Outcome] = []
        first_done = 0.0
        exhausted = False
        renew_every = self.config.lease.total_seconds() / 4
        renew_at = time.monotonic() + renew_every
        while True:
            if time.monotonic() >= renew_at:
                self._leases.renew()
                renew_at = time.monotonic() + renew_every
            stopping = stop is not None and stop.is_set()
            if stopping:
                if claimed:
                    self._leases.release(list(claimed))
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
