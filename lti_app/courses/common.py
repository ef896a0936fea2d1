"""Helpers the teacher pages share: the launch's course, form parsing, domain errors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from flask import has_app_context, request

from lti_app.competencies.models import Competency
from lti_app.db import DATABASE_ID_MAX, utcnow
from lti_app.display import EARLIEST_DATE, course_zone
from lti_app.errors import AppError, NotFoundError, PermissionDeniedError
from lti_app.roster.services import student_ids_in_course
from lti_app.timezones import local_date
from lti_app.tool.services import LaunchContext
from lti_app.web import current_launch, db_session

TEACHER = "teacher"


@dataclass(frozen=True)
class Course:
    """The launch's course as teacher pages need it: the context id and the teacher's id."""

    ctx: LaunchContext
    context_id: int
    teacher_id: int


def current_course() -> Course:
    """The course of this (teacher) launch; a launch without a course is refused."""
    ctx = current_launch()
    if ctx.context is None:
        raise PermissionDeniedError("Open Pathways from a course to see this page.")
    return Course(ctx=ctx, context_id=ctx.context.id, teacher_id=ctx.person.id)


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn the domain's 'not in this course' and 'not allowed' into error pages."""
    try:
        yield
    except LookupError as err:
        raise NotFoundError(
            "That does not exist in this course. It may belong to another course."
        ) from err
    except PermissionError as err:
        raise PermissionDeniedError(str(err)) from err


@dataclass(frozen=True)
class Refusal:
    """What a refused form says, and the id of the field it is about (None: the whole form):
    the page marks that field invalid and links to it from the message."""

    message: str
    field: str | None = None

    def __str__(self) -> str:
        return self.message


class FieldError(ValueError):
    """A value a form sent, refused; `field` is the id of the field that holds it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@contextmanager
def in_field(field: str) -> Iterator[None]:
    """Refusals raised inside are about the form field with this id."""
    try:
        yield
    except FieldError:
        raise
    except ValueError as err:
        raise FieldError(str(err), field) from err


def refusal(err: ValueError, fields: Mapping[str, str] | None = None) -> Refusal:
    """`err` as a page shows it: with the field `in_field` named, else the field `fields`
    gives for what the domain says it refused (a mastery error's `about`)."""
    field = getattr(err, "field", None)
    if field is None and fields:
        field = fields.get(getattr(err, "about", None) or "")
    return Refusal(str(err), field)


def form_ids(name: str) -> list[int]:
    """The integer ids posted under `name` (checkboxes); anything else is a bad request."""
    return [parse_id(value) for value in request.form.getlist(name) if value.strip()]


def parse_id(value: str | None) -> int:
    try:
        number = int(str(value).strip())
    except ValueError as err:
        raise AppError("A field that should hold a number does not.") from err
    if number <= 0 or number > DATABASE_ID_MAX:
        raise NotFoundError("That does not exist in this course.")
    return number


def optional_id(value: str | None) -> int | None:
    return None if value is None or not value.strip() else parse_id(value)


def check_students(context_id: int, person_ids: Iterable[int]) -> list[int]:
    """Return the ids in order without repeats, or refuse if one is not a student here."""
    wanted = list(dict.fromkeys(person_ids))
    known = student_ids_in_course(db_session(), context_id=context_id, person_ids=wanted)
    if len(known) != len(wanted):
        raise NotFoundError("That student is not in this course.")
    return wanted


def parse_points(value: str | None) -> Decimal:
    """A level's points from a form; the domain checks the range."""
    try:
        points = Decimal((value or "").strip())
    except InvalidOperation as err:
        raise ValueError("Choose a level.") from err
    if not points.is_finite():
        raise ValueError("Choose a level.")
    return points


def parse_date(value: str | None, *, label: str, latest: date | None = None) -> date | None:
    """A date from a form; None if empty. A year before 2000, or a date after `latest`, is
    refused as a slip of the year: saved, it would sort first (or last) for good."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError as err:
        raise ValueError(f"{label} is not a date (YYYY-MM-DD).") from err
    if day < EARLIEST_DATE or (latest is not None and day > latest):
        raise ValueError(f"{label} reads {day.isoformat()}: please check the year.")
    return day


@dataclass(frozen=True)
class Observed:
    """When an observation counts as made: the day (as typed) and a time on it."""

    at: datetime
    on: date


def observed_from(value: date | None) -> Observed:
    """The observation of a day typed on a form (None: today): the day itself, kept as typed,
    and the time it counts as made: now for today, noon of that day in the course's time zone
    for an earlier day, never later than now.

    Today (the date the forms offer, `today()`) means now: stamped noon, evidence typed this
    afternoon would count as older than work marked done (undated, so now) this morning, and
    "most recent" would ignore it. A teacher east of the course's zone may be a day ahead of
    it; their 'today' must still be accepted, and is kept as the day they typed.
    """
    now = utcnow()
    zone = _zone()
    local_today = local_date(now, zone)
    if value is None:
        return Observed(now, local_today)
    if value > local_today + timedelta(days=1):
        raise ValueError("The observed date cannot be in the future.")
    if value < EARLIEST_DATE:
        raise ValueError(f"The observed date reads {value.isoformat()}: please check the year.")
    if value >= local_today:
        return Observed(now, value)
    return Observed(min(datetime.combine(value, time(12), tzinfo=zone).astimezone(UTC), now), value)


def today() -> date:
    """Today's date in the course's time zone: what date fields offer and check against."""
    return local_date(utcnow(), _zone())


def _zone() -> ZoneInfo:
    # Outside an app (the domain tests) there is no course and no school: UTC, as stored.
    return course_zone() if has_app_context() else ZoneInfo("UTC")


def assessable(competencies: list[Competency]) -> list[Competency]:
    """Competencies evidence can go on: not archived and without active sub-competencies."""
    parents = {c.parent_id for c in competencies if c.parent_id is not None and not c.is_archived}
    return [c for c in competencies if not c.is_archived and c.id not in parents]
