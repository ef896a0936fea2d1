"""Load the class dashboard in a fixed number of queries, and keep flexible groups.

Everything takes a database session and the course's context id, and never imports Flask.
See the package docstring for the group API other pages use.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.competencies.services import get_competency, list_competencies
from lti_app.db import lock_course, utcnow
from lti_app.insights.grid import Cell, GridRow
from lti_app.insights.grouping import (
    ProposedGroup,
    ScaleLevel,
    StudentAtLevel,
    StudentAtStep,
    propose_by_competency,
    propose_by_step,
    step_progress,
)
from lti_app.insights.models import (
    GROUP_NAME_LENGTH,
    GroupBasis,
    StudentGroup,
    StudentGroupMember,
)
from lti_app.mastery.models import StudentCompetencyLevel
from lti_app.mastery.services import get_or_create_scale, levels_for_course
from lti_app.pathways.models import Choice, ChoiceStatus, Pathway, Step, StepPrerequisite
from lti_app.pathways.unlocking import manual_unlock_ids_by_person, step_rules
from lti_app.roster.services import Student, list_students, student_ids_in_course

ACTIVE_CHOICE = (
    ChoiceStatus.CHOSEN,
    ChoiceStatus.APPROVED,
    ChoiceStatus.IN_PROGRESS,
    ChoiceStatus.SUBMITTED,
    ChoiceStatus.RETURNED,
)


class GroupNotFoundError(LookupError):
    """No such group in this course."""


class InvalidGroupError(ValueError):
    """A group name or member list that cannot be saved; the message says why."""


@dataclass(frozen=True)
class StepRef:
    """A step of an open pathway, numbered within its pathway."""

    id: int
    pathway_id: int
    pathway_title: str
    title: str
    number: int
    competency_id: int | None

    @property
    def label(self) -> str:
        return f"{self.pathway_title}: step {self.number}, {self.title}"


@dataclass(frozen=True)
class Dashboard:
    """Everything the class dashboard shows, before filtering."""

    levels: tuple[ScaleLevel, ...]
    competencies: tuple[Competency, ...]
    rows: tuple[GridRow, ...]
    steps: tuple[StepRef, ...]
    groups: tuple[StudentGroup, ...]


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


# --- Dashboard ---------------------------------------------------------------------------


def scale_levels(session: Session, *, context_id: int) -> tuple[ScaleLevel, ...]:
    """The course's scale as plain values, lowest level first."""
    scale = get_or_create_scale(session, context_id=context_id)
    return tuple(
        ScaleLevel(lv.name, lv.points, lv.colour, lv.position, lv.is_mastery)
        for lv in sorted(scale.levels, key=lambda lv: (lv.points, lv.position))
    )


def list_steps(session: Session, *, context_id: int) -> list[StepRef]:
    """Every step of the course's open pathways, in pathway and step order, in one query."""
    rows = session.execute(
        select(Step, Pathway.title)
        .join(Pathway, Pathway.id == Step.pathway_id)
        .where(
            Step.context_id == context_id,
            Pathway.context_id == context_id,
            Step.archived_at.is_(None),
            Pathway.archived_at.is_(None),
        )
        .order_by(Pathway.position, Pathway.id, Step.position, Step.id)
    ).all()
    numbers: dict[int, int] = defaultdict(int)
    refs: list[StepRef] = []
    for step, pathway_title in rows:
        numbers[step.pathway_id] += 1
        refs.append(
            StepRef(
                step.id,
                step.pathway_id,
                pathway_title,
                step.title,
                numbers[step.pathway_id],
                step.competency_id,
            )
        )
    return refs


def _current_steps(session: Session, context_id: int) -> dict[int, set[int]]:
    rows = session.execute(
        select(Choice.person_id, Choice.step_id).where(
            Choice.context_id == context_id, Choice.status.in_(ACTIVE_CHOICE)
        )
    )
    result: dict[int, set[int]] = defaultdict(set)
    for person_id, step_id in rows:
        result[person_id].add(step_id)
    return result


