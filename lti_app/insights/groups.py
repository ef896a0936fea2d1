"""Keep flexible groups of a course's students: save, rename, change members, archive, and
the history of who was in which group.

Everything takes a database session and the course's context id, and never imports Flask.
See the package docstring for the group API other pages use.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.queries import get_competency
from lti_app.db import lock_course, utcnow
from lti_app.insights.models import (
    GROUP_NAME_LENGTH,
    GroupBasis,
    StudentGroup,
    StudentGroupMember,
)
from lti_app.insights.steps import list_steps
from lti_app.roster.services import student_ids_in_course
from lti_app.unicode_text import is_blank, nfc


class GroupNotFoundError(LookupError):
    """No such group in this course."""


class InvalidGroupError(ValueError):
    """A group name or member list that cannot be saved; the message says why, `about` which
    of the two ("name" or "members"), and `position` which of the groups saved together
    (save_proposal) it was: a page marks the field the teacher has to change."""

    def __init__(self, message: str, *, about: str, position: int | None = None) -> None:
        super().__init__(message)
        self.about = about
        self.position = position


@dataclass(frozen=True)
class GroupHistoryEntry:
    """One group a student belonged to, with when they joined and left."""

    group_id: int
    name: str
    basis: GroupBasis
    created_at: datetime
    archived_at: datetime | None
    added_at: datetime
    removed_at: datetime | None

    @property
    def is_current(self) -> bool:
        return self.archived_at is None and self.removed_at is None


def _clean_name(name: str) -> str:
    # Control characters (a pasted NUL above all, which PostgreSQL cannot store) are dropped.
    name = "".join(ch for ch in name if ch.isspace() or unicodedata.category(ch) != "Cc")
    name = nfc(" ".join(name.split()))
    if is_blank(name):  # zero-width spaces and the like alone show nothing
        raise InvalidGroupError("A group needs a name.", about="name")
    if len(name) > GROUP_NAME_LENGTH:
        raise InvalidGroupError(
            f"A group name has at most {GROUP_NAME_LENGTH} characters.", about="name"
        )
    return name


def _check_members(session: Session, context_id: int, person_ids: Iterable[int]) -> list[int]:
    wanted = list(dict.fromkeys(int(p) for p in person_ids))
    known = student_ids_in_course(session, context_id=context_id, person_ids=wanted)
    if len(known) != len(wanted):
        raise GroupNotFoundError("A student picked is not in this course.")
    return wanted


def create_group(
    session: Session,
    *,
    context_id: int,
    name: str,
    person_ids: Iterable[int],
    created_by_id: int | None,
    basis: GroupBasis = GroupBasis.MANUAL,
    competency_id: int | None = None,
    step_id: int | None = None,
) -> StudentGroup:
    """Save a named group of the course's students (refusing ids from elsewhere)."""
    members = _check_members(session, context_id, person_ids)
    if not members:
        raise InvalidGroupError("A group needs at least one student.", about="members")
    if competency_id is not None:
        get_competency(session, context_id=context_id, competency_id=competency_id)
    if step_id is not None and step_id not in {
        s.id for s in list_steps(session, context_id=context_id)
    }:
        raise GroupNotFoundError("That step is not in this course.")
    now = utcnow()
    group = StudentGroup(
        context_id=context_id,
        name=_clean_name(name),
        basis=basis,
        competency_id=competency_id,
        step_id=step_id,
        created_by_id=created_by_id,
        created_at=now,
    )
    group.members = [
        StudentGroupMember(context_id=context_id, person_id=p, added_at=now) for p in members
    ]
    session.add(group)
    session.flush()
    return group


def get_group(
    session: Session, *, context_id: int, group_id: int, for_update: bool = False
) -> StudentGroup:
    """Return a group of the course, archived or not; another course's group is not found.

    `for_update` locks the row until the transaction ends (PostgreSQL), so two saves of the
    same group (a double click) run one after the other instead of colliding."""
    query = select(StudentGroup).where(
        StudentGroup.id == group_id, StudentGroup.context_id == context_id
    )
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    group = session.scalar(query)
    if group is None:
        raise GroupNotFoundError("That group does not exist in this course.")
    return group


def list_groups(
    session: Session, *, context_id: int, include_archived: bool = False
) -> list[StudentGroup]:
    """Return the course's groups, newest first."""
    query = select(StudentGroup).where(StudentGroup.context_id == context_id)
    if not include_archived:
        query = query.where(StudentGroup.archived_at.is_(None))
    return list(session.scalars(query.order_by(StudentGroup.created_at.desc(), StudentGroup.id)))


def active_groups(session: Session, *, context_id: int) -> list[StudentGroup]:
    """Return the groups a teacher can pick students by (not archived), newest first."""
    return list_groups(session, context_id=context_id)


def group_member_ids(session: Session, *, context_id: int, group_id: int) -> set[int]:
    """Return the ids of a group's current members who are still students of the course."""
    get_group(session, context_id=context_id, group_id=group_id)
    rows = session.scalars(
        select(StudentGroupMember.person_id).where(
            StudentGroupMember.group_id == group_id,
            StudentGroupMember.context_id == context_id,
            StudentGroupMember.removed_at.is_(None),
        )
    )
    return student_ids_in_course(session, context_id=context_id, person_ids=rows)


