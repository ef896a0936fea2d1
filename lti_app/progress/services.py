"""What a student's own pages summarise: every pathway at a glance, their levels, and what to do
next. Each function runs a fixed number of queries, however many pathways or competencies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.competencies.queries import CompetencyNode, competency_tree
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.levels import current_levels
from lti_app.mastery.models import (
    Evidence,
    EvidenceSource,
    MasteryScale,
    StudentCompetencyLevel,
)
from lti_app.mastery.scales import get_or_create_scale
from lti_app.mastery.services import evidence_history
from lti_app.pathways.choices import may_start
from lti_app.pathways.models import Choice, ChoiceStatus, Option, Pathway, Step
from lti_app.pathways.retrying import (
    StepOnRoute,
    competencies_to_try_again,
    pathway_competency_ids,
)
from lti_app.pathways.unlock import CompetencyRef, UnlockState, step_unlock_states
from lti_app.pathways.unlocking import manual_unlock_ids, mastered_ids_for, step_rules


@dataclass(frozen=True)
class StepSummary:
    step: Step
    number: int
    unlock: UnlockState
    choice: Choice | None
    option: Option | None
    """The chosen option, if any."""
    try_again_for: tuple[CompetencyRef, ...] = ()
    """Done below mastery of these, which a later step waits for: the step may be tried again."""


@dataclass(frozen=True)
class PathwaySummary:
    pathway: Pathway
    steps: tuple[StepSummary, ...]

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.steps if s.choice and s.choice.status is ChoiceStatus.DONE)


@dataclass(frozen=True)
class NextAction:
    """One thing the student can do now, in words, with the pathway it is about."""

    text: str
    pathway_id: int
    step_id: int
    urgent: bool = False
    """The teacher sent something back: shown first."""


_STUDENTS_PATHWAYS = (
    select(Pathway.__table__)
    .where(
        Pathway.context_id == bindparam("context_id"),
        or_(
            Pathway.archived_at.is_(None),
            Pathway.id.in_(
                select(Step.pathway_id)
                .join(Choice, Choice.step_id == Step.id)
                .where(
                    Choice.context_id == bindparam("context_id"),
                    Choice.person_id == bindparam("person_id"),
                )
            ),
        ),
    )
    .order_by(Pathway.position, Pathway.id)
)
"""The open pathways, and the archived ones the student has choices in (their work and the
teacher's notes stay readable). Built once: a student's home is also the first page of every
launch, and an ORM query built per call cost more than the database did. Its rows become plain
(untracked) Pathway objects."""


def pathway_overview(session: Session, *, context_id: int, person_id: int) -> list[PathwaySummary]:
    """Return every open pathway of the course with each step's lock state and the student's
    choice, in six queries."""
    return student_home_overview(session, context_id=context_id, person_id=person_id)[0]


def student_home_overview(
    session: Session, *, context_id: int, person_id: int
) -> tuple[list[PathwaySummary], list[Pathway]]:
    """Return pathway_overview's summaries, and the archived pathways in which the student has
    choices (to read), in course order; the same six queries."""
    session.flush()  # what follows reads through the connection, past the session's autoflush
    found = [
        Pathway(**row._mapping)
        for row in session.connection().execute(
            _STUDENTS_PATHWAYS, {"context_id": context_id, "person_id": person_id}
        )
    ]
    pathways = [p for p in found if p.archived_at is None]
    archived = [p for p in found if p.archived_at is not None]
    if not pathways:
        return [], archived
    rows = session.execute(
        select(Step, Choice, Option)
        .outerjoin(
            Choice,
            (Choice.step_id == Step.id)
            & (Choice.person_id == person_id)
            & (Choice.context_id == context_id),
        )
        .outerjoin(Option, Option.id == Choice.option_id)
        .where(
            Step.context_id == context_id,
            Step.pathway_id.in_([p.id for p in pathways]),
            or_(Step.archived_at.is_(None), Choice.id.is_not(None)),
        )
        .order_by(Step.position, Step.id)
    ).all()
    step_ids = [step.id for step, _, _ in rows]
    states = step_unlock_states(
        step_rules(session, context_id=context_id, step_ids=step_ids),
        mastered_ids_for(session, context_id=context_id, person_id=person_id),
        manual_unlock_ids(session, context_id=context_id, person_id=person_id, step_ids=step_ids),
    )
    retry = _retry_offers(session, [(step, states[step.id], choice) for step, choice, _ in rows])
    by_pathway: dict[int, list[StepSummary]] = {p.id: [] for p in pathways}
    for step, choice, option in rows:
        summaries = by_pathway[step.pathway_id]
        summaries.append(
            StepSummary(
                step, len(summaries) + 1, states[step.id], choice, option, retry.get(step.id, ())
            )
        )
    return [PathwaySummary(p, tuple(by_pathway[p.id])) for p in pathways], archived


def _retry_offers(
    session: Session, rows: Sequence[tuple[Step, UnlockState, Choice | None]]
) -> dict[int, tuple[CompetencyRef, ...]]:
    """The done steps the student may try again (pathways.retrying), by step id."""
    done = [step for step, _, choice in rows if choice and choice.status is ChoiceStatus.DONE]
    if not done:
        return {}
    # Only a done step that names no competency of its own teaches its pathway's: the query
    # for those is skipped on most homes.
    leads = pathway_competency_ids(session, {s.pathway_id for s in done if s.competency_id is None})
    route: dict[int, list[StepOnRoute]] = {}
    for step, state, choice in rows:
        route.setdefault(step.pathway_id, []).append(StepOnRoute(step, state, choice))
    offers: dict[int, tuple[CompetencyRef, ...]] = {}
    for steps in route.values():
        offers.update(competencies_to_try_again(steps, leads))
    return offers


_HANDED_IN = frozenset({ChoiceStatus.DONE, ChoiceStatus.SUBMITTED})
"""Work the student has nothing more to do on, whether the step is open or locked again."""


def next_actions(overview: Sequence[PathwaySummary]) -> list[NextAction]:
    """Say what to do next in each pathway: work the teacher sent back first, then the first
    open step that needs the student, then what to master to open the first locked one.

    Steps already handed in or done are passed over even when a dip in a level locked them
    again, and a locked step doesn't hide an open one after it. Work the student started on a
    step that locked again is always named, as they can't carry on with it until it reopens.
    """
    actions: list[NextAction] = []
    for summary in overview:
        actions.extend(_pathway_actions(summary))
    actions.sort(key=lambda a: not a.urgent)
    return actions


def _pathway_actions(summary: PathwaySummary) -> list[NextAction]:
    pid = summary.pathway.id
    held: list[NextAction] = []  # work the student started on steps that locked again
    first_locked: NextAction | None = None
    try_again: NextAction | None = None  # the way on when a locked step waits for a done one
    for item in summary.steps:
        if item.try_again_for and try_again is None:
            names = ", ".join(c.label for c in item.try_again_for)
            try_again = NextAction(
                f"{summary.pathway.title}: try “{item.step.title}” again: your teacher's "
                f"evidence puts {names} below mastery, and a later step waits for it.",
                pid,
                item.step.id,
            )
        if item.choice is not None and item.choice.status in _HANDED_IN:
            continue
        if item.unlock.is_unlocked:
            action = _step_action(pid, item)
            if action is not None:
                return [action, *held, *([try_again] if try_again else [])]
            continue
        names = ", ".join(c.label for c in item.unlock.missing)
        title = item.step.title
        if item.choice is not None and item.choice.status is not ChoiceStatus.REJECTED:
            held.append(
                NextAction(
                    f"{summary.pathway.title}: “{title}” is locked again, so you can't carry "
                    f"on with it yet (your work is kept): work towards {names} to open it.",
                    pid,
                    item.step.id,
                )
            )
        elif first_locked is None and item.step.archived_at is None:
            first_locked = NextAction(
                f"{summary.pathway.title}: work towards {names} to open “{title}”.",
                pid,
                item.step.id,
            )
    if try_again is not None:
        # Working towards the competency in the abstract leads nowhere in Pathways when the
        # pathway's own step for it is done: the second try at that step is the way on.
        return [*held, try_again]
    return held or ([first_locked] if first_locked else [])


def _step_action(pathway_id: int, item: StepSummary) -> NextAction | None:
    title = item.step.title
    if not item.unlock.is_unlocked:
        return None
    choice, option = item.choice, item.option
    if choice is None:
        return NextAction(f"Choose an option for “{title}”.", pathway_id, item.step.id)
    status = choice.status
    if status is ChoiceStatus.RETURNED:
        return NextAction(
            f"Your teacher returned your work on “{title}”: read the note and hand it in again.",
            pathway_id,
            item.step.id,
            urgent=True,
        )
    if status is ChoiceStatus.REJECTED:
        if item.step.archived_at is not None:
            return None  # a retired step has nothing to choose again: look at the next step
        return NextAction(
            f"Your teacher asked you to choose again for “{title}”.",
            pathway_id,
            item.step.id,
            urgent=True,
        )
    if status is ChoiceStatus.IN_PROGRESS:
        return NextAction(f"Finish and hand in “{title}”.", pathway_id, item.step.id)
    if may_start(status, requires_approval=bool(option and option.requires_approval)):
        return NextAction(f"Start your work on “{title}”.", pathway_id, item.step.id)
    return None  # waiting for the teacher, handed in, or done: look at the next step


@dataclass(frozen=True)
class HistoryPoint:
    observed_at: datetime
    observed_on: date
    points: Decimal
    level_name: str
    source: str
    note: str


@dataclass(frozen=True)
class CompetencyProgress:
    competency: Competency
    depth: int
    level: StudentCompetencyLevel | None
    history: tuple[HistoryPoint, ...]
    is_parent: bool
    """Its level is rolled up from sub-competencies, so evidence goes on those."""
    so_far: str = ""
    """With "n times" and no level yet: how many results at mastery count so far, of n."""


@dataclass(frozen=True)
class ProgressView:
    scale: MasteryScale
    competencies: tuple[CompetencyProgress, ...]

    @property
    def method_words(self) -> str:
        """How the course turns results into a level, in a student's words."""
        return method_explanation(self.scale)

    @property
    def mastered_count(self) -> int:
        return sum(1 for c in self.competencies if c.level and c.level.is_mastered)


def student_progress(session: Session, *, context_id: int, person_id: int) -> ProgressView:
    """Return the student's level and evidence history for each competency of the course."""
    scale = get_or_create_scale(session, context_id=context_id)
    nodes = _walk(competency_tree(session, context_id=context_id))
    levels = current_levels(session, context_id=context_id, person_id=person_id)
    history: dict[int, list[HistoryPoint]] = {}
    evidence: Evidence
    for evidence in evidence_history(
        session, context_id=context_id, person_id=person_id, include_withdrawn=False
    ):
        history.setdefault(evidence.competency_id, []).append(
            HistoryPoint(
                evidence.observed_at,
                evidence.observed_on,
                evidence.points,
                evidence.level_name,
                evidence.source.value,
                evidence.note,
            )
        )
    parents = {n.competency.id for n, _ in nodes if n.children}
    return ProgressView(
        scale=scale,
        competencies=tuple(
            CompetencyProgress(
                competency=node.competency,
                depth=depth,
                level=levels.get(node.competency.id),
                history=tuple(history.get(node.competency.id, ())),
                is_parent=node.competency.id in parents,
                so_far=""
                if node.competency.id in parents
                else _n_times_so_far(
                    scale, levels.get(node.competency.id), history.get(node.competency.id, [])
                ),
            )
            for node, depth in nodes
        ),
    )


def method_explanation(scale: MasteryScale) -> str:
    """How the course's calculation method turns results into a level, and whether the
    student's own ratings count, in a student's words."""
    mastery = scale.mastery_level.name
    weight = scale.weight
    match scale.method:
        case CalculationMethod.DECAYING_AVERAGE:
            words = (
                f"Your level mixes your results: each new result counts for {weight}% and "
                f"everything before it for {100 - weight}%, so your recent work matters most."
            )
        case CalculationMethod.WEIGHTED_AVERAGE:
            words = (
                f"Your level counts your latest result for {weight}% and the average of your "
                f"earlier results for {100 - weight}%."
            )
        case CalculationMethod.N_TIMES:
            results = "result" if scale.n == 1 else f"{scale.n} results"
            words = (
                f"You get a level once you have {results} at {mastery} or above (results "
                "below it don't count): your level is then their average, and you have "
                "mastered the competency."
            )
        case CalculationMethod.MOST_RECENT:
            words = "Your level is your most recent result."
        case CalculationMethod.HIGHEST:
            words = "Your level is your best result."
        case _:
            words = "Your level is the average of all your results."
    if scale.counts_self_assessment:
        return words + " Your own ratings of yourself count as results."
    return words + (
        " Your own ratings of yourself are shown on your charts, but they don't count towards "
        "your level."
    )


def _n_times_so_far(
    scale: MasteryScale, level: StudentCompetencyLevel | None, history: Sequence[HistoryPoint]
) -> str:
    if scale.method is not CalculationMethod.N_TIMES or (level and level.level_name):
        return ""
    counted = [
        h
        for h in history
        if scale.counts_self_assessment or h.source != EvidenceSource.SELF_ASSESSMENT.value
    ]
    at_mastery = sum(1 for h in counted if h.points >= scale.mastery_points)
    return f"{at_mastery} of {scale.n} results at mastery so far"


def _walk(nodes: Sequence[CompetencyNode], depth: int = 0) -> list[tuple[CompetencyNode, int]]:
    ordered: list[tuple[CompetencyNode, int]] = []
    for node in nodes:
        ordered.append((node, depth))
        ordered.extend(_walk(node.children, depth + 1))
    return ordered
