"""Change a course's competency framework: create, edit, reorder, archive and unarchive
competencies and set their prerequisites, with the checks and cleaning that keep it valid.
Every query is scoped by the course.

Reading the framework is in queries.py. find_same_competency stays here because it compares
values as the cleaners here would save them.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.competencies.errors import (
    CompetencyCycleError,
    CompetencyError,
    CompetencyNotFoundError,
    InvalidCompetencyError,
)
from lti_app.competencies.graph import MAX_DEPTH, depths, reaches
from lti_app.competencies.models import (
    CODE_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    Competency,
    CompetencyKind,
    CompetencyPrerequisite,
)
from lti_app.competencies.queries import get_competency, parent_map, prerequisite_map
from lti_app.db import utcnow
from lti_app.unicode_text import HALF_CHARACTER, has_half_character, is_blank, nfc


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP
"""Passed as `parent_id` to `edit_competency`: leave the parent as it is (None means top level)."""


NUL_MESSAGE = (
    "the value contains an invisible NUL character (code 0), which cannot be saved; delete it "
    "or retype the value"
)


def _check_no_nul(value: str) -> None:
    # PostgreSQL text cannot hold NUL at all; SQLite would keep it. Refuse it on both, plainly,
    # instead of a database error (or a value that differs between databases).
    if "\x00" in value:
        raise InvalidCompetencyError(NUL_MESSAGE)
    if has_half_character(value):
        # No database (nor page) can encode it: the save would fail on Python's codec error.
        raise InvalidCompetencyError(f"the value {HALF_CHARACTER}")


def clean_code(code: str) -> str:
    """Return the code stripped and in NFC, or raise InvalidCompetencyError if it cannot be a
    code."""
    code = nfc(code.strip())
    _check_no_nul(code)
    if is_blank(code):
        raise InvalidCompetencyError("a code is required", field="code")
    if len(code) > CODE_MAX_LENGTH:
        raise InvalidCompetencyError(
            f"a code has at most {CODE_MAX_LENGTH} characters", field="code"
        )
    if ";" in code:
        # CSV files separate prerequisite codes with semicolons.
        raise InvalidCompetencyError("a code cannot contain ';'", field="code")
    return code


def clean_title(title: str) -> str:
    """Return the title stripped and in NFC, or raise InvalidCompetencyError."""
    title = nfc(title.strip())
    _check_no_nul(title)
    if is_blank(title):
        raise InvalidCompetencyError("a title is required", field="title")
    if len(title) > TITLE_MAX_LENGTH:
        raise InvalidCompetencyError(
            f"a title has at most {TITLE_MAX_LENGTH} characters", field="title"
        )
    return title


def clean_description(description: str) -> str:
    """Return the description stripped and in NFC, or raise InvalidCompetencyError."""
    description = nfc(description.strip())
    _check_no_nul(description)
    return description


def _check_code_free(
    session: Session, *, context_id: int, code: str, competency_id: int | None = None
) -> None:
    if find_by_code(session, context_id=context_id, code=code, but=competency_id) is not None:
        raise InvalidCompetencyError(
            f"the code {code!r} is already used in this course", field="code"
        )


def find_by_code(
    session: Session, *, context_id: int, code: str, but: int | None = None
) -> Competency | None:
    """The course's competency with this (cleaned) code, however its stored code is composed.

    A code saved before codes were normalised may be stored decomposed (NFD); it is still the
    same code, so it is compared in NFC rather than rewritten by a migration.
    """
    query = select(Competency.id, Competency.code).where(Competency.context_id == context_id)
    if but is not None:
        query = query.where(Competency.id != but)
    # Every code of the course, not only the equal one: NFC even turns a few non-ASCII codes
    # (the Kelvin sign) into ASCII ones. A course has a few hundred at most.
    codes = session.execute(query).all()
    # The exact code first: a course may already hold one code in both forms.
    for competency_id, stored in sorted(codes, key=lambda row: row[1] != code):
        if nfc(stored) == code:
            return session.get(Competency, competency_id)
    return None


def _check_parent(
    session: Session, *, context_id: int, competency_id: int | None, parent_id: int | None
) -> None:
    if parent_id is None:
        return
    parent = get_competency(session, context_id=context_id, competency_id=parent_id)
    if parent.is_archived:
        raise InvalidCompetencyError("the parent competency is archived")
    parents = parent_map(session, context_id=context_id)
    if competency_id is not None:
        graph = {cid: [pid] if pid is not None else [] for cid, pid in parents.items()}
        if reaches(graph, parent_id, competency_id):
            raise CompetencyCycleError(
                "a competency cannot be placed under itself or its descendants"
            )
        parents[competency_id] = parent_id
    else:
        parents[0] = parent_id  # the new competency (ids start at 1)
    if max(depths(parents).values(), default=0) > MAX_DEPTH:
        raise InvalidCompetencyError(f"a framework goes at most {MAX_DEPTH} levels deep")


def _next_position(session: Session, *, context_id: int, parent_id: int | None) -> int:
    query = select(func.max(Competency.position)).where(Competency.context_id == context_id)
    query = query.where(
        Competency.parent_id.is_(None) if parent_id is None else Competency.parent_id == parent_id
    )
    highest = session.scalar(query)
    return 0 if highest is None else highest + 1


def create_competency(
    session: Session,
    *,
    context_id: int,
    code: str,
    title: str,
    description: str = "",
    parent_id: int | None = None,
    kind: CompetencyKind = CompetencyKind.ACADEMIC,
    prerequisite_ids: Iterable[int] = (),
) -> Competency:
    """Add a competency at the end of its siblings."""
    code = clean_code(code)
    _check_code_free(session, context_id=context_id, code=code)
    _check_parent(session, context_id=context_id, competency_id=None, parent_id=parent_id)
    competency = Competency(
        context_id=context_id,
        code=code,
        title=clean_title(title),
        description=clean_description(description),
        parent_id=parent_id,
        kind=kind,
        position=_next_position(session, context_id=context_id, parent_id=parent_id),
    )
    session.add(competency)
    session.flush()
    prerequisite_ids = list(prerequisite_ids)
    if prerequisite_ids:
        set_prerequisites(
            session,
            context_id=context_id,
            competency_id=competency.id,
            prerequisite_ids=prerequisite_ids,
        )
    return competency


def edit_competency(
    session: Session,
    *,
    context_id: int,
    competency_id: int,
    code: str | None = None,
    title: str | None = None,
    description: str | None = None,
    kind: CompetencyKind | None = None,
    parent_id: int | _Keep | None = KEEP,
) -> Competency:
    """Change what is given (None and KEEP leave a value alone); a new parent puts it last."""
    competency = get_competency(session, context_id=context_id, competency_id=competency_id)
    if code is not None:
        code = clean_code(code)
        _check_code_free(session, context_id=context_id, code=code, competency_id=competency_id)
        competency.code = code
    if title is not None:
        competency.title = clean_title(title)
    if description is not None:
        competency.description = clean_description(description)
    if kind is not None:
        competency.kind = kind
    if not isinstance(parent_id, _Keep) and parent_id != competency.parent_id:
        _check_parent(
            session, context_id=context_id, competency_id=competency_id, parent_id=parent_id
        )
        competency.position = _next_position(session, context_id=context_id, parent_id=parent_id)
        competency.parent_id = parent_id
    session.flush()
    return competency


def set_prerequisites(
    session: Session, *, context_id: int, competency_id: int, prerequisite_ids: Iterable[int]
) -> None:
    """Replace a competency's prerequisites; raise CompetencyCycleError on a cycle."""
    get_competency(session, context_id=context_id, competency_id=competency_id)
    wanted = set(prerequisite_ids)
    for prerequisite_id in wanted:
        get_competency(session, context_id=context_id, competency_id=prerequisite_id)
    graph = prerequisite_map(session, context_id=context_id)
    graph[competency_id] = wanted
    if any(reaches(graph, p, competency_id) for p in wanted):
        raise CompetencyCycleError("a competency cannot (even indirectly) require itself")
    existing = {
        row.prerequisite_id: row
        for row in session.scalars(
            select(CompetencyPrerequisite).where(
                CompetencyPrerequisite.context_id == context_id,
                CompetencyPrerequisite.competency_id == competency_id,
            )
        )
    }
    for prerequisite_id, row in existing.items():
        if prerequisite_id not in wanted:
            session.delete(row)
    for prerequisite_id in wanted - existing.keys():
        session.add(
            CompetencyPrerequisite(
                context_id=context_id,
                competency_id=competency_id,
                prerequisite_id=prerequisite_id,
            )
        )
    session.flush()


