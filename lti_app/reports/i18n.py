"""Languages the family report offers, and the words it uses for levels and statuses.

Messages live in Babel catalogs under lti_app/translations (Flask-Babel, gettext). To add a
language::

    pybabel extract -F lti_app/translations/babel.cfg -o lti_app/translations/messages.pot lti_app
    pybabel init -i lti_app/translations/messages.pot -d lti_app/translations -l fr
    # translate lti_app/translations/fr/LC_MESSAGES/messages.po, then
    pybabel compile -d lti_app/translations

and add the code to LANGUAGES. The compiled .mo files are committed next to the .po files
(tests/reports/test_i18n.py fails when a .mo is out of date with its .po).
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from flask import Flask, g
from flask_babel import Babel, gettext

from lti_app.display import local_time
from lti_app.learners.models import GoalStatus
from lti_app.pathways.models import ChoiceStatus


def _(message: str) -> str:
    """Translate into the report's language (named `_` so pybabel extracts the messages)."""
    return str(gettext(message))


LANGUAGES = {"en": "English", "es": "Español"}
DEFAULT_LANGUAGE = "en"


def choose_language(value: str | None) -> str:
    """A language the tool offers: the one asked for, else the default."""
    code = (value or "").strip().lower()[:5]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def language_of_locale(locale: str | None) -> str | None:
    """The offered language an LMS locale names, by its primary subtag ("es-MX", Moodle's
    "es_mx": es), or None when it names none the tool offers."""
    primary = (locale or "").replace("_", "-").split("-", 1)[0].strip().lower()
    return primary if primary in LANGUAGES else None


def date_locale(language: str, locale: str | None) -> str:
    """The locale the report writes dates in: the reader's own from the LMS when it is of the
    report's language (en-GB reads "3 March 2025"), else the bare language (en: "March 3,
    2025"). The catalog is chosen by the language alone."""
    tag = (locale or "").replace("-", "_").strip()
    if language_of_locale(tag) != language:
        return language
    try:
        return str(Locale.parse(tag))
    except (ValueError, TypeError, UnknownLocaleError):
        return language


def _select_locale() -> str:
    return str(g.get("report_language", DEFAULT_LANGUAGE))


def init_babel(app: Flask) -> None:
    """Set up Flask-Babel: pages are English unless a report asks for another language."""
    Babel(app, locale_selector=_select_locale, default_domain="messages")


def level_label(name: str | None, band: str = "") -> str:
    """The level's name in the report's language (a course's own level names stay as named)."""
    if name is None:
        return _("No level yet") if band == "unscored" else _("Not assessed yet")
    words = {
        "Emerging": _("Emerging"),
        "Developing": _("Developing"),
        "Proficient": _("Proficient"),
        "Advanced": _("Advanced"),
    }
    return words.get(name, name)


def band_meaning(band: str) -> str:
    """What a level means, in plain words a family can read."""
    meanings = {
        "reteach": _("Just starting: needs more teaching and support with this."),
        "practice": _("Getting closer: can do parts of this and is practising the rest."),
        "ready": _("Mastered: can do this on their own."),
        "extend": _("Going beyond: can use this in new and harder situations."),
        "partial": _("Not mastered yet: has mastered some parts of this, not all of them yet."),
        "unscored": _(
            "Work on this has been assessed, but not yet often enough at the mastery level to"
            " give it a level."
        ),
        "none": _("No work on this has been assessed yet."),
    }
    return meanings.get(band, "")


def goal_status_label(status: GoalStatus) -> str:
    labels = {
        GoalStatus.NOT_STARTED: _("Not started yet"),
        GoalStatus.IN_PROGRESS: _("Working on it"),
        GoalStatus.MET: _("Achieved"),
        GoalStatus.DROPPED: _("Set aside"),
    }
    return labels[status]


def work_status_label(status: ChoiceStatus) -> str:
    labels = {
        ChoiceStatus.DONE: _("Finished"),
        ChoiceStatus.SUBMITTED: _("Handed in, waiting for the teacher"),
        ChoiceStatus.RETURNED: _("Being improved after teacher feedback"),
    }
    return labels.get(status, _("In progress"))


def long_date(value: date | datetime | None) -> str:
    """A date written out in the report's language (e.g. 3 March 2025 / 3 de marzo de 2025);
    a stored time gives the date it was in the course's time zone."""
    if value is None:
        return ""
    local = local_time(value)
    day = local.date() if isinstance(local, datetime) else local
    where = g.get("report_date_locale") or g.get("report_language", DEFAULT_LANGUAGE)
    return str(format_date(day, format="long", locale=where))


def text_dir(text: str) -> str:
    """The `dir` of an element holding text a person wrote: that of its first letter with a
    direction, as `dir="auto"` decides in a browser (WeasyPrint, which makes the PDF, ignores
    "auto"; a Hebrew or Arabic reflection would read left to right there)."""
    for ch in text:
        direction = unicodedata.bidirectional(ch)
        if direction in ("R", "AL"):
            return "rtl"
        if direction == "L":
            return "ltr"
    return "auto"


TEMPLATE_HELPERS = {
    "text_dir": text_dir,
    "level_label": level_label,
    "band_meaning": band_meaning,
    "goal_status_label": goal_status_label,
    "work_status_label": work_status_label,
    "long_date": long_date,
}
