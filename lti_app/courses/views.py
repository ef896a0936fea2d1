"""The teacher's course overview (landing page): the courses blueprint, and what its pages share.

The teacher's view of one student is in `student_views`, on this same blueprint.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from flask import Blueprint, Flask, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from lti_app.competencies.models import Competency
from lti_app.competencies.queries import list_competencies
from lti_app.courses.common import (
    TEACHER,
    Course,
    current_course,
    domain_errors,
    form_ids,
    parse_id,
    parse_points,
    today,
)
from lti_app.courses.queries import ChoiceRow, choice_rows, person_names
from lti_app.courses.recording import record_and_close
from lti_app.form_once import ALREADY_SAVED
from lti_app.mastery.levels import mastered_counts
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.scales import get_or_create_scale
from lti_app.mastery.services import lock_competencies
from lti_app.pathways.models import ChoiceStatus
from lti_app.pathways.reviewing import (
    approve_choices,
    complete_choices,
    pending_for_teacher,
    return_choices,
    submitted_work_by_competency,
)
from lti_app.pathways.services import list_pathways
from lti_app.roster.services import list_students, students_who_left
from lti_app.tool.models import MembershipStatus
from lti_app.tool.services import LaunchContext
from lti_app.web import add_nav_item, db_session, launch_url, require_role, set_current_launch

bp = Blueprint("courses", __name__, url_prefix="/course")

NOTICES = {
    "approved": "Approved {n} choice(s).",
    "approved_some": "Approved {n} choice(s). Handed-in work among the ticked items still waits "
    "for you to mark it done or send it back.",
    "returned": "Sent {n} choice(s) back with your note.",
    "done": "Marked {n} choice(s) done.",
    "done_evidence": "Marked {n} choice(s) done and recorded evidence.",
    "done_evidence_more": "Marked {n} choice(s) done and recorded evidence. This also closed {m} "
    "other hand-in(s) by the same students on the same competencies: one level per competency.",
    "profile": "The profile is saved.",
    "goal": "The goal is saved.",
    "goal_deleted": "The goal is deleted.",
    "check_in": "The check-in is saved.",
    "already_saved": ALREADY_SAVED,
    "evidence": "Evidence recorded.",
    "evidence_closed": "Evidence recorded. This also closed {n} hand-in(s) by this student on "
    "{competency}, now marked done: one level per competency.",
    "evidence_closed_again": "Evidence recorded. This also closed {n} hand-in(s) by this student "
    "on {competency}, now marked done: one level per competency. The level is below mastery and "
    "a later step waits for it, so the student is offered another try at the step (their first "
    "hand-in and your note stay).",
    "corrected": "The evidence is corrected.",
    "withdrawn": "The evidence is withdrawn; it no longer counts.",
}


def notice_text(notices: dict[str, str], **names: str) -> str:
    """The success message named by ?notice= after a redirect (never text from the URL).

    `names` fill a message's other slots with what the page looked up itself, such as a
    competency's title; a slot the page does not fill (a hand-made URL) reads empty.
    """
    template = notices.get(request.args.get("notice", ""))
    if template is None:
        return ""
    count = request.args.get
    values: defaultdict[str, object] = defaultdict(str, names)
    values.update(n=count("n", type=int) or 0, m=count("m", type=int) or 0)
    return template.format_map(values)


def assessable(competencies: list[Competency]) -> list[Competency]:
    """Competencies evidence can go on: not archived and without active sub-competencies."""
    parents = {c.parent_id for c in competencies if c.parent_id is not None and not c.is_archived}
    return [c for c in competencies if not c.is_archived and c.id not in parents]


@bp.record_once
def _register(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    app.extensions.setdefault("lti_app.home_renderers", {})[TEACHER] = render_overview_home
    add_nav_item(app, "courses.overview", "Overview", (TEACHER,), order=10)


# --- the overview -----------------------------------------------------------------------------


def render_overview_home(ctx: LaunchContext) -> str:
    """Home renderer for teachers: the launch lands on the course overview."""
    set_current_launch(ctx)
    return _overview_page()


@dataclass(frozen=True)
class PendingDraft:
    """What the teacher had ticked and typed when an action on waiting items was refused."""

    ticked: frozenset[int]
    note: str
    level: Decimal | None


def _overview_page(errors: list[str] | None = None, draft: PendingDraft | None = None) -> str:
    course = current_course()
    session = db_session()
    cid = course.context_id
    everyone = list_students(session, context_id=cid, include_inactive=True)
    # The roster keeps students a sync dropped (their work stays answerable); they are listed
    # apart and labelled, as on the roster and student pages, never counted as in the class.
    students = [s for s in everyone if s.status is MembershipStatus.ACTIVE]
    left = [s for s in everyone if s.status is not MembershipStatus.ACTIVE]
    competencies = list_competencies(session, context_id=cid)
    pathways = list_pathways(session, context_id=cid)
    pending = pending_for_teacher(session, context_id=cid)
    handed_in = [p.choice.id for p in pending if p.kind == "submission"]
    handed_in_rows = choice_rows(session, context_id=cid, choice_ids=handed_in) if handed_in else []
    scale = get_or_create_scale(session, context_id=cid)
    names = {s.person_id: s.name for s in everyone}
    missing = {item.person_id for item in pending} - names.keys()
    names.update(person_names(session, person_ids=missing))
    mastered = mastered_counts(session, context_id=cid)
    no_level = _no_level_reasons(session, cid, handed_in_rows)
    return render_template(
        "courses/overview.html",
        ctx=course.ctx,
        title="Course overview",
        students=students,
        left=left,
        left_ids={s.person_id for s in left},
        competencies=competencies,
        pathways=pathways,
        pending=pending,
        no_level=no_level,
        also_closes=_also_closes(session, cid, handed_in_rows, no_level, competencies),
        names=names,
        mastered=mastered,
        scale=scale,
        notice=notice_text(NOTICES),
        errors=errors or [],
        draft=draft,
    )


@bp.get("/")
@require_role(TEACHER)
def overview() -> str:
    """Competencies, pathways, students, and what waits for the teacher."""
    return _overview_page()


@bp.post("/pending")
@require_role(TEACHER)
def act_on_pending() -> Response | tuple[str, int]:
    """Approve, send back, or mark done several pending choices at once."""
    course = current_course()
    session = db_session()
    action = request.form.get("action", "")
    choice_ids = form_ids("choice")
    note = request.form.get("note", "")
    seen = _seen_options(choice_ids)
    notice = action
    count = len(choice_ids)
    closed_too = 0
    try:
        if not choice_ids:
            raise ValueError("Tick at least one item first.")
        with domain_errors():
            if action == "approve":
                # "Select all" ticks handed-in work too, which is reviewed, not approved: the
                # picks waiting for approval are approved, the rest stays waiting (and is said).
                rows = choice_rows(session, context_id=course.context_id, choice_ids=choice_ids)
                waiting = [r.id for r in rows if r.status in APPROVABLE]
                approve_choices(
                    session,
                    context_id=course.context_id,
                    choice_ids=waiting or choice_ids,  # none: the domain says why
                    decided_by_id=course.teacher_id,
                    seen_option_ids=seen,
                )
                notice = "approved_some" if waiting and len(waiting) < len(rows) else "approved"
                count = len(waiting)
            elif action == "return":
                return_choices(
                    session,
                    context_id=course.context_id,
                    choice_ids=choice_ids,
                    decided_by_id=course.teacher_id,
                    note=note,
                    seen_option_ids=seen,
                )
                notice = "returned"
            elif action == "done":
                notice, closed_too = _complete(course, choice_ids, note, seen)
            else:
                raise ValueError("Choose what to do with the ticked items.")
    except ValueError as err:
        session.rollback()
        # The page comes back as the teacher left it: ticks, note and level.
        try:
            level: Decimal | None = parse_points(request.form.get("level"))
        except ValueError:
            level = None
        draft = PendingDraft(frozenset(choice_ids), note, level)
        return _overview_page(errors=[str(err)], draft=draft), 400
    session.commit()
    if notice == "done_evidence" and closed_too:
        notice = "done_evidence_more"
    return redirect(
        launch_url("courses.overview", notice=notice, n=count, m=closed_too, _anchor="pending"),
        303,
    )


APPROVABLE = frozenset({ChoiceStatus.CHOSEN, ChoiceStatus.APPROVED})


def _seen_options(choice_ids: list[int]) -> dict[int, int]:
    """The option the overview showed for each ticked choice (hidden `option-<choice id>`), so
    a pick the student switched since the page was opened is refused, not answered unseen."""
    seen: dict[int, int] = {}
    for choice_id in choice_ids:
        value = request.form.get(f"option-{choice_id}", "").strip()
        if value:
            seen[choice_id] = parse_id(value)
    return seen


def _complete(
    course: Course, choice_ids: list[int], note: str, seen: dict[int, int]
) -> tuple[str, int]:
    """Mark choices done; with a level, record it as evidence on what each step assesses.

    Returns the notice and how many other hand-ins the evidence closed as well: a level
    answers all of a student's submitted work on its competency, ticked or not.
    Work that is already done (a double click's first request did it) gets no second evidence.
    """
    session = db_session()
    level = request.form.get("level", "").strip()
    if level:
        # Evidence locks its competency, then the work it closes: a colleague recording
        # evidence for this student does so too. Locking the choices first would deadlock
        # with them, so their competencies come first here as well.
        unlocked = choice_rows(session, context_id=course.context_id, choice_ids=choice_ids)
        lock_competencies(
            session,
            context_id=course.context_id,
            competency_ids={r.competency_id for r in unlocked if r.competency_id is not None},
        )
    rows = choice_rows(session, context_id=course.context_id, choice_ids=choice_ids, lock=True)
    already_done = {row.id for row in rows if row.status is ChoiceStatus.DONE}
    if level:
        # As on the student's page: the LMS keeps a departed student's grades read-only, so a
        # level recorded now could only fail at passback. Done without a level stays possible.
        left = students_who_left(
            session,
            context_id=course.context_id,
            person_ids={row.choice.person_id for row in rows if row.id not in already_done},
        )
        if left:
            raise ValueError(
                f"{left[0]} has left the course, so no level can be recorded for them. Mark "
                "their work done without a level."
            )
    complete_choices(
        session,
        context_id=course.context_id,
        choice_ids=choice_ids,
        closed_by_id=course.teacher_id,
        feedback=note,
        seen_option_ids=seen,
    )
    if not level:
        return "done", 0
    points = parse_points(level)
    refused = _no_level_reasons(session, course.context_id, rows)
    for row in rows:
        if row.id in refused and row.id not in already_done:
            raise ValueError(
                f"No level can be recorded for “{row.step_title}”: {refused[row.id]}. Mark it "
                "done without a level, then record evidence on the student's page."
            )
    closed_too = 0
    for competency_id, text, student_ids in _evidence_batches(rows, already_done, note):
        recorded = record_and_close(
            session,
            context_id=course.context_id,
            competency_id=competency_id,
            student_ids=student_ids,
            points=points,
            note=text,
            recorded_by_id=course.teacher_id,
            observed_on=today(),
            source=EvidenceSource.PATHWAY_WORK,
        )
        closed_too += len(recorded.closed)
    return "done_evidence", closed_too


def _no_level_reasons(session: Session, context_id: int, rows: list[ChoiceRow]) -> dict[int, str]:
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


def _also_closes(
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


def _evidence_batches(
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


# The student pages (courses.student_views) are routes of this blueprint too: importing them here
# registers them wherever the blueprint is (Flask's "Larger Applications" pattern).
from lti_app.courses import student_views  # noqa: E402, F401
