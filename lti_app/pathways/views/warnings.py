"""What the teacher is warned of on the editor's pages: steps students can never open or do,
and students a change of prerequisites would lock out of their work."""

from __future__ import annotations

from collections.abc import Iterable

from lti_app.pathways.forms import StepForm
from lti_app.pathways.reachability import steps_without_options, stuck_steps
from lti_app.pathways.relocking import (
    MasteryLoss,
    MasterySnapshot,
    loss_titles,
    mastery_lost_since,
)
from lti_app.pathways.unlock import CompetencyRef
from lti_app.pathways.unlocking import students_locked_out_by
from lti_app.roster.services import list_students
from lti_app.web import db_session


def _join_names(refs: list[CompetencyRef]) -> str:
    names = [r.label for r in refs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def stuck_warnings(context_id: int, pathway_id: int) -> list[str]:
    """Tell the teacher which steps students can never open or do, so none waits forever."""
    session = db_session()
    empty = [
        f"“{step.title}”: this step has no option on offer, so students can't choose or do "
        "it, and steps waiting for what it teaches stay locked. Add an option, or restore one."
        for step in steps_without_options(session, context_id=context_id, pathway_id=pathway_id)
    ]
    return empty + [
        f"Students can never unlock “{step.title}”: it waits for {_join_names(missing)}, "
        "which the course's pathways teach only in steps that stay locked until then. "
        "Change its prerequisites, or unlock it for students by hand."
        for step, missing in stuck_steps(session, context_id=context_id, pathway_id=pathway_id)
    ]


def names_locked_out(context_id: int, step_id: int, form: StepForm) -> list[str]:
    """The students with work in progress here that the form's prerequisites would lock out."""
    session = db_session()
    ids = students_locked_out_by(
        session, context_id=context_id, step_id=step_id, prerequisite_ids=form.prerequisite_ids
    )
    if not ids:
        return []
    return _named(_student_names(context_id), ids)


def _student_names(context_id: int) -> dict[int, str]:
    return {s.person_id: s.name for s in list_students(db_session(), context_id=context_id)}


def _named(names: dict[int, str], ids: Iterable[int]) -> list[str]:
    # A student who left the course keeps their work, but nobody waits for them to finish it.
    return [names[p] for p in ids if p in names]


def names_losing_mastery(context_id: int, loss: MasteryLoss) -> list[str]:
    """Say, per step and per competency, which students a framework change would lock out of
    their work and take mastery from (students who left the course are not named)."""
    session = db_session()
    by_step: dict[int, list[int]] = {}
    for person_id, step_id in loss.relocked:
        by_step.setdefault(step_id, []).append(person_id)
    by_competency: dict[int, list[int]] = {}
    for person_id, competency_id in loss.unmastered:
        by_competency.setdefault(competency_id, []).append(person_id)
    steps, competencies = loss_titles(session, context_id=context_id, loss=loss)
    students = _student_names(context_id)
    lines = []
    for step_id, title in steps:
        if names := _named(students, by_step[step_id]):
            lines.append(f"“{title}” locks for {', '.join(names)}, with work in it.")
    for competency_id, code, title in competencies:
        if names := _named(students, by_competency[competency_id]):
            label = f"{code} {title}".strip()
            verb = "masters" if len(names) == 1 else "master"
            lines.append(f"{', '.join(names)} no longer {verb} {label}.")
    return lines


def names_lost_since(context_id: int, before: MasterySnapshot) -> list[str]:
    """What a change made since `before` (levels recomputed, not committed) takes from
    students, in words: empty when it takes nothing, so it can be saved without asking."""
    loss = mastery_lost_since(db_session(), context_id=context_id, before=before)
    return names_losing_mastery(context_id, loss) if loss else []
