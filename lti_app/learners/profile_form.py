"""A profile form, what its page showed, and what someone else saved meanwhile.

A profile is edited in three places: the student's own page, and the teacher's student page
and profile editor. Two of them are often open at once (a student and their teacher during a
check-in), so saving writes only the fields changed on the page, and the other person's newer
words stay; a field both of them changed is refused with what it now holds, the typed text kept
in the form, so that neither side loses anything (the comparison: lti_app.page_edits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from lti_app.learners.models import LearnerProfile
from lti_app.learners.services import lock_profile, update_profile
from lti_app.learners.vocab import CareerCluster, Modality, strip_control_characters, tag_as_kept
from lti_app.page_edits import SHOWN, compare_page, read_shown, shown_token

TAG_FIELD = "interests"
"""Shown as one line of comma-separated tags."""
CHOICE_FIELDS: Mapping[str, frozenset[str]] = {
    "career_clusters": frozenset(c.value for c in CareerCluster),
    "preferred_modalities": frozenset(m.value for m in Modality),
}
"""Shown as checkboxes, one for each value a page can tick."""
TEXT_FIELDS = frozenset(
    {
        "career_goal_text",
        "preferences_text",
        "strengths",
        "needs_and_supports",
        "non_academic_notes",
        "teacher_notes",
    }
)


@dataclass(frozen=True)
class ProfilePage:
    """The profile fields one page's form shows, each with the label the page gives it."""

    labels: Mapping[str, str]

    def __post_init__(self) -> None:
        unknown = set(self.labels) - {TAG_FIELD, *CHOICE_FIELDS, *TEXT_FIELDS}
        if unknown:
            raise TypeError(f"not profile fields: {sorted(unknown)}")

    @property
    def text_fields(self) -> tuple[tuple[str, str], ...]:
        """The free-text fields and their labels, in the order given."""
        return tuple((name, label) for name, label in self.labels.items() if name in TEXT_FIELDS)


@dataclass(frozen=True)
class ProfileEdit:
    """What a posted profile form asks for."""

    changes: dict[str, Any]
    """The fields to write, as update_profile takes them."""
    conflicts: list[str]
    """Fields changed on the page that someone else changed too since the page was shown."""


@dataclass(frozen=True)
class ProfileConflict:
    """A save refused because someone else changed a field the page changed too."""

    errors: list[str]
    """For each such field, what it holds now; then what to do."""
    values: MultiDict[str, str]
    """The form to show again: what was typed, the rest as stored now."""


def save_profile_form(
    session: Session,
    *,
    context_id: int,
    person_id: int,
    editor_is_teacher: bool,
    form: MultiDict[str, str],
    page: ProfilePage,
) -> ProfileConflict | None:
    """Write the fields changed on the page, or nothing at all when one of them was changed by
    someone else too since the page was shown (the caller then rolls back).

    :raises ValueError: a value is not acceptable (from update_profile).
    :raises NotAllowedError: a student sent a teacher-only field (from update_profile).
    """
    # Locked, so that what is compared with the page is what the save replaces.
    profile = lock_profile(session, context_id=context_id, person_id=person_id)
    edit = profile_edit(form, profile, page)
    if edit.conflicts:
        return ProfileConflict(
            _conflict_messages(profile, edit.conflicts, page),
            _conflict_draft(form, profile, edit, page),
        )
    update_profile(
        session,
        context_id=context_id,
        person_id=person_id,
        editor_is_teacher=editor_is_teacher,
        **edit.changes,
    )
    return None


def page_values(profile: LearnerProfile | None, page: ProfilePage) -> MultiDict[str, str]:
    """The form's values as the page shows the stored profile, `shown` included."""
    values: MultiDict[str, str] = MultiDict()
    for name, value in _stored(profile, page).items():
        if name == TAG_FIELD:
            values[name] = ", ".join(value)
        elif name in CHOICE_FIELDS:
            values.setlist(name, value)
        else:
            values[name] = value
    values[SHOWN] = shown_token(_comparable(_stored(profile, page)))
    return values


