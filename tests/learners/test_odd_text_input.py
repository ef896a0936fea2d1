"""Learner profiles meeting input that looks ordinary but is not: a hidden field nested past what
Python's json reads, and interests that differ only in how their letters are composed or are
made of invisible characters only.

Each test runs on an LMS of the module's own (tests/learners/conftest.py).
"""

from __future__ import annotations

import unicodedata

from lti_app.learners.services import get_profile
from lti_app.learners.vocab import clean_tags
from tests.conftest import LtiActions
from tests.progress.pages import context_id, form, person_id, post, unit_of_work, url

TEACHER = "user-t01"
DEEP = "[" * 5000
"""What a script or a broken extension may post as the page's `shown` field."""


def test_a_students_own_profile_saved_with_a_hidden_field_nested_past_reading_is_saved(
    lti: LtiActions, database_url: str
) -> None:
    student = "user-s23"
    home = lti.launch(student)
    page = home.client.get(url(home.response, "/profile/"))

    saved = post(
        home.client,
        form(page, "/profile/?"),
        {"interests": "robots", "career_goal_text": "Engineer", "shown": DEEP},
    )

    assert saved.status_code == 200, saved.status_code
    with unit_of_work(database_url) as s:
        profile = get_profile(
            s, context_id=context_id(s, lti.lms), person_id=person_id(s, lti.lms, student)
        )
        assert profile is not None
        assert (profile.interests, profile.career_goal_text) == (["robots"], "Engineer")


def test_a_teachers_student_profile_form_with_a_hidden_field_nested_past_reading_is_saved(
    lti: LtiActions, database_url: str
) -> None:
    student = "user-s24"
    lti.launch(student)
    teacher = lti.launch(TEACHER)
    with unit_of_work(database_url) as s:
        course, me = context_id(s, lti.lms), person_id(s, lti.lms, student)
    edit = teacher.client.get(url(teacher.response, f"/profile/students/{me}"))

    saved = post(
        teacher.client,
        form(edit, f"/profile/students/{me}?"),
        {"strengths": "Patient", "interests": "", "career_goal_text": "", "shown": DEEP},
    )

    assert saved.status_code == 200, saved.status_code
    with unit_of_work(database_url) as s:
        profile = get_profile(s, context_id=course, person_id=me)
        assert profile is not None
        assert profile.strengths == "Patient"


def test_an_interest_typed_composed_and_pasted_decomposed_is_kept_once() -> None:
    composed = unicodedata.normalize("NFC", "Café")
    decomposed = unicodedata.normalize("NFD", "café")

    assert clean_tags([composed, decomposed, "\u200b\u2060", "chess"]) == [composed, "chess"]
