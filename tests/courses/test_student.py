"""The teacher's page for one student: profile with private notes, goals, check-ins."""

from __future__ import annotations

from lti_app.db import Database
from lti_app.learners.models import GoalStatus
from lti_app.learners.services import get_profile, list_check_ins, list_goals
from tests.courses.frames import Frame, Ids


def test_teacher_edits_profile_goals_and_check_ins(
    teacher: Frame, db: Database, ids: Ids, bio_students: tuple[str, ...]
) -> None:
    cid, student = ids.context(), ids.person("user-s10")
    page = teacher.get(f"/course/students/{student}").text
    assert "<h1>Bobby &lt;b&gt;Tables&lt;/b&gt;</h1>" in page
    assert "Private teacher notes" in page

    saved = teacher.post(
        f"/course/students/{student}/profile",
        {
            "interests": "robots, <script>",
            "career_clusters": "Health Science",
            "preferred_modalities": "project",
            "strengths": "Curious",
            "teacher_notes": "Needs quiet <space>",
        },
    )
    page = teacher.follow(saved).text
    assert "The profile is saved." in page
    assert "Needs quiet &lt;space&gt;" in page
    assert "<script>" not in page
    teacher.follow(
        teacher.post(
            f"/course/students/{student}/goals", {"text": "Read a paper", "target_date": ""}
        )
    )
    with db.begin() as s:
        [goal] = list_goals(s, context_id=cid, person_id=student)[-1:]
    teacher.follow(
        teacher.post(
            f"/course/students/{student}/goals",
            {"goal_id": str(goal.id), "text": "Read two papers", "status": "in_progress"},
        )
    )
    teacher.follow(
        teacher.post(
            f"/course/students/{student}/check-ins",
            {"note": "Talked", "next_steps": "Lab", "is_private": "on"},
        )
    )
    bad_date = teacher.post(f"/course/students/{student}/check-ins", {"held_on": "soon"})
    assert bad_date.status_code == 400
    with db.begin() as s:
        profile = get_profile(s, context_id=cid, person_id=student)
        assert profile is not None
        assert profile.teacher_notes == "Needs quiet <space>"
        assert "robots" in profile.interests
        goal_now = next(
            g for g in list_goals(s, context_id=cid, person_id=student) if g.id == goal.id
        )
        assert (goal_now.text, goal_now.status) == ("Read two papers", GoalStatus.IN_PROGRESS)
        check_in = list_check_ins(s, context_id=cid, person_id=student, include_private=True)[0]
        assert check_in.is_private
    page = teacher.get(f"/course/students/{student}").text
    assert "private to teachers" in page
