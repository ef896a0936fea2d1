"""Copying a course's pathways into another course, translating its competencies."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.pathways.errors import CopyError
from lti_app.pathways.models import Option, Pathway, PathwayCompetency, Step, StepPrerequisite
from lti_app.pathways.services import list_pathways

# --- copying between courses ------------------------------------------------------------------


def copy_pathways(
    session: Session,
    *,
    from_context_id: int,
    to_context_id: int,
    competency_id_map: Mapping[int, int],
) -> list[Pathway]:
    """Copy a course's unarchived pathways, steps and options into another course.

    Competency links are translated with competency_id_map (source id to target id), which
    must cover every competency the copied pathways use; students' choices and unlocks stay.
    A pathway the target already has exactly as it would be copied (an earlier copy, a second
    press of Copy) is not copied again; one the teacher has changed since is theirs, and the
    source's pathway comes in beside it.

    :raises CopyError: a competency has no counterpart, or the counterpart is in another course,
        or a step's own competency has sub-competencies there (as the step editor refuses).
    """
    pathways = list_pathways(session, context_id=from_context_id)
    pathway_ids = [p.id for p in pathways]
    steps, options = _live_steps_and_options(session, from_context_id, pathway_ids)
    step_ids = [s.id for s in steps]
    # Archived competencies are not copied with the framework and lock nothing: links to them
    # are left behind rather than refusing the whole copy.
    live = select(Competency.id).where(
        Competency.context_id == from_context_id, Competency.archived_at.is_(None)
    )
    pathway_links = session.execute(
        select(PathwayCompetency.pathway_id, PathwayCompetency.competency_id).where(
            PathwayCompetency.pathway_id.in_(pathway_ids),
            PathwayCompetency.competency_id.in_(live),
        )
    ).all()
    prerequisites = session.execute(
        select(StepPrerequisite.step_id, StepPrerequisite.competency_id).where(
            StepPrerequisite.step_id.in_(step_ids), StepPrerequisite.competency_id.in_(live)
        )
    ).all()
    live_ids = set(session.scalars(live))
    assessed = {s.id: s.competency_id for s in steps if s.competency_id in live_ids}
    used = {c for _, c in pathway_links} | {c for _, c in prerequisites} | set(assessed.values())
    _check_competency_map(session, used, competency_id_map, to_context_id)
    _check_assessed_targets(session, steps, assessed, competency_id_map, to_context_id)

    translate = {c: competency_id_map[c] for c in live_ids if c in competency_id_map}
    theirs = list_pathways(session, context_id=to_context_id)
    their_steps, their_options = _live_steps_and_options(
        session, to_context_id, [p.id for p in theirs]
    )
    their_shapes = _describe(session, theirs, their_steps, their_options, translate=None)
    already = {shape: pathway_id for pathway_id, shape in reversed(their_shapes.items())}
    wanted = _describe(session, pathways, steps, options, translate=translate)
    for p in pathways:
        if wanted[p.id] in already:
            # An earlier copy, made before copies were recorded, is this one's copy all the same.
            twin = session.get(Pathway, already[wanted[p.id]])
            if twin is not None and twin.copied_from_id is None and p.copied_from_id != twin.id:
                twin.copied_from_id = p.id
    pathways = [p for p in pathways if wanted[p.id] not in already]
    kept = {p.id for p in pathways}
    steps = [s for s in steps if s.pathway_id in kept]
    kept_steps = {s.id for s in steps}
    options = [o for o in options if o.step_id in kept_steps]
    pathway_links = [link for link in pathway_links if link[0] in kept]
    prerequisites = [link for link in prerequisites if link[0] in kept_steps]

    last = session.scalar(
        select(func.max(Pathway.position)).where(Pathway.context_id == to_context_id)
    )
    base = 0 if last is None else last + 1
    new_pathways = {
        p.id: Pathway(
            context_id=to_context_id,
            title=p.title,
            description=p.description,
            position=base + i,
            copied_from_id=p.id,
        )
        for i, p in enumerate(pathways)
    }
    session.add_all(new_pathways.values())
    session.flush()
    new_steps = {
        s.id: Step(
            context_id=to_context_id,
            pathway_id=new_pathways[s.pathway_id].id,
            position=s.position,
            title=s.title,
            description=s.description,
            competency_id=competency_id_map[assessed[s.id]] if s.id in assessed else None,
        )
        for s in steps
    }
    session.add_all(new_steps.values())
    session.flush()
    session.add_all(
        Option(
            context_id=to_context_id,
            step_id=new_steps[o.step_id].id,
            position=o.position,
            title=o.title,
            description=o.description,
            links=[dict(link) for link in o.links],
            modality=o.modality,
            interest_tags=list(o.interest_tags),
            career_clusters=list(o.career_clusters),
            challenge=o.challenge,
            expected_minutes=o.expected_minutes,
            requires_approval=o.requires_approval,
        )
        for o in options
    )
    session.add_all(
        PathwayCompetency(pathway_id=new_pathways[p].id, competency_id=competency_id_map[c])
        for p, c in pathway_links
    )
    session.add_all(
        StepPrerequisite(step_id=new_steps[s].id, competency_id=competency_id_map[c])
        for s, c in prerequisites
    )
    session.flush()
    return list(new_pathways.values())


def _live_steps_and_options(
    session: Session, context_id: int, pathway_ids: Sequence[int]
) -> tuple[list[Step], list[Option]]:
    """The pathways' steps and options that are not archived, in their order."""
    steps = list(
        session.scalars(
            select(Step)
            .where(
                Step.context_id == context_id,
                Step.pathway_id.in_(pathway_ids),
                Step.archived_at.is_(None),
            )
            .order_by(Step.position, Step.id)
        )
    )
    options = list(
        session.scalars(
            select(Option)
            .where(
                Option.context_id == context_id,
                Option.step_id.in_([s.id for s in steps]),
                Option.archived_at.is_(None),
            )
            .order_by(Option.position, Option.id)
        )
    )
    return steps, options


