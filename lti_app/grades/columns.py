"""The teacher's gradebook choices: which competencies become LMS columns, and whether a
level shows there as points or as a percentage.

Each choice re-queues the current levels it affects (`grades.services.requeue_current`), in the
caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.competencies.queries import list_competencies
from lti_app.db import upsert_insert, utcnow
from lti_app.grades.gradebook import (
    CENT,
    column_label,
    conversion_table,
    get_or_create_gradebook,
    score_for,
)
from lti_app.grades.models import (
    Gradebook,
    GradeDisplay,
    LineItem,
    LineItemState,
    OutboxStatus,
    ScoreOutbox,
)
from lti_app.grades.services import requeue_current, rescore_course
from lti_app.mastery.scales import get_or_create_scale

LINE_ITEM_TAG = "pathways-competency"


class GradebookError(Exception):
    """A gradebook setting the teacher gave cannot be used; the message says why."""


# --- Display -------------------------------------------------------------------------------


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
    is_archived: bool = False
    """Archived with its column still on: listed so the teacher can see it and turn it off."""


def _listed_competencies(
    session: Session, *, context_id: int, items: dict[int, LineItem]
) -> list[Competency]:
    """The competencies the Gradebook page lists: those in use, and archived ones whose column
    is still on (archiving leaves the column and its scores; a column the page hid would go on
    receiving re-sent scores with no way to turn it off)."""
    return [
        c
        for c in list_competencies(session, context_id=context_id, include_archived=True)
        if not c.is_archived or ((item := items.get(c.id)) is not None and item.is_enabled)
    ]


def list_columns(session: Session, *, context_id: int) -> list[ColumnView]:
    """Every competency of the course with its column state and outbox counts (3 queries);
    archived ones only while their column is on."""
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
    for competency in _listed_competencies(session, context_id=context_id, items=items):
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
                is_archived=competency.is_archived,
            )
        )
    return views


def set_gradebook_competencies(
    session: Session, *, context_id: int, competency_ids: Iterable[int]
) -> list[int]:
    """Send exactly these competencies to the gradebook; queue current levels of new ones.

    Turning a competency off stops sending; its LMS column is left for the teacher. An archived
    competency whose column is on (the page lists it) stays on if named and goes off if not;
    one whose column is off is not offered, so it stays off.
    Returns the outbox ids queued.
    """
    gradebook = get_or_create_gradebook(session, context_id=context_id)
    scale = get_or_create_scale(session, context_id=context_id)
    _, maximum = score_for(gradebook, scale, None)
    wanted = {int(c) for c in competency_ids}
    items = {
        i.competency_id: i
        for i in session.scalars(select(LineItem).where(LineItem.context_id == context_id))
    }
    newly_enabled: set[int] = set()
    for competency in _listed_competencies(session, context_id=context_id, items=items):
        competency_id = competency.id
        item = items.get(competency_id)
        if competency_id in wanted:
            if _enable(session, gradebook, maximum, competency, item):
                newly_enabled.add(competency_id)
        elif item is not None and item.is_enabled:
            item.is_enabled = False
    session.flush()
    if not newly_enabled:
        return []
    return requeue_current(session, context_id=context_id, competency_ids=newly_enabled)


def _enable(
    session: Session,
    gradebook: Gradebook,
    maximum: Decimal,
    competency: Competency,
    item: LineItem | None,
) -> bool:
    """Send one competency to the gradebook; whether it was not sent before."""
    if item is None:
        # ON CONFLICT DO NOTHING: a double click on "Save columns" makes the column
        # twice at once; the click that did not insert it leaves it to the other.
        inserted = session.execute(
            upsert_insert(session, LineItem)
            .values(
                platform_id=gradebook.platform_id,
                context_id=gradebook.context_id,
                competency_id=competency.id,
                resource_link_id=gradebook.resource_link_id,
                label=column_label(competency),
                score_maximum=maximum,
                resource_id=column_resource_id(competency.id),
                tag=LINE_ITEM_TAG,
                state=LineItemState.PENDING,
            )
            .on_conflict_do_nothing(index_elements=["context_id", "competency_id"])
        )
        return bool(getattr(inserted, "rowcount", 0))
    if item.is_enabled:
        return False
    item.is_enabled = True
    if item.state is LineItemState.FAILED:
        item.state, item.last_error = LineItemState.PENDING, ""
    return True


def column_resource_id(competency_id: int) -> str:
    """The resourceId that finds a competency's column in the LMS again."""
    return f"pathways-competency-{competency_id}"


