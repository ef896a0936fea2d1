"""Gather what a family report shows, never a teacher-only field, and keep the student's
reflection. Plain values out, so the page, the PDF and the tests read the same thing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.competencies.queries import list_competencies
from lti_app.insights.dashboard import scale_levels
from lti_app.insights.grouping import ScaleLevel, standing_band
from lti_app.learners.models import GoalStatus, is_overdue
from lti_app.learners.visible_profile import student_view
from lti_app.learners.vocab import strip_control_characters
from lti_app.mastery.levels import current_levels
from lti_app.mastery.models import (
    IN_ORDER_OBSERVED,
    Evidence,
    EvidenceSource,
    StudentCompetencyLevel,
)
from lti_app.pathways.models import Choice, ChoiceStatus, Option, Pathway, Step
from lti_app.reports.models import REFLECTION_MAX_LENGTH, StudentReflection
from lti_app.tool.models import Person

RECENT_WORK = 8
RECENT_COMMENTS = 8
WORK_STATUSES = (ChoiceStatus.DONE, ChoiceStatus.SUBMITTED, ChoiceStatus.RETURNED)
CURRENT_STATUSES = (ChoiceStatus.CHOSEN, ChoiceStatus.APPROVED, ChoiceStatus.IN_PROGRESS)


class InvalidReflectionError(ValueError):
    """A reflection that cannot be saved; the message says why."""


@dataclass(frozen=True)
class GoalLine:
    text: str
    target_date: date | None
    status: GoalStatus

    def is_overdue(self, today: date) -> bool:
        return is_overdue(self.target_date, self.status, today)


@dataclass(frozen=True)
class CompetencyLine:
    code: str
    title: str
    level_name: str | None
    band: str
    """Where the standing is against mastery: reteach, practice, ready, extend, partial (at or
    above the mastery level, parts not mastered), unscored (evidence, no level yet) or none."""
    is_mastered: bool
    last_evidence_on: date | None


@dataclass(frozen=True)
class WorkLine:
    option_title: str
    step_title: str
    pathway_title: str
    status: ChoiceStatus
    at: datetime
    teacher_comment: str


@dataclass(frozen=True)
class CommentLine:
    at: date
    competency: str
    level_name: str
    note: str


@dataclass(frozen=True)
class CheckInLine:
    held_on: date
    note: str
    next_steps: str


@dataclass(frozen=True)
class NextStep:
    kind: str
    """"working": finish this work; "master": work towards this competency."""
    title: str


@dataclass(frozen=True)
class FamilyReport:
    """What a family may read about one student in one course."""

    person_id: int
    student_name: str
    course_title: str
    levels: tuple[ScaleLevel, ...]
    goals: tuple[GoalLine, ...]
    competencies: tuple[CompetencyLine, ...]
    recent_work: tuple[WorkLine, ...]
    comments: tuple[CommentLine, ...]
    check_ins: tuple[CheckInLine, ...]
    next_steps: tuple[NextStep, ...]
    reflection: str

    @property
    def mastered_count(self) -> int:
        return sum(1 for c in self.competencies if c.is_mastered)


def get_reflection(session: Session, *, context_id: int, person_id: int) -> str:
    """Return the student's reflection in the course ("" when none)."""
    text = session.scalar(
        select(StudentReflection.text).where(
            StudentReflection.context_id == context_id, StudentReflection.person_id == person_id
        )
    )
    return text or ""


def save_reflection(
    session: Session, *, context_id: int, person_id: int, text: str
) -> StudentReflection:
    """Store the student's own reflection (the view lets only that student call this).

    Invisible control characters (NUL, which PostgreSQL refuses, among them) are dropped; line
    breaks and tabs stay. Two saves at once (a double click) leave one reflection, the last.
    """
    text = strip_control_characters(text.replace("\r\n", "\n")).strip()
    if len(text) > REFLECTION_MAX_LENGTH:
        raise InvalidReflectionError(
            f"A reflection has at most {REFLECTION_MAX_LENGTH} characters."
        )
    row = _stored_reflection(session, context_id=context_id, person_id=person_id)
    if row is None:
        try:
            with session.begin_nested():
                row = StudentReflection(context_id=context_id, person_id=person_id, text=text)
                session.add(row)
        except IntegrityError:
            # Another request of the same student stored the first reflection meanwhile.
            row = _stored_reflection(session, context_id=context_id, person_id=person_id)
            if row is None:  # pragma: no cover - the unique row exists once the insert failed
                raise
    row.text = text
    session.flush()
    return row


