"""Authoring pathways: create, change, order, archive and copy pathways, steps and options.

Every function takes the course (context_id) and finds rows only inside it, so an id from
another course is simply not found.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, TypeVar

from sqlalchemy import ColumnElement, delete, exists, func, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.db import lock_course, utcnow
from lti_app.learners.vocab import (
    CareerCluster,
    Modality,
    clean_tags,
    parse_career_clusters,
    strip_control_characters,
)
from lti_app.pathways.errors import (
    OptionNotFoundError,
    PathwayInUseError,
    PathwayNotFoundError,
    StepNotFoundError,
)
from lti_app.pathways.models import (
    TITLE_MAX_LENGTH,
    ChallengeLevel,
    Choice,
    Option,
    Pathway,
    PathwayCompetency,
    Step,
    StepPrerequisite,
)
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


# --- pathways ---------------------------------------------------------------------------------


def create_pathway(
    session: Session,
    *,
    context_id: int,
    title: str,
    description: str = "",
    competency_ids: Collection[int] = (),
    once: bool = False,
) -> Pathway:
    """Add a pathway at the end of the course's list, leading to the given competencies.

    :param once: return the same pathway created a moment ago (a double click on Create)
        instead of adding it again.
    """
    title, description = _title(title), clean_html(description)
    wanted = set(_check_competencies(session, context_id, competency_ids))
    if once:
        # Two Create clicks arriving together would each miss the other's new row.
        lock_course(session, context_id=context_id)
    for twin in _just_made(
        session,
        once,
        Pathway,
        Pathway.context_id == context_id,
        Pathway.title == title,
        Pathway.description == description,
    ):
        if (
            set(pathway_competency_ids(session, context_id=context_id, pathway_id=twin.id))
            == wanted
        ):
            return twin
    last = session.scalar(
        select(func.max(Pathway.position)).where(Pathway.context_id == context_id)
    )
    pathway = Pathway(
        context_id=context_id,
        title=title,
        description=description,
        position=0 if last is None else last + 1,
    )
    session.add(pathway)
    session.flush()
    _set_pathway_competencies(session, context_id, pathway.id, competency_ids)
    return pathway


def update_pathway(
    session: Session,
    *,
    context_id: int,
    pathway_id: int,
    title: str,
    description: str,
    competency_ids: Collection[int],
) -> Pathway:
    """Replace a pathway's title, description and the competencies it leads to."""
    pathway = get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    pathway.title = _title(title)
    pathway.description = clean_html(description)
    _set_pathway_competencies(session, context_id, pathway.id, competency_ids)
    session.flush()
    return pathway


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


def list_pathways(
    session: Session, *, context_id: int, include_archived: bool = False
) -> list[Pathway]:
    """Return the course's pathways in their order."""
    query = select(Pathway).where(Pathway.context_id == context_id)
    if not include_archived:
        query = query.where(Pathway.archived_at.is_(None))
    return list(session.scalars(query.order_by(Pathway.position, Pathway.id)))


def pathway_competency_ids(session: Session, *, context_id: int, pathway_id: int) -> list[int]:
    """Return the ids of the competencies a pathway leads to."""
    get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    return list(
        session.scalars(
            select(PathwayCompetency.competency_id)
            .where(PathwayCompetency.pathway_id == pathway_id)
            .order_by(PathwayCompetency.competency_id)
        )
    )


def reorder_pathways(session: Session, *, context_id: int, pathway_ids: Sequence[int]) -> None:
    """Put the named pathways first, in the given order; the others follow as they were."""
    rows = list_pathways(session, context_id=context_id, include_archived=True)
    _reorder(rows, pathway_ids, PathwayNotFoundError("That pathway does not exist in this course."))
    session.flush()


def archive_pathway(session: Session, *, context_id: int, pathway_id: int) -> Pathway:
    """Hide a pathway from students, keeping their choices and work."""
    pathway = get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    pathway.archived_at = pathway.archived_at or utcnow()
    session.flush()
    return pathway


def restore_pathway(session: Session, *, context_id: int, pathway_id: int) -> Pathway:
    """Show an archived pathway again."""
    pathway = get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    pathway.archived_at = None
    session.flush()
    return pathway


