"""Keep StudentCompetencyLevel in step with evidence: leaf scores, then parents' roll-ups."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.mastery.calculation import CalculationMethod, calculate, level_for, round_score
from lti_app.mastery.models import (
    IN_ORDER_OBSERVED,
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
    last_evidence_on: date | None


class Observation(Protocol):
    """What scoring reads of a piece of evidence (charts pass plain rows, not Evidence)."""

    @property
    def points(self) -> Decimal: ...

    @property
    def observed_at(self) -> datetime: ...

    @property
    def observed_on(self) -> date: ...


@dataclass(frozen=True)
class Scoring:
    """A scale's method, settings and levels, read once to score many students: reading them
    off the ORM objects for every student costs more than the arithmetic."""

    method: CalculationMethod
    weight: int
    n: int
    mastery_points: Decimal
    levels: tuple[tuple[Decimal, MasteryLevel], ...]

    @classmethod
    def of(cls, scale: MasteryScale | Scoring) -> Scoring:
        if isinstance(scale, Scoring):
            return scale
        levels = tuple((level.points, level) for level in scale.levels)
        return cls(scale.method, scale.weight, scale.n, scale.mastery_points, levels)


def level_for_score(scale: MasteryScale | Scoring, score: Decimal) -> MasteryLevel:
    """Return the scale's level for a score (below the lowest level: the lowest)."""
    if isinstance(scale, Scoring):
        return level_for(score, scale.levels)
    return level_for(score, [(level.points, level) for level in scale.levels])


def leaf_standing(scale: MasteryScale | Scoring, evidence: Sequence[Observation]) -> Standing:
    """Score a competency without sub-competencies from its counted evidence, oldest first."""
    rules = Scoring.of(scale)
    score = calculate(
        rules.method,
        [e.points for e in evidence],
        weight=rules.weight,
        n=rules.n,
        mastery_points=rules.mastery_points,
    )
    level = None if score is None else level_for_score(rules, score)
    return Standing(
        score=score,
        level=level,
        is_mastered=score is not None and score >= rules.mastery_points,
        evidence_count=len(evidence),
        last_evidence_at=max((e.observed_at for e in evidence), default=None),
        last_evidence_on=max((e.observed_on for e in evidence), default=None),
    )


def roll_up(
    scale: MasteryScale | Scoring,
    children: Sequence[StudentCompetencyLevel | Standing | None],
    direct: Standing | None = None,
) -> Standing:
    """Score a competency with sub-competencies from its children's current levels.

    The rule: the score is the mean of the children's scores, over the children that have one,
    rounded to two decimals and mapped to a level like any score; the competency is mastered only
    when every counted child (`counted_children`) is mastered, so a strong child cannot hide an
    unmastered one. No child with a score gives no score. Evidence count and last evidence add
    up the children's.
    `children` holds one entry per counted child, None where the student has no level yet.

    `direct` scores the evidence recorded on the competency itself, before it had
    sub-competencies. It stands in for every child the student has no evidence on yet: adding a
    sub-competency then changes no student's level and hides nothing already observed, and the
    old evidence stops counting once the student has evidence on every sub-competency (new
    evidence cannot go on the parent, so it could otherwise never be outgrown).
    """
    own = direct if direct is not None and direct.evidence_count > 0 else None
    parts: list[tuple[Decimal | None, bool]] = []
    for child in children:
        if child is not None and (child.evidence_count > 0 or own is None):
            parts.append((child.score, child.is_mastered))
        elif own is not None:
            parts.append((own.score, own.is_mastered))
        else:
            parts.append((None, False))
    present = [child for child in children if child is not None]
    scores = [score for score, _ in parts if score is not None]
    score = round_score(sum(scores, Decimal(0)) / len(scores)) if scores else None
    count = sum(child.evidence_count for child in present)
    times = [c.last_evidence_at for c in present if c.last_evidence_at is not None]
    days = [c.last_evidence_on for c in present if c.last_evidence_on is not None]
    if own is not None:
        count += own.evidence_count
        times += [own.last_evidence_at] if own.last_evidence_at is not None else []
        days += [own.last_evidence_on] if own.last_evidence_on is not None else []
    return Standing(
        score=score,
        level=None if score is None else level_for_score(scale, score),
        is_mastered=bool(parts) and all(mastered for _, mastered in parts),
        evidence_count=count,
        last_evidence_at=max(times, default=None),
        last_evidence_on=max(days, default=None),
    )