def member_counts(session: Session, *, context_id: int) -> dict[int, int]:
    """How many current members each group of the course has."""
    counts: dict[int, int] = defaultdict(int)
    for (group_id,) in session.execute(
        select(StudentGroupMember.group_id).where(
            StudentGroupMember.context_id == context_id, StudentGroupMember.removed_at.is_(None)
        )
    ):
        counts[group_id] += 1
    return counts


def resolve_picked_students(
    session: Session, *, context_id: int, group_id: int | None, person_ids: Iterable[int]
) -> list[int]:
    """Expand a picked group into its members, add the individually picked students, and
    refuse any id that is not a student of this course. Order: group members first."""
    picked = list(dict.fromkeys(int(p) for p in person_ids))
    if group_id is not None:
        members = sorted(group_member_ids(session, context_id=context_id, group_id=group_id))
        picked = list(dict.fromkeys([*members, *picked]))
    return _check_members(session, context_id, picked)


def update_group(
    session: Session,
    *,
    context_id: int,
    group_id: int,
    name: str,
    person_ids: Iterable[int],
) -> StudentGroup:
    """Rename a group and set its members. A removed member's stint is closed, not deleted,
    and one put back starts a new stint: their history keeps both."""
    group = get_group(session, context_id=context_id, group_id=group_id, for_update=True)
    session.refresh(group, ["members"])
    wanted = set(_check_members(session, context_id, person_ids))
    if not wanted:
        raise InvalidGroupError(
            "A group needs at least one student; archive it instead.", about="members"
        )
    group.name = _clean_name(name)
    now = utcnow()
    current = {m.person_id: m for m in group.members if m.removed_at is None}
    for person_id, member in current.items():
        if person_id not in wanted:
            member.removed_at = now
    for person_id in sorted(wanted - current.keys()):
        group.members.append(
            StudentGroupMember(context_id=context_id, person_id=person_id, added_at=now)
        )
    session.flush()
    return group


def archive_group(session: Session, *, context_id: int, group_id: int) -> StudentGroup:
    """Put a group away: it leaves the pickers but stays in students' history."""
    group = get_group(session, context_id=context_id, group_id=group_id)
    if group.archived_at is None:
        group.archived_at = utcnow()
    session.flush()
    return group


def restore_group(session: Session, *, context_id: int, group_id: int) -> StudentGroup:
    """Bring an archived group back to the pickers."""
    group = get_group(session, context_id=context_id, group_id=group_id)
    group.archived_at = None
    session.flush()
    return group


def current_member_ids(group: StudentGroup) -> set[int]:
    """The ids of a loaded group's members who have not been removed."""
    return {m.person_id for m in group.members if m.removed_at is None}


def group_history(session: Session, *, context_id: int, person_id: int) -> list[GroupHistoryEntry]:
    """Return every stint the student has had in a group (archived groups too), newest first:
    a student taken out and put back has one entry per stint."""
    rows = session.execute(
        select(StudentGroup, StudentGroupMember)
        .join(StudentGroupMember, StudentGroupMember.group_id == StudentGroup.id)
        .where(
            StudentGroup.context_id == context_id,
            StudentGroupMember.context_id == context_id,
            StudentGroupMember.person_id == person_id,
        )
        .order_by(
            StudentGroupMember.added_at.desc(),
            StudentGroup.id.desc(),
            StudentGroupMember.id.desc(),
        )
    ).all()
    return [
        GroupHistoryEntry(
            group_id=group.id,
            name=group.name,
            basis=group.basis,
            created_at=group.created_at,
            archived_at=group.archived_at,
            added_at=member.added_at,
            removed_at=member.removed_at,
        )
        for group, member in rows
    ]


def save_proposal(
    session: Session,
    *,
    context_id: int,
    created_by_id: int,
    groups: Sequence[tuple[str, Sequence[int]]],
    basis: GroupBasis,
    competency_id: int | None = None,
    step_id: int | None = None,
) -> list[StudentGroup]:
    """Save the groups the teacher kept, each with its (possibly edited) name and members.

    A group identical to an active one of the course (same name, same students) is not saved
    twice: a double click, or the same page submitted again, returns the group already saved.
    """
    # One save per course at a time (PostgreSQL row lock; SQLite writes are serialized), so
    # two clicks cannot both miss each other's groups.
    lock_course(session, context_id=context_id)
    existing = {
        # NFC: a name saved decomposed before names were normalised is the same name.
        (nfc(group.name).casefold(), frozenset(current_member_ids(group))): group
        for group in active_groups(session, context_id=context_id)
    }
    saved: list[StudentGroup] = []
    for position, (name, members) in enumerate(groups):
        if not members:
            continue
        wanted = _check_members(session, context_id, members)
        try:
            cleaned = _clean_name(name)
        except InvalidGroupError as err:
            raise InvalidGroupError(str(err), about=err.about, position=position) from err
        same = existing.get((cleaned.casefold(), frozenset(wanted)))
        if same is not None:
            saved.append(same)
            continue
        group = create_group(
            session,
            context_id=context_id,
            name=name,
            person_ids=wanted,
            created_by_id=created_by_id,
            basis=basis,
            competency_id=competency_id,
            step_id=step_id,
        )
        existing[(group.name.casefold(), frozenset(wanted))] = group
        saved.append(group)
    return saved
