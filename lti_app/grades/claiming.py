"""Claiming score outbox rows for the worker, and taking back claims whose worker died.

The ordering guarantees of the outbox live in one claim: only the newest row of a
(line item, student) pair is sent, and not while an older row of the pair is in flight, so
the LMS never sees an older score after a newer one. Kept apart from `grades.worker` so that
the rules of who may send what can be read without the threads that send.

Several workers may share the outbox: on PostgreSQL the claim uses
`SELECT ... FOR UPDATE SKIP LOCKED`; SQLite has one writer at a time anyway.

Each claim writes its own token into `claimed_by` (the worker's id and a claim number): a row
whose lease ran out is claimed again, by another worker or by the same one, and only the
newest claim may send it (`hold_for_sending`) or record what the LMS said.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, case, func, select, tuple_, update
from sqlalchemy.orm import Session

from lti_app.grades.client import CANVAS_SUBMISSION, adds_every_comment, utc_iso
from lti_app.grades.models import LineItem, LineItemState, OutboxStatus, ScoreOutbox
from lti_app.tool.models import Membership, MembershipStatus, Person, Platform

LOG = logging.getLogger(__name__)
OUTBOX = cast(Table, ScoreOutbox.__table__)
"""The hot path writes through the table: no ORM objects or unit of work per row."""
NOT_A_LEARNER = "Not sent: this person is not an active student of the course."
DISABLED_PLATFORMS = select(Platform.id).where(Platform.is_active.is_(False))
"""Registrations disabled with `lti-app platform disable`: the worker sends them nothing."""


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """One outbox row claimed by a worker: everything needed to post it, no ORM objects."""

    id: int
    platform: Platform
    context_id: int
    line_item_id: int
    person_id: int
    url: str
    body: dict[str, Any]
    attempts: int
    scored_at: datetime
    created_at: datetime
    """When the score was queued (or queued again by Retry)."""
    waiting_since: datetime | None
    """Since when its LMS has not been there (`ScoreOutbox.waiting_since`)."""
    claim: str
    """The claim's token in `claimed_by`: this copy of the row is the one to send only while
    the row still carries it."""


def reclaim_expired(session: Session, now: datetime, *, context_ids: frozenset[int] | None) -> None:
    """Hand back rows whose worker died mid-send, unless a newer row of the pair exists."""
    stmt = select(ScoreOutbox.id, ScoreOutbox.line_item_id, ScoreOutbox.person_id).where(
        ScoreOutbox.status == OutboxStatus.SENDING, ScoreOutbox.lease_until < now
    )
    if context_ids is not None:
        stmt = stmt.where(ScoreOutbox.context_id.in_(context_ids))
    expired = [
        (row_id, line_item_id, person_id)
        for row_id, line_item_id, person_id in session.execute(stmt)
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


def claim_due(
    session: Session,
    now: datetime,
    *,
    limit: int,
    lease: timedelta,
    claim: str,
    context_ids: frozenset[int] | None,
    platform_of: Callable[[Session, int], Platform],
) -> list[ClaimedJob]:
    """Claim up to `limit` rows due now under the token `claim`; supersede or skip those never
    to send.

    :param platform_of: the worker's cache of detached platforms, by id.
    """
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
            OUTBOX.c.created_at,
            OUTBOX.c.waiting_since,
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
            # A registration the operator disabled: its scores wait, pending, and go once it
            # is enabled again (an uncorrelated subquery, run once per claim).
            OUTBOX.c.platform_id.not_in(DISABLED_PLATFORMS),
        )
        .order_by(OUTBOX.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=OUTBOX)
    )
    if context_ids is not None:
        stmt = stmt.where(OUTBOX.c.context_id.in_(context_ids))
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
                # Canvas's Test Student: a score queued before the LMS said so goes nowhere.
                Membership.is_preview.is_(False),
            )
        )
    }
    standing = _comments_standing(session, rows)
    jobs: list[ClaimedJob] = []
    skipped: list[int] = []
    for row in rows:
        if (row.context_id, row.person_id) not in learners or not row.url:
            skipped.append(row.id)
            continue
        jobs.append(
            ClaimedJob(
                id=row.id,
                platform=platform_of(session, row.platform_id),
                context_id=row.context_id,
                line_item_id=row.line_item_id,
                person_id=row.person_id,
                url=row.url,
                body=_score_body(row, comment=(row.line_item_id, row.person_id) not in standing),
                attempts=row.attempts + 1,
                scored_at=row.scored_at,
                created_at=row.created_at,
                waiting_since=row.waiting_since,
                claim=claim,
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
                lease_until=now + lease,
                claimed_by=claim,
                attempts=OUTBOX.c.attempts + 1,
            )
        )
    return jobs


def release(session: Session, jobs: Sequence[ClaimedJob]) -> None:
    """Give back rows claimed but not sent (stopping), so no one waits for their lease."""
    for claim, ids in _by_claim(jobs).items():
        session.execute(
            update(OUTBOX)
            .where(
                OUTBOX.c.id.in_(ids),
                OUTBOX.c.status == OutboxStatus.SENDING,
                OUTBOX.c.claimed_by == claim,
            )
            .values(
                status=OutboxStatus.PENDING,
                lease_until=None,
                claimed_by="",
                attempts=OUTBOX.c.attempts - 1,
            )
        )


def renew_leases(
    session: Session, jobs: Sequence[ClaimedJob], now: datetime, *, lease: timedelta
) -> set[tuple[int, str]]:
    """Extend the leases of rows claimed and still waiting to be sent; return the (id, claim)
    of those still held. A row whose lease already ran out may have been claimed again
    meanwhile: it is not extended, and its copy here must not be sent."""
    held: set[tuple[int, str]] = set()
    for claim, ids in _by_claim(jobs).items():
        for start in range(0, len(ids), 500):
            held.update(
                (row_id, claim)
                for row_id in session.scalars(
                    update(OUTBOX)
                    .where(
                        OUTBOX.c.id.in_(ids[start : start + 500]),
                        OUTBOX.c.status == OutboxStatus.SENDING,
                        OUTBOX.c.claimed_by == claim,
                        OUTBOX.c.lease_until >= now,
                    )
                    .values(lease_until=now + lease)
                    .returning(OUTBOX.c.id)
                )
            )
    return held


def hold_for_sending(session: Session, job: ClaimedJob, now: datetime, *, lease: timedelta) -> bool:
    """Whether this claim still holds the row, extending its lease for the send; one atomic
    statement, so of two copies of a row (a lease ran out and it was claimed again) only the
    newest claim's is ever sent."""
    result = session.execute(
        update(OUTBOX)
        .where(
            OUTBOX.c.id == job.id,
            OUTBOX.c.status == OutboxStatus.SENDING,
            OUTBOX.c.claimed_by == job.claim,
            OUTBOX.c.lease_until >= now,
        )
        .values(lease_until=now + lease)
    )
    return getattr(result, "rowcount", 0) == 1


