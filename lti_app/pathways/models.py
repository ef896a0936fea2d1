"""Pathways, their steps and options, manual unlocks, and students' choices."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, created_at, intpk, str_enum, updated_at, utcnow
from lti_app.learners.vocab import Modality

TITLE_MAX_LENGTH = 255
URL_MAX_LENGTH = 2048


class ChallengeLevel(enum.IntEnum):
    """How demanding an option is, so students can pick their stretch."""

    GETTING_STARTED = 1
    CORE = 2
    STRETCH = 3

    @property
    def label(self) -> str:
        return {1: "Getting started", 2: "Core", 3: "Stretch"}[self.value]


class ChoiceStatus(enum.StrEnum):
    CHOSEN = "chosen"
    """Picked; waits for the teacher when the option requires approval, else may start."""
    APPROVED = "approved"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    DONE = "done"
    RETURNED = "returned"
    """A submission the teacher sent back with a note: the student keeps working on it."""
    REJECTED = "rejected"
    """A pick the teacher declined before work started: the student chooses again."""


class Pathway(Base):
    """A route through steps towards one or more competencies of a course."""

    __tablename__ = "pathway"
    __table_args__ = (Index("ix_pathway_context_id_position", "context_id", "position"),)

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    description: Mapped[str] = mapped_column(Text, default="")
    """Sanitized HTML (pathways.text.clean_html): templates may render it unescaped."""
    position: Mapped[int] = mapped_column(default=0)
    archived_at: Mapped[datetime | None]
    copied_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("pathway.id", ondelete="SET NULL"), index=True
    )
    """The pathway of another course this one was copied from: a placement an LMS copies with
    the course keeps that one's id (`courses.lineage`)."""
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class PathwayCompetency(Base):
    """A competency a pathway leads to."""

    __tablename__ = "pathway_competency"

    pathway_id: Mapped[int] = mapped_column(
        ForeignKey("pathway.id", ondelete="CASCADE"), primary_key=True
    )
    competency_id: Mapped[int] = mapped_column(
        ForeignKey("competency.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Step(Base):
    """One stage of a pathway; the student picks one of its options."""

    __tablename__ = "pathway_step"
    __table_args__ = (Index("ix_pathway_step_pathway_id_position", "pathway_id", "position"),)

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(
        ForeignKey("context.id", ondelete="CASCADE"), index=True
    )
    pathway_id: Mapped[int] = mapped_column(ForeignKey("pathway.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    description: Mapped[str] = mapped_column(Text, default="")
    """Sanitized HTML (pathways.text.clean_html)."""
    competency_id: Mapped[int | None] = mapped_column(
        ForeignKey("competency.id", ondelete="SET NULL"), index=True
    )
    """The competency this step's work is evidence for; None means the pathway's competencies."""
    archived_at: Mapped[datetime | None]
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class StepPrerequisite(Base):
    """A competency the student must master before a step unlocks."""

    __tablename__ = "pathway_step_prerequisite"

    step_id: Mapped[int] = mapped_column(
        ForeignKey("pathway_step.id", ondelete="CASCADE"), primary_key=True
    )
    competency_id: Mapped[int] = mapped_column(
        ForeignKey("competency.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Option(Base):
    """One way through a step: a project, a reading, a video, an offline task..."""

    __tablename__ = "pathway_option"
    __table_args__ = (
        Index("ix_pathway_option_step_id_position", "step_id", "position"),
        CheckConstraint("challenge BETWEEN 1 AND 3", name="challenge_range"),
        CheckConstraint(
            "expected_minutes IS NULL OR expected_minutes > 0", name="expected_minutes_positive"
        ),
    )

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(
        ForeignKey("context.id", ondelete="CASCADE"), index=True
    )
    step_id: Mapped[int] = mapped_column(ForeignKey("pathway_step.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    description: Mapped[str] = mapped_column(Text, default="")
    """Sanitized HTML (pathways.text.clean_html)."""
    links: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    """[{"label": ..., "url": ...}], http(s) URLs only."""
    modality: Mapped[Modality] = mapped_column(str_enum(Modality))
    interest_tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    career_clusters: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Values of learners.vocab.CareerCluster."""
    challenge: Mapped[int] = mapped_column(default=ChallengeLevel.CORE.value)
    """A ChallengeLevel value, 1 to 3."""
    expected_minutes: Mapped[int | None]
    requires_approval: Mapped[bool] = mapped_column(default=False)
    archived_at: Mapped[datetime | None]
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def challenge_level(self) -> ChallengeLevel:
        return ChallengeLevel(self.challenge)


class StepUnlock(Base):
    """A teacher opened a step for a student before the prerequisites were mastered."""

    __tablename__ = "pathway_step_unlock"
    __table_args__ = (UniqueConstraint("step_id", "person_id"),)

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(
        ForeignKey("context.id", ondelete="CASCADE"), index=True
    )
    step_id: Mapped[int] = mapped_column(ForeignKey("pathway_step.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    unlocked_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    unlocked_at: Mapped[datetime] = mapped_column(default=utcnow)


class Choice(Base):
    """A student's current pick of an option for a step, and how far the work has come."""

    __tablename__ = "pathway_choice"
    __table_args__ = (
        UniqueConstraint("person_id", "step_id"),
        Index("ix_pathway_choice_context_id_status", "context_id", "status"),
    )

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    step_id: Mapped[int] = mapped_column(
        ForeignKey("pathway_step.id", ondelete="CASCADE"), index=True
    )
    option_id: Mapped[int] = mapped_column(
        ForeignKey("pathway_option.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[ChoiceStatus] = mapped_column(
        str_enum(ChoiceStatus), default=ChoiceStatus.CHOSEN
    )
    submission_note: Mapped[str] = mapped_column(Text, default="")
    submission_url: Mapped[str | None] = mapped_column(String(URL_MAX_LENGTH))
    teacher_feedback: Mapped[str] = mapped_column(Text, default="")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    """The teacher who last approved, returned or closed this choice."""
    chosen_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    updated_at: Mapped[updated_at]


class Attempt(Base):
    """An earlier try at a step by a student: what they handed in, when, and how it closed.

    Written when the student tries a step done below mastery again (`pathways.retrying`): the
    step's choice then holds only the new try, so the earlier work lives on here. Keyed to the
    student and the step, not the choice, so withdrawing the new pick loses none of it.
    """

    __tablename__ = "pathway_attempt"
    __table_args__ = (Index("ix_pathway_attempt_person_id_step_id", "person_id", "step_id"),)

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    # No ON DELETE: a step or option deleted on its own while a try still names it is an
    # error (the release before this table existed checks only choices before deleting one,
    # and CASCADE would silently take the try), while deleting the course or the pathway's
    # context takes the tries with it through context_id in the same statement.
    step_id: Mapped[int] = mapped_column(ForeignKey("pathway_step.id"), index=True)
    option_id: Mapped[int] = mapped_column(ForeignKey("pathway_option.id"), index=True)
    """The option of that try; an option or step tried once is archived, never deleted."""
    number: Mapped[int]
    """1 for the first try at the step, 2 for the second..."""
    submission_note: Mapped[str] = mapped_column(Text, default="")
    submission_url: Mapped[str | None] = mapped_column(String(URL_MAX_LENGTH))
    teacher_feedback: Mapped[str] = mapped_column(Text, default="")
    chosen_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    """The teacher who closed the try; None once an operator erased them."""
    evidence_id: Mapped[int | None] = mapped_column(
        ForeignKey("evidence.id", ondelete="SET NULL"), index=True
    )
    """The teacher's evidence that closed the try, on what the step teaches; None when the
    teacher marked it done without a level."""
    created_at: Mapped[created_at]
    """When the next try started."""
