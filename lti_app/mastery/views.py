"""Teacher pages for mastery: the scale, evidence for one or many students, corrections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import cast

from flask import Blueprint, Flask, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from lti_app.competencies.services import get_competency, list_competencies
from lti_app.courses.common import (
    TEACHER,
    check_students,
    current_course,
    domain_errors,
    form_ids,
    observed_at_from,
    parse_date,
    parse_id,
    parse_points,
    today,
)
from lti_app.courses.queries import person_names
from lti_app.courses.recording import queue_scores, record_and_close
from lti_app.courses.views import (
    SOURCE_LABELS,
    assessable,
    back_to_student,
    notice_text,
    student_page_with_errors,
)
from lti_app.db import DATABASE_ID_MAX
from lti_app.errors import NotFoundError
from lti_app.insights.views import picked_students_with_group
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.models import MasteryScale
from lti_app.mastery.scale_saving import StaleScaleError, save_settings, settings_of
from lti_app.mastery.scales import MAX_LEVELS, get_or_create_scale
from lti_app.mastery.services import (
    MasteryChange,
    correct_evidence,
    get_evidence,
    withdraw_evidence,
)
from lti_app.roster.services import list_students
from lti_app.tool.models import MembershipStatus
from lti_app.web import add_nav_item, db_session, launch_url, require_role

bp = Blueprint("mastery", __name__, url_prefix="/mastery")

NOTICES = {"bulk": "Evidence recorded for {n} student(s)."}
METHOD_LABELS = {
    CalculationMethod.DECAYING_AVERAGE: "Decaying average (the newest result weighs most)",
    CalculationMethod.WEIGHTED_AVERAGE: "Weighted average (newest result against the average "
    "of the others)",
    CalculationMethod.N_TIMES: "n times (mastery reached n times)",
    CalculationMethod.MOST_RECENT: "Most recent result",
    CalculationMethod.HIGHEST: "Highest result",
    CalculationMethod.AVERAGE: "Average of all results",
}
EXTRA_LEVEL_ROWS = 2
DEFAULT_COLOUR = "#4a5563"
MAX_ROWS = 200
"""The most rows a posted scale form is read for; a real one has MAX_LEVELS + 2."""
ACTIVE = MembershipStatus.ACTIVE


@bp.record_once
def _register(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    add_nav_item(app, "mastery.bulk", "Record evidence", (TEACHER,), order=30)
    add_nav_item(app, "mastery.scale", "Mastery scale", (TEACHER,), order=40)


# --- evidence for one student -----------------------------------------------------------------


LEFT_MESSAGE = "{name} has left the course, so no new evidence can be recorded for them."


def _students_who_left(context_id: int, person_ids: Sequence[int]) -> list[str]:
    """Names of the students here whose membership is no longer active (the LMS keeps their
    grades read-only, so new evidence would only fail at passback)."""
    everyone = list_students(db_session(), context_id=context_id, include_inactive=True)
    wanted = set(person_ids)
    return [s.name for s in everyone if s.person_id in wanted and s.status != ACTIVE]


@bp.post("/students/<int:person_id>/evidence")
@require_role(TEACHER)
def record(person_id: int) -> Response | tuple[str, int]:
    """Record one observation for a student (and close the pathway work it answers)."""
    course = current_course()
    if not 0 < person_id <= DATABASE_ID_MAX:
        raise NotFoundError("That student is not in this course.")
    check_students(course.context_id, [person_id])
    form = request.form
    left = _students_who_left(course.context_id, [person_id])
    if left:
        return student_page_with_errors(person_id, [LEFT_MESSAGE.format(name=left[0])])
    try:
        competency_id = parse_id(form.get("competency_id"))
        points = parse_points(form.get("points"))
        observed = observed_at_from(parse_date(form.get("observed_on"), label="The date"))
        with domain_errors():
            record_and_close(
                db_session(),
                context_id=course.context_id,
                competency_id=competency_id,
                student_ids=[person_id],
                points=points,
                note=form.get("note", ""),
                recorded_by_id=course.teacher_id,
                observed_at=observed,
            )
    except ValueError as err:
        return student_page_with_errors(person_id, [str(err)])
    db_session().commit()
    return back_to_student(person_id, "evidence")


# --- evidence for several students ------------------------------------------------------------


def _bulk_page(errors: Sequence[str] = (), status: int = 200) -> tuple[str, int]:
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
        left = _students_who_left(course.context_id, ticked)
        if left:
            return _bulk_page([LEFT_MESSAGE.format(name=name) for name in left], 400)
        student_ids = picked_students_with_group(course.context_id, list(ticked))
        # A saved group may still hold students who have left since; they are not recorded.
        active = {s.person_id for s in list_students(session, context_id=course.context_id)}
        student_ids = [p for p in student_ids if p in active]
    try:
        if not student_ids:
            raise ValueError("Tick at least one student.")
        competency_id = parse_id(form.get("competency_id"))
        points = parse_points(form.get("points"))
        observed = observed_at_from(parse_date(form.get("observed_on"), label="The date"))
        with domain_errors():
            record_and_close(
                session,
                context_id=course.context_id,
                competency_id=competency_id,
                student_ids=student_ids,
                points=points,
                note=form.get("note", ""),
                recorded_by_id=course.teacher_id,
                observed_at=observed,
            )
    except ValueError as err:
        session.rollback()
        return _bulk_page([str(err)], 400)
    session.commit()
    return redirect(launch_url("mastery.bulk", notice="bulk", n=len(student_ids)), 303)


# --- one piece of evidence: history, correction, withdrawal -----------------------------------


def _evidence_page(evidence_id: int, errors: Sequence[str] = ()) -> str:
    course = current_course()
    session = db_session()
    with domain_errors():
        evidence = get_evidence(session, context_id=course.context_id, evidence_id=evidence_id)
        competency = get_competency(
            session, context_id=course.context_id, competency_id=evidence.competency_id
        )
    people = {evidence.person_id, evidence.recorded_by_id}
    people.update(r.changed_by_id for r in evidence.revisions)
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
        points = parse_points(form.get("points"))
        day = parse_date(form.get("observed_on"), label="The date")
        # The same day keeps the exact time it was observed at.
        observed = None if day == current.observed_at.date() else observed_at_from(day)
        with domain_errors():
            changes = correct_evidence(
                session,
                context_id=course.context_id,
                evidence_id=evidence_id,
                points=points,
                note=form.get("note"),
                observed_at=observed,
                changed_by_id=course.teacher_id,
            )
        queue_scores(session, changes)
    except ValueError as err:
        session.rollback()
        return _evidence_page(evidence_id, [str(err)]), 400
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
            changes = withdraw_evidence(
                session,
                context_id=course.context_id,
                evidence_id=evidence_id,
                changed_by_id=course.teacher_id,
            )
        queue_scores(session, changes)
    except ValueError as err:
        session.rollback()
        return _evidence_page(evidence_id, [str(err)]), 400
    session.commit()
    return back_to_student(person_id, "withdrawn")


# --- the scale --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelRow:
    """One row of the scale editor, as text."""

    name: str
    points: str
    colour: str
    is_mastery: bool


def _stored_rows(scale: MasteryScale) -> list[LevelRow]:
    rows = [
        LevelRow(lv.name, str(lv.points), lv.colour.lower(), lv.is_mastery) for lv in scale.levels
    ]
    # Empty rows to add levels, as many as the scale has room for.
    extra = max(0, min(EXTRA_LEVEL_ROWS, MAX_LEVELS - len(scale.levels)))
    return rows + [LevelRow("", "", DEFAULT_COLOUR, False)] * extra


def _typed_rows() -> list[LevelRow]:
    """The rows as the teacher left them in a refused form, so nothing typed is lost."""
    form = request.form
    try:
        count = _optional_int(form.get("rows"), "rows") or 0
    except ValueError:
        count = MAX_LEVELS + EXTRA_LEVEL_ROWS
    mastery = form.get("mastery", "")

    def typed(name: str, default: str = "") -> str:
        # A NUL cannot be saved; it is named in the error, not echoed into the page.
        return form.get(name, default).replace("\x00", "")

    return [
        LevelRow(
            typed(f"level-{i}-name"),
            typed(f"level-{i}-points"),
            typed(f"level-{i}-colour", DEFAULT_COLOUR),
            mastery == str(i),
        )
        for i in range(max(0, min(count, MAX_ROWS)))
    ]


def _scale_page(
    errors: Sequence[str] = (), status: int = 200, *, stale: bool = False
) -> tuple[str, int]:
    """The scale editor: the stored settings, or after a refused save what was typed.

    The form carries the stored settings it is shown with, even when it holds what was typed:
    saving it again means "replace what is in force now".
    """
    course = current_course()
    scale = get_or_create_scale(db_session(), context_id=course.context_id)
    typed = request.method == "POST"
    form = request.form
    values = {
        "method": form.get("method", "") if typed else scale.method.value,
        "weight": form.get("weight", "") if typed else str(scale.weight),
        "n": form.get("n", "") if typed else str(scale.n),
        "counts_self_assessment": (
            form.get("counts_self_assessment") == "on" if typed else scale.counts_self_assessment
        ),
    }
    return (
        render_template(
            "mastery/scale.html",
            ctx=course.ctx,
            title="Mastery scale",
            scale=scale,
            shown=settings_of(scale).token(),
            rows=_typed_rows() if typed else _stored_rows(scale),
            values={
                k: v.replace("\x00", "") if isinstance(v, str) else v for k, v in values.items()
            },
            methods=METHOD_LABELS,
            stale=stale,
            errors=list(errors),
            notice="",
        ),
        status,
    )


@bp.get("/scale")
@require_role(TEACHER)
def scale() -> tuple[str, int]:
    """Levels (names, points, colours, mastery), calculation method, self-assessment."""
    return _scale_page()


WHOLE_NUMBER_BOUND = 10**9
"""Beyond any setting's range; larger numbers are refused by the range check, not computed."""


