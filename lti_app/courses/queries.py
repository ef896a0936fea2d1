"""Queries the teacher pages need and no domain service offers, each scoped by course.

Each is one query, whatever the number of students.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.learners.models import CheckIn
from lti_app.pathways.models import Choice, ChoiceStatus, Option, Pathway, PathwayCompetency, Step
from lti_app.tool.models import Context, Membership, MembershipStatus, Person


def person_names(session: Session, *, person_ids: Collection[int]) -> dict[int, str]:
    """Display names of people (e.g. who recorded evidence), by id."""
    if not person_ids:
        return {}
    rows = session.scalars(select(Person).where(Person.id.in_(set(person_ids))))
    return {person.id: person.display_name for person in rows}


@dataclass(frozen=True)
class ChoiceRow:
    """A student's choice with the titles a teacher reads it by."""

    choice: Choice
    pathway_title: str
    step_title: str
    option_title: str
    competency_id: int | None
    """The competency the step assesses, or the pathway's only one; None when unclear."""

    @property
    def id(self) -> int:
        return self.choice.id

    @property
    def status(self) -> ChoiceStatus:
        return self.choice.status

    @property
    def last_change(self) -> datetime:
        c = self.choice
        return c.done_at or c.returned_at or c.submitted_at or c.approved_at or c.chosen_at


def _single_competency_by_pathway(session: Session, pathway_ids: Collection[int]) -> dict[int, int]:
    if not pathway_ids:
        return {}
    rows = session.execute(
        select(PathwayCompetency.pathway_id, func.min(PathwayCompetency.competency_id))
        .where(PathwayCompetency.pathway_id.in_(set(pathway_ids)))
        .group_by(PathwayCompetency.pathway_id)
        .having(func.count() == 1)
    )
    return {int(pathway_id): int(competency_id) for pathway_id, competency_id in rows}


def choice_rows(
    session: Session,
    *,
    context_id: int,
    person_id: int | None = None,
    choice_ids: Collection[int] | None = None,
    lock: bool = False,
) -> list[ChoiceRow]:
    """The course's choices (of one student, or these ids) with titles, newest first.

    With `lock`, the choices stay locked until the transaction ends, so a second request on the
    same choices (a double click) waits and then reads what the first one did.
    """
    query = (
        select(Choice, Option.title, Step.title, Step.competency_id, Pathway.id, Pathway.title)
        .join(Option, Option.id == Choice.option_id)
        .join(Step, Step.id == Choice.step_id)
        .join(Pathway, Pathway.id == Step.pathway_id)
        .where(Choice.context_id == context_id, Step.context_id == context_id)
    )
    if person_id is not None:
        query = query.where(Choice.person_id == person_id)
    if choice_ids is not None:
        query = query.where(Choice.id.in_(set(choice_ids)))
    if lock:
        # populate_existing: choices the session read before the wait show what is committed.
        query = query.with_for_update(of=Choice).execution_options(populate_existing=True)
    if lock:
        # Locked in ascending id order, as every other locking read of choices: two orders
        # over the same rows deadlock on PostgreSQL. Shown newest first all the same.
        rows = list(reversed(session.execute(query.order_by(Choice.id)).all()))
    else:
        rows = list(session.execute(query.order_by(Choice.id.desc())).all())
    singles = _single_competency_by_pathway(
        session, {pathway_id for *_, step_competency, pathway_id, _t in rows if not step_competency}
    )
    return [
        ChoiceRow(
            choice=choice,
            pathway_title=pathway_title,
            step_title=step_title,
            option_title=option_title,
            competency_id=step_competency or singles.get(pathway_id),
        )
        for choice, option_title, step_title, step_competency, pathway_id, pathway_title in rows
    ]


@dataclass(frozen=True)
class TaughtCourse:
    """Another course a teacher teaches, with what tells it from others of the same name
    (an LMS's course copy keeps the original's title and code)."""

    id: int
    context_id: str
    title: str
    label: str
    first_opened_at: datetime
    """When Pathways first saw the course."""
    last_opened_at: datetime | None
    """The teacher's own latest launch in it."""
    competencies: int
    pathways: int


def taught_courses(
    session: Session, *, person_id: int, exclude_context_id: int
) -> list[TaughtCourse]:
    """Other courses this person teaches (a person belongs to one platform, so these do too),
    the one they opened last first."""
    competencies = (
        select(func.count(Competency.id))
        .where(Competency.context_id == Context.id, Competency.archived_at.is_(None))
        .correlate(Context)
        .scalar_subquery()
    )
    pathways = (
        select(func.count(Pathway.id))
        .where(Pathway.context_id == Context.id, Pathway.archived_at.is_(None))
        .correlate(Context)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Context, Membership.last_launch_at, competencies, pathways)
        .join(Membership, Membership.context_id == Context.id)
        .where(
            Membership.person_id == person_id,
            Membership.is_teacher.is_(True),
            Membership.status == MembershipStatus.ACTIVE,
            Context.id != exclude_context_id,
        )
        .order_by(
            Membership.last_launch_at.is_(None),
            Membership.last_launch_at.desc(),
            Context.created_at.desc(),
            Context.id.desc(),
        )
    )
    return [
        TaughtCourse(
            id=context.id,
            context_id=context.context_id,
            title=context.title,
            label=context.label,
            first_opened_at=context.created_at,
            last_opened_at=last_opened_at,
            competencies=n_competencies or 0,
            pathways=n_pathways or 0,
        )
        for context, last_opened_at, n_competencies, n_pathways in rows
    ]


def earlier_same_check_in(session: Session, *, check_in: CheckIn, since: datetime) -> bool:
    """Whether the same author stored this very check-in (as cleaned) before, since `since`."""
    found = session.scalar(
        select(CheckIn.id)
        .where(
            CheckIn.profile_id == check_in.profile_id,
            CheckIn.id != check_in.id,
            CheckIn.author_id == check_in.author_id,
            CheckIn.held_on == check_in.held_on,
            CheckIn.note == check_in.note,
            CheckIn.next_steps == check_in.next_steps,
            CheckIn.is_private.is_(check_in.is_private),
            CheckIn.created_at >= since,
        )
        .limit(1)
    )
    return found is not None
