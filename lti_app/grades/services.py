"""The gradebook: which competencies become LMS columns, how a level shows there, and the
score outbox.

The API other features use is one call, in the same transaction as the mastery change::

    changes = mastery.services.record_evidence(session, ...)   # or correct/withdraw/update_scale
    grades.services.queue_scores(session, changes)            # writes outbox rows, no HTTP
    session.commit()
    grades.jobs.notify_outbox(current_app)                    # wake the worker (optional)

The worker (`grades.worker`) sends the rows; nothing here speaks HTTP.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import event, func, inspect, select, text, tuple_, update
from sqlalchemy.orm import Session, UOWTransaction, aliased

from lti_app.competencies.models import Competency
from lti_app.competencies.services import list_competencies
from lti_app.db import upsert_insert, utcnow
from lti_app.grades.models import (
    Gradebook,
    GradeDisplay,
    LineItem,
    LineItemState,
    OutboxStatus,
    ScoreOutbox,
)
from lti_app.mastery.models import MasteryLevel, MasteryScale, StudentCompetencyLevel
from lti_app.mastery.services import MasteryChange, get_or_create_scale
from lti_app.tool.models import Context, LaunchSession, Membership, MembershipStatus, Person

LINE_ITEM_TAG = "pathways-competency"
NOTIFY_CHANNEL = "pathways_score_outbox"
ONE_MICROSECOND = timedelta(microseconds=1)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")


class GradebookError(Exception):
    """A gradebook setting the teacher gave cannot be used; the message says why."""


# --- Settings ----------------------------------------------------------------------------


def get_gradebook(session: Session, *, context_id: int) -> Gradebook | None:
    return session.scalar(select(Gradebook).where(Gradebook.context_id == context_id))


def get_or_create_gradebook(session: Session, *, context_id: int) -> Gradebook:
    """The course's gradebook settings; the AGS endpoint comes from its latest launch."""
    gradebook = get_gradebook(session, context_id=context_id)
    if gradebook is not None:
        return gradebook
    context = session.get(Context, context_id)
    if context is None:
        raise LookupError(f"no context {context_id}")
    # ON CONFLICT DO NOTHING: the teacher's first visit may come twice at once (two tabs, a
    # double click), and a plain INSERT would fail one of them on PostgreSQL.
    created = session.execute(
        upsert_insert(session, Gradebook)
        .values(platform_id=context.platform_id, context_id=context_id)
        .on_conflict_do_nothing(index_elements=["context_id"])
    )
    gradebook = get_gradebook(session, context_id=context_id)
    if gradebook is None:  # pragma: no cover - the row exists after the insert
        raise LookupError(f"no gradebook for context {context_id}")
    if not getattr(created, "rowcount", 0):
        return gradebook
    latest = session.scalar(
        select(LaunchSession)
        .where(LaunchSession.context_id == context_id, LaunchSession.ags_claim.is_not(None))
        .order_by(LaunchSession.created_at.desc())
        .limit(1)
    )
    if latest is not None and latest.ags_claim:
        _apply_claim(gradebook, latest.ags_claim, latest.resource_link_id)
    session.flush()
    return gradebook


def _apply_claim(gradebook: Gradebook, claim: dict[str, Any], link_id: int | None) -> None:
    url = claim.get("lineitems")
    # An address longer than the column, or with NUL, is not one the LMS could answer at.
    if isinstance(url, str) and url and len(url) <= 2048 and "\x00" not in url:
        gradebook.lineitems_url = url
        if link_id is not None:
            gradebook.resource_link_id = link_id
    scopes = claim.get("scope")
    if isinstance(scopes, list):
        gradebook.scopes = [s for s in scopes if isinstance(s, str)]


def remember_ags_claim(
    session: Session, *, context_id: int, claim: dict[str, Any] | None, resource_link_id: int | None
) -> Gradebook:
    """Keep the AGS endpoint claim of a teacher's launch, for the worker outside requests."""
    gradebook = get_or_create_gradebook(session, context_id=context_id)
    if claim:
        _apply_claim(gradebook, claim, resource_link_id)
    session.flush()
    return gradebook


