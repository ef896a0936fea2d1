"""Goals added again with another date, goals deleted when set by mistake, and overdue goals
on the student's own page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.learners import goals_and_check_ins, visible_profile
from lti_app.learners import services as svc
from lti_app.learners.models import Goal, GoalStatus
from tests.insights.conftest import FreshCourse, fresh_course
from tests.progress.pages import form, has_form, post, unit_of_work, url

__all__ = ["fresh_course"]


def _goal(session: Session, course: int, student: int, by: int, text: str = "Read more") -> Goal:
    return goals_and_check_ins.add_goal(
        session,
        context_id=course,
        person_id=student,
        text=text,
        created_by_id=by,
        editor_is_teacher=by != student,
    )


# --- the same goal added again -----------------------------------------------------------------


def test_the_same_goal_and_date_sent_twice_is_one_goal(
    session: Session, course: int, student: int
) -> None:
    kwargs = {"context_id": course, "person_id": student, "created_by_id": student}
    first = goals_and_check_ins.add_goal(
        session, text="Read more", target_date=date(2027, 1, 31), editor_is_teacher=False, **kwargs
    )
    again = goals_and_check_ins.add_goal(
        session, text="read  MORE", target_date=date(2027, 1, 31), editor_is_teacher=False, **kwargs
    )
    assert again.id == first.id


def test_the_same_goal_with_another_date_is_refused_saying_where_to_change_it(
    session: Session, course: int, student: int
) -> None:
    first = _goal(session, course, student, student)
    with pytest.raises(
        goals_and_check_ins.DuplicateGoalError, match="already on the list, with no target date"
    ):
        goals_and_check_ins.add_goal(
            session,
            context_id=course,
            person_id=student,
            text="Read more",
            target_date=date(2027, 1, 31),
            created_by_id=student,
            editor_is_teacher=False,
        )
    goals = goals_and_check_ins.list_goals(session, context_id=course, person_id=student)
    assert [(g.id, g.target_date) for g in goals] == [(first.id, None)]


def test_adding_a_goal_again_with_a_new_date_never_says_added(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """Told "Your goal is added." while the old goal stayed without the date typed: now the
    student reads that the goal exists, and the date they typed is still in the form."""
    fc = fresh_course
    st = fc.lti.launch("user-s01")
    page = st.client.get(url(st.response, "/profile/"))
    post(st.client, form(page, "/profile/goals?"), {"text": "Read more"})
    page = st.client.get(url(st.response, "/profile/"))
    again = post(
        st.client, form(page, "/profile/goals?"), {"text": "Read more", "target_date": "2027-01-31"}
    )
    assert again.status_code == 400
    assert "Your goal is added." not in again.text
    assert "This goal is already on the list" in again.text
    assert 'value="2027-01-31"' in again.text
    with unit_of_work(database_url) as s:
        goals = list(s.scalars(select(Goal).where(Goal.context_id == fc.context_id)))
    assert [g.target_date for g in goals] == [None]


# --- deleting a goal ---------------------------------------------------------------------------


def test_student_deletes_their_own_goal_with_no_check_in_since(
    session: Session, course: int, student: int
) -> None:
    goal = _goal(session, course, student, student)
    owner = goals_and_check_ins.delete_goal(
        session, context_id=course, goal_id=goal.id, editor_id=student, editor_is_teacher=False
    )
    assert owner == student
    assert goals_and_check_ins.list_goals(session, context_id=course, person_id=student) == []


def test_student_cannot_delete_a_goal_their_teacher_set(
    session: Session, course: int, student: int, teacher: int
) -> None:
    goal = _goal(session, course, student, teacher)
    assert (
        not visible_profile.student_view(session, context_id=course, person_id=student)
        .goals[0]
        .student_may_delete
    )
    with pytest.raises(svc.NotAllowedError, match="Dropped"):
        goals_and_check_ins.delete_goal(
            session, context_id=course, goal_id=goal.id, editor_id=student, editor_is_teacher=False
        )


def test_student_cannot_delete_a_goal_a_check_in_came_after(
    session: Session, course: int, student: int, teacher: int
) -> None:
    goal = _goal(session, course, student, student)
    assert (
        visible_profile.student_view(session, context_id=course, person_id=student)
        .goals[0]
        .student_may_delete
    )
    goals_and_check_ins.add_check_in(
        session,
        context_id=course,
        person_id=student,
        author_id=teacher,
        held_on=date(2025, 3, 1),
        note="About reading",
    )
    assert (
        not visible_profile.student_view(session, context_id=course, person_id=student)
        .goals[0]
        .student_may_delete
    )
    with pytest.raises(svc.NotAllowedError):
        goals_and_check_ins.delete_goal(
            session, context_id=course, goal_id=goal.id, editor_id=student, editor_is_teacher=False
        )
    # Their teacher still can.
    goals_and_check_ins.delete_goal(
        session, context_id=course, goal_id=goal.id, editor_id=teacher, editor_is_teacher=True
    )
    assert goals_and_check_ins.list_goals(session, context_id=course, person_id=student) == []


def test_a_students_goal_is_not_found_for_a_classmate_or_in_another_course(
    session: Session, course: int, other_course: int, student: int, other_student: int
) -> None:
    goal = _goal(session, course, student, student)
    with pytest.raises(goals_and_check_ins.GoalNotFoundError):
        goals_and_check_ins.delete_goal(
            session,
            context_id=course,
            goal_id=goal.id,
            editor_id=other_student,
            editor_is_teacher=False,
        )
    with pytest.raises(goals_and_check_ins.GoalNotFoundError):
        goals_and_check_ins.delete_goal(
            session,
            context_id=other_course,
            goal_id=goal.id,
            editor_id=student,
            editor_is_teacher=True,
        )
    assert len(goals_and_check_ins.list_goals(session, context_id=course, person_id=student)) == 1


def test_student_deletes_a_goal_from_their_page(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    st = fc.lti.launch("user-s01")
    page = st.client.get(url(st.response, "/profile/"))
    post(st.client, form(page, "/profile/goals?"), {"text": "Oops, a typo goal"})
    with unit_of_work(database_url) as s:
        goal_id = s.scalars(select(Goal.id).where(Goal.context_id == fc.context_id)).one()
    page = st.client.get(url(st.response, "/profile/"))
    delete = form(page, f"/profile/goals/{goal_id}/delete")
    refused = st.client.post(delete.action, data={})  # no CSRF token
    assert refused.status_code >= 400
    done = post(st.client, delete)
    assert done.status_code == 200
    assert "Your goal is deleted." in done.text
    assert "Oops, a typo goal" not in done.text
    with unit_of_work(database_url) as s:
        assert s.get(Goal, goal_id) is None


def test_a_goal_the_student_may_not_delete_offers_no_delete_button(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    with unit_of_work(database_url) as s:
        goal_id = _goal(s, fc.context_id, fc.student_id, fc.teacher_id, "Teacher's goal").id
    st = fc.lti.launch("user-s01")
    page = st.client.get(url(st.response, "/profile/"))
    assert not has_form(page, f"/profile/goals/{goal_id}/delete")
    assert "set its status to Dropped" in page.text
    # Posted anyway (with the page's tokens): refused, the goal stays.
    crafted = form(page, "/profile/goals?")
    crafted.action = crafted.action.replace("/profile/goals?", f"/profile/goals/{goal_id}/delete?")
    refused = post(st.client, crafted)
    assert refused.status_code == 400
    assert "Dropped" in refused.text
    with unit_of_work(database_url) as s:
        assert s.get(Goal, goal_id) is not None


# --- overdue -----------------------------------------------------------------------------------


def test_the_students_page_says_which_goal_is_overdue(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    today = datetime.now(UTC).date()
    with unit_of_work(database_url) as s:
        for text, days, status in (
            ("Late goal", -2, GoalStatus.IN_PROGRESS),
            ("Met late goal", -2, GoalStatus.MET),
            ("Future goal", 2, GoalStatus.NOT_STARTED),
        ):
            goal = _goal(s, fc.context_id, fc.student_id, fc.student_id, text)
            goal.target_date, goal.status = today + timedelta(days=days), status
    st = fc.lti.launch("user-s01")
    page = st.client.get(url(st.response, "/profile/")).text
    sections = page.split('<section class="goal"')[1:]
    marked = {s.split("</h3>")[0].rsplit(">", 1)[1]: "Overdue" in s for s in sections}
    assert marked == {"Late goal": True, "Met late goal": False, "Future goal": False}


def test_the_same_goal_typed_again_without_a_date_is_the_goal_with_its_date(
    session: Session, course: int, student: int
) -> None:
    kwargs = {"context_id": course, "person_id": student, "created_by_id": student}
    first = goals_and_check_ins.add_goal(
        session, text="Read more", target_date=date(2027, 1, 31), editor_is_teacher=False, **kwargs
    )
    again = goals_and_check_ins.add_goal(
        session, text="Read more", editor_is_teacher=False, **kwargs
    )
    assert (again.id, again.target_date) == (first.id, date(2027, 1, 31))