def delete_pathway(session: Session, *, context_id: int, pathway_id: int) -> None:
    """Delete a pathway nobody has chosen from yet.

    :raises PathwayInUseError: students have choices in it; archive it instead.
    """
    pathway = get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    step_ids = select(Step.id).where(Step.pathway_id == pathway.id)
    if session.scalar(select(exists().where(Choice.step_id.in_(step_ids)))):
        raise PathwayInUseError("Students have chosen options in this pathway; archive it instead.")
    session.delete(pathway)
    session.flush()


# --- steps ------------------------------------------------------------------------------------


def create_step(
    session: Session,
    *,
    context_id: int,
    pathway_id: int,
    title: str,
    description: str = "",
    competency_id: int | None = None,
    prerequisite_ids: Collection[int] = (),
    once: bool = False,
) -> Step:
    """Add a step at the end of a pathway.

    :param competency_id: the competency this step's work is evidence for; None means the
        pathway's competencies (see complete_choices_for_competency).
    :param prerequisite_ids: competencies to master before the step unlocks.
    :param once: return the same step added a moment ago (a double click on Add step) instead
        of adding it again.
    """
    _lock(session, Pathway, context_id, pathway_id, PathwayNotFoundError)
    _check_competencies(session, context_id, [] if competency_id is None else [competency_id])
    title, description = _title(title), clean_html(description)
    wanted = set(_check_competencies(session, context_id, prerequisite_ids))
    for twin in _just_made(
        session,
        once,
        Step,
        Step.pathway_id == pathway_id,
        Step.title == title,
        Step.description == description,
        Step.competency_id.is_(None)
        if competency_id is None
        else Step.competency_id == competency_id,
    ):
        if set(step_prerequisite_ids(session, context_id=context_id, step_id=twin.id)) == wanted:
            return twin
    last = session.scalar(select(func.max(Step.position)).where(Step.pathway_id == pathway_id))
    step = Step(
        context_id=context_id,
        pathway_id=pathway_id,
        title=title,
        description=description,
        competency_id=competency_id,
        position=0 if last is None else last + 1,
    )
    session.add(step)
    session.flush()
    _set_prerequisites(session, context_id, step.id, prerequisite_ids)
    return step


def update_step(
    session: Session,
    *,
    context_id: int,
    step_id: int,
    title: str,
    description: str,
    competency_id: int | None,
    prerequisite_ids: Collection[int],
) -> Step:
    """Replace a step's title, description, assessed competency and prerequisites."""
    step = get_step(session, context_id=context_id, step_id=step_id)
    _check_competencies(session, context_id, [] if competency_id is None else [competency_id])
    step.title = _title(title)
    step.description = clean_html(description)
    step.competency_id = competency_id
    _set_prerequisites(session, context_id, step.id, prerequisite_ids)
    session.flush()
    return step


def get_step(session: Session, *, context_id: int, step_id: int) -> Step:
    """Return a step of the course.

    :raises StepNotFoundError: no such step in this course.
    """
    step = session.scalars(
        select(Step).where(Step.id == step_id, Step.context_id == context_id)
    ).one_or_none()
    if step is None:
        raise StepNotFoundError("That step does not exist in this course.")
    return step


def list_steps(
    session: Session, *, context_id: int, pathway_id: int, include_archived: bool = False
) -> list[Step]:
    """Return a pathway's steps in their order."""
    query = select(Step).where(Step.context_id == context_id, Step.pathway_id == pathway_id)
    if not include_archived:
        query = query.where(Step.archived_at.is_(None))
    return list(session.scalars(query.order_by(Step.position, Step.id)))


def step_prerequisite_ids(session: Session, *, context_id: int, step_id: int) -> list[int]:
    """Return the ids of the competencies a step waits for."""
    get_step(session, context_id=context_id, step_id=step_id)
    return list(
        session.scalars(
            select(StepPrerequisite.competency_id)
            .where(StepPrerequisite.step_id == step_id)
            .order_by(StepPrerequisite.competency_id)
        )
    )


def reorder_steps(
    session: Session, *, context_id: int, pathway_id: int, step_ids: Sequence[int]
) -> None:
    """Put the named steps first, in the given order; the others follow as they were."""
    get_pathway(session, context_id=context_id, pathway_id=pathway_id)
    rows = list_steps(session, context_id=context_id, pathway_id=pathway_id, include_archived=True)
    _reorder(rows, step_ids, StepNotFoundError("That step is not in this pathway."))
    session.flush()


def archive_step(session: Session, *, context_id: int, step_id: int) -> Step:
    """Hide a step from students, keeping their choices and work."""
    step = get_step(session, context_id=context_id, step_id=step_id)
    step.archived_at = step.archived_at or utcnow()
    session.flush()
    return step


