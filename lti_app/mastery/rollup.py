"""Keep StudentCompetencyLevel in step with evidence: leaf scores, then parents' roll-ups."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.mastery.calculation import calculate, level_for, round_score
from lti_app.mastery.models import (
    Evidence,
    EvidenceSource,
    MasteryLevel,
    MasteryScale,
    StudentCompetencyLevel,
)


@dataclass(frozen=True)
class MasteryChange:
    """A student's stored level on a competency changed (score, level or mastery)."""

    context_id: int
    person_id: int
    competency_id: int
    old_score: Decimal | None
    new_score: Decimal | None
    old_level_name: str | None
    new_level_name: str | None
    is_mastered: bool
    was_mastered: bool = False

    @property
    def became_mastered(self) -> bool:
        return self.is_mastered and not self.was_mastered


@dataclass(frozen=True)
class Standing:
    """What a StudentCompetencyLevel row should hold, computed before touching the row."""

    score: Decimal | None
    level: MasteryLevel | None
    is_mastered: bool
    evidence_count: int
    last_evidence_at: datetime | None


def level_for_score(scale: MasteryScale, score: Decimal) -> MasteryLevel:
    """Return the scale's level for a score (below the lowest level: the lowest)."""
    return level_for(score, [(level.points, level) for level in scale.levels])


def leaf_standing(scale: MasteryScale, evidence: Sequence[Evidence]) -> Standing:
    """Score a competency without sub-competencies from its counted evidence, oldest first."""
    score = calculate(
        scale.method,
        [e.points for e in evidence],
        weight=scale.weight,
        n=scale.n,
        mastery_points=scale.mastery_points,
    )
    level = None if score is None else level_for_score(scale, score)
    return Standing(
        score=score,
        level=level,
        is_mastered=score is not None and score >= scale.mastery_points,
        evidence_count=len(evidence),
        last_evidence_at=max((e.observed_at for e in evidence), default=None),
    )


def roll_up(scale: MasteryScale, children: Sequence[StudentCompetencyLevel | None]) -> Standing:
    """Score a competency with sub-competencies from its children's current levels.

    The rule: the score is the mean of the children's scores, over the children that have one,
    rounded to two decimals and mapped to a level like any score; the competency is mastered only
    when every (unarchived) child is mastered, so a strong child cannot hide an unmastered one.
    No child with a score gives no score. Evidence count and last evidence add up the children's.
    `children` holds one entry per unarchived child, None where the student has no level yet.
    """
    present = [child for child in children if child is not None]
    scores = [child.score for child in present if child.score is not None]
    score = round_score(sum(scores, Decimal(0)) / len(scores)) if scores else None
    return Standing(
        score=score,
        level=None if score is None else level_for_score(scale, score),
        is_mastered=bool(children) and all(c is not None and c.is_mastered for c in children),
        evidence_count=sum(child.evidence_count for child in present),
        last_evidence_at=max(
            (c.last_evidence_at for c in present if c.last_evidence_at is not None), default=None
        ),
    )


