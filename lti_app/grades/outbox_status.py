"""What the score outbox holds, for the teacher's "Gradebook sync" page, the admin console
and the CLI, and sending failed or waiting rows again (Retry).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from lti_app.competencies.models import Competency
from lti_app.db import utcnow
from lti_app.grades.gradebook import column_label
from lti_app.grades.models import Gradebook, LineItem, LineItemState, OutboxStatus, ScoreOutbox
from lti_app.grades.services import notify_worker
from lti_app.tool.models import Membership, MembershipStatus, Person


@dataclass(frozen=True)
class OutboxProblem:
    """A score that failed or waits on the LMS, for the teacher's sync page."""

    id: int
    person_name: str
    competency_id: int
    competency_title: str
    level_name: str | None
    status: OutboxStatus
    attempts: int
    last_status: int | None
    reason: str
    column_enabled: bool = True
    """False: the teacher turned the column off, so Retry does not send it."""


def outbox_counts(session: Session, *, context_id: int | None = None) -> dict[OutboxStatus, int]:
    """Rows per status, for one course or (admins) every course."""
    stmt = select(ScoreOutbox.status, func.count()).group_by(ScoreOutbox.status)
    if context_id is not None:
        stmt = stmt.where(ScoreOutbox.context_id == context_id)
    counts = dict.fromkeys(OutboxStatus, 0)
    for status, n in session.execute(stmt):
        counts[status] = n
    return counts


def waiting_for_turned_off_columns(session: Session, *, context_id: int) -> int:
    """Unsent rows of columns the teacher turned off: the worker leaves them, so they are not
    "waiting" for anything (turning the column on again queues current levels afresh)."""
    count = session.scalar(
        select(func.count())
        .select_from(ScoreOutbox)
        .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
        .where(
            ScoreOutbox.context_id == context_id,
            ScoreOutbox.status == OutboxStatus.PENDING,
            LineItem.is_enabled.is_(False),
        )
    )
    return int(count or 0)


def list_problems(
    session: Session, *, context_id: int | None = None, limit: int = 200
) -> list[OutboxProblem]:
    """Failed rows, and pending rows that have an error, newest first."""
    stmt = (
        select(ScoreOutbox, Person, Competency, LineItem.is_enabled)
        .join(Person, Person.id == ScoreOutbox.person_id)
        .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
        .join(Competency, Competency.id == ScoreOutbox.competency_id)
        .where(
            (ScoreOutbox.status == OutboxStatus.FAILED)
            | ((ScoreOutbox.status == OutboxStatus.PENDING) & (ScoreOutbox.last_error != ""))
        )
        .order_by(ScoreOutbox.id.desc())
        .limit(limit)
    )
    if context_id is not None:
        stmt = stmt.where(ScoreOutbox.context_id == context_id)
    return [
        OutboxProblem(
            id=row.id,
            person_name=person.display_name,
            competency_id=competency.id,
            competency_title=column_label(competency),
            level_name=row.level_name,
            status=row.status,
            attempts=row.attempts,
            last_status=row.last_status,
            reason=row.last_error,
            column_enabled=is_enabled,
        )
        for row, person, competency, is_enabled in session.execute(stmt)
    ]


@dataclass(frozen=True)
class SendOutlook:
    """What the worker will do with some outbox rows: the numbers a teacher is told."""

    will_send: int
    """Rows the worker will send to the LMS."""
    not_learners: int
    """Rows of people who are not active students of the course: the worker does not send them."""
    held: int
    """Rows of active students waiting for something only the LMS side can fix (no gradebook
    service, or a column the LMS refused): sent once it is fixed."""
    for_admin: int = 0
    """Rows of active students whose course's gradebook waits for an LMS administrator (the
    LMS refused Pathways' token or scopes): the worker tries them again after a while, or at
    once on Retry."""