def _describe(
    session: Session,
    pathways: Sequence[Pathway],
    steps: Sequence[Step],
    all_options: Sequence[Option],
    *,
    translate: Mapping[int, int] | None,
) -> dict[int, Hashable]:
    """What each pathway holds, in the target's competency ids, to recognise one already copied.

    `translate` maps the course's competency ids to the target's (links to others are left out,
    as the copy leaves them out); None keeps the ids as they are.
    """
    pathway_ids = [p.id for p in pathways]
    step_ids = [s.id for s in steps]

    def target(competency_id: int | None) -> int | None:
        if competency_id is None or translate is None:
            return competency_id
        return translate.get(competency_id)

    options: dict[int, list[Hashable]] = defaultdict(list)
    for o in all_options:
        options[o.step_id].append(
            (
                o.position,
                o.title,
                o.description,
                tuple(tuple(sorted(link.items())) for link in o.links),
                o.modality,
                tuple(o.interest_tags),
                tuple(o.career_clusters),
                o.challenge,
                o.expected_minutes,
                o.requires_approval,
            )
        )
    links: dict[int, set[int | None]] = defaultdict(set)
    for pathway_id, competency_id in session.execute(
        select(PathwayCompetency.pathway_id, PathwayCompetency.competency_id).where(
            PathwayCompetency.pathway_id.in_(pathway_ids)
        )
    ):
        links[pathway_id].add(target(competency_id))
    prerequisites: dict[int, set[int | None]] = defaultdict(set)
    for step_id, competency_id in session.execute(
        select(StepPrerequisite.step_id, StepPrerequisite.competency_id).where(
            StepPrerequisite.step_id.in_(step_ids)
        )
    ):
        prerequisites[step_id].add(target(competency_id))
    shapes: dict[int, list[Hashable]] = defaultdict(list)
    for s in steps:
        shapes[s.pathway_id].append(
            (
                s.position,
                s.title,
                s.description,
                target(s.competency_id),
                frozenset(prerequisites[s.id] - {None}),
                tuple(options[s.id]),
            )
        )
    return {
        p.id: (p.title, p.description, frozenset(links[p.id] - {None}), tuple(shapes[p.id]))
        for p in pathways
    }


def _check_competency_map(
    session: Session, used: set[int], mapping: Mapping[int, int], to_context_id: int
) -> None:
    unmapped = used - set(mapping)
    if unmapped:
        codes = session.scalars(
            select(Competency.code).where(Competency.id.in_(unmapped)).order_by(Competency.code)
        )
        raise CopyError(
            "These competencies have no counterpart in the target course: " + ", ".join(codes)
        )
    targets = {mapping[c] for c in used}
    found = set(
        session.scalars(
            select(Competency.id).where(
                Competency.id.in_(targets), Competency.context_id == to_context_id
            )
        )
    )
    if found != targets:
        raise CopyError("Some mapped competencies are not part of the target course.")


def _check_assessed_targets(
    session: Session,
    steps: Sequence[Step],
    assessed: Mapping[int, int],
    mapping: Mapping[int, int],
    to_context_id: int,
) -> None:
    """Refuse to make a step's work evidence for a competency with sub-competencies in the
    target course: levels go on those, so marking the copied step's work done would fail."""
    targets = {mapping[c] for c in assessed.values()}
    parents = {
        parent_id: (code, title)
        for parent_id, code, title in session.execute(
            select(Competency.id, Competency.code, Competency.title).where(
                Competency.id.in_(targets),
                Competency.id.in_(
                    select(Competency.parent_id).where(
                        Competency.context_id == to_context_id,
                        Competency.archived_at.is_(None),
                    )
                ),
            )
        )
    }
    clashes = [
        f"“{s.title}” is evidence for {parents[target][0]} {parents[target][1]}"
        for s in steps
        if s.id in assessed and (target := mapping[assessed[s.id]]) in parents
    ]
    if clashes:
        raise CopyError(
            "Nothing was copied: some steps would be evidence for a competency that has "
            "sub-competencies in this course, where levels are recorded on the "
            "sub-competencies (" + "; ".join(clashes) + "). In the course you copy from, link "
            "those steps to a sub-competency, or to none, then copy again."
        )
