"""Tables of this feature: a course's gradebook settings, its line items, the score outbox."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, created_at, intpk, str_enum, updated_at

SCORE = Numeric(10, 4)


class GradeDisplay(enum.StrEnum):
    POINTS = "points"
    """The level's points out of the top level's points."""
    PERCENT = "percent"
    """A percentage from the course's conversion table (letter-grade schools)."""


class LineItemState(enum.StrEnum):
    PENDING = "pending"
    """To be found or created in the LMS (or updated, when needs_update)."""
    READY = "ready"
    FAILED = "failed"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    SUPERSEDED = "superseded"
    """A newer score for the same student and line item replaced it before it was sent."""
    FAILED = "failed"
    """A permanent error (422 for a non-student, 400, 404...): shown with a retry button."""
    SKIPPED = "skipped"
    """The person is not an active learner of the course any more."""


class Gradebook(Base):
    """A course's gradebook settings and the AGS endpoint its launches carried."""

    __tablename__ = "gradebook"

    id: Mapped[intpk]
    platform_id: Mapped[int] = mapped_column(
        ForeignKey("platform.id", ondelete="CASCADE"), index=True
    )
    context_id: Mapped[int] = mapped_column(
        ForeignKey("context.id", ondelete="CASCADE"), unique=True
    )
    resource_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_link.id", ondelete="SET NULL")
    )
    """The placement whose launch gave the endpoint; new line items hang under it."""
    lineitems_url: Mapped[str | None] = mapped_column(String(2048))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The AGS scopes the launch claim offered."""
    display: Mapped[GradeDisplay] = mapped_column(
        str_enum(GradeDisplay), default=GradeDisplay.POINTS
    )
    conversion: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Level name -> percent (as text, two decimals), used when display is PERCENT."""
    last_error: Mapped[str] = mapped_column(Text, default="")
    """A problem for the LMS admin (token refused, service off); empty when all is well."""
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class LineItem(Base):
    """A gradebook column in the LMS for one competency of a course."""

    __tablename__ = "line_item"
    __table_args__ = (UniqueConstraint("context_id", "competency_id"),)

    id: Mapped[intpk]
    platform_id: Mapped[int] = mapped_column(
        ForeignKey("platform.id", ondelete="CASCADE"), index=True
    )
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    competency_id: Mapped[int] = mapped_column(ForeignKey("competency.id", ondelete="CASCADE"))
    resource_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_link.id", ondelete="SET NULL")
    )
    is_enabled: Mapped[bool] = mapped_column(default=True)
    """The teacher sends this competency to the gradebook."""
    state: Mapped[LineItemState] = mapped_column(
        str_enum(LineItemState), default=LineItemState.PENDING
    )
    url: Mapped[str | None] = mapped_column(String(2048))
    """The line item's id in the LMS (its URL), once found or created."""
    label: Mapped[str] = mapped_column(String(1024))
    score_maximum: Mapped[Decimal] = mapped_column(SCORE)
    resource_id: Mapped[str] = mapped_column(String(255))
    """What finds the column again after a lost response: `pathways-competency-<id>`."""
    tag: Mapped[str] = mapped_column(String(255))
    needs_update: Mapped[bool] = mapped_column(default=False)
    """Label or scoreMaximum changed since the LMS last saw them."""
    lease_until: Mapped[datetime | None]
    """A worker is finding or creating it in the LMS until then."""
    lms_makes_until: Mapped[datetime | None]
    """Placed by deep linking: the LMS makes this column itself, so until then the worker
    only looks for it (to adopt it) and makes none of its own."""
    lms_owned: Mapped[bool] = mapped_column(default=False)
    """The LMS's own column, named by a launch of a placed mastery column (a Canvas
    assignment, a Moodle activity): scores go there, but its label and points stay the
    teacher's (`line_item_sync`)."""
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class ScoreOutbox(Base):
    """A score waiting to be sent to the LMS, written in the same transaction as its cause.

    For one (line item, person) only the newest row is ever sent; older unsent rows become
    SUPERSEDED, and a row is not claimed while an older one for the same pair is in flight.
    """

    __tablename__ = "score_outbox"
    __table_args__ = (
        Index("ix_score_outbox_status_id", "status", "id"),
        Index("ix_score_outbox_line_item_id_person_id", "line_item_id", "person_id"),
        Index("ix_score_outbox_context_id_status", "context_id", "status"),
    )

    id: Mapped[intpk]
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    line_item_id: Mapped[int] = mapped_column(ForeignKey("line_item.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    competency_id: Mapped[int]
    score_given: Mapped[Decimal | None] = mapped_column(SCORE)
    score_maximum: Mapped[Decimal | None] = mapped_column(SCORE)
    level_name: Mapped[str | None] = mapped_column(String(64))
    activity_progress: Mapped[str] = mapped_column(String(32))
    grading_progress: Mapped[str] = mapped_column(String(32))
    scored_at: Mapped[datetime]
    """The AGS timestamp: strictly increasing per (line item, person), microsecond precision."""
    is_update: Mapped[bool] = mapped_column(default=False)
    """An earlier score exists for this pair: Canvas gets new_submission false."""
    status: Mapped[OutboxStatus] = mapped_column(
        str_enum(OutboxStatus), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    last_status: Mapped[int | None]
    """The LMS's last HTTP status for this row, if it answered."""
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[created_at]
    """When the score was queued, or queued again by Retry."""
    waiting_since: Mapped[datetime | None]
    """Since when Pathways has been trying to send this score to an LMS that is not there
    (throttling, down, or failing to set up its column); None while no such wait runs. The
    clock of `WorkerConfig.retry_transient_for`, kept by `grades.outcomes`."""
    sent_at: Mapped[datetime | None]
    sent_url: Mapped[str | None] = mapped_column(String(2048))
    """The column (line item URL) the LMS accepted this score for."""