def refresh_levels(
    session: Session,
    *,
    scale: MasteryScale,
    context_id: int,
    person_ids: Collection[int] | None = None,
    competency_ids: Collection[int] | None = None,
) -> list[MasteryChange]:
    """Recompute stored levels of these students (None: all) on these competencies (None: all)
    and their ancestors; flush; return what changed.

    Three queries whatever the size: the framework, the evidence, the stored levels.
    """
    framework = session.execute(
        select(Competency.id, Competency.parent_id, Competency.archived_at).where(
            Competency.context_id == context_id
        )
    ).all()
    parent_of = {cid: parent_id for cid, parent_id, _ in framework}
    children_of: dict[int, list[int]] = defaultdict(list)
    for cid, parent_id, archived_at in framework:
        if parent_id is not None and archived_at is None:
            children_of[parent_id].append(cid)
    leaves = {cid for cid in parent_of if not children_of.get(cid)}
    in_scope = leaves if competency_ids is None else leaves & set(competency_ids)

    evidence_query = select(Evidence).where(
        Evidence.context_id == context_id, Evidence.withdrawn_at.is_(None)
    )
    level_query = select(StudentCompetencyLevel).where(
        StudentCompetencyLevel.context_id == context_id
    )
    if person_ids is not None:
        evidence_query = evidence_query.where(Evidence.person_id.in_(person_ids))
        level_query = level_query.where(StudentCompetencyLevel.person_id.in_(person_ids))
    if competency_ids is not None:
        evidence_query = evidence_query.where(Evidence.competency_id.in_(in_scope))
    if not scale.counts_self_assessment:
        evidence_query = evidence_query.where(Evidence.source != EvidenceSource.SELF_ASSESSMENT)
    # Chronological by when the student showed it, not when it was typed in (make-up work).
    evidence = session.scalars(evidence_query.order_by(Evidence.observed_at, Evidence.id))
    rows = {(r.person_id, r.competency_id): r for r in session.scalars(level_query)}

    by_pair: dict[tuple[int, int], list[Evidence]] = defaultdict(list)
    for item in evidence:
        if item.competency_id in in_scope:
            by_pair[(item.person_id, item.competency_id)].append(item)
    pairs = set(by_pair) | {pair for pair in rows if pair[1] in in_scope}
    changes: list[MasteryChange] = []
    for pair in sorted(pairs):
        _store(session, context_id, rows, pair, leaf_standing(scale, by_pair[pair]), changes)

    ancestors: set[int] = set()
    for cid in in_scope if competency_ids is not None else parent_of:
        parent = parent_of.get(cid)
        while parent is not None and parent not in ancestors:
            ancestors.add(parent)
            parent = parent_of.get(parent)
    ancestors = {a for a in ancestors if children_of.get(a)}
    persons = set(person_ids) if person_ids is not None else {p for p, _ in rows}
    for ancestor in sorted(ancestors, key=lambda a: -_depth(a, parent_of)):
        for person_id in sorted(persons):
            children = [rows.get((person_id, child)) for child in children_of[ancestor]]
            if (person_id, ancestor) not in rows and not any(children):
                continue
            standing = roll_up(scale, children)
            _store(session, context_id, rows, (person_id, ancestor), standing, changes)
    session.flush()
    return changes


def _depth(competency_id: int, parent_of: dict[int, int | None]) -> int:
    depth, parent = 0, parent_of.get(competency_id)
    while parent is not None:
        depth, parent = depth + 1, parent_of.get(parent)
    return depth


def _store(
    session: Session,
    context_id: int,
    rows: dict[tuple[int, int], StudentCompetencyLevel],
    pair: tuple[int, int],
    standing: Standing,
    changes: list[MasteryChange],
) -> None:
    person_id, competency_id = pair
    row = rows.get(pair)
    if row is None:
        row = StudentCompetencyLevel(
            context_id=context_id,
            person_id=person_id,
            competency_id=competency_id,
            score=None,
            level_name=None,
            level_points=None,
            is_mastered=False,
            evidence_count=0,
            last_evidence_at=None,
        )
        session.add(row)
        rows[pair] = row
    old = (row.score, row.level_name, row.is_mastered)
    level_name = standing.level.name if standing.level else None
    new = (standing.score, level_name, standing.is_mastered)
    if old != new:
        changes.append(
            MasteryChange(
                context_id=context_id,
                person_id=person_id,
                competency_id=competency_id,
                old_score=row.score,
                new_score=standing.score,
                old_level_name=row.level_name,
                new_level_name=level_name,
                is_mastered=standing.is_mastered,
                was_mastered=row.is_mastered,
            )
        )
    values = {
        "score": standing.score,
        "level_name": level_name,
        "level_points": standing.level.points if standing.level else None,
        "is_mastered": standing.is_mastered,
        "evidence_count": standing.evidence_count,
        "last_evidence_at": standing.last_evidence_at,
    }
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
