"""How stored values read on a page: times in the course's time zone, and names and titles
from the LMS or a teacher kept in their own writing direction. Template filters `local` and
`isolate`, and domain messages as sentences (`sentence`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from flask import Flask, g

from lti_app import timezones
from lti_app.db import utcnow
from lti_app.web import current_launch_or_none, settings

EARLIEST_DATE = date(2000, 1, 1)
"""No school records evidence, a conversation or a goal before this: an earlier year is a
slip (Chrome's date field takes a year typed as "26" for the year 26)."""
GOAL_YEARS_AHEAD = 5
"""How far ahead a goal's target date may be; further is a slip of the year."""


def course_zone() -> ZoneInfo:
    """The time zone of the current launch's course (lti_app.timezones); the school's default
    on a page without a course."""
    ctx = current_launch_or_none()
    context = ctx.context if ctx is not None else None
    names = (
        context.time_zone if context is not None else None,
        context.lms_time_zone if context is not None else None,
        settings().default_timezone,
    )
    # A class page converts a few hundred dates: the zone is looked up once per request (by
    # the names it comes from, so a zone saved during the request is not missed).
    known = g.get("_course_zone")
    if known is not None and known[0] == names:
        return cast(ZoneInfo, known[1])
    zone = timezones.course_zone(chosen=names[0], from_lms=names[1], default=names[2])
    g._course_zone = (names, zone)
    return zone


def local_time(value: date | datetime | None) -> date | datetime | None:
    """A stored UTC time in the course's zone, for pages (`value|local` in a template)."""
    return timezones.in_zone(value, course_zone())


@dataclass(frozen=True)
class DateLimits:
    """What the date fields accept (their min and max, checked again on saving)."""

    earliest: date
    latest_observed: date
    """Evidence and check-ins happened already: today in the course, or tomorrow for a teacher
    east of the course's zone, already on the next day."""
    latest_target: date


def date_limits() -> DateLimits:
    """The dates the forms accept today, in the course's zone (`date_limits()` in a template)."""
    today = timezones.local_date(utcnow(), course_zone())
    years_on = today.replace(year=today.year + GOAL_YEARS_AHEAD, day=min(today.day, 28))
    return DateLimits(EARLIEST_DATE, today + timedelta(days=1), years_on)


FIRST_STRONG_ISOLATE, POP_DIRECTIONAL_ISOLATE = "\u2068", "\u2069"


def isolate(value: object) -> str:
    """Wrap a name or title from the LMS or a teacher in Unicode FSI ... PDI, for places where
    <bdi> cannot go (<title>, attribute values such as aria-label): a Hebrew or Arabic name
    followed by Latin text or digits then keeps its own direction and order. Not Markup: the
    template still escapes it."""
    return f"{FIRST_STRONG_ISOLATE}{value}{POP_DIRECTIONAL_ISOLATE}"


def sentence(message: object) -> str:
    """A domain message ('a code is required') as a sentence for the page: capitalised and
    ended, so a screen reader does not run it into the "Go to the field" link after it."""
    text = str(message).strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def init_display(app: Flask) -> None:
    app.jinja_env.filters["isolate"] = isolate
    app.jinja_env.filters["sentence"] = sentence
    app.jinja_env.filters["local"] = local_time
    app.jinja_env.globals["date_limits"] = date_limits
