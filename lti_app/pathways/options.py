"""Authoring a step's options: create, change, order, archive and restore them.

Every function takes the course (context_id) and finds rows only inside it, so an id from
another course is simply not found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.learners.vocab import (
    CareerCluster,
    Modality,
    clean_tags,
    parse_career_clusters,
)
from lti_app.pathways.authoring import clean_title, just_made, lock_parent, lock_row, reorder
from lti_app.pathways.editing import check_page, option_values
from lti_app.pathways.errors import OptionNotFoundError, PathwayInUseError, StepNotFoundError
from lti_app.pathways.models import Attempt, ChallengeLevel, Choice, Option, Step
from lti_app.pathways.services import get_step
from lti_app.pathways.text import clean_html, clean_links

MAX_EXPECTED_MINUTES = 100_000


@dataclass(frozen=True)
class OptionInput:
    """Everything a teacher sets on an option; used to create and to replace one."""

    title: str
    modality: Modality | str = Modality.ONLINE
    description: str = ""
    links: Sequence[Mapping[str, str]] = ()
    interest_tags: Sequence[str] = ()
    career_clusters: Sequence[CareerCluster | str] = ()
    challenge: int = ChallengeLevel.CORE
    expected_minutes: int | None = None
    requires_approval: bool = False


def create_option(
    session: Session, *, context_id: int, step_id: int, data: OptionInput, once: bool = False
) -> Option:
    """Add an option at the end of a step.

    :param once: return the same option added a moment ago (a double click on Save) instead of
        adding it again.
    """
    lock_parent(session, Step, context_id, step_id, StepNotFoundError)
    last = session.scalar(select(func.max(Option.position)).where(Option.step_id == step_id))
    option = Option(
        context_id=context_id, step_id=step_id, position=0 if last is None else last + 1
    )
    _apply_option_input(option, data)
    for twin in just_made(
        session,
        once,
        Option,
        Option.step_id == step_id,
        Option.title == option.title,
        Option.description == option.description,
    ):
        if all(getattr(twin, field) == getattr(option, field) for field in _OPTION_FIELDS):
            return twin
    session.add(option)
    session.flush()
    return option


def update_option(
    session: Session,
    *,
    context_id: int,
    option_id: int,
    data: OptionInput,
    shown: str | None = None,
) -> Option:
    """Replace everything a teacher sets on an option.

    :param shown: what the editor's page showed (lti_app.page_edits); None: save as asked.
    :raises StalePageError: someone else changed it since, and this save would undo that.
    """
    option = lock_row(
        session,
        Option,
        context_id,
        option_id,
        OptionNotFoundError("That option does not exist in this course."),
    )
    typed = Option()  # never added to the session: the values as they would be stored
    _apply_option_input(typed, data)
    check_page(option_values(typed), option_values(option), shown)
    _apply_option_input(option, data)
    session.flush()
    return option


def get_option(session: Session, *, context_id: int, option_id: int) -> Option:
    """Return an option of the course.

    :raises OptionNotFoundError: no such option in this course.
    """
    option = session.scalars(
        select(Option).where(Option.id == option_id, Option.context_id == context_id)
    ).one_or_none()
    if option is None:
        raise OptionNotFoundError("That option does not exist in this course.")
    return option


def list_options(
    session: Session, *, context_id: int, step_id: int, include_archived: bool = False
) -> list[Option]:
    """Return a step's options in their order."""
    query = select(Option).where(Option.context_id == context_id, Option.step_id == step_id)
    if not include_archived:
        query = query.where(Option.archived_at.is_(None))
    return list(session.scalars(query.order_by(Option.position, Option.id)))


def reorder_options(
    session: Session, *, context_id: int, step_id: int, option_ids: Sequence[int]
) -> None:
    """Put the named options first, in the given order; the others follow as they were."""
    get_step(session, context_id=context_id, step_id=step_id)
    rows = list_options(session, context_id=context_id, step_id=step_id, include_archived=True)
    reorder(rows, option_ids, OptionNotFoundError("That option is not in this step."))
    session.flush()


def archive_option(session: Session, *, context_id: int, option_id: int) -> Option:
    """Stop offering an option; students who chose it keep their choice."""
    option = get_option(session, context_id=context_id, option_id=option_id)
    option.archived_at = option.archived_at or utcnow()
    session.flush()
    return option


def restore_option(session: Session, *, context_id: int, option_id: int) -> Option:
    """Offer an archived option again."""
    option = get_option(session, context_id=context_id, option_id=option_id)
    option.archived_at = None
    session.flush()
    return option


def delete_option(session: Session, *, context_id: int, option_id: int) -> None:
    """Delete an option nobody has chosen.

    :raises PathwayInUseError: students have chosen it; archive it instead.
    """
    option = get_option(session, context_id=context_id, option_id=option_id)
    # An earlier try (pathways.attempts) counts too: its student's work on it stays.
    if session.scalar(select(exists().where(Choice.option_id == option.id))) or session.scalar(
        select(exists().where(Attempt.option_id == option.id))
    ):
        raise PathwayInUseError("Students have chosen this option; archive it instead.")
    session.delete(option)
    session.flush()


# --- helpers ----------------------------------------------------------------------------------


_OPTION_FIELDS = (
    "links",
    "modality",
    "interest_tags",
    "career_clusters",
    "challenge",
    "expected_minutes",
    "requires_approval",
)


def _apply_option_input(option: Option, data: OptionInput) -> None:
    try:
        modality = Modality(data.modality)
    except ValueError:
        raise ValueError(f"“{data.modality}” is not a known kind of option.") from None
    if data.challenge not in ChallengeLevel._value2member_map_:
        raise ValueError("Choose a challenge level from 1 to 3.")
    minutes = data.expected_minutes
    if minutes is not None and not 0 < minutes <= MAX_EXPECTED_MINUTES:
        raise ValueError("Expected time must be a positive number of minutes.")
    option.title = clean_title(data.title)
    option.description = clean_html(data.description)
    option.links = clean_links(data.links)
    option.modality = modality
    option.interest_tags = clean_tags(data.interest_tags)
    option.career_clusters = parse_career_clusters(data.career_clusters)
    option.challenge = int(data.challenge)
    option.expected_minutes = minutes
    option.requires_approval = data.requires_approval
