"""A course's time zone, and stored UTC times seen in it.

Times are stored in UTC (DESIGN.md); a school reads dates in its own zone. "Today", an overdue
goal, and the date a page, report or export shows for a stored time are all decided in the
course's zone: the teacher's choice, else the zone the LMS sent with a teacher's launch, else
the school's default (LTI_APP_DEFAULT_TIMEZONE). Pure: no Flask, no database.

The zone data comes from the `tzdata` package where the system has none (/usr/share/zoneinfo
is missing from slim containers and Windows).
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time
from typing import overload
from zoneinfo import ZoneInfo, available_timezones

NAME_MAX_LENGTH = 64
"""Longer than any IANA name (the longest is 32 characters); the column's size."""

NOT_PLACES = frozenset({"Factory", "localtime", "posixrules"})
"""Files some zone databases carry that are not zones a school is in."""


@functools.cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name, sorted: what the course setting offers and accepts."""
    return tuple(sorted(available_timezones() - NOT_PLACES))


@functools.cache
def _names() -> frozenset[str]:
    return frozenset(zone_names())


def zone_named(name: object) -> ZoneInfo | None:
    """The zone of this IANA name (as "America/Chicago"), or None for anything else.

    Checked against the list of names, not by opening a file: ZoneInfo reads a path, and a
    name from a launch or a form must not choose which file is read.
    """
    if not isinstance(name, str) or len(name) > NAME_MAX_LENGTH:
        return None
    text = name.strip()
    return ZoneInfo(text) if text in _names() else None


def course_zone(*, chosen: str | None, from_lms: str | None, default: str) -> ZoneInfo:
    """The zone a course's dates are in: the teacher's choice, else the LMS's, else the
    school's default (checked at start-up, so always a zone)."""
    for name in (chosen, from_lms, default):
        zone = zone_named(name)
        if zone is not None:
            return zone
    return ZoneInfo("UTC")


@overload
def in_zone(value: datetime, zone: ZoneInfo) -> datetime: ...
@overload
def in_zone(value: date, zone: ZoneInfo) -> date: ...
@overload
def in_zone(value: None, zone: ZoneInfo) -> None: ...
def in_zone(value: date | datetime | None, zone: ZoneInfo) -> date | datetime | None:
    """A stored time as the course's clock showed it; a plain date (a goal's target, the day
    of a check-in) is already the school's and stays as it is."""
    if not isinstance(value, datetime):
        return value
    # An aggregate may come back naive on SQLite; every stored time is UTC.
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(zone)


def on_day(day: date, moment: datetime, zone: ZoneInfo) -> datetime:
    """Where a chart puts an observation of `day`: its time in the course's zone when that
    falls on the day, else noon of the day there. The day is what was typed; the time was
    worked out in the zone in force then, which the course may have changed since."""
    seen = in_zone(moment, zone)
    return seen if seen.date() == day else datetime.combine(day, time(12), tzinfo=zone)


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    """The date in the course's zone at this moment (after 5 pm in Los Angeles, UTC is
    already on the next day)."""
    return in_zone(moment, zone).date()
