"""The course roster as Pathways knows it: from launches and from the LMS (NRPS).

Reading: `list_students`, `students_who_left`, `student_ids_in_course`, `teaches_course`,
`get_roster_sync`. Storing what the LMS sends is in `roster.syncing`, a sync's lease in
`roster.sync_lease`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.roster.models import RosterSync
from lti_app.tool.models import (
    Membership,
    MembershipStatus,
    Person,
    display_name,
)


@dataclass(frozen=True)
class Student:
    """A learner of the course, as pages show them."""

    person_id: int
    name: str
    sort_key: str
    email: str
    status: MembershipStatus
    last_launch_at: datetime | None
    picture: str = ""

    @property
    def has_launched(self) -> bool:
        return self.last_launch_at is not None


def list_students(
    session: Session,
    *,
    context_id: int,
    include_inactive: bool = False,
    subs: Collection[str] | None = None,
) -> list[Student]:
    """The course's learners (only those the LMS calls `subs`, when given), sorted by family
    then given name, in one query. Every page that lists, counts or picks from the class reads
    it; the LMS's preview student (Canvas's Test Student) is never one of them."""
    # Columns, not ORM objects: this runs for every page that lists a class.
    stmt = (
        select(
            Person.id,
            Person.name,
            Person.given_name,
            Person.family_name,
            Person.email,
            Person.sub,
            Person.picture,
            Membership.status,
            Membership.last_launch_at,
        )
        .join(Person, Person.id == Membership.person_id)
        .where(
            Membership.context_id == context_id,
            Membership.is_learner.is_(True),
            # The LMS's preview student is the teacher looking, not one of the class.
            Membership.is_preview.is_(False),
        )
    )
    if not include_inactive:
        stmt = stmt.where(Membership.status == MembershipStatus.ACTIVE)
    if subs is not None:
        stmt = stmt.where(Person.sub.in_(list(subs)))
    students = [
        Student(
            person_id=row.id,
            name=display_name(row.name, row.given_name, row.family_name, row.email, row.sub),
            sort_key=(row.family_name or row.name or row.email or row.sub).casefold(),
            email=row.email,
            status=row.status,
            last_launch_at=row.last_launch_at,
            picture=row.picture,
        )
        # Core execution: ORM row loading would cost more than the query on big classes.
        for row in session.connection().execute(stmt)
    ]
    students.sort(key=lambda s: (s.sort_key, s.name.casefold(), s.person_id))
    return students


def students_who_left(session: Session, *, context_id: int, person_ids: Iterable[int]) -> list[str]:
    """Names of these learners whose membership here is no longer active: the LMS keeps a
    departed student's grades read-only, so new evidence for them could only fail at passback."""
    wanted = set(person_ids)
    everyone = list_students(session, context_id=context_id, include_inactive=True)
    gone = [s for s in everyone if s.status is not MembershipStatus.ACTIVE]
    return [s.name for s in gone if s.person_id in wanted]


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
            Membership.is_preview.is_(False),
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


def get_roster_sync(session: Session, *, context_id: int) -> RosterSync | None:
    """The course's roster sync row, if a sync or launch ever made one."""
    return session.scalar(select(RosterSync).where(RosterSync.context_id == context_id))