def _current_group_ids(session: Session, context_id: int) -> dict[int, set[int]]:
    rows = session.execute(
        select(StudentGroupMember.person_id, StudentGroupMember.group_id)
        .join(StudentGroup, StudentGroup.id == StudentGroupMember.group_id)
        .where(
            StudentGroupMember.context_id == context_id,
            StudentGroup.context_id == context_id,
            StudentGroup.archived_at.is_(None),
            StudentGroupMember.removed_at.is_(None),
        )
    )
    result: dict[int, set[int]] = defaultdict(set)
    for person_id, group_id in rows:
        result[person_id].add(group_id)
    return result


def _level_cells(
    session: Session, context_id: int, *, with_dates: bool
) -> dict[int, dict[int, Cell]]:
    """Every stored level of the course in one query, as plain tuples.

    The same rows as mastery.services.levels_for_course, without building 12,000 ORM objects
    (that alone took ~280 ms for 300 x 40); dates only when asked for (the CSV), since
    converting 12,000 timestamps costs another ~15 ms."""
    level = StudentCompetencyLevel
    cells: dict[int, dict[int, Cell]] = defaultdict(dict)
    where = level.context_id == context_id
    # Core execution on the session's connection: the ORM's row loading is most of the cost.
    conn = session.connection()
    if with_dates:
        dated = conn.execute(
            select(
                level.person_id,
                level.competency_id,
                level.level_name,
                level.level_points,
                level.is_mastered,
                level.last_evidence_at,
            ).where(where)
        )
        for pid, cid, name, points, mastered, last_at in dated:
            cells[pid][cid] = Cell(name, points, last_at, mastered)
        return cells
    plain = conn.execute(
        select(
            level.person_id,
            level.competency_id,
            level.level_name,
            level.level_points,
            level.is_mastered,
        ).where(where)
    )
    for pid, cid, name, points, mastered in plain:
        cells[pid][cid] = Cell(name, points, None, mastered)
    return cells


def _last_evidence(session: Session, context_id: int) -> dict[int, datetime]:
    level = StudentCompetencyLevel
    rows = session.execute(
        select(level.person_id, func.max(level.last_evidence_at))
        .where(level.context_id == context_id)
        .group_by(level.person_id)
    )
    return {person_id: last for person_id, last in rows if last is not None}


def load_dashboard(session: Session, *, context_id: int, with_dates: bool = False) -> Dashboard:
    """Load the grid of every student (any roster status) x competency in a fixed number of
    queries; `with_dates` adds each cell's latest evidence date (for the CSV)."""
    levels = scale_levels(session, context_id=context_id)
    competencies = tuple(list_competencies(session, context_id=context_id))
    students = list_students(session, context_id=context_id, include_inactive=True)
    cells = _level_cells(session, context_id, with_dates=with_dates)
    last_evidence = _last_evidence(session, context_id)
    steps = _current_steps(session, context_id)
    group_ids = _current_group_ids(session, context_id)
    rows = tuple(
        GridRow(
            person_id=s.person_id,
            name=s.name,
            sort_key=s.sort_key,
            status=s.status.value,
            last_launch_at=s.last_launch_at,
            last_evidence_at=last_evidence.get(s.person_id),
            cells=cells.get(s.person_id, {}),
            step_ids=frozenset(steps.get(s.person_id, ())),
            group_ids=frozenset(group_ids.get(s.person_id, ())),
        )
        for s in students
    )
    return Dashboard(
        levels=levels,
        competencies=competencies,
        rows=rows,
        steps=tuple(list_steps(session, context_id=context_id)),
        groups=tuple(active_groups(session, context_id=context_id)),
    )


