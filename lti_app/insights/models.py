"""Flexible groups: students a teacher grouped by level or next step, dated and archivable."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_app.db import Base, created_at, intpk, str_enum, utcnow

GROUP_NAME_LENGTH = 120


class GroupBasis(enum.StrEnum):
    """What the teacher grouped by when the group was proposed."""

    COMPETENCY = "competency"
    STEP = "step"
    MANUAL = "manual"


class StudentGroup(Base):
    """A named, dated group of students in a course; teacher-only, never shown to families."""

    __tablename__ = "student_group"
    __table_args__ = (Index("ix_student_group_context_archived", "context_id", "archived_at"),)

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(GROUP_NAME_LENGTH))
    basis: Mapped[GroupBasis] = mapped_column(str_enum(GroupBasis), default=GroupBasis.MANUAL)
    competency_id: Mapped[int | None] = mapped_column(
        ForeignKey("competency.id", ondelete="SET NULL")
    )
    step_id: Mapped[int | None] = mapped_column(ForeignKey("pathway_step.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    created_at: Mapped[created_at]
    archived_at: Mapped[datetime | None]

    members: Mapped[list[StudentGroupMember]] = relationship(
        back_populates="group",
        cascade="all, delete-orphan",
        passive_deletes=True,
        # Oldest stint first, so code that keeps the last row per student keeps the open stint
        # (a student's latest): unordered, PostgreSQL may list a reused slot's newer row first.
        order_by="StudentGroupMember.id",
    )


OPEN_STINT = text("removed_at IS NULL")


class StudentGroupMember(Base):
    """One stint of a student in a group; removal is dated rather than deleted, and putting a
    student back starts a new stint, so their history keeps every one."""

    __tablename__ = "student_group_member"
    __table_args__ = (
        # A student is in a group at most once at a time; closed stints may be many.
        Index(
            "uq_student_group_member_open_stint",
            "group_id",
            "person_id",
            unique=True,
            sqlite_where=OPEN_STINT,
            postgresql_where=OPEN_STINT,
        ),
    )

    id: Mapped[intpk]
    group_id: Mapped[int] = mapped_column(
        ForeignKey("student_group.id", ondelete="CASCADE"), index=True
    )
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None]

    group: Mapped[StudentGroup] = relationship(back_populates="members")
