"""The teacher's page for one student: profile with private notes, goals, check-ins."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from lti_app.courses.queries import person_names
from lti_app.courses.student_views import PROFILE_FORM
from lti_app.db import Database
from lti_app.demo.browser import parse_forms
from lti_app.demo.server import RunningPlatform
from lti_app.learners.goals_and_check_ins import list_check_ins, list_goals
from lti_app.learners.models import GoalStatus, LearnerProfile
from lti_app.learners.services import get_profile
from lti_app.pathways.choices import choose_option, start_choice, submit_choice
from lti_app.pathways.models import Choice, ChoiceStatus
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.services import create_pathway, create_step
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Frame, Ids, ensure_launched, frame, make_competency


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


# --- a profile page left open while the student edits their part ---------------------------------


@dataclass(frozen=True)
class OpenProfile:
    teacher: Frame
    student: Frame
    db: Database
    context_id: int
    person_id: int

    def teacher_form(self, page: str, **typed: str) -> dict[str, str]:
        """The profile form as the teacher's page shows it (an empty profile), with `typed`."""
        fields = dict.fromkeys(("interests", *(f for f, _ in PROFILE_FORM.text_fields)), "")
        for hidden in re.finditer(r'<input type="hidden" name="shown" value="([^"]*)"', page):
            fields["shown"] = html.unescape(hidden.group(1))
        return {**fields, **typed}

    def profile(self) -> LearnerProfile:
        with self.db.begin() as s:
            found = get_profile(s, context_id=self.context_id, person_id=self.person_id)
            assert found is not None
            s.expunge(found)
            return found


@pytest.fixture
def open_profile(fresh_lms: RunningPlatform, tool_server: ToolServer, db: Database) -> OpenProfile:
    """A course of its own (a second LMS): its teacher and one student who has not written a
    profile yet."""
    ensure_launched(fresh_lms, tool_server, ("user-s01",))
    lti = LtiActions(fresh_lms, tool_server)
    teacher = frame(lti.launch("user-t01"), tool_server.url)
    student = frame(lti.launch("user-s01"), tool_server.url)
    student.csrf = parse_forms(student.get("/profile/").text)[0].fields["csrf_token"]
    ids = Ids.of(db, fresh_lms)
    return OpenProfile(teacher, student, db, ids.context(), ids.person("user-s01"))


def test_saving_an_open_profile_page_keeps_what_the_student_saved_meanwhile(
    open_profile: OpenProfile,
) -> None:
    """The teacher opens the student's page during a check-in; the student adds interests on
    their own page; the teacher then writes a private note and saves. Saving wrote every field
    of the (stale) page, so the student's interests silently vanished."""
    o = open_profile
    page = o.teacher.get(f"/course/students/{o.person_id}").text
    mine = o.student.post("/profile/", {"interests": "robots, music", "career_goal_text": "Pilot"})
    assert mine.status_code in (302, 303), mine.text[:2000]
    form = o.teacher_form(page, teacher_notes="Talked to parents on Tuesday")
    saved = o.teacher.follow(o.teacher.post(f"/course/students/{o.person_id}/profile", form))
    assert "The profile is saved." in saved.text
    assert 'value="robots, music"' in saved.text
    profile = o.profile()
    assert profile.interests == ["robots", "music"]
    assert profile.career_goal_text == "Pilot"
    assert profile.teacher_notes == "Talked to parents on Tuesday"


