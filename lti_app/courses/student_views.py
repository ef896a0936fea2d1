"""The teacher's view of one student: profile, goals, check-ins, choices and evidence, and the
forms that change them. Routes of the courses blueprint (courses.views), kept apart from the
overview because the mastery pages reuse this page to show a refused evidence form.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import cast

from flask import Flask, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from lti_app.competencies.queries import list_competencies
from lti_app.courses.common import (
    TEACHER,
    Refusal,
    assessable,
    check_students,
    current_course,
    domain_errors,
    in_field,
    parse_date,
    parse_id,
    refusal,
    today,
)
from lti_app.courses.queries import choice_rows, earlier_same_check_in, person_names
from lti_app.courses.views import NOTICES, bp, notice_text
from lti_app.db import utcnow
from lti_app.display import date_limits, isolate
from lti_app.form_once import form_nonce, form_sent_again
from lti_app.insights.groups import group_history
from lti_app.learners.goals_and_check_ins import (
    add_check_in,
    add_goal,
    delete_goal,
    list_check_ins,
    list_goals,
    update_goal,
)
from lti_app.learners.models import GoalStatus
from lti_app.learners.profile_form import ProfilePage, page_values, save_profile_form
from lti_app.learners.services import get_profile, lock_profile
from lti_app.learners.vocab import CareerCluster, Modality
from lti_app.mastery.levels import current_levels
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.scales import get_or_create_scale
from lti_app.mastery.services import DOUBLE_SUBMIT, corrected_evidence_ids, evidence_history
from lti_app.pathways.attempts import earlier_tries
from lti_app.pathways.reviewing import submitted_work_by_competency
from lti_app.roster.services import list_students
from lti_app.tool.review import REVIEW_PAGES
from lti_app.tool.services import LaunchContext
from lti_app.web import db_session, launch_url, require_role, set_current_launch, set_history_url

GOAL_STATUS_LABELS = {
    GoalStatus.NOT_STARTED: "Not started",
    GoalStatus.IN_PROGRESS: "In progress",
    GoalStatus.MET: "Met",
    GoalStatus.DROPPED: "Dropped",
}
SOURCE_LABELS = {
    EvidenceSource.TEACHER: "Teacher observation",
    EvidenceSource.SELF_ASSESSMENT: "Self-assessment",
    EvidenceSource.PATHWAY_WORK: "Pathway work",
    EvidenceSource.KNOWLEDGE_CHECK: "Knowledge check",
}
PROFILE_FORM = ProfilePage(
    {
        "interests": "Interests",
        "career_clusters": "Career clusters",
        "preferred_modalities": "Preferred ways of learning",
        "career_goal_text": "Career goals",
        "preferences_text": "How they like to learn",
        "strengths": "Strengths",
        "needs_and_supports": "Needs and supports",
        "non_academic_notes": "Non-academic skills (work habits, social skills)",
        "teacher_notes": "Private teacher notes (never shown to the student or family)",
    }
)
"""The whole profile, as the form on this page shows it."""
DRAFT_FORMS = {
    "courses.save_profile": "profile",
    "courses.save_goal": "goal",
    "courses.save_check_in": "check_in",
    "mastery.record": "evidence",
}
"""The student page's forms by the endpoint they post to: a refused form comes back as typed."""


