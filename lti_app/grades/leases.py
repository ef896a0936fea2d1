"""One worker's side of its claims on score outbox rows: the rows it holds until their outcome
is recorded, their leases renewed, and the check just before a POST that its claim still
holds the row (`grades.worker` explains why). The statements are `grades.claiming`'s."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

from sqlalchemy.orm import Session

from lti_app.db import Database, utcnow
from lti_app.grades.claiming import (
    ClaimedJob,
    claim_due,
    hold_for_sending,
    reclaim_expired,
    release,
    renew_leases,
)
from lti_app.tool.models import Platform


class Leases:
    """The rows one worker has claimed and not yet recorded, waiting or on the wire."""

    def __init__(
        self,
        db: Database,
        worker_id: str,
        lease: timedelta,
        context_ids: frozenset[int] | None,
    ) -> None:
        self.db = db
        self.worker_id = worker_id
        self.lease = lease
        self.context_ids = context_ids
        self._guard = threading.Lock()
        self._reclaim_at = 0.0
        self._claim_numbers = itertools.count(1)
        self._confirmed: dict[int, tuple[str, float]] = {}
        """Row id -> (claim, time.monotonic() when the lease this worker last set for it ends):
        a row whose lease was set moments ago needs no statement of its own before its POST."""
        self._waiting: dict[tuple[int, str], ClaimedJob] = {}
        """Rows claimed and not yet recorded (waiting, or on the wire), by (id, claim): their
        leases are renewed."""

    def reset(self) -> None:
        """A new pass: nothing held, and expired leases looked for at the first claim."""
        self._reclaim_at = 0.0
        self._confirmed.clear()
        self._waiting.clear()

    def claim(
        self,
        limit: int,
        *,
        platform_of: Callable[[Session, int], Platform],
        on_claimed: Callable[[Session, list[ClaimedJob]], None],
    ) -> list[ClaimedJob]:
        """Claim up to `limit` due rows; `on_claimed` runs in the claim's transaction."""
        claim = f"{self.worker_id}/{next(self._claim_numbers)}"
        ends = time.monotonic() + self.lease.total_seconds()
        now = utcnow()
        with self.db.begin() as session:
            if time.monotonic() >= self._reclaim_at:
                reclaim_expired(session, now, context_ids=self.context_ids)
                # Leases last minutes: looking for expired ones on every claim is wasted work.
                self._reclaim_at = time.monotonic() + min(5.0, self.lease.total_seconds())
            jobs = claim_due(
                session,
                now,
                limit=limit,
                lease=self.lease,
                claim=claim,
                context_ids=self.context_ids,
                platform_of=platform_of,
            )
            on_claimed(session, jobs)
        with self._guard:
            for job in jobs:
                self._confirmed[job.id] = (claim, ends)
                self._waiting[(job.id, job.claim)] = job
        return jobs

    def renew(self) -> None:
        """Keep the leases of the rows this worker holds: with a slow LMS a few hundred rows
        claimed ahead take minutes, a POST can outlast what was left of a lease, and a lease
        that ran out meanwhile hands the row to another claim."""
        with self._guard:
            waiting = list(self._waiting.values())
        if not waiting:
            return
        ends = time.monotonic() + self.lease.total_seconds()
        with self.db.begin() as session:
            held = renew_leases(session, waiting, utcnow(), lease=self.lease)
        with self._guard:
            for job in waiting:
                if (job.id, job.claim) in held:
                    self._confirmed[job.id] = (job.claim, ends)

    def still_holds(self, job: ClaimedJob) -> bool:
        """Whether this copy of the row is still the one to send (checked just before its POST).

        A lease this worker set or renewed with more than half of it left needs no statement:
        no one else can have claimed the row, and the drain loop goes on renewing it every
        quarter lease while the POST is on the wire. Otherwise one conditional update checks
        the claim and extends the lease, atomically.
        """
        lease = self.lease.total_seconds()
        confirmed = self._confirmed.get(job.id)
        if (
            confirmed is not None
            and confirmed[0] == job.claim
            and confirmed[1] - time.monotonic() > lease / 2
        ):
            return True
        ends = time.monotonic() + lease
        with self.db.begin() as session:
            held = hold_for_sending(session, job, utcnow(), lease=self.lease)
        if held:
            with self._guard:
                self._confirmed[job.id] = (job.claim, ends)
        return held

    def release(self, jobs: Sequence[ClaimedJob]) -> None:
        """Hand back rows claimed ahead and not sent (a stopping worker)."""
        self.forget(jobs)
        with self.db.begin() as session:
            release(session, jobs)

    def forget(self, jobs: Iterable[ClaimedJob]) -> None:
        """Stop renewing these rows' leases: their outcome is recorded (or they are released)."""
        with self._guard:
            for job in jobs:
                self._waiting.pop((job.id, job.claim), None)
