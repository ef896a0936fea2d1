"""The profile form on the teacher's student page: what the page showed, what the teacher
changed on it, and what someone else saved meanwhile.

The student edits their part of the same profile on their own page, often while the teacher's
page is open (during a check-in). Saving writes only what the teacher changed, so the student's
newer words stay; a field both of them changed is refused with what it now holds, the teacher's
text kept in the form, so that neither side loses anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from lti_app.learners.models import LearnerProfile
from lti_app.learners.vocab import Modality

PROFILE_TEXT_FIELDS = (
    ("career_goal_text", "Career goals"),
    ("preferences_text", "How they like to learn"),
    ("strengths", "Strengths"),
    ("needs_and_supports", "Needs and supports"),
    ("non_academic_notes", "Non-academic skills (work habits, social skills)"),
    ("teacher_notes", "Private teacher notes (never shown to the student or family)"),
)
LIST_FIELDS = ("career_clusters", "preferred_modalities")
FIELD_LABELS = {
    "interests": "Interests",
    "career_clusters": "Career clusters",
    "preferred_modalities": "Preferred ways of learning",
    **dict(PROFILE_TEXT_FIELDS),
}
SHOWN = "shown"
"""The hidden field holding what the page showed (JSON)."""


@dataclass(frozen=True)
class ProfileEdit:
    """What a posted profile form asks for."""

    changes: dict[str, Any]
    """The fields to write, as update_profile takes them."""
    conflicts: list[str]
    """Fields the teacher changed that someone else changed too since the page was shown."""


def shown_on_page(profile: LearnerProfile | None) -> str:
    """The hidden `shown` value: the stored profile in the form's comparable terms."""
    return json.dumps(_comparable(_stored(profile)), ensure_ascii=False, sort_keys=True)


def profile_edit(form: MultiDict[str, str], profile: LearnerProfile | None) -> ProfileEdit:
    """Compare the posted form with what its page showed and with what is stored now.

    A form that does not say what it showed (an older page, a script) writes every field, as
    saving always did.
    """
    posted = _posted(form)
    try:
        shown = json.loads(form.get(SHOWN, ""))
    except ValueError:
        shown = None
    if not isinstance(shown, dict):
        return ProfileEdit(posted, [])
    typed, stored = _comparable(posted), _comparable(_stored(profile))
    changed = [name for name in posted if name not in shown or shown[name] != typed[name]]
    conflicts = [
        name
        for name in changed
        if name in shown and stored[name] != shown[name] and stored[name] != typed[name]
    ]
    return ProfileEdit({name: posted[name] for name in changed}, conflicts)


def conflict_messages(profile: LearnerProfile | None, conflicts: list[str]) -> list[str]:
    """Say, for each field changed on both sides, what it holds now."""
    stored = _stored(profile)
    messages = []
    for name in conflicts:
        value = stored[name]
        if name == "preferred_modalities":
            value = [_modality_label(v) for v in value]
        text = ", ".join(value) if isinstance(value, list) else value
        now = f"it now reads “{text}”" if text else "it is now empty"
        messages.append(
            f"{FIELD_LABELS[name]} was changed by someone else since you opened this page: "
            f"{now}. What you typed is below and is not saved yet: merge the two if need be, "
            "then save again."
        )
    return messages


def conflict_draft(
    form: MultiDict[str, str], profile: LearnerProfile | None, edit: ProfileEdit
) -> MultiDict[str, str]:
    """The form to show again after a conflict: what the teacher changed as they typed it, the
    rest as stored now, and `shown` as stored now (so that saving it again writes the
    teacher's text over what they have now seen)."""
    stored = _stored(profile)
    draft: MultiDict[str, str] = MultiDict()
    for name, value in stored.items():
        if name in edit.changes:
            draft.setlist(name, form.getlist(name))
        elif name == "interests":
            draft[name] = ", ".join(value)
        elif isinstance(value, list):
            draft.setlist(name, value)
        else:
            draft[name] = value
    draft[SHOWN] = shown_on_page(profile)
    return draft


def _posted(form: MultiDict[str, str]) -> dict[str, Any]:
    return {
        "interests": [t.strip() for t in form.get("interests", "").split(",") if t.strip()],
        **{name: form.getlist(name) for name in LIST_FIELDS},
        **{name: form.get(name, "") for name, _ in PROFILE_TEXT_FIELDS},
    }


def _stored(profile: LearnerProfile | None) -> dict[str, Any]:
    return {
        "interests": list(profile.interests or []) if profile else [],
        **{name: list(getattr(profile, name) or []) if profile else [] for name in LIST_FIELDS},
        **{
            name: getattr(profile, name) or "" if profile else "" for name, _ in PROFILE_TEXT_FIELDS
        },
    }


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    """The values as equal whatever a browser did to them (CR LF, spaces, order of ticks)."""
    return {
        "interests": [" ".join(t.split()) for t in values["interests"] if t.strip()],
        **{name: sorted(set(values[name])) for name in LIST_FIELDS},
        **{name: _same_text(values[name]) for name, _ in PROFILE_TEXT_FIELDS},
    }


def _same_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _modality_label(value: str) -> str:
    try:
        return Modality(value).label
    except ValueError:
        return value
