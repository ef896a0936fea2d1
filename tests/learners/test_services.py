"""Learner profiles: who may change what, and what a student may see."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from sqlalchemy.orm import Session

from lti_app.learners import goals_and_check_ins, visible_profile
from lti_app.learners import services as svc
from lti_app.learners.models import GoalStatus
from lti_app.learners.vocab import CareerCluster, Modality

SECRET = "Dad moved out in March; go gently"


def test_student_edits_their_own_part(session: Session, course: int, student: int) -> None:
    profile = svc.update_profile(
        session,
        context_id=course,
        person_id=student,
        editor_is_teacher=False,
        interests=[" Animals ", "animals", "Drawing"],
        career_clusters=[CareerCluster.HEALTH_SCIENCE, "Finance"],
        career_goal_text="Vet",
        preferred_modalities=["offline_hands_on", Modality.VIDEO],
        preferences_text="Quiet corner",
    )
    assert profile.interests == ["Animals", "Drawing"]
    assert profile.career_clusters == ["Health Science", "Finance"]
    assert profile.preferred_modalities == ["offline_hands_on", "video"]
    assert (profile.career_goal_text, profile.preferences_text) == ("Vet", "Quiet corner")


@pytest.mark.parametrize(
    "field", ["teacher_notes", "strengths", "needs_and_supports", "non_academic_notes"]
)
def test_student_cannot_touch_teacher_fields(
    session: Session, course: int, student: int, field: str
) -> None:
    with pytest.raises(svc.NotAllowedError, match="Only your teacher"):
        svc.update_profile(
            session,
            context_id=course,
            person_id=student,
            editor_is_teacher=False,
            **{field: "x"},
        )
    assert svc.get_profile(session, context_id=course, person_id=student) is None


def test_teacher_edits_everything(session: Session, course: int, student: int) -> None:
    profile = svc.update_profile(
        session,
        context_id=course,
        person_id=student,
        editor_is_teacher=True,
        interests=["Cars"],
        strengths="Explains ideas to peers",
        needs_and_supports="Extra time",
        non_academic_notes="Great teamwork",
        teacher_notes=SECRET,
    )
    assert profile.teacher_notes == SECRET
    assert profile.strengths == "Explains ideas to peers"


@pytest.mark.parametrize(
    "fields",
    [
        {"career_clusters": ["Astronaut"]},
        {"preferred_modalities": ["telepathy"]},
        {"career_goal_text": "x" * (svc.MAX_TEXT_LENGTH + 1)},
        {"interests": ["x" * 100]},
    ],
)
def test_bad_values_are_refused(
    session: Session, course: int, student: int, fields: svc.ProfileFields
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        svc.update_profile(
            session, context_id=course, person_id=student, editor_is_teacher=False, **fields
        )


def test_unknown_field_is_a_programming_error(session: Session, course: int, student: int) -> None:
    with pytest.raises(TypeError):
        svc.update_profile(
            session,
            context_id=course,
            person_id=student,
            editor_is_teacher=True,
            favourite_colour="blue",  # type: ignore[call-arg]
        )


def test_profiles_are_per_course(
    session: Session, course: int, other_course: int, student: int
) -> None:
    svc.update_profile(
        session, context_id=course, person_id=student, editor_is_teacher=False, interests=["A"]
    )
    assert svc.get_profile(session, context_id=other_course, person_id=student) is None
    assert (
        visible_profile.student_view(session, context_id=other_course, person_id=student).interests
        == ()
    )


def test_student_view_never_contains_teacher_notes_or_private_check_ins(
    session: Session, course: int, student: int, teacher: int
) -> None:
    svc.update_profile(
        session,
        context_id=course,
        person_id=student,
        editor_is_teacher=True,
        interests=["Animals"],
        strengths="Curious",
        teacher_notes=SECRET,
    )
    goals_and_check_ins.add_check_in(
        session,
        context_id=course,
        person_id=student,
        author_id=teacher,
        held_on=date(2025, 3, 1),
        note="Talked about the poster",
        next_steps="Finish the draft",
    )
    goals_and_check_ins.add_check_in(
        session,
        context_id=course,
        person_id=student,
        author_id=teacher,
        held_on=date(2025, 3, 2),
        note=SECRET,
        is_private=True,
    )

    view = visible_profile.student_view(session, context_id=course, person_id=student)

    assert view.interests == ("Animals",)
    assert view.strengths == "Curious"
    assert [c.note for c in view.check_ins] == ["Talked about the poster"]
    assert "teacher_notes" not in {f.name for f in dataclasses.fields(view)}
    assert SECRET not in repr(view)
    everything = goals_and_check_ins.list_check_ins(
        session, context_id=course, person_id=student, include_private=True
    )
    assert [c.note for c in everything] == [SECRET, "Talked about the poster"]


def test_student_profile_view_drops_private_check_ins_even_if_given(
    session: Session, course: int, student: int, teacher: int
) -> None:
    private = goals_and_check_ins.add_check_in(
        session,
        context_id=course,
        person_id=student,
        author_id=teacher,
        held_on=date(2025, 3, 2),
        note=SECRET,
        is_private=True,
    )
    view = visible_profile.student_profile_view(
        None, person_id=student, goals=(), check_ins=[private]
    )
    assert view.check_ins == ()


def test_student_view_without_a_profile_is_empty(
    session: Session, course: int, student: int
) -> None:
    view = visible_profile.student_view(session, context_id=course, person_id=student)
    assert (view.interests, view.goals, view.check_ins) == ((), (), ())


def test_goals_students_and_teachers(
    session: Session, course: int, student: int, other_student: int, teacher: int
) -> None:
    own = goals_and_check_ins.add_goal(
        session,
        context_id=course,
        person_id=student,
        text="Read two articles a week",
        target_date=date(2025, 6, 1),
        created_by_id=student,
        editor_is_teacher=False,
    )
    set_by_teacher = goals_and_check_ins.add_goal(
        session,
        context_id=course,
        person_id=student,
        text="Ask for help early",
        created_by_id=teacher,
        editor_is_teacher=True,
    )
    with pytest.raises(svc.NotAllowedError):
        goals_and_check_ins.add_goal(
            session,
            context_id=course,
            person_id=student,
            text="x",
            created_by_id=other_student,
            editor_is_teacher=False,
        )

    goals_and_check_ins.update_goal(
        session,
        context_id=course,
        goal_id=own.id,
        editor_id=student,
        editor_is_teacher=False,
        text="Read three articles a week",
        target_date=None,
        status=GoalStatus.IN_PROGRESS,
    )
    assert (own.text, own.status, own.target_date) == (
        "Read three articles a week",
        GoalStatus.IN_PROGRESS,
        None,
    )
    with pytest.raises(goals_and_check_ins.GoalNotFoundError):
        goals_and_check_ins.update_goal(
            session,
            context_id=course,
            goal_id=own.id,
            editor_id=other_student,
            editor_is_teacher=False,
            text="hijacked",
            target_date=None,
            status=GoalStatus.DROPPED,
        )
    goals_and_check_ins.update_goal(
        session,
        context_id=course,
        goal_id=set_by_teacher.id,
        editor_id=teacher,
        editor_is_teacher=True,
        text="Ask for help early",
        target_date=None,
        status=GoalStatus.MET,
    )
    view = visible_profile.student_view(session, context_id=course, person_id=student)
    assert [(g.text, g.status) for g in view.goals] == [
        ("Read three articles a week", GoalStatus.IN_PROGRESS),
        ("Ask for help early", GoalStatus.MET),
    ]


def test_goal_of_another_course_is_not_found(
    session: Session, course: int, other_course: int, student: int, teacher: int
) -> None:
    goal = goals_and_check_ins.add_goal(
        session,
        context_id=course,
        person_id=student,
        text="x",
        created_by_id=teacher,
        editor_is_teacher=True,
    )
    with pytest.raises(goals_and_check_ins.GoalNotFoundError):
        goals_and_check_ins.update_goal(
            session,
            context_id=other_course,
            goal_id=goal.id,
            editor_id=teacher,
            editor_is_teacher=True,
            text="y",
            target_date=None,
            status=GoalStatus.MET,
        )


def test_empty_goal_is_refused(session: Session, course: int, student: int) -> None:
    with pytest.raises(ValueError, match="empty"):
        goals_and_check_ins.add_goal(
            session,
            context_id=course,
            person_id=student,
            text="  ",
            created_by_id=student,
            editor_is_teacher=False,
        )


def test_profiles_for_students_in_one_call(
    session: Session, course: int, student: int, other_student: int
) -> None:
    svc.get_or_create_profile(session, context_id=course, person_id=student)
    found = svc.profiles_for_students(
        session, context_id=course, person_ids=[student, other_student]
    )
    assert set(found) == {student}
    assert svc.profiles_for_students(session, context_id=course, person_ids=[]) == {}
