"""What authoring pathways, steps and options shares (`services` for pathways, `steps` for
steps, `options` for options): finding a pathway, a title's rules, the order of a list, the
competencies a row links to, and a double click making one row, not two."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import timedelta
from typing import Protocol, TypeVar

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from lti_app.competencies.models import Competency
from lti_app.db import utcnow
from lti_app.learners.vocab import strip_control_characters
from lti_app.pathways.errors import PathwayNotFoundError
from lti_app.pathways.models import (
    TITLE_MAX_LENGTH,
    Option,
    Pathway,
    PathwayCompetency,
    Step,
    StepPrerequisite,
)
from lti_app.unicode_text import is_blank, nfc


class _Positioned(Protocol):
    id: int
    position: int


_P = TypeVar("_P", bound=_Positioned)


DOUBLE_SUBMIT = timedelta(seconds=30)
"""How soon after a creation an identical one counts as the same click again."""

_M = TypeVar("_M", Pathway, Step, Option)


def just_made(
    session: Session, once: bool, model: type[_M], *where: ColumnElement[bool]
) -> list[_M]:
    """Rows like these created in the last DOUBLE_SUBMIT, newest first (not archived ones);
    none unless `once` asks for them."""
    if not once:
        return []
    return list(
        session.scalars(
            select(model)
            .where(
                *where,
                model.archived_at.is_(None),
                model.created_at >= utcnow() - DOUBLE_SUBMIT,
            )
            .order_by(model.id.desc())
        )
    )


def lock_parent(
    session: Session,
    model: type[Pathway] | type[Step],
    context_id: int,
    row_id: int,
    error: type[PathwayNotFoundError],
) -> None:
    """Lock the parent until the transaction ends (PostgreSQL), so the two requests of a double
    click add children one after the other, and the second finds the first's."""
    found = session.scalar(
        select(model.id).where(model.id == row_id, model.context_id == context_id).with_for_update()
    )
    if found is None:
        raise error(
            f"That {'pathway' if model is Pathway else 'step'} does not exist in this course."
        )


def lock_row(
    session: Session,
    model: type[_M],
    context_id: int,
    row_id: int,
    not_found: PathwayNotFoundError,
) -> _M:
    """The row, read afresh and locked until the transaction ends (PostgreSQL), so that two
    saves of it run one after the other and each compares the page with what the other saved."""
    row = session.scalars(
        select(model)
        .where(model.id == row_id, model.context_id == context_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        raise not_found
    return row


def reorder(rows: list[_P], ids: Sequence[int], not_found: LookupError) -> None:
    by_id = {r.id: r for r in rows}
    if any(i not in by_id for i in ids):
        raise not_found
    named = list(dict.fromkeys(ids))
    ordered = [by_id[i] for i in named] + [r for r in rows if r.id not in set(named)]
    for position, row in enumerate(ordered):
        row.position = position


def clean_title(value: str) -> str:
    value = nfc(" ".join(strip_control_characters(value).split()))
    if is_blank(value):  # zero-width spaces and the like alone show nothing
        raise ValueError("Give it a title.")
    if len(value) > TITLE_MAX_LENGTH:
        raise ValueError(f"Keep the title under {TITLE_MAX_LENGTH} characters.")
    return value


def get_pathway(session: Session, *, context_id: int, pathway_id: int) -> Pathway:
    """Return a pathway of the course, archived or not.

    :raises PathwayNotFoundError: no such pathway in this course.
    """
    pathway = session.scalars(
        select(Pathway).where(Pathway.id == pathway_id, Pathway.context_id == context_id)
    ).one_or_none()
    if pathway is None:
        raise PathwayNotFoundError("That pathway does not exist in this course.")
    return pathway


def check_competencies(session: Session, context_id: int, ids: Iterable[int]) -> list[int]:
    """Return the ids once each, in order, refusing any that is not the course's."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = set(
        session.scalars(
            select(Competency.id).where(
                Competency.id.in_(wanted), Competency.context_id == context_id
            )
        )
    )
    if len(found) != len(wanted):
        raise ValueError("Some of those competencies are not part of this course.")
    return wanted


def write_links(
    session: Session,
    link: type[PathwayCompetency] | type[StepPrerequisite],
    owner: InstrumentedAttribute[int],
    owner_id: int,
    *,
    have: Collection[int],
    wanted: Collection[int],
) -> None:
    """Make a pathway's competencies (or a step's prerequisites) `wanted`, from `have`, both
    already read and checked by the caller. Only the difference is written: rows that stay
    are not deleted and inserted again (two saves at once would collide on them)."""
    gone = set(have) - set(wanted)
    if gone:
        session.execute(delete(link).where(owner == owner_id, link.competency_id.in_(gone)))
    session.add_all(
        link(**{owner.key: owner_id, "competency_id": c}) for c in sorted(set(wanted) - set(have))
    )
    session.flush()