def reorder_competencies(
    session: Session, *, context_id: int, parent_id: int | None, ordered_ids: Sequence[int]
) -> None:
    """Put these siblings first, in this order; siblings not listed keep their order after them."""
    query = select(Competency).where(Competency.context_id == context_id)
    query = query.where(
        Competency.parent_id.is_(None) if parent_id is None else Competency.parent_id == parent_id
    )
    siblings = session.scalars(query.order_by(Competency.position, Competency.id)).all()
    by_id = {c.id: c for c in siblings}
    if len(set(ordered_ids)) != len(ordered_ids):
        raise InvalidCompetencyError("a competency is listed twice")
    for competency_id in ordered_ids:
        if competency_id not in by_id:
            # Not a sibling here: either another course's id or another parent's child.
            raise CompetencyNotFoundError(competency_id)
    listed = set(ordered_ids)
    order = [by_id[i] for i in ordered_ids] + [c for c in siblings if c.id not in listed]
    for position, competency in enumerate(order):
        if competency.position != position:
            competency.position = position
    session.flush()


def _subtree(session: Session, *, context_id: int, root_id: int) -> list[Competency]:
    parents = parent_map(session, context_id=context_id)
    children: dict[int | None, list[int]] = defaultdict(list)
    for competency_id, parent_id in parents.items():
        children[parent_id].append(competency_id)
    ids, todo = [], [root_id]
    while todo:
        current = todo.pop()
        ids.append(current)
        todo.extend(children[current])
    return list(
        session.scalars(
            select(Competency).where(Competency.context_id == context_id, Competency.id.in_(ids))
        )
    )