def profile_edit(
    form: MultiDict[str, str], profile: LearnerProfile | None, page: ProfilePage
) -> ProfileEdit:
    """Compare the posted form with what its page showed and with what is stored now.

    A form that does not say what it showed (an older page, a script) writes every field of
    the page, as saving always did.
    """
    posted = _posted(form, page)
    shown = read_shown(form.get(SHOWN))
    if shown is None:
        return ProfileEdit(posted, [])
    edit = compare_page(_comparable(posted), _comparable(_stored(profile, page)), shown)
    # Only the fields changed here are written: someone else's change elsewhere stays.
    changed = edit.changed
    conflicts = [name for name in changed if name in edit.overwritten]
    return ProfileEdit({name: posted[name] for name in changed}, conflicts)


def _conflict_messages(
    profile: LearnerProfile | None, conflicts: list[str], page: ProfilePage
) -> list[str]:
    """Say, for each field changed on both sides, what it holds now, then what to do."""
    stored = _stored(profile, page)
    messages = []
    for name in conflicts:
        value = stored[name]
        if name == "preferred_modalities":
            value = [Modality(v).label for v in value]
        text = ", ".join(value) if isinstance(value, list) else value
        now = f"it now reads “{text}”" if text else "it is now empty"
        messages.append(
            f"{page.labels[name]} was changed by someone else since you opened this page: {now}."
        )
    messages.append(
        "What you typed is below and is not saved yet: merge the two if need be, then save again."
    )
    return messages


def _conflict_draft(
    form: MultiDict[str, str], profile: LearnerProfile | None, edit: ProfileEdit, page: ProfilePage
) -> MultiDict[str, str]:
    """The form to show again after a conflict: the fields changed on the page as typed, the
    rest as stored now, and `shown` as stored now (so that saving it again writes the typed
    text over what the editor has now seen)."""
    draft = page_values(profile, page)
    for name in edit.changes:
        draft.setlist(name, form.getlist(name))
    return draft


def _posted(form: MultiDict[str, str], page: ProfilePage) -> dict[str, Any]:
    posted: dict[str, Any] = {}
    for name in page.labels:
        if name == TAG_FIELD:
            posted[name] = [t.strip() for t in form.get(name, "").split(",") if t.strip()]
        elif name in CHOICE_FIELDS:
            posted[name] = form.getlist(name)
        else:
            posted[name] = form.get(name, "")
    return posted


def _stored(profile: LearnerProfile | None, page: ProfilePage) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    for name in page.labels:
        value = getattr(profile, name) if profile else None
        if name == TAG_FIELD:
            stored[name] = list(value or [])
        elif name in CHOICE_FIELDS:
            # A value dropped from the vocabulary has no checkbox: the page never showed it.
            stored[name] = [v for v in value or [] if v in CHOICE_FIELDS[name]]
        else:
            stored[name] = value or ""
    return stored


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    """The values as equal whatever a browser or the save did to them (CR LF, spaces, control
    characters, a tag typed twice, the order of ticks)."""
    comparable: dict[str, Any] = {}
    for name, value in values.items():
        if name == TAG_FIELD:
            comparable[name] = _tags(value)
        elif name in CHOICE_FIELDS:
            comparable[name] = sorted(set(value))
        else:
            comparable[name] = _same_text(value)
    return comparable


def _tags(tags: list[str]) -> list[str]:
    # As clean_tags stores them: a tag typed again in other letters is the first one.
    seen: set[str] = set()
    kept = []
    for raw in tags:
        tag = tag_as_kept(raw)
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            kept.append(tag)
    return kept


def _same_text(text: str) -> str:
    return strip_control_characters(text.replace("\r\n", "\n").replace("\r", "\n")).strip()