def _by_claim(jobs: Sequence[ClaimedJob]) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {}
    for job in jobs:
        ids.setdefault(job.claim, []).append(job.id)
    return ids


def _comments_standing(session: Session, rows: Sequence[Any]) -> set[tuple[int, int]]:
    """The (line item, student) pairs of `rows` whose level name the LMS already shows as a
    comment in that column, where a repeated comment would be added again (Canvas): the last
    score it accepted went to the same column with the same level. A rescore after a change of
    points, or "send again", then leaves one comment per level, not one per send."""
    wanted = {
        (row.line_item_id, row.person_id): row
        for row in rows
        if row.level_name and row.url and adds_every_comment(row.url)
    }
    if not wanted:
        return set()
    pairs = sorted(wanted)
    pair_key = tuple_(OUTBOX.c.line_item_id, OUTBOX.c.person_id)
    last_sent: list[int] = []
    for start in range(0, len(pairs), 300):
        last_sent.extend(
            session.scalars(
                select(func.max(OUTBOX.c.id))
                .where(pair_key.in_(pairs[start : start + 300]))
                .where(OUTBOX.c.status == OutboxStatus.SENT)
                .group_by(OUTBOX.c.line_item_id, OUTBOX.c.person_id)
            )
        )
    standing: set[tuple[int, int]] = set()
    for start in range(0, len(last_sent), 300):
        for line_item_id, person_id, level_name, sent_url in session.execute(
            select(
                OUTBOX.c.line_item_id, OUTBOX.c.person_id, OUTBOX.c.level_name, OUTBOX.c.sent_url
            ).where(OUTBOX.c.id.in_(last_sent[start : start + 300]))
        ):
            row = wanted[(line_item_id, person_id)]
            if level_name == row.level_name and sent_url == row.url:
                standing.add((line_item_id, person_id))
    return standing


def _score_body(row: Any, *, comment: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "userId": row.sub,
        "activityProgress": row.activity_progress,
        "gradingProgress": row.grading_progress,
        "timestamp": utc_iso(row.scored_at),
    }
    if row.score_given is not None and row.score_maximum is not None:
        body["scoreGiven"] = float(row.score_given)
        body["scoreMaximum"] = float(row.score_maximum)
    if row.level_name and comment:
        body["comment"] = row.level_name
    if row.is_update or row.attempts:
        # Canvas: an update must not start a new submission attempt, nor a score sent again
        # (its first try may have reached the LMS although no answer came back, or its lease
        # ran out while a worker was sending it).
        body[CANVAS_SUBMISSION] = {"new_submission": False}
    return body