def archive_competency(session: Session, *, context_id: int, competency_id: int) -> Competency:
    """Hide a competency and its descendants from the framework; evidence stays."""
    competency = get_competency(session, context_id=context_id, competency_id=competency_id)
    now = utcnow()
    for member in _subtree(session, context_id=context_id, root_id=competency_id):
        if member.archived_at is None:
            member.archived_at = now
    session.flush()
    return competency


def unarchive_competency(session: Session, *, context_id: int, competency_id: int) -> Competency:
    """Bring back a competency and the descendants archived with it; its parent must not be
    archived.

    A sub-competency archived on its own before its parent stays archived: the teacher retired
    it separately and restores it separately.
    """
    competency = get_competency(session, context_id=context_id, competency_id=competency_id)
    if competency.parent_id is not None:
        parent = get_competency(session, context_id=context_id, competency_id=competency.parent_id)
        if parent.is_archived:
            raise CompetencyError("unarchive the parent competency first")
    archived_at = competency.archived_at
    if archived_at is None:
        return competency
    members = {m.id: m for m in _subtree(session, context_id=context_id, root_id=competency_id)}
    # Archiving stamps a whole subtree with one time; a descendant with another stamp (or under
    # one) was archived before, on its own.
    restore = [competency_id]
    todo = [competency_id]
    while todo:
        current = todo.pop()
        for member in members.values():
            if member.parent_id == current and member.archived_at == archived_at:
                restore.append(member.id)
                todo.append(member.id)
    for member_id in restore:
        members[member_id].archived_at = None
    session.flush()
    return competency


def find_same_competency(
    session: Session,
    *,
    context_id: int,
    code: str,
    title: str,
    description: str,
    kind: CompetencyKind,
    parent_id: int | None,
    prerequisite_ids: Iterable[int],
) -> Competency | None:
    """Return the course's unarchived competency that is exactly this one, if there is one.

    The values are compared as cleaned; a value that cannot be cleaned matches nothing.
    """
    try:
        code, title = clean_code(code), clean_title(title)
        description = clean_description(description)
    except InvalidCompetencyError:
        return None
    found = find_by_code(session, context_id=context_id, code=code)
    if (
        found is None
        or found.is_archived
        or (nfc(found.title), nfc(found.description), found.kind, found.parent_id)
        != (title, description, kind, parent_id)
    ):
        return None
    have = prerequisite_map(session, context_id=context_id).get(found.id, set())
    return found if have == set(prerequisite_ids) else None
