"""The teacher's mastery scale editor: levels, calculation method, self-assessment, and what a
save changed. Routes of the mastery blueprint (mastery.views), apart from the evidence pages
because the scale form has its own parsing and its own stale-page guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask import redirect, render_template, request
from werkzeug.wrappers import Response

from lti_app.competencies.queries import list_competencies
from lti_app.courses.common import (
    TEACHER,
    FieldError,
    Refusal,
    current_course,
    in_field,
    parse_points,
    refusal,
)
from lti_app.courses.recording import queue_scores
from lti_app.courses.time_zone import set_time_zone, time_zone_setting
from lti_app.courses.views import notice_text
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.errors import InvalidScaleError
from lti_app.mastery.models import MasteryScale
from lti_app.mastery.scale_saving import StaleScaleError, save_settings, settings_of
from lti_app.mastery.scales import MAX_LEVELS, get_or_create_scale
from lti_app.mastery.services import MasteryChange
from lti_app.mastery.views import bp
from lti_app.pathways.relocking import mastery_snapshot
from lti_app.pathways.views.warnings import LossWarning, unconfirmed_loss
from lti_app.roster.services import list_students
from lti_app.timezones import NAME_MAX_LENGTH
from lti_app.web import db_session, launch_url, require_role, set_history_url, settings

METHOD_LABELS = {
    CalculationMethod.DECAYING_AVERAGE: "Decaying average (the newest result weighs most)",
    CalculationMethod.WEIGHTED_AVERAGE: "Weighted average (newest result against the average "
    "of the others)",
    CalculationMethod.N_TIMES: "n times (mastery reached n times)",
    CalculationMethod.MOST_RECENT: "Most recent result",
    CalculationMethod.HIGHEST: "Highest result",
    CalculationMethod.AVERAGE: "Average of all results",
}
METHODS = [method.value for method in METHOD_LABELS]
"""The calculation methods in the order the page lists them."""
EXTRA_LEVEL_ROWS = 2
DEFAULT_COLOUR = "#4a5563"
MAX_ROWS = 200
"""The most rows a posted scale form is read for; a real one has MAX_LEVELS + 2."""


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
    errors: Sequence[str | Refusal] = (),
    status: int = 200,
    *,
    stale: bool = False,
    zone_typed: str | None = None,
    losing: LossWarning | None = None,
) -> tuple[str, int]:
    """The scale editor: the stored settings, or after a refused save what was typed, with
    `losing`: what the typed settings would take from students, for the teacher to confirm.

    The form carries the stored settings it is shown with, even when it holds what was typed:
    saving it again means "replace what is in force now". After a refused time zone,
    `zone_typed` is what was picked and the scale form shows the stored settings.
    """
    course = current_course()
    scale = get_or_create_scale(db_session(), context_id=course.context_id)
    typed = request.method == "POST" and zone_typed is None
    context = course.ctx.context
    zone = time_zone_setting(
        chosen=context.time_zone if context is not None else None,
        from_lms=context.lms_time_zone if context is not None else None,
        default=settings().default_timezone,
    )
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
            notice="" if request.method == "POST" else notice_text(NOTICES),
            zone=zone,
            zone_picked=zone.chosen if zone_typed is None else zone_typed,
            losing=losing.lines if losing else [],
            warned=losing,
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


def _posted_levels() -> tuple[list[tuple[str, Decimal, str, bool]], list[int]]:
    """The levels the form sent, lowest first, and the row each came from."""
    form = request.form
    mastery = form.get("mastery", "")
    rows = []
    row_of = []
    count = _optional_int(form.get("rows"), "The number of rows") or 0
    # Every row the form says it has, up to a bound: a scale longer than MAX_LEVELS is refused
    # by the scale's own check rather than cut short here without a word.
    for i in range(min(count, MAX_ROWS)):
        name = form.get(f"level-{i}-name", "").strip()
        points_text = form.get(f"level-{i}-points", "").strip()
        if not name and not points_text:
            continue  # an empty row removes a level (or adds none)
        if not name:
            raise FieldError(f"Level {i + 1} needs a name.", f"level-{i}-name")
        try:
            points = parse_points(points_text)
        except ValueError as err:
            raise FieldError(
                f"The points of “{name}” are not a number.", f"level-{i}-points"
            ) from err
        colour = form.get(f"level-{i}-colour", DEFAULT_COLOUR).strip()
        rows.append((name, points, colour, mastery == str(i)))
        row_of.append(i)
    return rows, row_of


def _scale_refusal(err: ValueError, row_of: Sequence[int]) -> Refusal:
    """The refusal of a scale save, naming the field it is about: the domain names a level by
    its place among the levels sent, which skip the form's empty rows."""
    if not isinstance(err, InvalidScaleError) or err.about is None:
        return refusal(err)
    if err.about in ("weight", "n"):
        return Refusal(str(err), err.about)
    if err.about == "mastery":  # none or several marked: the column of mastery buttons
        return Refusal(str(err), f"level-{row_of[0] if row_of else 0}-mastery")
    if err.level is not None and err.level < len(row_of):
        return Refusal(str(err), f"level-{row_of[err.level]}-{err.about}")
    return refusal(err)


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
    row_of: list[int] = []
    try:
        try:
            method = CalculationMethod(form.get("method", ""))
        except ValueError as err:
            raise FieldError("Choose a calculation method.", f"method-{METHODS[0]}") from err
        with in_field("weight"):
            weight = _optional_int(form.get("weight"), "The weight")
        with in_field("n"):
            n = _optional_int(form.get("n"), "n")
        levels, row_of = _posted_levels()
        # A stricter threshold or another method can take mastery away, and with it steps
        # students started: read what they hold first, so the teacher is asked before it goes
        # (and, once they confirm, that it takes no more than they were asked about).
        before = mastery_snapshot(session, context_id=course.context_id)
        saved = save_settings(
            session,
            context_id=course.context_id,
            shown=form.get("shown"),
            method=method,
            weight=weight,
            n=n,
            counts_self_assessment=form.get("counts_self_assessment") == "on",
            levels=levels,
        )
        losing = unconfirmed_loss(course.context_id, before)
        if not saved.repeated:  # a repeat's scores were queued by the save it repeats
            queue_scores(session, saved.changes)
    except StaleScaleError:
        session.rollback()
        return _scale_page([STALE_SCALE], 409, stale=True)
    except ValueError as err:
        session.rollback()
        return _scale_page([_scale_refusal(err, row_of)], 400)
    if losing:
        session.rollback()
        return _scale_page(losing=losing)
    session.commit()
    notice = REPEATED_SAVE if saved.repeated else SAVED
    # The report of what this save changed cannot be had again by a GET, so it answers the
    # POST itself; its history entry gets the scale page's address (frame.js), so Back and
    # reload in the LMS frame open the scale instead of "Confirm form resubmission" or a
    # second save.
    set_history_url("mastery.scale")
    return _changes_page(saved.changes, notice), 200


SAVED = "The mastery scale is saved and every level is recomputed."
NOTICES = {
    "time_zone": "The time zone is saved: the course's dates are now shown in it.",
}


@bp.post("/scale/time-zone")
@require_role(TEACHER)
def save_time_zone() -> Response | tuple[str, int]:
    """Choose the time zone the course's dates are in (or follow the LMS's again)."""
    course = current_course()
    session = db_session()
    picked = request.form.get("time_zone", "")[:NAME_MAX_LENGTH]
    try:
        set_time_zone(session, context_id=course.context_id, name=picked)
    except ValueError as err:
        session.rollback()
        return _scale_page([Refusal(str(err), "time-zone-choice")], 400, zone_typed=picked)
    session.commit()
    return redirect(launch_url("mastery.scale", notice="time_zone", _anchor="time-zone"), 303)


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
