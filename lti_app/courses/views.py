"""The teacher's course overview (landing page): the courses blueprint, and what its pages share.

The teacher's view of one student is in `student_views`, on this same blueprint.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from flask import Blueprint, Flask, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

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
from lti_app.courses.pending_work import also_closes, evidence_batches, no_level_reasons
from lti_app.courses.queries import choice_rows, person_names
from lti_app.courses.recording import record_and_close
from lti_app.form_once import ALREADY_SAVED
from lti_app.mastery.levels import mastered_counts
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.scales import get_or_create_scale
from lti_app.mastery.services import lock_competencies
from lti_app.pathways.attempts import earlier_tries
from lti_app.pathways.models import Choice, ChoiceStatus
from lti_app.pathways.retrying import students_offered_again
from lti_app.pathways.reviewing import (
    approve_choices,
    complete_choices,
    pending_for_teacher,
    return_choices,
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
OFFERED_AGAIN = (
    "Where the student's level is below mastery and a later step waits for it, the student is "
    "offered another try at the step this closed (their first hand-in and your note stay)."
)
"""Added to a notice about closed work (`again=1`): the teacher learns the student's way on."""


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
    again = f" {OFFERED_AGAIN}" if count("again") == "1" else ""
    return template.format_map(values) + again


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
    no_level = no_level_reasons(session, cid, handed_in_rows)
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
        also_closes=also_closes(session, cid, handed_in_rows, no_level, competencies),
        # A hand-in after a second try is read beside the earlier ones.
        earlier_tries=earlier_tries(
            session,
            context_id=cid,
            person_ids={r.choice.person_id for r in handed_in_rows},
            only_pairs={(r.choice.person_id, r.choice.step_id) for r in handed_in_rows},
        ),
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
    again: set[int] = set()
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
                notice, closed_too, closed = _complete(course, choice_ids, note, seen)
                again = students_offered_again(
                    session, context_id=course.context_id, choices=closed
                )
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
        launch_url(
            "courses.overview",
            notice=notice,
            n=count,
            m=closed_too,
            **({"again": 1} if again else {}),
            _anchor="pending",
        ),
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
) -> tuple[str, int, list[Choice]]:
    """Mark choices done; with a level, record it as evidence on what each step assesses.

    Returns the notice, how many other hand-ins the evidence closed as well (a level answers
    all of a student's submitted work on its competency, ticked or not), and all it closed.
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
    closed = complete_choices(
        session,
        context_id=course.context_id,
        choice_ids=choice_ids,
        closed_by_id=course.teacher_id,
        feedback=note,
        seen_option_ids=seen,
    )
    if not level:
        return "done", 0, closed
    points = parse_points(level)
    refused = no_level_reasons(session, course.context_id, rows)
    for row in rows:
        if row.id in refused and row.id not in already_done:
            raise ValueError(
                f"No level can be recorded for “{row.step_title}”: {refused[row.id]}. Mark it "
                "done without a level, then record evidence on the student's page."
            )
    closed_too = 0
    for competency_id, text, student_ids in evidence_batches(rows, already_done, note):
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
        closed += recorded.closed
    return "done_evidence", closed_too, closed


# The student pages (courses.student_views) are routes of this blueprint too: importing them here
# registers them wherever the blueprint is (Flask's "Larger Applications" pattern).
from lti_app.courses import student_views  # noqa: E402, F401