def _optional_int(value: str | None, label: str) -> int | None:
    """A whole number from a form, or None when empty.

    A number field may send "70.0" or "7e1" for what the teacher typed as seventy; that is 70.
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        number = Decimal(text)
        whole = number.is_finite() and number == number.to_integral_value()
    except (InvalidOperation, ValueError):
        whole = False
    if not whole:
        raise ValueError(f"{label} must be a whole number.")
    bound = Decimal(WHOLE_NUMBER_BOUND)
    return int(number.max(-bound).min(bound))


def _posted_levels() -> list[tuple[str, Decimal, str, bool]]:
    form = request.form
    mastery = form.get("mastery", "")
    rows = []
    count = _optional_int(form.get("rows"), "The number of rows") or 0
    # Every row the form says it has, up to a bound: a scale longer than MAX_LEVELS is refused
    # by the scale's own check rather than cut short here without a word.
    for i in range(min(count, MAX_ROWS)):
        name = form.get(f"level-{i}-name", "").strip()
        points_text = form.get(f"level-{i}-points", "").strip()
        if not name and not points_text:
            continue  # an empty row removes a level (or adds none)
        if not name:
            raise ValueError(f"Level {i + 1} needs a name.")
        try:
            points = parse_points(points_text)
        except ValueError as err:
            raise ValueError(f"The points of “{name}” are not a number.") from err
        colour = form.get(f"level-{i}-colour", DEFAULT_COLOUR).strip()
        rows.append((name, points, colour, mastery == str(i)))
    return rows


STALE_SCALE = (
    "The mastery scale was saved by someone else (or in another tab) after this page was "
    "opened, so your changes were not saved: they would have undone that change. The scale now "
    "in force is shown below, and the form still holds what you typed: check it against the "
    "scale in force, then save again."
)
REPEATED_SAVE = (
    "These settings were already saved a moment ago (was Save pressed twice, or were they saved "
    "in another tab?), so nothing more changed. This is what that save changed."
)


@bp.post("/scale")
@require_role(TEACHER)
def save_scale() -> tuple[str, int]:
    """Change the scale, recompute every level, and show the teacher what changed."""
    course = current_course()
    session = db_session()
    form = request.form
    try:
        try:
            method = CalculationMethod(form.get("method", ""))
        except ValueError as err:
            raise ValueError("Choose a calculation method.") from err
        saved = save_settings(
            session,
            context_id=course.context_id,
            shown=form.get("shown"),
            method=method,
            weight=_optional_int(form.get("weight"), "The weight"),
            n=_optional_int(form.get("n"), "n"),
            counts_self_assessment=form.get("counts_self_assessment") == "on",
            levels=_posted_levels(),
        )
        if not saved.repeated:  # a repeat's scores were queued by the save it repeats
            queue_scores(session, saved.changes)
    except StaleScaleError:
        session.rollback()
        return _scale_page([STALE_SCALE], 409, stale=True)
    except ValueError as err:
        session.rollback()
        return _scale_page([str(err)], 400)
    session.commit()
    notice = REPEATED_SAVE if saved.repeated else SAVED
    return _changes_page(saved.changes, notice), 200


SAVED = "The mastery scale is saved and every level is recomputed."


def _changes_page(changes: list[MasteryChange], notice: str) -> str:
    course = current_course()
    session = db_session()
    competencies = {
        c.id: c
        for c in list_competencies(session, context_id=course.context_id, include_archived=True)
    }
    names = {
        s.person_id: s.name
        for s in list_students(session, context_id=course.context_id, include_inactive=True)
    }
    rows = sorted(
        changes,
        key=lambda ch: (names.get(ch.person_id, "").casefold(), ch.person_id, ch.competency_id),
    )
    return render_template(
        "mastery/scale_changed.html",
        ctx=course.ctx,
        title="What changed",
        changes=rows,
        names=names,
        competencies=competencies,
        scale=get_or_create_scale(session, context_id=course.context_id),
        errors=[],
        notice=notice,
    )
