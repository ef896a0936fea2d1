"""The course's time zone setting: the teacher's choice over what the LMS sends."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from lti_app.timezones import zone_named, zone_names
from lti_app.tool.models import Context


@dataclass(frozen=True)
class TimeZoneSetting:
    """What the setting shows: the zone in force, why, and the teacher's own choice."""

    in_force: str
    source: str
    """"chosen", "lms" or "school": who decided the zone in force."""
    chosen: str
    """The teacher's choice, or "" to follow the LMS, else the school."""
    choices: tuple[str, ...]


def time_zone_setting(*, chosen: str | None, from_lms: str | None, default: str) -> TimeZoneSetting:
    """The course's zone in force and where it comes from, as course_zone decides it
    (lti_app.timezones), from the course's two columns and the school's default."""
    chosen_zone = zone_named(chosen)
    lms_zone = zone_named(from_lms)
    if chosen_zone is not None:
        in_force, source = chosen_zone.key, "chosen"
    elif lms_zone is not None:
        in_force, source = lms_zone.key, "lms"
    else:
        in_force, source = default, "school"
    return TimeZoneSetting(
        in_force=in_force,
        source=source,
        chosen=chosen_zone.key if chosen_zone is not None else "",
        choices=zone_names(),
    )


def set_time_zone(session: Session, *, context_id: int, name: str) -> str | None:
    """Choose the zone the course's dates are in; an empty name follows the LMS, else the
    school's default again. Returns the zone chosen (None: none).

    :raises ValueError: the name is not an IANA zone name.
    """
    text = name.strip()
    zone = zone_named(text) if text else None
    if text and zone is None:
        raise ValueError("Choose a time zone from the list (such as America/Chicago).")
    context = session.get(Context, context_id)
    if context is None:
        raise LookupError(context_id)
    context.time_zone = zone.key if zone is not None else None
    session.flush()
    return context.time_zone