def _stored_reflection(
    session: Session, *, context_id: int, person_id: int
) -> StudentReflection | None:
    return session.scalar(
        select(StudentReflection).where(
            StudentReflection.context_id == context_id, StudentReflection.person_id == person_id
        )
    )


def family_report(
    session: Session, *, context_id: int, person_id: int, course_title: str
) -> FamilyReport:
    """Build the report of one student (the caller checks who may see it).

    Goals, public check-ins and the profile come from `learners.student_view`, which never
    holds teacher notes or private check-ins; withdrawn evidence is left out; groups, which
    are the teacher's working notes, are never read here.
    """
    person = session.get(Person, person_id)
    view = student_view(session, context_id=context_id, person_id=person_id)
    levels = scale_levels(session, context_id=context_id)
    competencies = list_competencies(session, context_id=context_id)
    stored = current_levels(session, context_id=context_id, person_id=person_id)
    lines = tuple(_competency_line(c, stored.get(c.id), levels) for c in competencies)
    by_id = {c.id: c for c in competencies}
    evidence = session.scalars(
        select(Evidence)
        .where(
            Evidence.context_id == context_id,
            Evidence.person_id == person_id,
            Evidence.withdrawn_at.is_(None),
            Evidence.note != "",
            # "Teacher comments": a student's own self-assessment notes are not the teacher's
            # words, and archived competencies are not in the report (before the limit).
            Evidence.source != EvidenceSource.SELF_ASSESSMENT,
            Evidence.competency_id.in_(list(by_id)),
        )
        .order_by(*(column.desc() for column in IN_ORDER_OBSERVED))
        .limit(RECENT_COMMENTS)
    ).all()
    comments = tuple(
        CommentLine(ev.observed_on, _label(by_id[ev.competency_id]), ev.level_name, ev.note)
        for ev in evidence
        if ev.competency_id in by_id
    )
    work_rows = session.execute(
        select(Choice, Option.title, Step.title, Pathway.title)
        .join(Option, Option.id == Choice.option_id)
        .join(Step, Step.id == Choice.step_id)
        .join(Pathway, Pathway.id == Step.pathway_id)
        .where(
            Choice.context_id == context_id,
            Choice.person_id == person_id,
            Choice.status.in_([*WORK_STATUSES, *CURRENT_STATUSES]),
        )
        .order_by(Choice.updated_at.desc(), Choice.id.desc())
    ).all()
    work: list[WorkLine] = []
    next_steps: list[NextStep] = []
    for choice, option_title, step_title, pathway_title in work_rows:
        if choice.status in WORK_STATUSES:
            at = choice.done_at or choice.returned_at or choice.submitted_at or choice.chosen_at
            work.append(
                WorkLine(
                    option_title,
                    step_title,
                    pathway_title,
                    choice.status,
                    at,
                    choice.teacher_feedback,
                )
            )
        if choice.status in (*CURRENT_STATUSES, ChoiceStatus.RETURNED):
            next_steps.append(NextStep("working", f"{step_title}: {option_title}"))
    next_steps.extend(
        NextStep("master", f"{line.code} {line.title}".strip())
        for line in lines
        if line.band in {"reteach", "practice", "partial", "unscored"}
    )
    return FamilyReport(
        person_id=person_id,
        student_name=person.display_name if person else "",
        course_title=course_title,
        levels=levels,
        goals=tuple(GoalLine(g.text, g.target_date, g.status) for g in view.goals),
        competencies=lines,
        recent_work=tuple(work[:RECENT_WORK]),
        comments=comments,
        check_ins=tuple(CheckInLine(c.held_on, c.note, c.next_steps) for c in view.check_ins[:3]),
        next_steps=tuple(next_steps[:8]),
        reflection=get_reflection(session, context_id=context_id, person_id=person_id),
    )


def _label(competency: Competency) -> str:
    return f"{competency.code} {competency.title}".strip()


def _competency_line(
    competency: Competency, level: StudentCompetencyLevel | None, levels: tuple[ScaleLevel, ...]
) -> CompetencyLine:
    name = level.level_name if level else None
    points = level.level_points if level and name else None
    return CompetencyLine(
        code=competency.code,
        title=competency.title,
        level_name=name,
        band=standing_band(
            points,
            levels,
            is_mastered=bool(level and level.is_mastered),
            has_evidence=bool(level and level.evidence_count),
        ),
        is_mastered=bool(level and level.is_mastered),
        last_evidence_on=level.last_evidence_on if level else None,
    )