def counted_children(
    framework: Iterable[tuple[int, int | None, datetime | None]],
) -> dict[int, list[int]]:
    """Map each competency that rolls up to the parts that count towards it, from the course's
    (id, parent_id, archived_at) rows.

    A parent in use counts its parts in use: a part archived on its own no longer counts. An
    archived parent counts the parts archived with it (archiving stamps a whole branch with one
    time), so putting a branch away changes no student's level and clears no gradebook score,
    and unarchiving it brings back the same branch.
    """
    archived_at_of = {cid: archived_at for cid, _, archived_at in framework}
    children_of: dict[int, list[int]] = defaultdict(list)
    for cid, parent_id, archived_at in framework:
        if parent_id is not None and archived_at == archived_at_of.get(parent_id):
            children_of[parent_id].append(cid)
    return dict(children_of)


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
    children_of = counted_children(framework)
    parents = set(children_of)
    leaves = set(parent_of) - parents
    in_scope = leaves if competency_ids is None else leaves & set(competency_ids)

    # Every parent above what changed; a parent named itself (its own evidence was corrected or
    # withdrawn) too.
    ancestors: set[int] = set()
    starts = parent_of if competency_ids is None else set(competency_ids) & set(parent_of)
    for cid in starts:
        node = cid if cid in parents else parent_of.get(cid)
        while node is not None and node not in ancestors:
            ancestors.add(node)
            node = parent_of.get(node)
    ancestors &= parents

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
        evidence_query = evidence_query.where(Evidence.competency_id.in_(in_scope | ancestors))
    if not scale.counts_self_assessment:
        evidence_query = evidence_query.where(Evidence.source != EvidenceSource.SELF_ASSESSMENT)
    # Chronological by when the student showed it, not when it was typed in (make-up work).
    evidence = session.scalars(evidence_query.order_by(*IN_ORDER_OBSERVED))
    rows = {(r.person_id, r.competency_id): r for r in session.scalars(level_query)}

    by_pair: dict[tuple[int, int], list[Evidence]] = defaultdict(list)
    on_parent: dict[tuple[int, int], list[Evidence]] = defaultdict(list)
    for item in evidence:
        if item.competency_id in in_scope:
            by_pair[(item.person_id, item.competency_id)].append(item)
        elif item.competency_id in ancestors:
            on_parent[(item.person_id, item.competency_id)].append(item)
    pairs = set(by_pair) | {pair for pair in rows if pair[1] in in_scope}
    changes: list[MasteryChange] = []
    rules = Scoring.of(scale)
    for pair in sorted(pairs):
        _store(session, context_id, rows, pair, leaf_standing(rules, by_pair[pair]), changes)

    persons = set(person_ids) if person_ids is not None else {p for p, _ in rows}
    persons |= {p for p, _ in on_parent}
    for ancestor in sorted(ancestors, key=lambda a: -_depth(a, parent_of)):
        for person_id in sorted(persons):
            children = [rows.get((person_id, child)) for child in children_of[ancestor]]
            own = on_parent.get((person_id, ancestor))
            if (person_id, ancestor) not in rows and not any(children) and not own:
                continue
            direct = leaf_standing(rules, own) if own else None
            standing = roll_up(rules, children, direct)
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
            last_evidence_on=None,
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
        "last_evidence_on": standing.last_evidence_on,
    }
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
