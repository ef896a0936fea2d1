"""The score outbox: the rows of scores waiting to be sent to the LMS gradebook.

The API other features use is one call, in the same transaction as the mastery change::

    changes = mastery.services.record_evidence(session, ...)   # or correct/withdraw, or
                                                              # mastery.scales.update_scale
    grades.services.queue_scores(session, changes)            # writes outbox rows, no HTTP
    session.commit()
    grades.jobs.notify_outbox(current_app)                    # wake the worker (optional)

The worker (`grades.worker`) sends the rows; nothing here speaks HTTP. Which competencies are
columns and how a level shows there: `grades.columns` and `grades.gradebook`; what the outbox
holds and sending it again: `grades.outbox_status`; scale edits that re-score a course:
`grades.scale_edits`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, tuple_, update
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.grades.gradebook import get_gradebook, get_or_create_gradebook, score_for
from lti_app.grades.models import LineItem, OutboxStatus, ScoreOutbox
from lti_app.mastery.models import StudentCompetencyLevel
from lti_app.mastery.scales import get_or_create_scale
from lti_app.mastery.services import MasteryChange
from lti_app.tool.models import Membership

NOTIFY_CHANNEL = "pathways_score_outbox"
ONE_MICROSECOND = timedelta(microseconds=1)


def notify_worker(session: Session) -> None:
    """Wake the worker once this transaction commits (PostgreSQL)."""
    # PostgreSQL delivers NOTIFY at commit, so a worker on another host wakes exactly when
    # the rows are visible; elsewhere the worker polls.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


@dataclass(frozen=True)
class _Score:
    context_id: int
    person_id: int
    competency_id: int
    level_name: str | None


def _queue(session: Session, scores: Sequence[_Score]) -> list[int]:
    by_context: dict[int, list[_Score]] = defaultdict(list)
    for score in scores:
        by_context[score.context_id].append(score)
    queued: list[int] = []
    for context_id, items in by_context.items():
        line_items = {
            i.competency_id: i
            for i in session.scalars(
                select(LineItem).where(
                    LineItem.context_id == context_id,
                    LineItem.is_enabled.is_(True),
                    LineItem.competency_id.in_({s.competency_id for s in items}),
                )
            )
        }
        if not line_items:
            continue
        # The LMS's preview student (Canvas's Test Student) is the teacher trying the course:
        # its levels are nobody's grades, so none are queued for the gradebook.
        previews = set(
            session.scalars(
                select(Membership.person_id).where(
                    Membership.context_id == context_id, Membership.is_preview.is_(True)
                )
            )
        )
        rows: list[tuple[_Score, LineItem]] = [
            (s, line_items[s.competency_id])
            for s in items
            if s.competency_id in line_items and s.person_id not in previews
        ]
        if not rows:
            continue
        gradebook = get_or_create_gradebook(session, context_id=context_id)
        scale = get_or_create_scale(session, context_id=context_id)
        latest: dict[tuple[int, int], datetime] = {}

        pairs = list({(item.id, s.person_id) for s, item in rows})
        for start in range(0, len(pairs), 300):
            chunk = pairs[start : start + 300]
            key = tuple_(ScoreOutbox.line_item_id, ScoreOutbox.person_id)
            for line_item_id, person_id, newest in session.execute(
                select(
                    ScoreOutbox.line_item_id, ScoreOutbox.person_id, func.max(ScoreOutbox.scored_at)
                )
                .where(key.in_(chunk))
                .group_by(ScoreOutbox.line_item_id, ScoreOutbox.person_id)
            ):
                latest[(line_item_id, person_id)] = newest
            # Only the newest result per (student, line item) matters.
            session.execute(
                update(ScoreOutbox)
                .where(
                    key.in_(chunk),
                    ScoreOutbox.status.in_(
                        [OutboxStatus.PENDING, OutboxStatus.FAILED, OutboxStatus.SKIPPED]
                    ),
                )
                .values(status=OutboxStatus.SUPERSEDED, lease_until=None),
                execution_options={"synchronize_session": False},
            )
        now = utcnow()
        new_rows = []
        for score, item in rows:
            pair = (item.id, score.person_id)
            last: datetime | None = latest.get(pair)
            # Strictly increasing per pair, with microseconds: the LMS keeps the newest.
            stamp = max(now, last + ONE_MICROSECOND) if last is not None else now
            latest[pair] = stamp
            given, maximum = score_for(gradebook, scale, score.level_name)
            row = ScoreOutbox(
                platform_id=gradebook.platform_id,
                context_id=context_id,
                line_item_id=item.id,
                person_id=score.person_id,
                competency_id=score.competency_id,
                score_given=given,
                score_maximum=maximum,
                level_name=score.level_name if given is not None else None,
                activity_progress="Completed" if given is not None else "Initialized",
                grading_progress="FullyGraded" if given is not None else "NotReady",
                scored_at=stamp,
                is_update=last is not None,
                status=OutboxStatus.PENDING,
                next_attempt_at=now,
            )
            new_rows.append(row)
        session.add_all(new_rows)
        session.flush()
        queued.extend(r.id for r in new_rows)
    if queued:
        notify_worker(session)
    return queued


def queue_scores(session: Session, changes: Sequence[MasteryChange]) -> list[int]:
    """Write an outbox row for each change the gradebook shows; return the row ids.

    Call it in the transaction that records the change. Only a change of level matters
    (the gradebook shows levels), only competencies sent to the gradebook are queued, and
    older unsent rows for the same student and column are superseded.
    """
    scores = [
        _Score(c.context_id, c.person_id, c.competency_id, c.new_level_name)
        for c in changes
        if c.new_level_name != c.old_level_name
    ]
    return _queue(session, scores) if scores else []


def requeue_current(
    session: Session,
    *,
    context_id: int,
    competency_ids: Iterable[int] | None = None,
    person_ids: Iterable[int] | None = None,
) -> list[int]:
    """Queue every active learner's stored level again (new column, new display choice, or
    `person_ids` back in the course: scores claimed while they were away were skipped).

    A level emptied meanwhile (evidence withdrawn, "n times" not reached, every part archived)
    goes as a clearing score where the LMS still holds one: its column was off, or the learner
    away, when the level went, so the LMS was never told.
    """
    competencies = None if competency_ids is None else set(competency_ids)
    people = None if person_ids is None else set(person_ids)
    stmt = (
        select(
            StudentCompetencyLevel.person_id,
            StudentCompetencyLevel.competency_id,
            StudentCompetencyLevel.level_name,
        )
        .join(
            Membership,
            (Membership.context_id == StudentCompetencyLevel.context_id)
            & (Membership.person_id == StudentCompetencyLevel.person_id),
        )
        .where(
            StudentCompetencyLevel.context_id == context_id,
            StudentCompetencyLevel.level_name.is_not(None),
            Membership.counts_for_grades,
        )
    )
    if competencies is not None:
        stmt = stmt.where(StudentCompetencyLevel.competency_id.in_(competencies))
    if people is not None:
        stmt = stmt.where(StudentCompetencyLevel.person_id.in_(people))
    scores = [_Score(context_id, p, c, name) for p, c, name in session.execute(stmt)]
    scores += _emptied_since_sent(
        session, context_id=context_id, competency_ids=competencies, person_ids=people
    )
    return _queue(session, scores)


def _emptied_since_sent(
    session: Session,
    *,
    context_id: int,
    competency_ids: set[int] | None,
    person_ids: set[int] | None,
) -> list[_Score]:
    """Clearing scores for active learners whose level is empty now while the last score the
    LMS accepted in that column (the column as it is now, not one deleted and re-made) gave a
    level. A pair the LMS never scored gets none: there is nothing to clear."""
    last_sent = (
        select(func.max(ScoreOutbox.id))
        .where(ScoreOutbox.context_id == context_id, ScoreOutbox.status == OutboxStatus.SENT)
        .group_by(ScoreOutbox.line_item_id, ScoreOutbox.person_id)
    )
    if competency_ids is not None:
        last_sent = last_sent.where(ScoreOutbox.competency_id.in_(competency_ids))
    if person_ids is not None:
        last_sent = last_sent.where(ScoreOutbox.person_id.in_(person_ids))
    stmt = (
        select(ScoreOutbox.person_id, LineItem.competency_id)
        .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
        .join(
            Membership,
            (Membership.context_id == ScoreOutbox.context_id)
            & (Membership.person_id == ScoreOutbox.person_id),
        )
        .outerjoin(
            StudentCompetencyLevel,
            (StudentCompetencyLevel.context_id == ScoreOutbox.context_id)
            & (StudentCompetencyLevel.person_id == ScoreOutbox.person_id)
            & (StudentCompetencyLevel.competency_id == LineItem.competency_id),
        )
        .where(
            ScoreOutbox.id.in_(last_sent),
            ScoreOutbox.score_given.is_not(None),
            ScoreOutbox.sent_url == LineItem.url,
            StudentCompetencyLevel.level_name.is_(None),
            Membership.counts_for_grades,
        )
    )
    return [_Score(context_id, p, c, None) for p, c in session.execute(stmt)]


def rescore_course(session: Session, *, context_id: int) -> list[int]:
    """After a change of how levels become points (display, table, scale): give each column
    its new scoreMaximum and queue every current level again, in the caller's transaction.

    The levels themselves did not change, so nothing else would tell the LMS.
    """
    gradebook = get_gradebook(session, context_id=context_id)
    if gradebook is None:
        return []
    scale = get_or_create_scale(session, context_id=context_id)
    _, maximum = score_for(gradebook, scale, None)
    for item in session.scalars(select(LineItem).where(LineItem.context_id == context_id)):
        if item.score_maximum != maximum:
            item.score_maximum = maximum
            item.needs_update = True
    session.flush()
    return requeue_current(session, context_id=context_id)
