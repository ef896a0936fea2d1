"""What a refused form carried, to show back on its error page: a teacher's notes from a whole
lesson must not vanish because the session ended while they wrote.

Only what the person typed or picked comes back, under the label the page gave the field:
never a secret, the launch token, nor what the page chose itself (its hidden record of the
values it showed, ids, a colour picker's preset)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from flask import request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from lti_app.form_once import FORM_SHOWN_FIELD
from lti_app.page_edits import SHOWN

NOT_TYPED = frozenset(
    {
        "lt",
        "csrf_token",
        "admin_secret",
        "access_code",
        "id_token",
        "state",
        SHOWN,
        FORM_SHOWN_FIELD,
        "shown_at",
        "direction",
        "restore",
        "rows",
        "step",
        "competency",
        "id",
    }
)
"""Fields a page fills in itself (hidden ones, positions) or secrets."""
PAGE_CHOSEN = re.compile(r"(.*_ids?|option-\d+|level-\d+-colour)")
"""Ids of what the form is about, and a colour picker's preset: the page chose them."""
NUMBERS_TYPED = re.compile(r"(points|level|weight|n|days|idle|expected_minutes|level-\d+-points)")
"""Fields whose number is itself what was typed or picked (a level's points, a count); other
digits-only values are ids the page chose."""
LABELS = {
    "note": "Note",
    "next_steps": "Next steps",
    "held_on": "Held on",
    "observed_on": "Observed on",
    "points": "Level (points)",
    "target_date": "Target date",
    "text": "Goal",
    "url": "Link to your work",
    "reflection": "My reflection",
    "teacher_notes": "Teacher notes",
    "career_goal_text": "Career goals",
    "preferences_text": "Preferences",
    "is_private": "Private to teachers",
}
"""The labels pages give these fields, where one name means the same everywhere."""
PAGE_LABELS = {
    ("courses.save_check_in", "note"): "What you talked about",
    ("progress.self_assess", "note"): "Why?",
    ("pathways.submit", "note"): "A note for your teacher",
    ("competencies.import_framework", "text"): "Or paste the file's contents",
}
"""Labels of a field on one page, where it differs from LABELS."""
LEVEL_NAMES = "-level-names"
"""A picked level's field `f` comes with `f-level-names`: what each of its values is called
on the page (courses/_macros.html `level_names`), so the level comes back by its name."""
PICKED_LABELS = {"points": "Level", "level_id": "Level"}
"""Labels of a picked level shown by its name (`LABELS` says "points" for a bare number)."""
MAX_CHARACTERS = 2_000_000
"""All the text shown back, at most: beyond any field's own limit (the longest, a pasted
competency file, takes 2,000,000), so a whole value is never cut unless someone sent more
than any page takes."""
MAX_FIELDS = 500


@dataclass
class Typed:
    """The values to show back, and how many were left out (too many or too long)."""

    fields: list[tuple[str, str]] = field(default_factory=list)
    left_out: int = 0


def _label(name: str) -> str:
    label = PAGE_LABELS.get((request.endpoint or "", name)) or LABELS.get(name)
    if label is None:
        level = re.fullmatch(r"level-(\d+)-(name|points)", name)
        if level:
            label = f"Level {int(level.group(1)) + 1} {level.group(2)}"
        else:
            label = name.replace("_", " ").replace("-", " ").strip().capitalize() or "Text"
    return label[:80]


def _level_names(form: MultiDict[str, str]) -> dict[str, dict[str, str]]:
    """For each field the page sent its level names with: the name of each of its values."""
    found: dict[str, dict[str, str]] = {}
    for name, value in form.items():
        if not name.endswith(LEVEL_NAMES):
            continue
        try:
            names = json.loads(value)
        except ValueError:
            continue
        if isinstance(names, dict):
            field_name = name.removesuffix(LEVEL_NAMES)
            found[field_name] = {str(k): v for k, v in names.items() if isinstance(v, str)}
    return found


def is_typed(name: str, text: str) -> bool:
    """Whether a posted value is something the person typed or picked."""
    if not text or name in NOT_TYPED or name.endswith(LEVEL_NAMES) or PAGE_CHOSEN.fullmatch(name):
        return False
    return not text.isdigit() or NUMBERS_TYPED.fullmatch(name) is not None


def typed_into_the_form() -> Typed:
    """What a refused form of the LMS frame (it carries the launch token) had typed into it."""
    try:
        form = request.form
    except RequestEntityTooLarge:
        return Typed()
    typed = Typed()
    if "lt" not in form:
        return typed
    budget = MAX_CHARACTERS
    level_names = _level_names(form)
    for name, value in form.items(multi=True):
        text = value.strip()
        picked = level_names.get(name, {}).get(text)
        if picked:
            # The level as the page named it when picked ("Proficient"), not its points or id.
            text, label = picked.strip(), PICKED_LABELS.get(name) or _label(name)
        elif is_typed(name, text):
            label = _label(name)
        else:
            continue
        if len(typed.fields) >= MAX_FIELDS or len(text) > budget:
            typed.left_out += 1
            continue
        budget -= len(text)
        typed.fields.append((label, text))
    return typed
