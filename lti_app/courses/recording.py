"""Evidence as one unit of work: mastery, the pathway work it answers, and the gradebook."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import cast

from sqlalchemy.orm import Session

from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import MasteryChange, record_evidence
from lti_app.pathways.models import Choice
from lti_app.pathways.reviewing import complete_choices_for_competency

LOG = logging.getLogger(__name__)

QueueScores = Callable[[Session, list[MasteryChange]], object]


def _grades_queue() -> QueueScores | None:
    # The gradebook feature may not be installed yet; mastery works without it.
    try:
        module = importlib.import_module("lti_app.grades.services")
    except ImportError:
        return None
    queue = getattr(module, "queue_scores", None)
    return cast(QueueScores, queue) if callable(queue) else None


def queue_scores(session: Session, changes: list[MasteryChange]) -> None:
    """Queue the changed levels for the LMS gradebook in the caller's transaction."""
    if not changes:
        return
    queue = _grades_queue()
    if queue is None:
        LOG.debug("no gradebook queue; %d mastery changes not queued", len(changes))
        return
    queue(session, changes)


@dataclass(frozen=True)
class Recorded:
    """What recording evidence changed: the levels, the submitted work it closed, and the
    students it was stored for (not those who got it seconds before: a double click)."""

    changes: list[MasteryChange]
    closed: list[Choice]
    students: list[int]


def record_and_close(
    session: Session,
    *,
    context_id: int,
    competency_id: int,
    student_ids: Sequence[int],
    points: Decimal,
    note: str,
    recorded_by_id: int,
    observed_at: datetime | None = None,
    observed_on: date | None = None,
    source: EvidenceSource = EvidenceSource.TEACHER,
    form_checked: bool = False,
) -> Recorded:
    """Record evidence, close the submitted pathway work it answers, queue the scores.

    The caller commits once, so the score outbox rows exist exactly when the evidence does.
    `form_checked`: the sending form was not saved before (`form_once`; see `record_evidence`).
    """
    recorded: list[int] = []
    changes = record_evidence(
        session,
        context_id=context_id,
        competency_id=competency_id,
        student_ids=student_ids,
        points=points,
        source=source,
        note=note,
        recorded_by_id=recorded_by_id,
        observed_at=observed_at,
        observed_on=observed_on,
        form_checked=form_checked,
        recorded=recorded,
    )
    # One locked query for the whole class's work on this competency, taken after
    # record_evidence locked the competency (the one lock order).
    closed = complete_choices_for_competency(
        session,
        context_id=context_id,
        person_ids=student_ids,
        competency_ids=[competency_id],
        closed_by_id=recorded_by_id,
    )
    queue_scores(session, changes)
    return Recorded(changes, closed, recorded)