def _student_page(
    person_id: int,
    errors: Sequence[str | Refusal] | None = None,
    draft: dict[str, object] | None = None,
    reviewed_competency_id: int | None = None,
) -> str:
    course = current_course()
    session = db_session()
    cid = course.context_id
    check_students(cid, [person_id])
    student = next(
        s
        for s in list_students(session, context_id=cid, include_inactive=True)
        if s.person_id == person_id
    )
    competencies = list_competencies(session, context_id=cid, include_archived=True)
    evidence = evidence_history(session, context_id=cid, person_id=person_id)
    by_competency: dict[int, list[object]] = defaultdict(list)
    for item in reversed(evidence):  # newest first on the page
        by_competency[item.competency_id].append(item)
    recorders = person_names(
        session, person_ids={e.recorded_by_id for e in evidence if e.recorded_by_id is not None}
    )
    corrected = corrected_evidence_ids(session, context_id=cid, person_id=person_id)
    competency_by_id = {c.id: c for c in competencies}
    open_to_evidence = assessable(competencies)
    # Evidence closes the student's handed-in work on its competency, as marking that work
    # done with a level on the overview does: the form names where, before the click.
    work = submitted_work_by_competency(
        session,
        context_id=cid,
        person_ids=[person_id],
        competency_ids=[c.id for c in open_to_evidence],
    )
    handed_in = [
        (c, len(work[(person_id, c.id)])) for c in open_to_evidence if (person_id, c.id) in work
    ]
    # After a redirect that closed work: the competency is looked up here, in this course.
    closed_on = competency_by_id.get(request.args.get("competency", 0, type=int))
    profile = get_profile(session, context_id=cid, person_id=person_id)
    check_ins = list_check_ins(session, context_id=cid, person_id=person_id, include_private=True)
    return render_template(
        "courses/student.html",
        ctx=course.ctx,
        title=student.name,
        student=student,
        profile_values=page_values(profile, PROFILE_FORM),
        goals=list_goals(session, context_id=cid, person_id=person_id),
        check_ins=check_ins,
        # Teachers sharing a class read who held each conversation.
        check_in_authors=person_names(
            session, person_ids={c.author_id for c in check_ins if c.author_id is not None}
        ),
        choices=choice_rows(session, context_id=cid, person_id=person_id),
        earlier_tries={
            step_id: tries
            for (_, step_id), tries in earlier_tries(
                session, context_id=cid, person_ids=[person_id]
            ).items()
        },
        group_history=group_history(session, context_id=cid, person_id=person_id),
        competencies=competencies,
        competency_by_id=competency_by_id,
        # Only a competency of this course: the id comes from the LMS's gradebook column.
        reviewed=competency_by_id.get(reviewed_competency_id or 0),
        assessable=open_to_evidence,
        handed_in=handed_in,
        levels=current_levels(session, context_id=cid, person_id=person_id),
        evidence_by_competency=by_competency,
        recorders=recorders,
        corrected=corrected,
        scale=get_or_create_scale(session, context_id=cid),
        goal_statuses=GOAL_STATUS_LABELS,
        source_labels=SOURCE_LABELS,
        career_clusters=list(CareerCluster),
        modalities=list(Modality),
        profile_form=PROFILE_FORM,
        today=today(),
        notice=notice_text(
            NOTICES,
            competency=isolate(f"{closed_on.code} · {closed_on.title}")
            if closed_on
            else "that competency",
        ),
        errors=list(errors or []),
        draft=draft,
    )


def student_review_page(ctx: LaunchContext, person_id: int, competency_id: int | None) -> str:
    """A teacher's submission review from the LMS gradebook: the student's page, with the
    column's competency pointed out."""
    set_current_launch(ctx)
    set_history_url("courses.student", person_id=person_id)
    return _student_page(person_id, reviewed_competency_id=competency_id)


def student_page_with_errors(person_id: int, errors: Sequence[str | Refusal]) -> tuple[str, int]:
    """Roll back and show the student's page with what went wrong (for other blueprints), the
    refused form filled in as the teacher typed it, so nothing they wrote is lost; a `Refusal`
    marks the field it is about."""
    db_session().rollback()
    set_history_url("courses.student", person_id=person_id)
    kind = DRAFT_FORMS.get(request.endpoint or "")
    draft: dict[str, object] | None = {"kind": kind, "values": request.form} if kind else None
    return _student_page(person_id, errors=errors, draft=draft), 400


def back_to_student(person_id: int, notice: str, **values: int) -> Response:
    """Back to the student's page with a success message (`values` fill its counts and ids)."""
    return redirect(
        launch_url("courses.student", person_id=person_id, notice=notice, **values), 303
    )


