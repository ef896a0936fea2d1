"""What marking the overview's waiting work done with a level means, read before and while
the teacher does it: work no level can be recorded for, the other hand-ins a level closes too,
and the evidence it records, batched per competency.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import cast

from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.competencies.queries import list_competencies
from lti_app.courses.common import assessable
from lti_app.courses.queries import ChoiceRow
from lti_app.pathways.reviewing import submitted_work_by_competency


def no_level_reasons(session: Session, context_id: int, rows: list[ChoiceRow]) -> dict[int, str]:
    """Why marking each piece of work done cannot record a level, by choice id (work that can
    is left out).

    The step editor offers only competencies evidence can go on, but a step saved earlier, or
    whose competency gained sub-competencies or was archived since, still names one.
    """
    if not rows:
        return {}
    competencies = list_competencies(session, context_id=context_id, include_archived=True)
    by_id = {c.id: c for c in competencies}
    open_ids = {c.id for c in assessable(competencies)}
    reasons: dict[int, str] = {}
    for row in rows:
        competency = by_id.get(row.competency_id or 0)
        if competency is None:
            reasons[row.id] = "its step does not assess one competency"
        elif competency.id not in open_ids:
            why = "is archived" if competency.is_archived else "has sub-competencies"
            reasons[row.id] = f"its competency, {competency.code} {competency.title}, {why}"
    return reasons


@dataclass(frozen=True)
class AlsoCloses:
    """Other hand-ins a level on one piece of work closes too: same student, same competency."""

    count: int
    competency: Competency


def also_closes(
    session: Session,
    context_id: int,
    rows: list[ChoiceRow],
    no_level: dict[int, str],
    competencies: list[Competency],
) -> dict[int, AlsoCloses]:
    """By choice id, the student's other submitted work that marking it done with a level
    closes as well (a student has one level per competency), so the teacher knows before."""
    leveled = [r for r in rows if r.id not in no_level and r.competency_id is not None]
    work = submitted_work_by_competency(
        session,
        context_id=context_id,
        person_ids={r.choice.person_id for r in leveled},
        competency_ids={cast(int, r.competency_id) for r in leveled},
    )
    by_id = {c.id: c for c in competencies}
    also: dict[int, AlsoCloses] = {}
    for row in leveled:
        competency = by_id.get(cast(int, row.competency_id))
        others = [
            i for i in work.get((row.choice.person_id, row.competency_id or 0), []) if i != row.id
        ]
        if others and competency is not None:
            also[row.id] = AlsoCloses(len(others), competency)
    return also


def evidence_batches(
    rows: list[ChoiceRow], already_done: set[int], note: str
) -> list[tuple[int, str, list[int]]]:
    """The ticked work's evidence as one record per competency and note, with all its students.

    Each record reads the scale and the framework and writes its rows together, so one record
    per ticked item cost the same again for every student. A student's second piece of work on
    the same competency and note still gets evidence of its own, in a second batch (turn 1).
    """
    batches: dict[tuple[int, str, int], list[int]] = {}
    turns: Counter[tuple[int, str, int]] = Counter()
    for row in rows:
        if row.competency_id is None or row.id in already_done:
            continue
        text = note.strip() or f"{row.step_title}: {row.option_title}"
        student = (row.competency_id, text, row.choice.person_id)
        batches.setdefault((row.competency_id, text, turns[student]), []).append(student[2])
        turns[student] += 1
    return [
        (competency_id, text, students) for (competency_id, text, _), students in batches.items()
    ]