def send_outlook(
    session: Session, *, outbox_ids: Iterable[int], context_id: int | None = None
) -> SendOutlook:
    """Sort pending rows by what the worker will do with them (see `SendOutlook`).

    Only a row that is still the newest for its student and column counts: the worker
    supersedes the others unsent. Rows of columns the teacher turned off count nowhere.
    """
    ids = sorted({int(i) for i in outbox_ids})
    will_send = not_learners = held = for_admin = 0
    newer = aliased(ScoreOutbox)
    for start in range(0, len(ids), 500):
        stmt = (
            select(
                active_learner_filter(),
                LineItem.state,
                Gradebook.lineitems_url,
                Gradebook.last_error,
            )
            .select_from(ScoreOutbox)
            .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
            .outerjoin(Gradebook, Gradebook.context_id == ScoreOutbox.context_id)
            .where(
                ScoreOutbox.id.in_(ids[start : start + 500]),
                ScoreOutbox.status == OutboxStatus.PENDING,
                LineItem.is_enabled.is_(True),
                ~select(newer.id)
                .where(
                    newer.line_item_id == ScoreOutbox.line_item_id,
                    newer.person_id == ScoreOutbox.person_id,
                    newer.id > ScoreOutbox.id,
                )
                .exists(),
            )
        )
        if context_id is not None:
            stmt = stmt.where(ScoreOutbox.context_id == context_id)
        for is_learner, state, lineitems_url, admin_problem in session.execute(stmt):
            if not is_learner:
                not_learners += 1
            elif state is LineItemState.FAILED or not lineitems_url:
                held += 1
            elif admin_problem:
                for_admin += 1
            else:
                will_send += 1
    return SendOutlook(will_send, not_learners, held, for_admin)


def retry(
    session: Session, *, context_id: int | None = None, outbox_ids: Iterable[int] | None = None
) -> SendOutlook:
    """Send failed (and waiting) rows again now; the newest per student and column only.

    Rows of columns the teacher turned off stay as they are: the worker sends nothing to a
    column that is off, so a retry would only leave them waiting for ever.
    """
    resettable = (
        select(ScoreOutbox.id)
        .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
        .where(
            ScoreOutbox.status.in_(
                [OutboxStatus.FAILED, OutboxStatus.PENDING, OutboxStatus.SKIPPED]
            ),
            LineItem.is_enabled.is_(True),
        )
    )
    if context_id is not None:
        resettable = resettable.where(ScoreOutbox.context_id == context_id)
    if outbox_ids is not None:
        resettable = resettable.where(ScoreOutbox.id.in_({int(i) for i in outbox_ids}))
    ids = list(session.scalars(resettable))
    now = utcnow()
    for start in range(0, len(ids), 500):
        session.execute(
            update(ScoreOutbox)
            .where(
                ScoreOutbox.id.in_(ids[start : start + 500]),
                # The worker may have claimed a row since: it is being sent already.
                ScoreOutbox.status.in_(
                    [OutboxStatus.FAILED, OutboxStatus.PENDING, OutboxStatus.SKIPPED]
                ),
            )
            # Queued afresh: its tries and its days of waiting for the LMS start again, or
            # a score that failed after days of waiting would fail again at its first wait.
            .values(
                status=OutboxStatus.PENDING,
                next_attempt_at=now,
                attempts=0,
                created_at=now,
                waiting_since=None,
            ),
            execution_options={"synchronize_session": False},
        )
    # A column waiting out a refused token or scope (PENDING with an error) goes again at
    # once too: the teacher presses Retry once the admin has fixed it.
    items = update(LineItem).where(
        (LineItem.state == LineItemState.FAILED)
        | ((LineItem.state == LineItemState.PENDING) & (LineItem.last_error != ""))
    )
    if context_id is not None:
        items = items.where(LineItem.context_id == context_id)
    session.execute(items.values(state=LineItemState.PENDING, last_error="", lease_until=None))
    # The admin problem noted on the course goes too: these rows are tried at once.
    gradebooks = update(Gradebook).where(Gradebook.last_error != "")
    if context_id is not None:
        gradebooks = gradebooks.where(Gradebook.context_id == context_id)
    session.execute(gradebooks.values(last_error=""))
    notify_worker(session)
    return send_outlook(session, outbox_ids=ids, context_id=context_id)


def active_learner_filter() -> Any:
    """SQL condition: the outbox row's person is an active learner of its course."""
    return (
        select(Membership.id)
        .where(
            Membership.context_id == ScoreOutbox.context_id,
            Membership.person_id == ScoreOutbox.person_id,
            Membership.is_learner.is_(True),
            Membership.status == MembershipStatus.ACTIVE,
        )
        .exists()
    )
