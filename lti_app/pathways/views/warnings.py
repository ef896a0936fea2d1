"""What the teacher is warned of on the editor's pages: steps students can never open or do,
and students a change of prerequisites would lock out of their work."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import request
from itsdangerous import BadSignature, URLSafeSerializer

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
from lti_app.web import db_session, settings

WARNED_FIELD = "warned_loss"
"""The hidden field of a "Not saved yet" warning: the loss it named, signed."""


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


def _student_names(context_id: int) -> dict[int, str]:
    """The class's names by id, in the class list's order (family, then given name)."""
    return {s.person_id: s.name for s in list_students(db_session(), context_id=context_id)}


def _named(names: dict[int, str], ids: Iterable[int]) -> list[str]:
    """The students' names in the class list's order, as every page lists the class (their
    ids' order is the order they first launched or the roster sync met them, in no order a
    teacher would recognise). A student who left the course keeps their work, but nobody
    waits for them to finish it: they are not named."""
    wanted = set(ids)
    return [name for person_id, name in names.items() if person_id in wanted]


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


@dataclass(frozen=True)
class LossWarning:
    """A "Not saved yet" warning: what a change would take from students, in words, and the
    loss itself, signed, for the confirming form to carry back."""

    lines: list[str]
    token: str
    grown: bool
    """The teacher confirmed, but the change now takes more than they were warned of (the
    form was changed on the warning page, or students gained mastery or started a step
    meanwhile)."""


def unconfirmed_loss(context_id: int, before: MasterySnapshot) -> LossWarning | None:
    """What a change made since `before` (levels recomputed, not committed) takes from
    students that the teacher has not confirmed: None when it takes nothing, or only what the
    warning they confirmed named, so it can be saved.

    The confirm is checked against the warning, not trusted: between the two, the form can be
    changed (a stricter level typed on the warning page) and other students can come to master
    what the change takes away; saving those unnamed would take from students nobody was told
    of."""
    loss = mastery_lost_since(db_session(), context_id=context_id, before=before)
    return _unless_confirmed(context_id, loss, lambda: names_losing_mastery(context_id, loss))


def unconfirmed_lock_out(context_id: int, step_id: int, form: StepForm) -> LossWarning | None:
    """The students with work in progress here that the form's prerequisites would lock out,
    by name, unless the teacher confirmed a warning naming all of them: checked, as for
    `unconfirmed_loss`, since a student can start the step after the warning, and the teacher
    can tick another prerequisite on the warning page."""
    ids = students_locked_out_by(
        db_session(),
        context_id=context_id,
        step_id=step_id,
        prerequisite_ids=form.prerequisite_ids,
    )
    loss = MasteryLoss(unmastered=(), relocked=tuple((p, step_id) for p in ids))
    return _unless_confirmed(context_id, loss, lambda: _named(_student_names(context_id), ids))


def _unless_confirmed(
    context_id: int, loss: MasteryLoss, named: Callable[[], list[str]]
) -> LossWarning | None:
    """The warning to show of `loss`, in the words `named` gives, or None when it takes
    nothing, nobody still in the course, or only what the warning the teacher confirmed
    named."""
    if not loss:
        return None
    confirmed = request.form.get("confirm_locks") == "yes"
    warned = _warned_loss(context_id) if confirmed else None
    if warned is not None and loss.within(warned):
        return None
    lines = named()
    if not lines:  # only students who left the course lose: nobody to ask about
        return None
    return LossWarning(
        lines, _signer(settings().secret_key).dumps(_payload(context_id, loss)), confirmed
    )


@functools.lru_cache(maxsize=8)
def _signer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(
        secret_key, salt="pathways-warned-loss", signer_kwargs={"digest_method": hashlib.sha256}
    )


def _payload(context_id: int, loss: MasteryLoss) -> dict[str, Any]:
    # The course too: a warning from one course confirms nothing in another.
    return {"c": context_id, "u": loss.unmastered, "r": loss.relocked}


def _warned_loss(context_id: int) -> MasteryLoss | None:
    """The loss the confirmed warning named, or None when the form carries none it could
    have been shown (a page from before warnings were signed asks again)."""
    token = request.form.get(WARNED_FIELD, "")
    try:
        data = _signer(settings().secret_key).loads(token)
        if data["c"] != context_id:
            return None
        return MasteryLoss(
            tuple((int(p), int(c)) for p, c in data["u"]),
            tuple((int(p), int(s)) for p, s in data["r"]),
        )
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
