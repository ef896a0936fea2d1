"""Mastery scales, evidence with its history, and each student's current level."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_app.db import Base, created_at, intpk, str_enum, updated_at, utcnow
from lti_app.mastery.calculation import DEFAULT_N, DEFAULT_WEIGHT, CalculationMethod

POINTS = Numeric(6, 2)
"""Points and scores: two decimals, exact on PostgreSQL."""
LEVEL_NAME_LENGTH = 64


class EvidenceSource(enum.StrEnum):
    TEACHER = "teacher"
    SELF_ASSESSMENT = "self_assessment"
    PATHWAY_WORK = "pathway_work"
    KNOWLEDGE_CHECK = "knowledge_check"


class RevisionAction(enum.StrEnum):
    CORRECTED = "corrected"
    WITHDRAWN = "withdrawn"


class MasteryScale(Base):
    """A course's levels and how evidence becomes a level."""

    __tablename__ = "mastery_scale"

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(
        ForeignKey("context.id", ondelete="CASCADE"), unique=True
    )
    method: Mapped[CalculationMethod] = mapped_column(
        str_enum(CalculationMethod), default=CalculationMethod.DECAYING_AVERAGE
    )
    weight: Mapped[int] = mapped_column(default=DEFAULT_WEIGHT)
    """Percent for the decaying and weighted averages; kept when another method is chosen."""
    n: Mapped[int] = mapped_column(default=DEFAULT_N)
    """Results at or above mastery needed by the n-times method."""
    counts_self_assessment: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    levels: Mapped[list[MasteryLevel]] = relationship(
        back_populates="scale", cascade="all, delete-orphan", order_by="MasteryLevel.position"
    )

    @property
    def mastery_level(self) -> MasteryLevel:
        """The lowest level that counts as mastery (the one flagged)."""
        return next(level for level in self.levels if level.is_mastery)

    @property
    def mastery_points(self) -> Decimal:
        return self.mastery_level.points