def test_a_field_both_changed_is_refused_with_both_versions_kept(
    open_profile: OpenProfile,
) -> None:
    """When the teacher changed the very field the student changed meanwhile, neither text may
    be lost: the save is refused, naming the field and what it now holds, with the teacher's
    text still in the form; saving that form again (after reading) writes the teacher's."""
    o = open_profile
    page = o.teacher.get(f"/course/students/{o.person_id}").text
    o.student.post("/profile/", {"interests": "robots, music", "career_goal_text": "Pilot"})
    form = o.teacher_form(page, interests="chess club", strengths="Patient with others")
    refused = o.teacher.post(f"/course/students/{o.person_id}/profile", form)
    assert refused.status_code == 400
    assert "Interests was changed by someone else" in refused.text
    assert "it now reads “robots, music”" in refused.text
    assert 'value="chess club"' in refused.text
    assert "Patient with others</textarea>" in refused.text
    assert "Pilot</textarea>" in refused.text  # the student's other change, not the old page's
    profile = o.profile()
    assert (profile.interests, profile.strengths) == (["robots", "music"], "")

    again = o.teacher_form(
        refused.text, interests="chess club", career_goal_text="Pilot", strengths="Patient"
    )
    o.teacher.follow(o.teacher.post(f"/course/students/{o.person_id}/profile", again))
    profile = o.profile()
    assert profile.interests == ["chess club"]
    assert (profile.career_goal_text, profile.strengths) == ("Pilot", "Patient")


def test_recording_evidence_on_the_student_page_says_which_hand_ins_it_closes(
    fresh_lms: RunningPlatform, tool_server: ToolServer, db: Database
) -> None:
    """Evidence on a competency closes the student's handed-in work on it, as a level on the
    overview does. The form names the competencies with work waiting before the click, and the
    flash after says how many hand-ins went with the evidence, and on what."""
    ensure_launched(fresh_lms, tool_server, ("user-s01",))
    teacher = frame(LtiActions(fresh_lms, tool_server).launch("user-t01"), tool_server.url)
    ids = Ids.of(db, fresh_lms)
    cid, student = ids.context(), ids.person("user-s01")
    with db.begin() as s:
        photosynthesis = make_competency(s, cid, "P1", title="Photosynthesis")
        quiet = make_competency(s, cid, "R1", title="Respiration")
        pathway = create_pathway(s, context_id=cid, title="Light")
        choices = []
        for title in ("Leaf lab", "Light poster"):
            step = create_step(
                s, context_id=cid, pathway_id=pathway.id, title=title, competency_id=photosynthesis
            )
            option = create_option(s, context_id=cid, step_id=step.id, data=OptionInput(title))
            choice = choose_option(s, context_id=cid, person_id=student, option_id=option.id).id
            start_choice(s, context_id=cid, person_id=student, choice_id=choice)
            submit_choice(s, context_id=cid, person_id=student, choice_id=choice, note="")
            choices.append(choice)
        name = person_names(s, person_ids=[student])[student]

    page = teacher.get(f"/course/students/{student}").text
    assert 'aria-describedby="rec-handed-in"' in page
    hint = re.search(r'<p class="hint" id="rec-handed-in">(.*?)</p>', page, re.S)
    assert hint is not None
    assert (
        f"Evidence also closes the work <bdi>{name}</bdi> has handed in on its competency, "
        "marked done: one level per competency. Handed in and waiting:"
    ) in hint.group(1)
    assert "<bdi>P1 · Photosynthesis</bdi> (2 hand-ins)." in hint.group(1)
    assert "Respiration" not in hint.group(1)

    # Evidence on a competency without work waiting closes nothing, and says only that.
    plain = teacher.post(
        f"/mastery/students/{student}/evidence",
        {"competency_id": str(quiet), "points": "2.00", "note": ""},
    )
    assert '<p class="flash" role="status">Evidence recorded.</p>' in teacher.follow(plain).text

    closing = teacher.post(
        f"/mastery/students/{student}/evidence",
        {"competency_id": str(photosynthesis), "points": "3.00", "note": ""},
    )
    after = teacher.follow(closing).text
    assert (
        "Evidence recorded. This also closed 2 hand-in(s) by this student on "
        "\u2068P1 · Photosynthesis\u2069, now marked done: one level per competency."
    ) in after
    assert 'id="rec-handed-in"' not in after  # nothing waits any more
    with db.begin() as s:
        statuses = s.scalars(select(Choice.status).where(Choice.id.in_(choices))).all()
    assert statuses == [ChoiceStatus.DONE, ChoiceStatus.DONE]
