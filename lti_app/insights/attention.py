"""Who needs the teacher's attention, and what to do about it, in a fixed number of queries."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from lti_app.learners.models import OPEN_GOAL_STATUSES, Goal, LearnerProfile
from lti_app.mastery.models import Evidence
from lti_app.pathways.models import Choice, Option, Step
from lti_app.pathways.retrying import earlier_steps_to_try_again
from lti_app.pathways.reviewing import pending_for_teacher
from lti_app.pathways.unlocking import class_unlock_states, work_a_lock_stops
from lti_app.roster.services import Student, list_students


class AttentionKind(enum.StrEnum):
    NO_LAUNCH = "no_launch"
    NO_EVIDENCE = "no_evidence"
    LOCKED_OUT = "locked_out"
    """Has work to start or hand in on a step that locked again: can't go on, however new."""
    STUCK = "stuck"
    GOAL_OVERDUE = "goal_overdue"
    APPROVAL = "approval"
    SUBMISSION = "submission"


ACTIONS = {
    AttentionKind.NO_LAUNCH: "Check in with the student: they have not opened Pathways.",
    AttentionKind.NO_EVIDENCE: "Observe or assess the student and record evidence.",
    AttentionKind.LOCKED_OUT: (
        "Help the student master what the step waits for again (and record the evidence), "
        "or unlock the step for them by hand. Where the list says so, the student can also "
        "try the earlier step again from their pathway: a new try at it is a way back to mastery."
    ),
    AttentionKind.STUCK: "Talk with the student about this step, or unlock another route.",
    AttentionKind.GOAL_OVERDUE: "Hold a goal check-in: update the goal or its target date.",
    AttentionKind.APPROVAL: "Approve or decline the pick.",
    AttentionKind.SUBMISSION: "Look at the work: mark it done or send it back.",
}


@dataclass(frozen=True)
class AttentionItem:
    """One reason a student needs the teacher, since when, and what to do."""

    kind: AttentionKind
    person_id: int
    name: str
    detail: str
    since: datetime | date | None

    @property
    def action(self) -> str:
        return ACTIONS[self.kind]


def attention_list(
    session: Session, *, context_id: int, days: int, now: datetime, today: date
) -> list[AttentionItem]:
    """Students with no launch or evidence in `days` days, working on a step that locked
    again (a level dipped), stuck on a step that long, goals past their target date, and picks
    or work waiting for the teacher (fifteen queries at most).

    `today` is the course's date (lti_app.timezones), not UTC's: a goal due today is not
    overdue on its own evening in the Americas.
    """
    cutoff = now - timedelta(days=days)
    students = {s.person_id: s for s in list_students(session, context_id=context_id)}
    items: list[AttentionItem] = []
    for student in students.values():
        if student.last_launch_at is None or student.last_launch_at < cutoff:
            detail = (
                "Never opened Pathways"
                if student.last_launch_at is None
                else f"No launch in {days} days"
            )
            items.append(
                AttentionItem(
                    AttentionKind.NO_LAUNCH,
                    student.person_id,
                    student.name,
                    detail,
                    student.last_launch_at,
                )
            )
    last_evidence = dict(
        session.execute(
            select(Evidence.person_id, func.max(Evidence.observed_at))
            .where(Evidence.context_id == context_id, Evidence.withdrawn_at.is_(None))
            .group_by(Evidence.person_id)
        ).all()
    )
    for student in students.values():
        last = last_evidence.get(student.person_id)
        if last is None or _aware(last) < cutoff:
            detail = "No evidence yet" if last is None else f"No evidence in {days} days"
            items.append(
                AttentionItem(
                    AttentionKind.NO_EVIDENCE, student.person_id, student.name, detail, last
                )
            )
    # Work that waits on the student, to start or hand in, in a pathway on offer: the work a
    # lock would stop. An archived pathway's work is frozen (the student's page shows it read
    # only), so there is nothing to talk the student through or to unlock there.
    stuck = session.execute(
        work_a_lock_stops(context_id)
        .with_only_columns(Choice, Step.title, Option.title)
        .join(Option, Option.id == Choice.option_id)
    ).all()
    items += _locked_out(session, context_id, students, stuck)
    for choice, step_title, option_title in stuck:
        since = _aware(
            choice.returned_at or choice.started_at or choice.approved_at or choice.chosen_at
        )
        if since < cutoff and choice.person_id in students:
            items.append(
                AttentionItem(
                    AttentionKind.STUCK,
                    choice.person_id,
                    students[choice.person_id].name,
                    f"On “{step_title}” ({option_title}) for more than {days} days",
                    since,
                )
            )
    overdue = session.execute(
        select(LearnerProfile.person_id, Goal.text, Goal.target_date)
        .join(LearnerProfile, LearnerProfile.id == Goal.profile_id)
        .where(
            Goal.context_id == context_id,
            LearnerProfile.context_id == context_id,
            Goal.target_date < today,
            Goal.status.in_(OPEN_GOAL_STATUSES),
        )
    ).all()
    for person_id, text, target in overdue:
        if person_id in students:
            items.append(
                AttentionItem(
                    AttentionKind.GOAL_OVERDUE,
                    person_id,
                    students[person_id].name,
                    f"Goal “{_clip(text)}” was due {target.isoformat() if target else '-'}",
                    target,
                )
            )
    for pending in pending_for_teacher(session, context_id=context_id):
        if pending.person_id not in students:
            continue
        kind = AttentionKind.SUBMISSION if pending.kind == "submission" else AttentionKind.APPROVAL
        verb = "Handed in" if kind is AttentionKind.SUBMISSION else "Asked to do"
        items.append(
            AttentionItem(
                kind,
                pending.person_id,
                students[pending.person_id].name,
                f"{verb} “{pending.option_title}” for “{pending.step_title}”",
                pending.since,
            )
        )
    order = list(AttentionKind)
    items.sort(key=lambda i: (order.index(i.kind), i.name.casefold(), i.person_id))
    return items


def _locked_out(
    session: Session,
    context_id: int,
    students: dict[int, Student],
    working: Sequence[Row[Choice, str, str]],
) -> list[AttentionItem]:
    """Students with work a lock would stop on a step that is locked for them now: a locked
    step refuses starting and handing in, so they wait for the teacher from the day it locked,
    unless they may try an earlier step again (nine queries at most, however many students)."""
    working = [row for row in working if row[0].person_id in students]
    states = class_unlock_states(
        session,
        context_id=context_id,
        pairs=[(row[0].person_id, row[0].step_id) for row in working],
    )
    locked = {key: state for key, state in states.items() if not state.is_unlocked}
    # The student's own way back: a done step before it that they may try again.
    again = earlier_steps_to_try_again(session, context_id=context_id, locked=locked)
    items = []
    for choice, step_title, option_title in working:
        key = (choice.person_id, choice.step_id)
        if key not in locked:
            continue
        detail = (
            f"Working on “{step_title}” ({option_title}), but the step locked again: "
            f"needs {', '.join(c.label for c in locked[key].missing)}"
        )
        if key in again:
            titles = " or ".join(f"“{step.title}”" for step in again[key])
            detail += f"; they can try {titles} again"
        items.append(
            AttentionItem(
                AttentionKind.LOCKED_OUT,
                choice.person_id,
                students[choice.person_id].name,
                detail,
                None,
            )
        )
    return items


def _aware(value: datetime) -> datetime:
    # Defensive: an aggregate may come back naive on SQLite.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _clip(text: str, size: int = 80) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"
