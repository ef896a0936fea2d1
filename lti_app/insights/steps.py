"""The course's open pathway steps, numbered within their pathways: for the dashboard's
step filter, group proposals by step and groups made from a step.

Takes a database session and the course's context id, and never imports Flask.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.pathways.models import Pathway, Step


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
