"""A course's competency framework: competencies, their hierarchy and prerequisites."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, created_at, intpk, str_enum, updated_at

CODE_MAX_LENGTH = 64
TITLE_MAX_LENGTH = 512


class CompetencyKind(enum.StrEnum):
    ACADEMIC = "academic"
    NON_ACADEMIC = "non_academic"


class Competency(Base):
    """Something a student can master, in one course's framework."""

    __tablename__ = "competency"
    __table_args__ = (
        UniqueConstraint("context_id", "code"),
        Index("ix_competency_context_id_parent_id", "context_id", "parent_id"),
    )

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(CODE_MAX_LENGTH))
    """Short and unique in the course; imports and exports match competencies by it."""
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    description: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("competency.id", ondelete="CASCADE"))
    kind: Mapped[CompetencyKind] = mapped_column(
        str_enum(CompetencyKind), default=CompetencyKind.ACADEMIC
    )
    position: Mapped[int] = mapped_column(default=0)
    """Order among siblings (same parent); ties fall back to id."""
    archived_at: Mapped[datetime | None]
    copied_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("competency.id", ondelete="SET NULL"), index=True
    )
    """The competency of another course this one was copied from: links and gradebook columns
    an LMS copies with the course keep that one's id (`courses.lineage`)."""
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class CompetencyPrerequisite(Base):
    """A competency that should be mastered before another one (same course)."""

    __tablename__ = "competency_prerequisite"

    competency_id: Mapped[int] = mapped_column(
        ForeignKey("competency.id", ondelete="CASCADE"), primary_key=True
    )
    prerequisite_id: Mapped[int] = mapped_column(
        ForeignKey("competency.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    context_id: Mapped[int] = mapped_column(
        ForeignKey("context.id", ondelete="CASCADE"), index=True
    )
    """Denormalised so a course's whole prerequisite graph loads in one scoped query."""