@bp.record_once
def _register(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    app.extensions.setdefault(REVIEW_PAGES, {})[TEACHER] = student_review_page


@bp.get("/students/<int:person_id>")
@require_role(TEACHER)
def student(person_id: int) -> str:
    """Profile, goals, check-ins, choices and evidence of one student, for the teacher."""
    return _student_page(person_id)


@bp.post("/students/<int:person_id>/profile")
@require_role(TEACHER)
def save_profile(person_id: int) -> Response | tuple[str, int]:
    """Save the profile fields the teacher changed, the teacher-only ones included."""
    course = current_course()
    check_students(course.context_id, [person_id])
    session = db_session()
    try:
        with domain_errors():
            conflict = save_profile_form(
                session,
                context_id=course.context_id,
                person_id=person_id,
                editor_is_teacher=True,
                form=request.form,
                page=PROFILE_FORM,
            )
    except ValueError as err:
        return student_page_with_errors(person_id, [str(err)])
    if conflict is not None:
        session.rollback()
        set_history_url("courses.student", person_id=person_id)
        draft: dict[str, object] = {"kind": "profile", "values": conflict.values}
        return _student_page(person_id, conflict.errors, draft), 400
    session.commit()
    return back_to_student(person_id, "profile")


@bp.post("/students/<int:person_id>/goals")
@require_role(TEACHER)
def save_goal(person_id: int) -> Response | tuple[str, int]:
    """Add a goal, or (with goal_id) change one of this student's goals (the very same add
    form sent again stores nothing and says so)."""
    course = current_course()
    check_students(course.context_id, [person_id])
    session = db_session()
    form = request.form
    goal_id = form.get("goal_id", "").strip()
    wanted = parse_id(goal_id) if goal_id else None
    prefix = f"goal-{wanted}" if wanted else "goal-new"
    try:
        with in_field(f"{prefix}-date"):
            target = parse_date(
                form.get("target_date"),
                label="The target date",
                latest=date_limits().latest_target,
            )
        status = GoalStatus.NOT_STARTED
        if wanted:
            with in_field(f"{prefix}-status"):
                status = GoalStatus(form.get("status", GoalStatus.NOT_STARTED.value))
        if not wanted and form_sent_again(session):
            return back_to_student(person_id, "already_saved")
        # What the goal services refuse besides is the goal's words (empty, a NUL, a repeat).
        with domain_errors(), in_field(f"{prefix}-text"):
            if wanted:
                _check_goal_of(course.context_id, person_id, wanted)
                update_goal(
                    session,
                    context_id=course.context_id,
                    goal_id=wanted,
                    editor_id=course.teacher_id,
                    editor_is_teacher=True,
                    text=form.get("text", ""),
                    target_date=target,
                    status=status,
                )
            else:
                add_goal(
                    session,
                    context_id=course.context_id,
                    person_id=person_id,
                    text=form.get("text", ""),
                    target_date=target,
                    created_by_id=course.teacher_id,
                    editor_is_teacher=True,
                )
    except ValueError as err:
        return student_page_with_errors(person_id, [refusal(err)])
    session.commit()
    return back_to_student(person_id, "goal")


def _check_goal_of(context_id: int, person_id: int, goal_id: int) -> None:
    """A goal id posted from this student's page must be one of this student's goals (the
    services check the course; the page names the student)."""
    owned = list_goals(db_session(), context_id=context_id, person_id=person_id)
    if goal_id not in {g.id for g in owned}:
        raise LookupError(goal_id)


@bp.post("/students/<int:person_id>/goals/<int:goal_id>/delete")
@require_role(TEACHER)
def delete_student_goal(person_id: int, goal_id: int) -> Response | tuple[str, int]:
    """Delete one of this student's goals (one set by mistake): it leaves the family report."""
    course = current_course()
    check_students(course.context_id, [person_id])
    session = db_session()
    try:
        with domain_errors():
            _check_goal_of(course.context_id, person_id, goal_id)
            delete_goal(
                session,
                context_id=course.context_id,
                goal_id=goal_id,
                editor_id=course.teacher_id,
                editor_is_teacher=True,
            )
    except ValueError as err:
        return student_page_with_errors(person_id, [str(err)])
    session.commit()
    return back_to_student(person_id, "goal_deleted")


@bp.post("/students/<int:person_id>/check-ins")
@require_role(TEACHER)
def save_check_in(person_id: int) -> Response | tuple[str, int]:
    """Record a check-in held with the student (the same one posted again within seconds, a
    double click, is stored once)."""
    course = current_course()
    check_students(course.context_id, [person_id])
    session = db_session()
    form = request.form
    try:
        with in_field("ci-date"):
            held_on = parse_date(form.get("held_on"), label="The date") or today()
            if held_on > today() + timedelta(days=1):  # a teacher east of the course's zone
                raise ValueError(
                    "A check-in records a conversation already held: its date cannot be in "
                    "the future."
                )
        if form_sent_again(session):
            return back_to_student(person_id, "already_saved")
        with domain_errors():
            lock_profile(session, context_id=course.context_id, person_id=person_id)
            check_in = add_check_in(
                session,
                context_id=course.context_id,
                person_id=person_id,
                author_id=course.teacher_id,
                held_on=held_on,
                note=form.get("note", ""),
                next_steps=form.get("next_steps", ""),
                is_private=form.get("is_private") == "on",
            )
            # A form without its nonce (a page from before it had one): a double click.
            again = form_nonce() is None and earlier_same_check_in(
                session, check_in=check_in, since=utcnow() - DOUBLE_SUBMIT
            )
            if again:
                session.delete(check_in)
                session.flush()
    except ValueError as err:
        fields = {"note": "ci-note", "next_steps": "ci-next"}
        return student_page_with_errors(person_id, [refusal(err, fields)])
    session.commit()
    return back_to_student(person_id, "already_saved" if again else "check_in")