def default_conversion(scale: MasteryScale) -> dict[str, Decimal]:
    """Each level's points as a percentage of the top level's points."""
    top = scale.levels[-1].points
    return {
        level.name: (level.points * HUNDRED / top).quantize(CENT, ROUND_HALF_UP)
        if top
        else Decimal(0)
        for level in scale.levels
    }


def conversion_table(gradebook: Gradebook, scale: MasteryScale) -> dict[str, Decimal]:
    """The course's percent per level: its own table, the default for levels it lacks."""
    table = default_conversion(scale)
    for name, value in (gradebook.conversion or {}).items():
        if name in table:
            try:
                table[name] = Decimal(str(value))
            except InvalidOperation:
                continue
    return table


@dataclass(frozen=True)
class LevelDisplay:
    """How one level appears in the LMS gradebook under each choice."""

    name: str
    points: Decimal
    points_given: Decimal
    points_maximum: Decimal
    percent: Decimal


def display_preview(session: Session, *, context_id: int) -> list[LevelDisplay]:
    """Every level with what the gradebook would show, in both modes (shown before choosing)."""
    gradebook = get_or_create_gradebook(session, context_id=context_id)
    scale = get_or_create_scale(session, context_id=context_id)
    table = conversion_table(gradebook, scale)
    top = scale.levels[-1].points
    return [
        LevelDisplay(level.name, level.points, level.points, top, table[level.name])
        for level in scale.levels
    ]


def score_for(
    gradebook: Gradebook, scale: MasteryScale, level_name: str | None
) -> tuple[Decimal | None, Decimal]:
    """(scoreGiven, scoreMaximum) for a level under the course's display choice."""
    maximum = HUNDRED if gradebook.display is GradeDisplay.PERCENT else scale.levels[-1].points
    if level_name is None:
        return None, maximum
    level = next((lv for lv in scale.levels if lv.name == level_name), None)
    if level is None:
        return None, maximum
    if gradebook.display is GradeDisplay.PERCENT:
        return conversion_table(gradebook, scale)[level.name], maximum
    return level.points, maximum


def set_display(
    session: Session,
    *,
    context_id: int,
    display: GradeDisplay,
    conversion: dict[str, str] | None = None,
) -> list[int]:
    """Choose points or percent (with its table); re-send every current level that way."""
    gradebook = get_or_create_gradebook(session, context_id=context_id)
    scale = get_or_create_scale(session, context_id=context_id)
    if conversion is not None:
        names = {level.name for level in scale.levels}
        clean: dict[str, str] = {}
        for name, raw in conversion.items():
            if name not in names:
                continue
            try:
                value = Decimal(str(raw).strip().rstrip("%"))
            except InvalidOperation as err:
                raise GradebookError(f"{name}: {raw!r} is not a number") from err
            if not value.is_finite() or not Decimal(0) <= value <= Decimal(1000):
                raise GradebookError(f"{name}: a percentage is from 0 to 1000")
            clean[name] = str(value.quantize(CENT, ROUND_HALF_UP))
        gradebook.conversion = clean
    gradebook.display = display
    session.flush()
    return rescore_course(session, context_id=context_id)


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


# --- Columns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnView:
    """A competency and its gradebook column, as the teacher's page shows it."""

    competency_id: int
    code: str
    title: str
    is_enabled: bool
    state: LineItemState | None
    url: str | None
    last_error: str
    pending: int
    failed: int


def _label(competency: Competency) -> str:
    return f"{competency.code} {competency.title}".strip()[:1024]


