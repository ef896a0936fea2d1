"""Storing the LMS's roster (NRPS), called by `roster.jobs.sync_roster` in one short
transaction each: `apply_members` for each page, then `deactivate_missing`. The sync's lease
and outcome are kept by `roster.sync_lease`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from lti_app.db import upsert_insert, utcnow
from lti_app.grades.services import requeue_current
from lti_app.roster.client import Member
from lti_app.tool.launch_membership import is_moodle_roster_url
from lti_app.tool.models import Membership, MembershipStatus, Person
from lti_app.tool.roles import (
    CourseRole,
    context_role_names,
    course_role,
    is_lms_admin,
    is_preview,
)

STATUS_FROM_LMS = {
    "active": MembershipStatus.ACTIVE,
    "inactive": MembershipStatus.INACTIVE,
    "deleted": MembershipStatus.DELETED,
}


PERSON_FIELDS = {"name": 1024, "given_name": 512, "family_name": 512, "email": 512, "picture": 2048}
NAME_FIELDS = frozenset({"name", "given_name", "family_name"})
"""Kept when the roster leaves them out, so the class list still names everyone."""


def _apply_person(person: Person, member: Member) -> None:
    for field, limit in PERSON_FIELDS.items():
        value = getattr(member, field)
        if value is None:
            if field in NAME_FIELDS:
                continue
            # A withheld email or picture (the LMS's privacy settings) clears what an earlier
            # launch or roster told us, as a launch without the claim does: a student who
            # never launches again would otherwise keep them for ever.
            value = ""
        if getattr(person, field) != value[:limit]:
            setattr(person, field, value[:limit])


# Rows per statement. A multi-row INSERT binds every column of every row (about ten for a
# person, defaults included), and PostgreSQL takes at most 65,535 parameters a statement:
# Moodle sends a whole course in one page, so a 10,000-member course failed every sync.
CHUNK = 1000


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    items = list(items)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _insert_missing(session: Session, model: Any, keys: list[dict[str, Any]]) -> None:
    """Insert rows by their unique key, skipping any another transaction inserted first."""
    for chunk in _chunks(keys):
        session.execute(
            upsert_insert(session, model)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=list(chunk[0]))
        )


def _people(session: Session, platform_id: int, subs: Iterable[str]) -> dict[str, Person]:
    people: dict[str, Person] = {}
    for chunk in _chunks(subs):
        found = session.scalars(
            select(Person).where(Person.platform_id == platform_id, Person.sub.in_(chunk))
        )
        people.update((p.sub, p) for p in found)
    return people


def _memberships(
    session: Session, context_id: int, person_ids: Iterable[int]
) -> dict[int, Membership]:
    memberships: dict[int, Membership] = {}
    for chunk in _chunks(person_ids):
        found = session.scalars(
            select(Membership).where(
                Membership.context_id == context_id, Membership.person_id.in_(chunk)
            )
        )
        memberships.update((m.person_id, m) for m in found)
    return memberships


def roster_understates_teaching(nrps_url: str) -> bool:
    """Whether this roster service lists some of the course's teachers as learners.

    Moodle's (ltiservice_memberships, `…/bindings/{tool}/memberships`) decides Instructor by
    moodle/course:manageactivities, which only editing teachers and managers hold, while
    its launches decide it by mod/lti:manage, which non-editing teachers hold too
    (mod/lti/locallib.php lti_get_ims_role, with and without a course module). Its roster
    therefore calls every non-editing teacher a Learner, sync after sync.
    """
    return is_moodle_roster_url(nrps_url)


def apply_members(
    session: Session,
    *,
    platform_id: int,
    context_id: int,
    members: Sequence[Member],
    keep_launched_teachers: bool = False,
) -> set[int]:
    """Upsert people and memberships as the LMS sent them; return the person ids seen.

    With `keep_launched_teachers` (a roster that understates teaching), a person whose
    launches made them a teacher keeps that role when the roster lists them without one:
    their next launch, not the roster, says whether they still teach (a learner's launch of a
    listed teacher is only a look at the student pages, so then the roster decides).

    A membership the roster lists for the first time is stamped `first_listed_at`
    (deactivate_missing ends only teachers a roster has listed).

    Three queries and one flush for a page of known members, whatever its size; new members
    add an insert and a read for people and for memberships. Learners the page makes active
    again have their current levels queued for the LMS once more (one query and an insert).
    """
    by_sub = {m.user_id[:255]: m for m in members}
    if not by_sub:
        return set()
    # New rows go in with ON CONFLICT DO NOTHING: a student's launch may insert the same
    # person or membership at the same moment (a class launching while the teacher's launch
    # syncs the roster), and a plain INSERT would then fail the whole page.
    people = _people(session, platform_id, by_sub)
    missing_people = by_sub.keys() - people.keys()
    if missing_people:
        _insert_missing(
            session, Person, [{"platform_id": platform_id, "sub": sub} for sub in missing_people]
        )
        people.update(_people(session, platform_id, missing_people))
    for sub, member in by_sub.items():
        _apply_person(people[sub], member)
    session.flush()
    ids = {p.id: by_sub[sub] for sub, p in people.items()}
    memberships = _memberships(session, context_id, ids)
    missing_members = ids.keys() - memberships.keys()
    if missing_members:
        _insert_missing(
            session,
            Membership,
            [{"context_id": context_id, "person_id": pid} for pid in missing_members],
        )
        memberships.update(_memberships(session, context_id, missing_members))
    returning: list[int] = []
    listed_at = utcnow()
    for person_id, member in ids.items():
        row = memberships[person_id]
        if row.first_listed_at is None:
            row.first_listed_at = listed_at
        was_away = person_id not in missing_members and not row.counts_for_grades
        roles = list(member.roles)
        status = STATUS_FROM_LMS.get(member.status.lower(), MembershipStatus.ACTIVE)
        is_teacher = course_role(roles) is CourseRole.TEACHER
        is_learner = "Learner" in context_role_names(roles)
        preview = is_preview(roles)
        if row.status != status:
            row.status = status
        # A teacher looking at the student pages (tool.launch_membership: their last launch
        # was a learner's) has no launch vouching for the teaching: a roster that lists them
        # as a learner too is a demotion, Moodle's included.
        launch_says_teaching = row.is_teacher and row.last_launch_at and not row.is_preview
        if not (keep_launched_teachers and launch_says_teaching and not is_teacher):
            if row.roles != roles:
                row.roles = roles
            if row.is_teacher != is_teacher:
                row.is_teacher = is_teacher
            if row.is_learner != is_learner:
                row.is_learner = is_learner
            if row.is_preview != preview:
                row.is_preview = preview
        if was_away and row.counts_for_grades:
            returning.append(person_id)
    session.flush()
    if returning:
        # The grade worker skips scores of people not active learners here (grades.claiming):
        # a level that changed while they were away must be sent now that they are back.
        requeue_current(session, context_id=context_id, person_ids=returning)
    return set(ids)


def _is_student(member: Member) -> bool:
    return "Learner" in context_role_names(member.roles) and not is_preview(member.roles)


def listed_students(members: Iterable[Member]) -> set[str]:
    """The LMS user ids of the class's students among these members (what the Students page
    counts: its preview student, Canvas's Test Student, is not one, nor is a teacher)."""
    return {m.user_id[:255] for m in members if _is_student(m)}


