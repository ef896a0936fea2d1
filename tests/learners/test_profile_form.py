"""The profile form's check against a stale page: what counts as changed, and what as changed
by someone else too."""

from __future__ import annotations

from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from lti_app.learners.profile_form import ProfilePage, page_values, save_profile_form
from lti_app.learners.services import get_or_create_profile, get_profile, update_profile

PAGE = ProfilePage(
    {
        "interests": "Interests",
        "career_clusters": "Career areas",
        "career_goal_text": "Career goals",
        "preferences_text": "Preferences",
    }
)


def _typed(values: MultiDict[str, str], **typed: str | list[str]) -> MultiDict[str, str]:
    form = values.copy()
    for name, value in typed.items():
        form.setlist(name, value if isinstance(value, list) else [value])
    return form


def test_the_same_form_sent_twice_is_saved_not_refused(
    session: Session, course: int, student: int
) -> None:
    """A double click sends the page twice: the second finds the first's save, which is what it
    typed, only as the save keeps it (a tag typed twice kept once, CR LF as a line break)."""
    form = _typed(
        page_values(None, PAGE),
        interests="Robots, robots , music",
        career_goal_text="Pilot\r\nor vet ",
    )
    for _ in range(2):
        conflict = save_profile_form(
            session,
            context_id=course,
            person_id=student,
            editor_is_teacher=False,
            form=form,
            page=PAGE,
        )
        assert conflict is None
    profile = get_profile(session, context_id=course, person_id=student)
    assert profile is not None
    assert (profile.interests, profile.career_goal_text) == (["Robots", "music"], "Pilot\nor vet")


def test_a_value_gone_from_the_vocabulary_is_neither_a_change_nor_a_conflict(
    session: Session, course: int, student: int
) -> None:
    """A career cluster stored before the list changed has no checkbox: the page never showed
    it, so a page that left the clusters alone did not change them, even when someone else
    did meanwhile."""
    profile = get_or_create_profile(session, context_id=course, person_id=student)
    profile.career_clusters = ["Health Science", "Retired cluster"]
    session.flush()
    # As a browser sends the page: the retired cluster has no box to tick.
    form = _typed(
        page_values(profile, PAGE),
        career_clusters=["Health Science"],
        preferences_text="Quiet room",
    )
    update_profile(
        session,
        context_id=course,
        person_id=student,
        editor_is_teacher=True,
        career_clusters=["Finance"],
    )
    conflict = save_profile_form(
        session, context_id=course, person_id=student, editor_is_teacher=False, form=form, page=PAGE
    )
    assert conflict is None
    assert (profile.career_clusters, profile.preferences_text) == (["Finance"], "Quiet room")


def test_a_conflict_names_every_field_changed_on_both_sides_and_writes_nothing(
    session: Session, course: int, student: int
) -> None:
    form = _typed(
        page_values(None, PAGE),
        career_clusters=["Finance"],
        career_goal_text="Pilot",
        preferences_text="Quiet room",
    )
    update_profile(
        session,
        context_id=course,
        person_id=student,
        editor_is_teacher=True,
        career_clusters=["Health Science", "Manufacturing"],
        career_goal_text="",
        interests=["chess"],
    )
    update_profile(
        session,
        context_id=course,
        person_id=student,
        editor_is_teacher=True,
        career_goal_text="Vet",
    )
    conflict = save_profile_form(
        session, context_id=course, person_id=student, editor_is_teacher=False, form=form, page=PAGE
    )
    assert conflict is not None
    assert conflict.errors == [
        "Career areas was changed by someone else since you opened this page: it now reads "
        "“Health Science, Manufacturing”.",
        "Career goals was changed by someone else since you opened this page: it now reads “Vet”.",
        "What you typed is below and is not saved yet: merge the two if need be, then save again.",
    ]
    # Typed fields as typed; the rest (interests) as stored now, with `shown` as stored now.
    assert conflict.values.getlist("career_clusters") == ["Finance"]
    assert (conflict.values["career_goal_text"], conflict.values["interests"]) == ("Pilot", "chess")
    assert conflict.values["preferences_text"] == "Quiet room"
    profile = get_profile(session, context_id=course, person_id=student)
    assert profile is not None
    assert profile.preferences_text == ""
