"""Recording what the LMS answered for each sent score: sent, retried later, superseded, failed.

Kept apart from `grades.worker` so that what becomes of a row after each kind of answer (and
which answers use up its attempts) can be read without the threads that send.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lti_app.grades import line_item_sync
from lti_app.grades.claiming import DISABLED_PLATFORMS, OUTBOX, ClaimedJob
from lti_app.grades.client import LmsRequestError
from lti_app.grades.client.errors import without_nul, without_retry_promise
from lti_app.grades.models import Gradebook, LineItem, LineItemState, OutboxStatus, ScoreOutbox

if TYPE_CHECKING:
    from lti_app.grades.worker import WorkerConfig

LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed row's request: sent when `error` is None."""

    job: ClaimedJob
    error: LmsRequestError | None = None
    column_gone: bool = False
    """The score's line item URL answers 404: the column was deleted in the LMS."""
    lost: bool = False
    """Not sent: the row's lease ran out before its turn and it was claimed again (by
    another worker, or by this one), so the newer claim sends it and records what came of it."""


@dataclass
class DrainStats:
    """What one drain of the outbox did, for the CLI and the benchmark."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    superseded: int = 0
    skipped: int = 0
    line_items: int = 0
    errors: list[str] = field(default_factory=list)


def record_outcomes(
    session: Session,
    outcomes: Sequence[Outcome],
    now: datetime,
    *,
    config: WorkerConfig,
    pause_end: Callable[[int], datetime | None],
    stats: DrainStats,
) -> None:
    """Write the outcomes of rows this worker's claims still hold, and count them into `stats`.

    :param pause_end: when a platform's throttling pause ends, for rows it held back.
    """
    outcomes = [o for o in outcomes if not o.lost]
    ok = [o.job.id for o in outcomes if o.error is None]
    # One statement per column (and claim): a pass sends to few columns, each to many students.
    ok_by_column: dict[tuple[str, str], list[int]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.error is None:
            ok_by_column[(outcome.job.url, outcome.job.claim)].append(outcome.job.id)
    for (url, claim), ids in ok_by_column.items():
        mine = (OUTBOX.c.status == OutboxStatus.SENDING) & (OUTBOX.c.claimed_by == claim)
        for start in range(0, len(ids), 500):
            session.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_(ids[start : start + 500]), mine)
                .values(
                    status=OutboxStatus.SENT,
                    sent_at=now,
                    sent_url=url,
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
    line_item_sync.hold_deleted_columns(
        session, [(o.job.line_item_id, o.job.url) for o in outcomes if o.column_gone]
    )
    config_errors: dict[int, str] = {}
    for outcome in outcomes:
        if outcome.error is not None:
            _record_failure(
                session,
                outcome.job,
                outcome.error,
                now,
                stats,
                outcome.column_gone,
                config=config,
                pause_end=pause_end,
            )
            if outcome.error.config:
                config_errors[outcome.job.context_id] = str(outcome.error)
    line_item_sync.note_gradebook_error(session, config_errors)


def _record_failure(
    session: Session,
    job: ClaimedJob,
    err: LmsRequestError,
    now: datetime,
    stats: DrainStats,
    column_gone: bool,
    *,
    config: WorkerConfig,
    pause_end: Callable[[int], datetime | None],
) -> None:
    newer = session.scalar(
        select(func.count()).where(
            ScoreOutbox.line_item_id == job.line_item_id,
            ScoreOutbox.person_id == job.person_id,
            ScoreOutbox.id > job.id,
        )
    )
    # The clock of `WorkerConfig.retry_transient_for`: this answer starts it if it says the
    # LMS is not there and no wait runs yet.
    since = job.waiting_since or now
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
        # Not the row's fault: wait for the admin, without using up attempts, or days.
        values.update(
            status=OutboxStatus.PENDING,
            attempts=max(0, job.attempts - 1),
            next_attempt_at=now + timedelta(seconds=config.config_retry),
            waiting_since=None,
        )
        stats.retried += 1
    elif (err.throttled or err.unavailable) and now - since < config.retry_transient_for:
        # Not the row's fault either: throttling only says "later", so it uses up no
        # attempts (counted, a long throttle failed every score); nor does a token endpoint
        # that is down (the score itself was never sent). Only the time limit of the LMS
        # being down applies: without it a score waited for ever, saying "will retry".
        # Due when the platform's pause ends (it grows with each pause in a row), so the
        # rows held meanwhile are not claimed again and again while it lasts.
        values.update(
            status=OutboxStatus.PENDING,
            attempts=max(0, job.attempts - 1),
            next_attempt_at=max(now, pause_end(job.platform.id) or now),
            waiting_since=since,
        )
        stats.retried += 1
    elif err.throttled or err.unavailable:
        values.update(
            status=OutboxStatus.FAILED,
            attempts=max(0, job.attempts - 1),
            last_error=without_nul(stopped_waiting(err, now - since))[:2000],
        )
        stats.failed += 1
        LOG.warning(
            "score %s failed iss=%s status=%s: waited %s for the LMS: %s",
            job.id,
            job.platform.issuer,
            err.status,
            how_long(now - since),
            err,
        )
    elif err.status == 409 and job.attempts < config.max_attempts:
        # Moodle keeps second resolution: move past the stored grade's second. The backoff
        # lets the clock move too, so the timestamp stays near the present.
        values.update(
            status=OutboxStatus.PENDING,
            scored_at=max(now, job.scored_at + timedelta(seconds=1)),
            next_attempt_at=now + timedelta(seconds=config.backoff(job.attempts)),
        )
        stats.retried += 1
    elif err.retryable and (
        job.attempts < config.max_attempts
        or (err.transient and now - since < config.retry_transient_for)
    ):
        delay = config.backoff(job.attempts, err.retry_after)
        values.update(status=OutboxStatus.PENDING, next_attempt_at=now + timedelta(seconds=delay))
        if err.transient:
            values["waiting_since"] = since
        stats.retried += 1
    else:
        values["status"] = OutboxStatus.FAILED
        if err.retryable:
            # The message promised a retry; the teacher now has to ask for one. An LMS down
            # was tried over its wait, not over days its registration was disabled, say.
            tried_for = now - (since if err.transient else job.created_at)
            values["last_error"] = without_nul(
                f"{without_retry_promise(str(err))} Pathways stopped after "
                f"{tries(job.attempts)} over {how_long(tried_for)}; "
                "press Retry to send it again."
            )[:2000]
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
            ScoreOutbox.claimed_by == job.claim,
        )
        .values(**values),
        execution_options={"synchronize_session": False},
    )


def fail_long_waits(session: Session, now: datetime, *, config: WorkerConfig) -> int:
    """Keep the clock of scores that wait without being tried, and fail those that waited for
    a gradebook column the LMS keeps failing to set up (its requests throttled, answered 5xx,
    or no token for them) too long; return how many failed.

    A held score is never claimed, so no answer of its own keeps its clock
    (`WorkerConfig.retry_transient_for` says what counts): the clock stops here for scores
    Pathways may not send (a registration the operator disabled, a course whose problem waits
    for an LMS administrator: its page says so, and nothing is lost), and starts for scores
    whose column has failed while Pathways may send (`claiming` sends only to a READY
    column). Not counted either: a column that has not failed yet (being made, or one the LMS
    makes itself), one the teacher turned off. The column itself is still tried; Retry sends
    the score again.
    """
    _stop_held_clocks(session, config)
    failing = (
        select(LineItem.id)
        .join(Gradebook, Gradebook.context_id == LineItem.context_id)
        .where(
            LineItem.platform_id.not_in(DISABLED_PLATFORMS),
            LineItem.is_enabled.is_(True),
            LineItem.state == LineItemState.PENDING,
            LineItem.last_error != "",
            Gradebook.last_error == "",
        )
    )
    if config.context_ids is not None:
        failing = failing.where(LineItem.context_id.in_(config.context_ids))
    session.execute(
        update(ScoreOutbox)
        .where(
            ScoreOutbox.status == OutboxStatus.PENDING,
            ScoreOutbox.waiting_since.is_(None),
            ScoreOutbox.line_item_id.in_(failing),
        )
        .values(waiting_since=now)
        .execution_options(synchronize_session=False)
    )
    long_ago = now - config.retry_transient_for
    stmt = (
        select(ScoreOutbox.line_item_id)
        .where(
            ScoreOutbox.status == OutboxStatus.PENDING,
            ScoreOutbox.waiting_since <= long_ago,
            ScoreOutbox.line_item_id.in_(failing),
        )
        .distinct()
    )
    failed = 0
    for line_item_id in session.scalars(stmt).all():
        item = session.get(LineItem, line_item_id)
        if item is None:
            continue
        words = without_nul(
            f"Its gradebook column “{item.label}” could not be set up in the LMS: "
            f"{without_retry_promise(item.last_error)} Pathways waited "
            f"{how_long(config.retry_transient_for)} for the column and stopped trying to "
            "send this score; the score is kept. An LMS administrator can check that the "
            "LMS and its gradebook service (Assignment and Grade Services) work for this "
            "course; then press Retry to send it again."
        )[:2000]
        result = session.execute(
            update(ScoreOutbox)
            .where(
                ScoreOutbox.line_item_id == line_item_id,
                ScoreOutbox.status == OutboxStatus.PENDING,
                ScoreOutbox.waiting_since <= long_ago,
                # Re-checked in the statement: another worker may have made the column since.
                select(LineItem.id)
                .where(
                    LineItem.id == line_item_id,
                    LineItem.state == LineItemState.PENDING,
                    LineItem.last_error != "",
                )
                .exists(),
            )
            .values(status=OutboxStatus.FAILED, last_error=words, last_status=None)
            .execution_options(synchronize_session=False)
        )
        n = int(getattr(result, "rowcount", 0) or 0)
        failed += n
        if n:
            LOG.warning(
                "%d scores failed context=%s line_item=%s: waited %s for the column: %s",
                n,
                item.context_id,
                line_item_id,
                how_long(config.retry_transient_for),
                item.last_error,
            )
    return failed


def _stop_held_clocks(session: Session, config: WorkerConfig) -> None:
    """Clear the clock of the scores of disabled registrations and of courses waiting for an
    LMS administrator: the days they wait are not days Pathways tried."""
    admin = select(Gradebook.context_id).where(Gradebook.last_error != "")
    disabled = list(session.scalars(DISABLED_PLATFORMS))
    if config.context_ids is not None:
        admin = admin.where(Gradebook.context_id.in_(config.context_ids))
    # Both are nearly always empty: no statement over the pending scores then.
    waiting_for_admin = list(session.scalars(admin.limit(1)))
    if not disabled and not waiting_for_admin:
        return
    stmt = update(ScoreOutbox).where(
        ScoreOutbox.status == OutboxStatus.PENDING,
        ScoreOutbox.waiting_since.is_not(None),
        ScoreOutbox.platform_id.in_(DISABLED_PLATFORMS) | ScoreOutbox.context_id.in_(admin),
    )
    if config.context_ids is not None:
        stmt = stmt.where(ScoreOutbox.context_id.in_(config.context_ids))
    session.execute(stmt.values(waiting_since=None).execution_options(synchronize_session=False))


def stopped_waiting(err: LmsRequestError, waited: timedelta) -> str:
    """What a teacher reads on a score that waited out a throttling LMS, or one that gave
    Pathways no access token, for longer than scores are kept trying."""
    if err.throttled:
        check = (
            "An LMS administrator can check the LMS's limits on how many requests Pathways "
            "may make (in Canvas, the developer key's throttling)"
        )
    else:
        check = (
            "An LMS administrator can check that the LMS is up and that its token endpoint "
            "(in the Pathways registration) answers"
        )
    return (
        f"{without_retry_promise(str(err))} Pathways waited {how_long(waited)} for the LMS "
        f"and stopped trying; the score is kept. {check}; then press Retry to send it again."
    )


def tries(n: int) -> str:
    return "1 try" if n == 1 else f"{n} tries"


def how_long(span: timedelta) -> str:
    """A span in the largest whole unit a teacher would say: "3 days", "5 hours"."""
    seconds = max(0, int(span.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}" if n == 1 else f"{n} {unit}s"
    return "less than a minute"
