"""Profile and goals pages through real launches: the student edits their own part and goals,
never sees teacher notes or private check-ins, and cannot reach anyone else's goals."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from lti_app.learners.models import Goal, GoalStatus
from lti_app.learners.services import add_check_in, add_goal, get_profile, update_profile
from tests.conftest import LtiActions
from tests.progress.pages import context_id, form, person_id, post, unit_of_work, url

TEACHER, STUDENT, CLASSMATE = "user-t01", "user-s02", "user-s01"


def test_student_profile_never_shows_teacher_notes_or_private_check_ins(
    lti: LtiActions, database_url: str
) -> None:
    lti.launch(STUDENT)
    with unit_of_work(database_url) as s:
        ctx, me = context_id(s, lti.lms), person_id(s, lti.lms, STUDENT)
        update_profile(
            s,
            context_id=ctx,
            person_id=me,
            editor_is_teacher=True,
            teacher_notes="SECRET teacher note",
            strengths="Careful <observer>",
        )
        add_check_in(
            s,
            context_id=ctx,
            person_id=me,
            author_id=me,
            held_on=date(2025, 3, 1),
            note="PRIVATE talk",
            is_private=True,
        )
        add_check_in(
            s,
            context_id=ctx,
            person_id=me,
            author_id=me,
            held_on=date(2025, 3, 2),
            note="Shared talk",
        )
    home = lti.launch(STUDENT)
    page = home.client.get(url(home.response, "/profile/"))
    assert page.status_code == 200
    assert "My profile and goals" in page.text
    assert "SECRET" not in page.text
    assert "PRIVATE" not in page.text
    assert "Shared talk" in page.text
    assert "Careful &lt;observer&gt;" in page.text
    assert 'name="teacher_notes"' not in page.text


def test_student_edits_own_profile_and_goals(lti: LtiActions, database_url: str) -> None:
    home = lti.launch(STUDENT)
    client = home.client
    page = client.get(url(home.response, "/profile/"))
    saved = post(
        client,
        form(page, "/profile/?"),
        {
            "interests": "animals, Music , animals",
            "career_clusters": ["Health Science"],
            "career_goal_text": "Vet <nurse>",
            "preferred_modalities": ["video", "offline_hands_on"],
            "preferences_text": "Quiet room",
        },
    )
    assert "Your profile is saved" in saved.text
    assert "Vet &lt;nurse&gt;" in saved.text
    # A student cannot smuggle in a teacher-only field.
    sneaky = post(client, form(saved, "/profile/?"), {"interests": "x", "teacher_notes": "mine"})
    assert sneaky.status_code == 200
    with unit_of_work(database_url) as s:
        ctx, me = context_id(s, lti.lms), person_id(s, lti.lms, STUDENT)
        profile = get_profile(s, context_id=ctx, person_id=me)
        assert profile is not None
        assert profile.teacher_notes != "mine"
    added = post(
        client,
        form(sneaky, "/profile/goals?"),
        {"text": "Finish the osmosis lab", "target_date": "2030-05-01"},
    )
    assert "Your goal is added" in added.text
    with unit_of_work(database_url) as s:
        goal = s.scalars(
            select(Goal).where(Goal.context_id == ctx, Goal.text == "Finish the osmosis lab")
        ).all()[-1]
    updated = post(
        client,
        form(added, f"/profile/goals/{goal.id}?"),
        {"text": "Finish the osmosis lab", "target_date": "2030-06-01", "status": "in_progress"},
    )
    assert "Your goal is saved" in updated.text
    assert "In progress" in updated.text
    bad = post(
        client,
        form(updated, f"/profile/goals/{goal.id}?"),
        {"text": "x", "target_date": "soon", "status": "in_progress"},
        follow=False,
    )
    assert bad.status_code == 400
    with unit_of_work(database_url) as s:
        fresh = s.get(Goal, goal.id)
        assert fresh is not None
        assert fresh.status is GoalStatus.IN_PROGRESS
        assert fresh.target_date == date(2030, 6, 1)


def test_goals_and_profiles_of_others_are_refused(lti: LtiActions, database_url: str) -> None:
    lti.launch(CLASSMATE)
    lti.launch("user-t02", context_id="course-chem-club")
    with unit_of_work(database_url) as s:
        ctx, classmate = context_id(s, lti.lms), person_id(s, lti.lms, CLASSMATE)
        theirs = add_goal(
            s,
            context_id=ctx,
            person_id=classmate,
            text="Theirs",
            created_by_id=classmate,
            editor_is_teacher=False,
        ).id
        club = context_id(s, lti.lms, "course-chem-club")
        club_goal = add_goal(
            s,
            context_id=club,
            person_id=classmate,
            text="Club",
            created_by_id=classmate,
            editor_is_teacher=False,
        ).id
        chem_teacher = person_id(s, lti.lms, "user-t02")
    home = lti.launch(STUDENT)
    page = home.client.get(url(home.response, "/profile/"))
    hidden = form(page, "/profile/goals?").fields
    for goal_id in (theirs, club_goal):
        answer = home.client.post(
            url(page, f"/profile/goals/{goal_id}"),
            data={**hidden, "text": "Hijacked", "status": "met", "target_date": ""},
        )
        assert answer.status_code == 404
    # Teacher pages stay closed to students.
    assert home.client.get(url(page, f"/profile/students/{classmate}")).status_code == 403
    teacher = lti.launch(TEACHER)
    edit = teacher.client.get(url(teacher.response, f"/profile/students/{classmate}"))
    assert edit.status_code == 200
    assert 'name="teacher_notes"' in edit.text
    saved = post(
        teacher.client,
        form(edit, f"/profile/students/{classmate}?"),
        {"teacher_notes": "Needs a nudge", "strengths": "Curious", "interests": "rocks"},
    )
    assert "The profile is saved" in saved.text
    # Someone who is not a student of this course is "not found".
    assert teacher.client.get(url(edit, f"/profile/students/{chem_teacher}")).status_code == 404
    with unit_of_work(database_url) as s:
        assert s.get(Goal, theirs).text == "Theirs"  # type: ignore[union-attr]
        profile = get_profile(s, context_id=ctx, person_id=classmate)
        assert profile is not None
        assert profile.teacher_notes == "Needs a nudge"