class MasteryLevel(Base):
    """One level of a course's scale, e.g. Proficient at 3 points."""

    __tablename__ = "mastery_level"

    id: Mapped[intpk]
    scale_id: Mapped[int] = mapped_column(
        ForeignKey("mastery_scale.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(LEVEL_NAME_LENGTH))
    points: Mapped[Decimal] = mapped_column(POINTS)
    colour: Mapped[str] = mapped_column(String(7))
    """#rrggbb; the defaults reach 4.5:1 contrast against white."""
    position: Mapped[int]
    """0 is the lowest level; points rise with position."""
    is_mastery: Mapped[bool] = mapped_column(default=False)
    """Exactly one level per scale: reaching its points is mastery."""

    scale: Mapped[MasteryScale] = relationship(back_populates="levels")


PREVIOUS_RELEASE_DAY = text("CURRENT_DATE")
"""The day a worker of the release before these dates (during a rolling upgrade) saves;
this release always sets the day itself (migration 0025 says why)."""


def _utc_day(context: DefaultExecutionContext) -> date:
    # Evidence inserted without its day (a bulk insert, the domain's tests): the UTC date of
    # its time, as the domain reads a time without a course.
    at = context.get_current_parameters().get("observed_at")  # type: ignore[no-untyped-call]
    return (at if isinstance(at, datetime) else utcnow()).astimezone(UTC).date()


class Evidence(Base):
    """One observation of a student on a competency."""

    __tablename__ = "evidence"
    __table_args__ = (
        Index(
            "ix_evidence_context_id_person_id_competency_id",
            "context_id",
            "person_id",
            "competency_id",
        ),
    )

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    competency_id: Mapped[int] = mapped_column(
        ForeignKey("competency.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    """The student."""
    points: Mapped[Decimal] = mapped_column(POINTS)
    """Points, not a level id, so renaming or moving levels keeps what was observed."""
    level_name: Mapped[str] = mapped_column(String(LEVEL_NAME_LENGTH))
    """The level these points reached when recorded, kept for history."""
    source: Mapped[EvidenceSource] = mapped_column(str_enum(EvidenceSource))
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), index=True
    )
    """Who recorded it (the student, for a self-assessment); None once an operator erased
    that teacher (`lti-app person erase`): the student's evidence outlives its author."""
    observed_on: Mapped[date] = mapped_column(default=_utc_day, server_default=PREVIOUS_RELEASE_DAY)
    """The day the student showed it, as the teacher typed it (else the course's date when it
    was recorded). A calendar date, not a time: choosing the course's time zone later must not
    move it. Pages, exports and reports show this date; mastery orders by it first."""
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)
    """When the student showed it (noon in the course's zone for a day typed in the past);
    mastery orders by observed_on, then this, then id, so make-up work recorded late does not
    become the most recent result."""
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]
    withdrawn_at: Mapped[datetime | None]

    revisions: Mapped[list[EvidenceRevision]] = relationship(
        back_populates="evidence",
        cascade="all, delete-orphan",
        order_by="EvidenceRevision.id",
    )


IN_ORDER_OBSERVED = (Evidence.observed_on, Evidence.observed_at, Evidence.id)
"""Oldest observation first, by the day the course reads first: once the course changes its
time zone, noon of a day typed earlier may come after the time of a later day's evidence."""


class EvidenceRevision(Base):
    """A correction or withdrawal of evidence: who, when, and the values before and after."""

    __tablename__ = "evidence_revision"

    id: Mapped[intpk]
    evidence_id: Mapped[int] = mapped_column(
        ForeignKey("evidence.id", ondelete="CASCADE"), index=True
    )
    context_id: Mapped[int] = mapped_column(
        ForeignKey("context.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[RevisionAction] = mapped_column(str_enum(RevisionAction))
    changed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), index=True
    )
    """None once an operator erased the teacher who made the change."""
    changed_at: Mapped[created_at]
    old_points: Mapped[Decimal] = mapped_column(POINTS)
    new_points: Mapped[Decimal] = mapped_column(POINTS)
    old_note: Mapped[str] = mapped_column(Text)
    new_note: Mapped[str] = mapped_column(Text)
    old_observed_at: Mapped[datetime]
    new_observed_at: Mapped[datetime]
    old_observed_on: Mapped[date] = mapped_column(server_default=PREVIOUS_RELEASE_DAY)
    new_observed_on: Mapped[date] = mapped_column(server_default=PREVIOUS_RELEASE_DAY)

    evidence: Mapped[Evidence] = relationship(back_populates="revisions")


class StudentCompetencyLevel(Base):
    """A student's current standing on a competency, kept up to date with every evidence change.

    Pages read this instead of recomputing from evidence. For a competency with sub-competencies
    the values are rolled up from the children (see `mastery.rollup.roll_up`).
    """

    __tablename__ = "student_competency_level"
    __table_args__ = (
        UniqueConstraint("context_id", "person_id", "competency_id"),
        Index("ix_student_competency_level_competency_id", "competency_id"),
    )

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    competency_id: Mapped[int] = mapped_column(ForeignKey("competency.id", ondelete="CASCADE"))
    score: Mapped[Decimal | None] = mapped_column(POINTS)
    """None: no score yet (no counted evidence, or n times not reached)."""
    level_name: Mapped[str | None] = mapped_column(String(LEVEL_NAME_LENGTH))
    level_points: Mapped[Decimal | None] = mapped_column(POINTS)
    is_mastered: Mapped[bool] = mapped_column(default=False)
    evidence_count: Mapped[int] = mapped_column(default=0)
    """Evidence that counted (not withdrawn; self-assessment only if the scale counts it)."""
    last_evidence_at: Mapped[datetime | None]
    """The latest observed_at among the counted evidence."""
    last_evidence_on: Mapped[date | None]
    """The latest observed_on among the counted evidence: the date pages show."""
    updated_at: Mapped[updated_at]