# --- Groups ------------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    # Control characters (a pasted NUL above all, which PostgreSQL cannot store) are dropped.
    name = "".join(ch for ch in name if ch.isspace() or unicodedata.category(ch) != "Cc")
    name = " ".join(name.split())
    if not name:
        raise InvalidGroupError("A group needs a name.")
    if len(name) > GROUP_NAME_LENGTH:
        raise InvalidGroupError(f"A group name has at most {GROUP_NAME_LENGTH} characters.")
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
        raise InvalidGroupError("A group needs at least one student.")
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
    """Rename a group and set its members; removed members keep a dated history row."""
    group = get_group(session, context_id=context_id, group_id=group_id, for_update=True)
    session.refresh(group, ["members"])
    wanted = set(_check_members(session, context_id, person_ids))
    if not wanted:
        raise InvalidGroupError("A group needs at least one student; archive it instead.")
    group.name = _clean_name(name)
    now = utcnow()
    existing = {m.person_id: m for m in group.members}
    for person_id, member in existing.items():
        if person_id in wanted and member.removed_at is not None:
            member.removed_at = None
            member.added_at = now
        elif person_id not in wanted and member.removed_at is None:
            member.removed_at = now
    for person_id in sorted(wanted - existing.keys()):
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
    """Return every group the student has been in (archived ones too), newest first."""
    rows = session.execute(
        select(StudentGroup, StudentGroupMember)
        .join(StudentGroupMember, StudentGroupMember.group_id == StudentGroup.id)
        .where(
            StudentGroup.context_id == context_id,
            StudentGroupMember.context_id == context_id,
            StudentGroupMember.person_id == person_id,
        )
        .order_by(StudentGroupMember.added_at.desc(), StudentGroup.id.desc())
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


# --- Proposals ---------------------------------------------------------------------------


def _active_students(session: Session, context_id: int) -> list[Student]:
    return list_students(session, context_id=context_id)


def propose_for_competency(
    session: Session, *, context_id: int, competency_id: int
) -> list[ProposedGroup]:
    """Propose groups of the course's active students by their level on one competency."""
    competency = get_competency(session, context_id=context_id, competency_id=competency_id)
    levels = scale_levels(session, context_id=context_id)
    points = {
        row.person_id: row.level_points
        for row in levels_for_course(session, context_id=context_id)
        if row.competency_id == competency_id and row.level_name is not None
    }
    students = [
        StudentAtLevel(s.person_id, s.name, points.get(s.person_id))
        for s in _active_students(session, context_id)
    ]
    return propose_by_competency(
        students,
        levels=levels,
        code=competency.code or competency.title,
        next_step_title=_next_step_title(session, context_id, competency_id),
    )


def _next_step_title(session: Session, context_id: int, competency_id: int) -> str | None:
    """The first open step that waits for this competency: where mastering it leads."""
    waiting = set(
        session.scalars(
            select(StepPrerequisite.step_id).where(StepPrerequisite.competency_id == competency_id)
        )
    )
    for ref in list_steps(session, context_id=context_id):
        if ref.id in waiting:
            return f"step {ref.number}: {ref.title}"
    return None


def propose_for_step(session: Session, *, context_id: int, step_id: int) -> list[ProposedGroup]:
    """Propose groups of the course's active students by their place on one step."""
    ref = next((s for s in list_steps(session, context_id=context_id) if s.id == step_id), None)
    if ref is None:
        raise GroupNotFoundError("That step is not in this course.")
    (rule,) = step_rules(session, context_id=context_id, step_ids=[step_id])
    manual = manual_unlock_ids_by_person(session, context_id=context_id, step_id=step_id)
    mastered: dict[int, set[int]] = defaultdict(set)
    for row in levels_for_course(session, context_id=context_id):
        if row.is_mastered:
            mastered[row.person_id].add(row.competency_id)
    statuses = dict(
        session.execute(
            select(Choice.person_id, Choice.status).where(
                Choice.context_id == context_id, Choice.step_id == step_id
            )
        ).all()
    )
    students: list[StudentAtStep] = []
    for student in _active_students(session, context_id):
        missing = tuple(
            c.code or c.title
            for c in rule.prerequisites
            if c.id not in mastered.get(student.person_id, set())
        )
        status = statuses.get(student.person_id)
        progress = step_progress(
            choice_status=status.value if status else None,
            missing=missing,
            manually_unlocked=student.person_id in manual,
        )
        students.append(StudentAtStep(student.person_id, student.name, progress, missing))
    return propose_by_step(students, step_title=ref.title, step_number=ref.number)


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
        (group.name.casefold(), frozenset(current_member_ids(group))): group
        for group in active_groups(session, context_id=context_id)
    }
    saved: list[StudentGroup] = []
    for name, members in groups:
        if not members:
            continue
        wanted = _check_members(session, context_id, members)
        same = existing.get((_clean_name(name).casefold(), frozenset(wanted)))
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
