"""Learner profiles, goals and check-ins: what a student brings and where they are heading."""

from __future__ import annotations

import enum
from datetime import date

from sqlalchemy import JSON, ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, created_at, intpk, str_enum, updated_at


class GoalStatus(enum.StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    MET = "met"
    DROPPED = "dropped"


OPEN_GOAL_STATUSES = (GoalStatus.NOT_STARTED, GoalStatus.IN_PROGRESS)
"""A goal still being worked on: met and dropped goals are never late."""


def is_overdue(target_date: date | None, status: GoalStatus, today: date) -> bool:
    """Whether a goal still being worked on is past its target date."""
    return target_date is not None and target_date < today and status in OPEN_GOAL_STATUSES


class LearnerProfile(Base):
    """A student's interests, career goals, strengths, needs and preferences in one course."""

    __tablename__ = "learner_profile"
    __table_args__ = (UniqueConstraint("context_id", "person_id"),)

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    interests: Mapped[list[str]] = mapped_column(JSON, default=list)
    career_clusters: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Values of learners.vocab.CareerCluster."""
    career_goal_text: Mapped[str] = mapped_column(Text, default="")
    preferred_modalities: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Values of learners.vocab.Modality: the ways of learning the student prefers."""
    preferences_text: Mapped[str] = mapped_column(Text, default="")
    strengths: Mapped[str] = mapped_column(Text, default="")
    needs_and_supports: Mapped[str] = mapped_column(Text, default="")
    non_academic_notes: Mapped[str] = mapped_column(Text, default="")
    """Social skills, work habits and the like; the student sees them, the teacher writes them."""
    teacher_notes: Mapped[str] = mapped_column(Text, default="")
    """Private to teachers: never shown to the student or the family."""
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class Goal(Base):
    """A goal the student or teacher set, with a target date and a status."""

    __tablename__ = "learner_goal"
    __table_args__ = (Index("ix_learner_goal_context_id_profile_id", "context_id", "profile_id"),)

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    profile_id: Mapped[int] = mapped_column(ForeignKey("learner_profile.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    target_date: Mapped[date | None]
    status: Mapped[GoalStatus] = mapped_column(str_enum(GoalStatus), default=GoalStatus.NOT_STARTED)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    def is_overdue(self, today: date) -> bool:
        return is_overdue(self.target_date, self.status, today)


class CheckIn(Base):
    """A conversation about goals and progress: what was said and what comes next."""

    __tablename__ = "learner_check_in"
    __table_args__ = (
        Index("ix_learner_check_in_context_id_profile_id", "context_id", "profile_id"),
    )

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    profile_id: Mapped[int] = mapped_column(ForeignKey("learner_profile.id", ondelete="CASCADE"))
    held_on: Mapped[date]
    note: Mapped[str] = mapped_column(Text, default="")
    next_steps: Mapped[str] = mapped_column(Text, default="")
    is_private: Mapped[bool] = mapped_column(default=False)
    """Teachers only: a private check-in never reaches the student's or the family's view."""
    author_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]
