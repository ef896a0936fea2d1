"""The course roster as Pathways knows it: from launches and from the LMS (NRPS)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.tool.models import Membership, MembershipStatus, Person


@dataclass(frozen=True)
class Student:
    """A learner of the course, as pages show them."""

    person_id: int
    name: str
    sort_key: str
    email: str
    status: MembershipStatus
    last_launch_at: datetime | None

    @property
    def has_launched(self) -> bool:
        return self.last_launch_at is not None


def list_students(
    session: Session, *, context_id: int, include_inactive: bool = False
) -> list[Student]:
    """The course's learners, sorted by family then given name, in one query."""
    stmt = (
        select(Membership, Person)
        .join(Person, Person.id == Membership.person_id)
        .where(Membership.context_id == context_id, Membership.is_learner.is_(True))
    )
    if not include_inactive:
        stmt = stmt.where(Membership.status == MembershipStatus.ACTIVE)
    students = [
        Student(
            person_id=person.id,
            name=person.display_name,
            sort_key=(person.family_name or person.name or person.email or person.sub).casefold(),
            email=person.email,
            status=membership.status,
            last_launch_at=membership.last_launch_at,
        )
        for membership, person in session.execute(stmt)
    ]
    students.sort(key=lambda s: (s.sort_key, s.name.casefold(), s.person_id))
    return students


def student_ids_in_course(
    session: Session, *, context_id: int, person_ids: Iterable[int]
) -> set[int]:
    """Which of these people are learners of this course (to refuse ids from elsewhere)."""
    wanted = {int(p) for p in person_ids}
    if not wanted:
        return set()
    rows = session.scalars(
        select(Membership.person_id).where(
            Membership.context_id == context_id,
            Membership.is_learner.is_(True),
            Membership.person_id.in_(wanted),
        )
    )
    return set(rows)


def teaches_course(session: Session, *, context_id: int, person_id: int) -> bool:
    """Whether this person has a teaching membership in this course."""
    return (
        session.scalar(
            select(Membership.id).where(
                Membership.context_id == context_id,
                Membership.person_id == person_id,
                Membership.is_teacher.is_(True),
                Membership.status == MembershipStatus.ACTIVE,
            )
        )
        is not None
    )