def list_columns(session: Session, *, context_id: int) -> list[ColumnView]:
    """Every competency of the course with its column state and outbox counts (3 queries)."""
    items = {
        i.competency_id: i
        for i in session.scalars(select(LineItem).where(LineItem.context_id == context_id))
    }
    counts: dict[tuple[int, OutboxStatus], int] = {
        (line_item_id, status): n
        for line_item_id, status, n in session.execute(
            select(ScoreOutbox.line_item_id, ScoreOutbox.status, func.count())
            .where(
                ScoreOutbox.context_id == context_id,
                ScoreOutbox.status.in_(
                    [OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.FAILED]
                ),
            )
            .group_by(ScoreOutbox.line_item_id, ScoreOutbox.status)
        )
    }
    views = []
    for competency in list_competencies(session, context_id=context_id):
        item = items.get(competency.id)
        item_id = item.id if item else -1
        views.append(
            ColumnView(
                competency_id=competency.id,
                code=competency.code,
                title=competency.title,
                is_enabled=bool(item and item.is_enabled),
                state=item.state if item else None,
                url=item.url if item else None,
                last_error=item.last_error if item else "",
                pending=counts.get((item_id, OutboxStatus.PENDING), 0)
                + counts.get((item_id, OutboxStatus.SENDING), 0),
                failed=counts.get((item_id, OutboxStatus.FAILED), 0),
            )
        )
    return views


def set_gradebook_competencies(
    session: Session, *, context_id: int, competency_ids: Iterable[int]
) -> list[int]:
    """Send exactly these competencies to the gradebook; queue current levels of new ones.

    Turning a competency off stops sending; its LMS column is left for the teacher.
    Returns the outbox ids queued.
    """
    gradebook = get_or_create_gradebook(session, context_id=context_id)
    scale = get_or_create_scale(session, context_id=context_id)
    _, maximum = score_for(gradebook, scale, None)
    wanted = {int(c) for c in competency_ids}
    competencies = {c.id: c for c in list_competencies(session, context_id=context_id)}
    items = {
        i.competency_id: i
        for i in session.scalars(select(LineItem).where(LineItem.context_id == context_id))
    }
    newly_enabled: set[int] = set()
    for competency_id, competency in competencies.items():
        item = items.get(competency_id)
        if competency_id in wanted:
            if item is None:
                # ON CONFLICT DO NOTHING: a double click on "Save columns" makes the column
                # twice at once; the click that did not insert it leaves it to the other.
                inserted = session.execute(
                    upsert_insert(session, LineItem)
                    .values(
                        platform_id=gradebook.platform_id,
                        context_id=context_id,
                        competency_id=competency_id,
                        resource_link_id=gradebook.resource_link_id,
                        label=_label(competency),
                        score_maximum=maximum,
                        resource_id=f"pathways-competency-{competency_id}",
                        tag=LINE_ITEM_TAG,
                        state=LineItemState.PENDING,
                    )
                    .on_conflict_do_nothing(index_elements=["context_id", "competency_id"])
                )
                if getattr(inserted, "rowcount", 0):
                    newly_enabled.add(competency_id)
            elif not item.is_enabled:
                item.is_enabled = True
                if item.state is LineItemState.FAILED:
                    item.state, item.last_error = LineItemState.PENDING, ""
                newly_enabled.add(competency_id)
        elif item is not None and item.is_enabled:
            item.is_enabled = False
    session.flush()
    if not newly_enabled:
        return []
    return requeue_current(session, context_id=context_id, competency_ids=newly_enabled)


# --- Outbox ------------------------------------------------------------------------------


def _notify(session: Session) -> None:
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
        gradebook = get_or_create_gradebook(session, context_id=context_id)
        scale = get_or_create_scale(session, context_id=context_id)
        rows: list[tuple[_Score, LineItem]] = [
            (s, line_items[s.competency_id]) for s in items if s.competency_id in line_items
        ]
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
        _notify(session)
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
    session: Session, *, context_id: int, competency_ids: Iterable[int] | None = None
) -> list[int]:
    """Queue every active learner's stored level again (new column, new display choice)."""
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
            Membership.is_learner.is_(True),
            Membership.status == MembershipStatus.ACTIVE,
        )
    )
    if competency_ids is not None:
        stmt = stmt.where(StudentCompetencyLevel.competency_id.in_(set(competency_ids)))
    scores = [_Score(context_id, p, c, name) for p, c, name in session.execute(stmt)]
    return _queue(session, scores)


# --- Status and retries --------------------------------------------------------------------


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
            competency_title=_label(competency),
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


