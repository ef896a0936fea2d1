"""Profile and goals pages through real launches: the student edits their own part and goals,
never sees teacher notes or private check-ins, and cannot reach anyone else's goals."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import httpx
import pytest
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from lti_app.learners.goals_and_check_ins import add_check_in, add_goal
from lti_app.learners.models import Goal, GoalStatus, LearnerProfile
from lti_app.learners.services import get_profile, update_profile
from tests.competencies.test_editor_crafted import BrowserForm, browser_form, submit
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Frame, Ids, ensure_launched, frame
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


# --- a profile open on two pages at once (a check-in) ----------------------------------------


@dataclass(frozen=True)
class OpenPages:
    """A student and their teacher, each with a profile page of a fresh course."""

    teacher: Frame
    student: Frame
    db: Database
    context_id: int
    person_id: int

    @property
    def editor_path(self) -> str:
        return f"/profile/students/{self.person_id}"

    def editor_form(self) -> BrowserForm:
        """The teacher's profile editor as it shows the profile now."""
        return browser_form(self.teacher.get(self.editor_path).text, self.editor_path)

    def own_form(self) -> BrowserForm:
        """The student's own profile form as it shows the profile now."""
        return browser_form(self.student.get("/profile/").text, "/profile/")

    def saved(self, who: Frame, form: BrowserForm, **typed: str) -> httpx.Response:
        """Submit the form with `typed`, expect it saved, and return the page it leads to."""
        answer = submit(who, form, **typed)
        assert answer.is_redirect, (answer.status_code, answer.text[:2000])
        return who.client.get(who.base + answer.headers["location"])

    def profile(self) -> LearnerProfile:
        with self.db.begin() as s:
            found = get_profile(s, context_id=self.context_id, person_id=self.person_id)
            assert found is not None
            s.expunge(found)
            return found


@pytest.fixture
def open_pages(
    fresh_lms: RunningPlatform, tool_server: ToolServer, db: Database
) -> Iterator[OpenPages]:
    """A course of its own: its teacher, and one student who has not written a profile yet."""
    ensure_launched(fresh_lms, tool_server, ("user-s01",))
    lti = LtiActions(fresh_lms, tool_server)
    teacher = frame(lti.launch("user-t01"), tool_server.url)
    student = frame(lti.launch("user-s01"), tool_server.url)
    ids = Ids.of(db, fresh_lms)
    yield OpenPages(teacher, student, db, ids.context(), ids.person("user-s01"))
    lti.close()


def test_the_students_open_page_keeps_what_the_teacher_saved_meanwhile(
    open_pages: OpenPages,
) -> None:
    """During a check-in the student has their page open; the teacher writes the career goal
    they agreed on into the student's part; the student then adds a preference and saves.
    Saving wrote every field of the (stale) page, so the teacher's words silently vanished."""
    o = open_pages
    mine = o.own_form()
    o.saved(o.teacher, o.editor_form(), career_goal_text="Vet nurse", strengths="Patient")
    page = o.saved(o.student, mine, preferences_text="A quiet room")
    assert "Your profile is saved." in page.text
    assert "Vet nurse</textarea>" in page.text
    profile = o.profile()
    assert (profile.career_goal_text, profile.preferences_text) == ("Vet nurse", "A quiet room")
    assert profile.strengths == "Patient"


def test_a_field_both_changed_is_refused_on_the_students_page_with_both_versions_kept(
    open_pages: OpenPages,
) -> None:
    """The student rewrites the very career goal the teacher wrote meanwhile: neither text may
    be lost, so the save is refused naming the field and what it now holds, the student's
    text kept in the form; saving that form again (after reading) writes the student's."""
    o = open_pages
    mine = o.own_form()
    o.saved(o.teacher, o.editor_form(), career_goal_text="Vet nurse")
    refused = submit(o.student, mine, career_goal_text="Pilot", interests="planes")
    assert refused.status_code == 400
    assert (
        "Career goals in your own words was changed by someone else since you opened this "
        "page: it now reads “Vet nurse”."
    ) in refused.text
    assert "Pilot</textarea>" in refused.text
    assert 'value="planes"' in refused.text
    profile = o.profile()
    assert (profile.career_goal_text, profile.interests) == ("Vet nurse", [])

    o.saved(o.student, browser_form(refused.text, "/profile/"))
    profile = o.profile()
    assert (profile.career_goal_text, profile.interests) == ("Pilot", ["planes"])


def test_a_field_both_changed_is_refused_on_the_teachers_editor_with_both_versions_kept(
    open_pages: OpenPages,
) -> None:
    """The teacher's profile editor is open while the student adds interests on their own
    page; the teacher then types other interests and a note. Saving silently replaced the
    student's interests: it must be refused, naming the field and what it now holds, with
    what the teacher typed still in the form."""
    o = open_pages
    editor = o.editor_form()
    o.saved(o.student, o.own_form(), interests="robots, music", preferences_text="A quiet room")
    refused = submit(o.teacher, editor, interests="chess club", teacher_notes="Met the parents")
    assert refused.status_code == 400
    assert (
        "Interests was changed by someone else since you opened this page: it now reads "
        "“robots, music”."
    ) in refused.text
    assert 'value="chess club"' in refused.text
    assert "Met the parents</textarea>" in refused.text
    assert "A quiet room</textarea>" in refused.text  # the student's other change, as stored
    profile = o.profile()
    assert (profile.interests, profile.teacher_notes) == (["robots", "music"], "")

    page = o.saved(o.teacher, browser_form(refused.text, o.editor_path))
    assert "The profile is saved." in page.text
    profile = o.profile()
    assert (profile.interests, profile.teacher_notes) == (["chess club"], "Met the parents")
    assert profile.preferences_text == "A quiet room"