def restore_step(session: Session, *, context_id: int, step_id: int) -> Step:
    """Show an archived step again."""
    step = get_step(session, context_id=context_id, step_id=step_id)
    step.archived_at = None
    session.flush()
    return step


def delete_step(session: Session, *, context_id: int, step_id: int) -> None:
    """Delete a step nobody has chosen from yet.

    :raises PathwayInUseError: students have choices in it; archive it instead.
    """
    step = get_step(session, context_id=context_id, step_id=step_id)
    if session.scalar(select(exists().where(Choice.step_id == step.id))):
        raise PathwayInUseError("Students have chosen options in this step; archive it instead.")
    session.delete(step)
    session.flush()


# --- options ----------------------------------------------------------------------------------


def create_option(
    session: Session, *, context_id: int, step_id: int, data: OptionInput, once: bool = False
) -> Option:
    """Add an option at the end of a step.

    :param once: return the same option added a moment ago (a double click on Save) instead of
        adding it again.
    """
    _lock(session, Step, context_id, step_id, StepNotFoundError)
    last = session.scalar(select(func.max(Option.position)).where(Option.step_id == step_id))
    option = Option(
        context_id=context_id, step_id=step_id, position=0 if last is None else last + 1
    )
    _apply_option_input(option, data)
    for twin in _just_made(
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
    session: Session, *, context_id: int, option_id: int, data: OptionInput
) -> Option:
    """Replace everything a teacher sets on an option."""
    option = get_option(session, context_id=context_id, option_id=option_id)
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
    _reorder(rows, option_ids, OptionNotFoundError("That option is not in this step."))
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
    if session.scalar(select(exists().where(Choice.option_id == option.id))):
        raise PathwayInUseError("Students have chosen this option; archive it instead.")
    session.delete(option)
    session.flush()


# --- helpers ----------------------------------------------------------------------------------


class _Positioned(Protocol):
    id: int
    position: int


_P = TypeVar("_P", bound=_Positioned)


DOUBLE_SUBMIT = timedelta(seconds=30)
"""How soon after a creation an identical one counts as the same click again."""

_OPTION_FIELDS = (
    "links",
    "modality",
    "interest_tags",
    "career_clusters",
    "challenge",
    "expected_minutes",
    "requires_approval",
)

_M = TypeVar("_M", Pathway, Step, Option)


def _just_made(
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


def _lock(
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


def _reorder(rows: list[_P], ids: Sequence[int], not_found: LookupError) -> None:
    by_id = {r.id: r for r in rows}
    if any(i not in by_id for i in ids):
        raise not_found
    named = list(dict.fromkeys(ids))
    ordered = [by_id[i] for i in named] + [r for r in rows if r.id not in set(named)]
    for position, row in enumerate(ordered):
        row.position = position


def _title(value: str) -> str:
    value = " ".join(strip_control_characters(value).split())
    if not value:
        raise ValueError("Give it a title.")
    if len(value) > TITLE_MAX_LENGTH:
        raise ValueError(f"Keep the title under {TITLE_MAX_LENGTH} characters.")
    return value


def _check_competencies(session: Session, context_id: int, ids: Iterable[int]) -> list[int]:
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


def _set_pathway_competencies(
    session: Session, context_id: int, pathway_id: int, competency_ids: Collection[int]
) -> None:
    wanted = _check_competencies(session, context_id, competency_ids)
    session.execute(delete(PathwayCompetency).where(PathwayCompetency.pathway_id == pathway_id))
    session.add_all(PathwayCompetency(pathway_id=pathway_id, competency_id=c) for c in wanted)
    session.flush()


def _set_prerequisites(
    session: Session, context_id: int, step_id: int, competency_ids: Collection[int]
) -> None:
    wanted = _check_competencies(session, context_id, competency_ids)
    session.execute(delete(StepPrerequisite).where(StepPrerequisite.step_id == step_id))
    session.add_all(StepPrerequisite(step_id=step_id, competency_id=c) for c in wanted)
    session.flush()


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
    option.title = _title(data.title)
    option.description = clean_html(data.description)
    option.links = clean_links(data.links)
    option.modality = modality
    option.interest_tags = clean_tags(data.interest_tags)
    option.career_clusters = parse_career_clusters(data.career_clusters)
    option.challenge = int(data.challenge)
    option.expected_minutes = minutes
    option.requires_approval = data.requires_approval