def send_outlook(
    session: Session, *, outbox_ids: Iterable[int], context_id: int | None = None
) -> SendOutlook:
    """Sort pending rows by what the worker will do with them (see `SendOutlook`).

    Only a row that is still the newest for its student and column counts: the worker
    supersedes the others unsent. Rows of columns the teacher turned off count nowhere.
    """
    ids = sorted({int(i) for i in outbox_ids})
    will_send = not_learners = held = 0
    newer = aliased(ScoreOutbox)
    for start in range(0, len(ids), 500):
        stmt = (
            select(active_learner_filter(), LineItem.state, Gradebook.lineitems_url)
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
        for is_learner, state, lineitems_url in session.execute(stmt):
            if not is_learner:
                not_learners += 1
            elif state is LineItemState.FAILED or not lineitems_url:
                held += 1
            else:
                will_send += 1
    return SendOutlook(will_send, not_learners, held)


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
            .values(status=OutboxStatus.PENDING, next_attempt_at=utcnow(), attempts=0),
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
    if context_id is not None:
        session.execute(
            update(Gradebook).where(Gradebook.context_id == context_id).values(last_error="")
        )
    _notify(session)
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


# --- Scale edits and renamed competencies ------------------------------------------------------
#
# A scale edit (mastery's `update_scale`) changes the points a level is worth, or the top
# level's points, without changing anyone's level; mastery then reports no change and nothing
# would reach the LMS. Mastery does not know the gradebook, so the gradebook watches the
# session: a flush that changes level points, names or the set of levels marks the course,
# and the commit re-scores it in the same transaction. A renamed competency renames its column
# the same way (the worker then updates the LMS's line item).

_RESCORE_KEY = "pathways_grades_rescore_contexts"


def _scale_edits(session: Session) -> set[int]:
    with session.no_autoflush:
        return _scale_edits_in(session)


def _scale_edits_in(session: Session) -> set[int]:
    contexts: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, MasteryLevel):
            scale = obj.scale
            if scale is None or scale in session.new:
                continue  # a new course's default scale: no score exists yet
            state = inspect(obj)
            if (
                obj in session.new
                or obj in session.deleted
                or state.attrs.points.history.has_changes()
                or state.attrs.name.history.has_changes()
            ):
                contexts.add(scale.context_id)
        elif (
            isinstance(obj, MasteryScale)
            and obj not in session.new
            and inspect(obj).attrs.levels.history.has_changes()
        ):
            contexts.add(obj.context_id)
    return contexts


@event.listens_for(Session, "before_flush")
def _note_scale_edits(session: Session, _context: UOWTransaction, _instances: object) -> None:
    edited = _scale_edits(session)
    if edited:
        session.info.setdefault(_RESCORE_KEY, set()).update(edited)
    _relabel_renamed_columns(session)


def _relabel_renamed_columns(session: Session) -> None:
    """A competency whose code or title changed renames its LMS column (in this flush)."""
    renamed = {
        obj.id: obj
        for obj in session.dirty
        if isinstance(obj, Competency)
        and obj.id is not None
        and (
            inspect(obj).attrs.code.history.has_changes()
            or inspect(obj).attrs.title.history.has_changes()
        )
    }
    if not renamed:
        return
    with session.no_autoflush:
        items = session.scalars(select(LineItem).where(LineItem.competency_id.in_(renamed)))
        changed = False
        for item in items:
            label = _label(renamed[item.competency_id])
            if item.label != label:
                item.label, item.needs_update, changed = label, True, True
    if changed:
        _notify(session)


@event.listens_for(Session, "before_commit")
def _rescore_edited_scales(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint; the outer commit re-scores
    if not session.info.get(_RESCORE_KEY) and not _scale_edits(session):
        return
    session.flush()  # edits made since the last flush are noted too
    contexts: set[int] = session.info.pop(_RESCORE_KEY, set())
    for context_id in sorted(contexts):
        rescore_course(session, context_id=context_id)


@event.listens_for(Session, "after_rollback")
def _forget_scale_edits(session: Session) -> None:
    session.info.pop(_RESCORE_KEY, None)