def lists_teachers(members: Iterable[Member]) -> bool:
    """Whether these members include someone who teaches the course."""
    return any(course_role(m.roles) is CourseRole.TEACHER for m in members)


def has_active_learners(session: Session, *, context_id: int) -> bool:
    """Whether the course has a learner still active here (its preview student aside)."""
    return (
        session.scalar(
            select(Membership.id)
            .where(
                Membership.context_id == context_id,
                Membership.status == MembershipStatus.ACTIVE,
                Membership.is_learner.is_(True),
                Membership.is_preview.is_(False),
            )
            .limit(1)
        )
        is not None
    )


@dataclass(frozen=True)
class Deactivated:
    """Who a full sync marked inactive because the LMS no longer lists them."""

    students: int = 0
    """As the Students page counts them (the LMS's preview student is not one)."""
    teachers: int = 0


def deactivate_missing(
    session: Session,
    *,
    context_id: int,
    seen_person_ids: set[int],
    listed_since: datetime,
    teachers: bool,
    started_by: int | None = None,
) -> Deactivated:
    """Mark active learners, and with `teachers` teachers a roster has listed before, the full
    roster did not list as inactive (their data stays). Other members (mentors,
    administrators) are left alone.

    A teacher no roster has ever listed is known from launches only, and their launches are
    the LMS's word: Moodle launches a teacher given the role on a whole category (not
    enrolled, no administrator role) as Instructor, but its roster lists enrolments only.
    Ended by every sync they did not start, they would lose the page they are working on.

    Someone who launched after `listed_since` (when the sync began asking the LMS) may have
    been enrolled after the LMS answered: their launch vouches for them, the roster does not.
    So does the launch or Refresh of `started_by`, the person whose action started this
    sync: a teacher who just opened the course is not ended by the sync their opening began.
    A teacher whose launches carry an LMS administrator role keeps teaching too: an
    administrator may teach a course without being enrolled (Moodle's site admins launch as
    Instructor), and a roster lists enrolments only.
    """
    launched_before = or_(
        Membership.last_launch_at.is_(None), Membership.last_launch_at < listed_since
    )
    active = (
        Membership.context_id == context_id,
        Membership.status == MembershipStatus.ACTIVE,
        launched_before,
    )
    learner_rows = session.execute(
        select(Membership.person_id, Membership.is_preview).where(
            *active, Membership.is_learner.is_(True)
        )
    )
    missing_learners = {pid: preview for pid, preview in learner_rows if pid not in seen_person_ids}
    missing_teachers: set[int] = set()
    if teachers:
        teacher_rows = session.execute(
            select(Membership.person_id, Membership.roles).where(
                *active,
                Membership.is_teacher.is_(True),
                Membership.is_learner.is_(False),
                Membership.first_listed_at.is_not(None),
            )
        )
        missing_teachers = {
            pid
            for pid, roles in teacher_rows
            if pid not in seen_person_ids and not is_lms_admin(roles or [])
        }
    if started_by is not None:
        missing_learners.pop(started_by, None)
        missing_teachers.discard(started_by)
    missing = sorted(missing_learners.keys() | missing_teachers)
    for start in range(0, len(missing), 500):
        session.execute(
            update(Membership)
            .where(
                Membership.context_id == context_id,
                Membership.person_id.in_(missing[start : start + 500]),
                # Again here: on PostgreSQL a launch holding the row makes this wait, and the
                # waiting UPDATE re-checks only its own conditions against what it committed.
                Membership.status == MembershipStatus.ACTIVE,
                launched_before,
            )
            .values(status=MembershipStatus.INACTIVE, updated_at=utcnow())
        )
    return Deactivated(
        students=sum(1 for preview in missing_learners.values() if not preview),
        teachers=len(missing_teachers),
    )
