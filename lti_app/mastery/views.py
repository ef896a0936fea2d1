"""Teacher pages for mastery: evidence for one or many students, corrections; the blueprint.

The scale editor is in `scale_views`, on this same blueprint.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import cast

from flask import Blueprint, Flask, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from lti_app.competencies.queries import get_competency, list_competencies
from lti_app.courses.common import (
    TEACHER,
    FieldError,
    Observed,
    Refusal,
    assessable,
    check_students,
    current_course,
    domain_errors,
    form_ids,
    in_field,
    observed_from,
    parse_date,
    parse_id,
    parse_points,
    refusal,
    today,
)
from lti_app.courses.queries import person_names
from lti_app.courses.recording import queue_scores, record_and_close
from lti_app.courses.student_views import SOURCE_LABELS, back_to_student, student_page_with_errors
from lti_app.courses.views import notice_text
from lti_app.db import DATABASE_ID_MAX
from lti_app.errors import NotFoundError
from lti_app.form_once import ALREADY_SAVED, form_nonce, form_sent_again
from lti_app.insights.views import picked_students_with_group
from lti_app.mastery.scales import get_or_create_scale
from lti_app.mastery.services import correct_evidence, get_evidence, withdraw_evidence
from lti_app.pathways.relocking import mastery_snapshot
from lti_app.pathways.retrying import closed_work_offered_again, students_offered_again
from lti_app.pathways.views.warnings import LossWarning, unconfirmed_loss
from lti_app.roster.services import list_students, students_who_left
from lti_app.web import add_nav_item, db_session, launch_url, require_role

bp = Blueprint("mastery", __name__, url_prefix="/mastery")

NOTICES = {"bulk": "Evidence recorded for {n} student(s).", "already_saved": ALREADY_SAVED}


@bp.record_once
def _register(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    add_nav_item(app, "mastery.bulk", "Record evidence", (TEACHER,), order=30)
    add_nav_item(app, "mastery.scale", "Mastery scale", (TEACHER,), order=40)


# --- evidence for one student -----------------------------------------------------------------


LEFT_MESSAGE = "{name} has left the course, so no new evidence can be recorded for them."


def _fields(prefix: str) -> dict[str, str]:
    """The ids of an evidence form's fields (`prefix`-points, ...) by the argument of
    `record_evidence` or `correct_evidence` each one gives, for a refusal to name its field."""
    return {
        "competency_id": f"{prefix}-competency",
        "points": f"{prefix}-points",
        "observed_at": f"{prefix}-date",
        "note": f"{prefix}-note",
    }


def _points_and_day(prefix: str) -> tuple[Decimal, Observed]:
    """The level and the day an evidence form sent; a refusal names its field."""
    form = request.form
    with in_field(f"{prefix}-points"):
        points = parse_points(form.get("points"))
    with in_field(f"{prefix}-date"):
        observed = observed_from(parse_date(form.get("observed_on"), label="The date"))
    return points, observed


@bp.post("/students/<int:person_id>/evidence")
@require_role(TEACHER)
def record(person_id: int) -> Response | tuple[str, int]:
    """Record one observation for a student (and close the pathway work it answers)."""
    course = current_course()
    if not 0 < person_id <= DATABASE_ID_MAX:
        raise NotFoundError("That student is not in this course.")
    check_students(course.context_id, [person_id])
    form = request.form
    left = students_who_left(db_session(), context_id=course.context_id, person_ids=[person_id])
    if left:
        return student_page_with_errors(person_id, [LEFT_MESSAGE.format(name=left[0])])
    try:
        competency_id = parse_id(form.get("competency_id"))
        points, observed = _points_and_day("rec")
        if form_sent_again(db_session()):
            return back_to_student(person_id, "already_saved")
        with domain_errors():
            recorded = record_and_close(
                db_session(),
                context_id=course.context_id,
                competency_id=competency_id,
                student_ids=[person_id],
                points=points,
                note=form.get("note", ""),
                recorded_by_id=course.teacher_id,
                observed_at=observed.at,
                observed_on=observed.on,
                form_checked=form_nonce() is not None,
            )
    except ValueError as err:
        return student_page_with_errors(person_id, [refusal(err, _fields("rec"))])
    db_session().commit()
    if not recorded.students:
        return back_to_student(person_id, "already_saved")
    if recorded.closed:
        # As the overview does: say what else the evidence closed (one level per competency),
        # and whether, below mastery, the student now gets another try at the step.
        again = closed_work_offered_again(
            db_session(), context_id=course.context_id, person_id=person_id, choices=recorded.closed
        )
        notice = "evidence_closed_again" if again else "evidence_closed"
        return back_to_student(person_id, notice, n=len(recorded.closed), competency=competency_id)
    return back_to_student(person_id, "evidence")


# --- evidence for several students ------------------------------------------------------------


def _bulk_page(errors: Sequence[str | Refusal] = (), status: int = 200) -> tuple[str, int]:
    course = current_course()
    session = db_session()
    form = request.form
    return (
        render_template(
            "mastery/bulk.html",
            ctx=course.ctx,
            title="Record evidence",
            students=list_students(session, context_id=course.context_id),
            competencies=assessable(list_competencies(session, context_id=course.context_id)),
            scale=get_or_create_scale(session, context_id=course.context_id),
            picked={int(v) for v in form.getlist("student") if v.isdecimal()},
            picked_group=int(group) if (group := form.get("group_id", "")).isdecimal() else None,
            form=form,
            today=today(),
            notice=notice_text(NOTICES),
            errors=list(errors),
        ),
        status,
    )


@bp.get("/evidence/bulk")
@require_role(TEACHER)
def bulk() -> tuple[str, int]:
    """Pick students, a competency and a level: one observation for all of them."""
    return _bulk_page()


@bp.post("/evidence/bulk")
@require_role(TEACHER)
def bulk_record() -> Response | tuple[str, int]:
    course = current_course()
    session = db_session()
    form = request.form
    if form.get("all") == "on":
        student_ids = [s.person_id for s in list_students(session, context_id=course.context_id)]
    else:
        ticked = check_students(course.context_id, form_ids("student"))
        left = students_who_left(db_session(), context_id=course.context_id, person_ids=ticked)
        if left:
            return _bulk_page([LEFT_MESSAGE.format(name=name) for name in left], 400)
        student_ids = picked_students_with_group(course.context_id, list(ticked))
        # A saved group may still hold students who have left since; they are not recorded.
        active = {s.person_id for s in list_students(session, context_id=course.context_id)}
        student_ids = [p for p in student_ids if p in active]
    try:
        if not student_ids:
            raise FieldError("Tick at least one student.", "all-students")
        competency_id = parse_id(form.get("competency_id"))
        points, observed = _points_and_day("bulk")
        if form_sent_again(session):
            return redirect(launch_url("mastery.bulk", notice="already_saved"), 303)
        with domain_errors():
            recorded = record_and_close(
                session,
                context_id=course.context_id,
                competency_id=competency_id,
                student_ids=student_ids,
                points=points,
                note=form.get("note", ""),
                recorded_by_id=course.teacher_id,
                observed_at=observed.at,
                observed_on=observed.on,
                form_checked=form_nonce() is not None,
            )
    except ValueError as err:
        session.rollback()
        return _bulk_page([refusal(err, _fields("bulk"))], 400)
    session.commit()
    if not recorded.students:
        return redirect(launch_url("mastery.bulk", notice="already_saved"), 303)
    # As the student's page does: say which students the evidence gives another try.
    again = students_offered_again(session, context_id=course.context_id, choices=recorded.closed)
    notice = launch_url(
        "mastery.bulk",
        notice="bulk",
        n=len(recorded.students),
        **({"again": 1} if again else {}),
    )
    return redirect(notice, 303)


# --- one piece of evidence: history, correction, withdrawal -----------------------------------


def _evidence_page(
    evidence_id: int,
    errors: Sequence[str | Refusal] = (),
    *,
    losing: LossWarning | None = None,
    withdrawing: bool = False,
) -> str:
    """The evidence page; `losing` is what the posted correction (or withdrawal, when
    `withdrawing`) would take from students, for the teacher to confirm."""
    course = current_course()
    session = db_session()
    with domain_errors():
        evidence = get_evidence(session, context_id=course.context_id, evidence_id=evidence_id)
        competency = get_competency(
            session, context_id=course.context_id, competency_id=evidence.competency_id
        )
    authors = [evidence.recorded_by_id, *(r.changed_by_id for r in evidence.revisions)]
    # An erased author is None: the page says Unknown.
    people = {evidence.person_id, *(a for a in authors if a is not None)}
    return render_template(
        "mastery/evidence.html",
        ctx=course.ctx,
        title="Evidence",
        evidence=evidence,
        competency=competency,
        names=person_names(session, person_ids=people),
        scale=get_or_create_scale(session, context_id=course.context_id),
        source_labels=SOURCE_LABELS,
        errors=list(errors),
        notice="",
        losing=losing.lines if losing else [],
        warned=losing,
        withdrawing=withdrawing,
    )


@bp.get("/evidence/<int:evidence_id>")
@require_role(TEACHER)
def evidence(evidence_id: int) -> str:
    """An observation with its history of corrections, and the forms to change it."""
    return _evidence_page(evidence_id)


@bp.post("/evidence/<int:evidence_id>/correct")
@require_role(TEACHER)
def correct(evidence_id: int) -> Response | tuple[str, int]:
    course = current_course()
    session = db_session()
    form = request.form
    with domain_errors():
        current = get_evidence(session, context_id=course.context_id, evidence_id=evidence_id)
    person_id = current.person_id
    try:
        with in_field("cor-points"):
            points = parse_points(form.get("points"))
        with in_field("cor-date"):
            day = parse_date(form.get("observed_on"), label="The date")
            # The same day keeps the exact time it was observed at.
            observed = None if day is None or day == current.observed_on else observed_from(day)
        # A correction downwards can take mastery away and lock a step the student started.
        before = mastery_snapshot(session, context_id=course.context_id)
        with domain_errors():
            changes = correct_evidence(
                session,
                context_id=course.context_id,
                evidence_id=evidence_id,
                points=points,
                note=form.get("note"),
                observed_at=observed.at if observed else None,
                observed_on=observed.on if observed else None,
                changed_by_id=course.teacher_id,
            )
        losing = unconfirmed_loss(course.context_id, before)
        queue_scores(session, changes)
    except ValueError as err:
        session.rollback()
        return _evidence_page(evidence_id, [refusal(err, _fields("cor"))]), 400
    if losing:
        session.rollback()
        return _evidence_page(evidence_id, losing=losing), 200
    session.commit()
    return back_to_student(person_id, "corrected")


@bp.post("/evidence/<int:evidence_id>/withdraw")
@require_role(TEACHER)
def withdraw(evidence_id: int) -> Response | tuple[str, int]:
    course = current_course()
    session = db_session()
    try:
        with domain_errors():
            person_id = get_evidence(
                session, context_id=course.context_id, evidence_id=evidence_id
            ).person_id
            before = mastery_snapshot(session, context_id=course.context_id)
            changes = withdraw_evidence(
                session,
                context_id=course.context_id,
                evidence_id=evidence_id,
                changed_by_id=course.teacher_id,
            )
        losing = unconfirmed_loss(course.context_id, before)
        queue_scores(session, changes)
    except ValueError as err:
        session.rollback()
        return _evidence_page(evidence_id, [str(err)]), 400
    if losing:
        session.rollback()
        return _evidence_page(evidence_id, losing=losing, withdrawing=True), 200
    session.commit()
    return back_to_student(person_id, "withdrawn")


# The scale pages (mastery.scale_views) are routes of this blueprint too: importing them here
# registers them wherever the blueprint is (Flask's "Larger Applications" pattern).
from lti_app.mastery import scale_views  # noqa: E402, F401