# --- Columns placed by deep linking --------------------------------------------------------

LMS_MAKES_COLUMN_GRACE = timedelta(hours=1)
"""How long the worker only looks for a deep-linked column (adopting it once the LMS has
made it) before making one itself.

The LMS makes its column only after the teacher's browser has carried the deep-linking
response back, and Moodle only once the teacher also saves the activity form
(moodle/moodle mod/lti/locallib.php `lti_tool_configuration_from_content_item` fills the
form; the grade item comes with the saved activity). A worker that made its own on not
finding it at once would leave the LMS's empty beside it; a teacher who cancels the form
still gets the column asked for, an hour later.
"""


@dataclass(frozen=True)
class ColumnOffer:
    """A competency's gradebook column as deep linking offers it to the LMS."""

    competency_id: int
    label: str
    score_maximum: Decimal
    resource_id: str
    tag: str
    in_lms: bool
    """The LMS already has this column: placing a link must not make a second one."""
    being_made: bool = False
    """An earlier placement asked the LMS to make this column and the worker has not found it
    yet: asking again would make a second one, which would stay empty."""


def column_offers(session: Session, *, context_id: int) -> list[ColumnOffer]:
    """Every competency of the course (not archived) with the column the gradebook would
    create for it, under the course's display setting."""
    competencies = list_competencies(session, context_id=context_id)
    if not competencies:
        return []  # no gradebook row for a course that has nothing to grade yet
    gradebook = get_or_create_gradebook(session, context_id=context_id)
    scale = get_or_create_scale(session, context_id=context_id)
    _, maximum = score_for(gradebook, scale, None)
    in_lms: set[int] = set()
    being_made: set[int] = set()
    for competency_id, url in session.execute(
        select(LineItem.competency_id, LineItem.url).where(
            LineItem.context_id == context_id,
            LineItem.url.is_not(None) | (LineItem.lms_makes_until > utcnow()),
        )
    ):
        (in_lms if url is not None else being_made).add(competency_id)
    return [
        ColumnOffer(
            competency_id=competency.id,
            label=column_label(competency),
            score_maximum=maximum,
            resource_id=column_resource_id(competency.id),
            tag=LINE_ITEM_TAG,
            in_lms=competency.id in in_lms,
            being_made=competency.id in being_made,
        )
        for competency in competencies
    ]


def enable_deep_linked_columns(
    session: Session, *, context_id: int, competency_ids: Iterable[int], lms_makes_them: bool
) -> list[int]:
    """Send these competencies to the gradebook too (others stay as they are), as a teacher
    placing their columns by deep linking asks; queue the current levels of the newly sent.

    :param lms_makes_them: the deep-linking response carries their lineItem, so the LMS
        makes the columns: for `LMS_MAKES_COLUMN_GRACE` the worker only looks for them by
        resourceId and tag (`line_item_sync`), to adopt them, and makes none of its own.
    Returns the outbox ids queued.
    """
    gradebook = get_or_create_gradebook(session, context_id=context_id)
    scale = get_or_create_scale(session, context_id=context_id)
    _, maximum = score_for(gradebook, scale, None)
    competencies = {c.id: c for c in list_competencies(session, context_id=context_id)}
    wanted = [competencies[c] for c in dict.fromkeys(competency_ids) if c in competencies]
    items = {
        i.competency_id: i
        for i in session.scalars(
            select(LineItem).where(
                LineItem.context_id == context_id,
                LineItem.competency_id.in_([c.id for c in wanted]),
            )
        )
    }
    newly_enabled: set[int] = set()
    for competency in wanted:
        if _enable(session, gradebook, maximum, competency, items.get(competency.id)):
            newly_enabled.add(competency.id)
    session.flush()
    lms_makes_until = utcnow() + LMS_MAKES_COLUMN_GRACE
    for item in session.scalars(
        select(LineItem).where(
            LineItem.context_id == context_id,
            LineItem.competency_id.in_([c.id for c in wanted]),
            LineItem.url.is_(None),
        )
    ):
        if item.state is LineItemState.FAILED:
            # The teacher asks for this column again: the LMS's own may now take its scores.
            item.state, item.last_error = LineItemState.PENDING, ""
        if lms_makes_them:
            item.lms_makes_until = lms_makes_until
            item.lease_until = None  # look for it at the worker's next pass
    session.flush()
    if not newly_enabled:
        return []
    return requeue_current(session, context_id=context_id, competency_ids=newly_enabled)
