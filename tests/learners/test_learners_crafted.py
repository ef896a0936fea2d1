"""Learner profiles as students and teachers really meet them: double clicks, the limits the
page itself promises, typing that must survive a mistake, and people from elsewhere."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable
from functools import partial

import httpx
from sqlalchemy import delete, func, select

from lti_app.learners.goals_and_check_ins import add_goal
from lti_app.learners.models import Goal, LearnerProfile
from lti_app.learners.services import MAX_TEXT_LENGTH, get_profile, update_profile
from tests.conftest import LtiActions
from tests.progress.pages import (
    context_id,
    form,
    person_id,
    post,
    unique,
    unit_of_work,
    url,
)

TEACHER = "user-t01"
CHEM_TEACHER = "user-t02"


def _profile_page(lti: LtiActions, student: str) -> tuple[httpx.Client, httpx.Response]:
    home = lti.launch(student)
    page = home.client.get(url(home.response, "/profile/"))
    assert page.status_code == 200
    return home.client, page


def _at_once(count: int, send: Callable[[], httpx.Response]) -> list[int]:
    """Send `count` requests at the same moment, as an impatient double (triple) click does."""
    barrier = threading.Barrier(count)
    codes: list[int] = []

    def one() -> None:
        barrier.wait()
        codes.append(send().status_code)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def _forget_profile(database_url: str, lti: LtiActions, student: str) -> tuple[int, int]:
    with unit_of_work(database_url) as s:
        course, me = context_id(s, lti.lms), person_id(s, lti.lms, student)
        s.execute(
            delete(LearnerProfile).where(
                LearnerProfile.context_id == course, LearnerProfile.person_id == me
            )
        )
    return course, me


def test_double_click_on_the_first_save_of_a_profile_saves_once_without_an_error(
    lti: LtiActions, database_url: str
) -> None:
    """A student's very first "Save my profile", clicked twice, must not show an error page:
    both clicks carry the same answers, so the student expects them saved, once."""
    student = "user-s27"
    client, page = _profile_page(lti, student)
    profile_form = form(page, "/profile/?")
    data = {
        **{k: v for k, v in profile_form.fields.items() if k in {"lt", "csrf_token"}},
        "interests": "ice hockey, drawing",
        "career_goal_text": "Architect",
    }
    for round_ in range(4):
        course, me = _forget_profile(database_url, lti, student)
        codes = _at_once(3, lambda: client.post(profile_form.action, data=data))
        assert sorted(set(codes)) in ([302], [303]), (round_, codes)
        with unit_of_work(database_url) as s:
            profile = get_profile(s, context_id=course, person_id=me)
            assert profile is not None
            assert profile.interests == ["ice hockey", "drawing"]


def test_double_click_on_add_goal_adds_the_goal_once(lti: LtiActions, database_url: str) -> None:
    """Clicking "Add goal" twice must not give the student the same goal twice: an identical
    goal the student is still working on is the same goal (product decision). A goal already
    met or dropped may be set again."""
    student = "user-s28"
    client, page = _profile_page(lti, student)
    goal_form = form(page, "/profile/goals?")
    hidden = {k: v for k, v in goal_form.fields.items() if k in {"lt", "csrf_token"}}
    for round_ in range(3):
        text = f"Read two books about space {unique()}"
        data = {**hidden, "text": text, "target_date": "2031-01-15"}
        codes = _at_once(3, partial(client.post, goal_form.action, data=data))
        assert sorted(set(codes)) in ([302], [303]), (round_, codes)
        with unit_of_work(database_url) as s:
            count = s.scalar(select(func.count()).select_from(Goal).where(Goal.text == text))
        assert count == 1, (round_, count)
    # Typed again later with other spacing: still the one goal; the page lands on it.
    again = client.post(goal_form.action, data={**hidden, "text": f"  {text.upper()}  "})
    assert again.status_code in (302, 303)
    with unit_of_work(database_url) as s:
        goal_id = s.scalars(select(Goal.id).where(Goal.text == text)).one()
        assert s.scalar(select(func.count()).select_from(Goal).where(Goal.text == text)) == 1
    assert again.headers["location"].endswith(f"#goal-{goal_id}")
    # Once met, the same words may start a new goal.
    with unit_of_work(database_url) as s:
        goal = s.get(Goal, goal_id)
        assert goal is not None
        goal.status = goal.status.MET
    client.post(goal_form.action, data={**hidden, "text": text})
    with unit_of_work(database_url) as s:
        assert s.scalar(select(func.count()).select_from(Goal).where(Goal.text == text)) == 2


def test_text_that_fits_the_box_is_accepted_even_with_line_breaks(
    lti: LtiActions, database_url: str
) -> None:
    """The boxes say maxlength=5000, and the browser counts a line break as one character
    but sends it as two (CR LF). Text the page let the student type must be saved, not
    refused as "too long"; and it is stored with plain line breaks."""
    student = "user-s26"
    client, page = _profile_page(lti, student)
    paragraphs = ["I want to design bridges."] * 10
    body = "\n".join(paragraphs)
    body += "x" * (MAX_TEXT_LENGTH - len(body))  # exactly what the box allows
    assert len(body) == MAX_TEXT_LENGTH
    sent = body.replace("\n", "\r\n")  # what the browser submits
    saved = post(client, form(page, "/profile/?"), {"career_goal_text": sent}, follow=False)
    assert saved.status_code in (302, 303), saved.text[:400]
    added = post(
        client, form(page, "/profile/goals?"), {"text": sent, "target_date": ""}, follow=False
    )
    assert added.status_code in (302, 303), added.text[:400]
    with unit_of_work(database_url) as s:
        course, me = context_id(s, lti.lms), person_id(s, lti.lms, student)
        profile = get_profile(s, context_id=course, person_id=me)
        assert profile is not None
        assert profile.career_goal_text == body
        assert s.scalars(select(Goal.text).where(Goal.profile_id == profile.id)).all()[-1] == body
    # Still one character too many is refused in words.
    too_long = post(client, form(page, "/profile/?"), {"career_goal_text": sent + "y"})
    assert too_long.status_code == 400
    assert "too long" in too_long.text


def _textarea(page: httpx.Response, field_id: str) -> str:
    match = re.search(rf'<textarea id="{field_id}"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert match, f"no textarea {field_id}"
    return html.unescape(match.group(1))


def _input_value(page: httpx.Response, field_id: str) -> str:
    match = re.search(rf'<input id="{field_id}"[^>]*value="([^"]*)"', page.text)
    assert match, f"no input {field_id}"
    return html.unescape(match.group(1))


def test_a_goal_refused_for_its_date_keeps_what_the_student_typed(lti: LtiActions) -> None:
    """A student who wrote a long goal and slipped on the year (a date box takes five-digit
    years; Pathways does not) must not have to write the goal again: the page explaining the
    mistake still holds the goal's words and the date they typed."""
    client, page = _profile_page(lti, "user-s25")
    words = f"Build a birdhouse & <measure> it\nthen paint it {unique()}"
    refused = post(
        client, form(page, "/profile/goals?"), {"text": words, "target_date": "20311-02-03"}
    )
    assert refused.status_code == 400
    assert "date" in refused.text
    assert _textarea(refused, "new-goal-text") == words
    assert "Build a birdhouse &amp; &lt;measure&gt;" in refused.text  # escaped, not markup
    assert _input_value(refused, "new-goal-date") == "20311-02-03"


def test_a_goal_update_refused_keeps_the_students_edits(lti: LtiActions, database_url: str) -> None:
    """The same for changing a goal: the goal's form shows the student's new words, not the
    old ones, next to the explanation."""
    student = "user-s24"
    client, page = _profile_page(lti, student)
    first = f"Practise fractions {unique()}"
    page = post(client, form(page, "/profile/goals?"), {"text": first, "target_date": ""})
    assert page.status_code == 200
    with unit_of_work(database_url) as s:
        goal_id = s.scalars(select(Goal.id).where(Goal.text == first)).one()
    changed = f"Practise fractions every day {unique()}"
    refused = post(
        client,
        form(page, f"/profile/goals/{goal_id}?"),
        {"text": changed, "target_date": "20260-01-01", "status": "in_progress"},
    )
    assert refused.status_code == 400
    assert _textarea(refused, f"goal-{goal_id}-text") == changed
    assert _input_value(refused, f"goal-{goal_id}-date") == "20260-01-01"
    assert 'value="in_progress" selected' in refused.text
    assert re.search(
        rf"<details open>\s*<summary>Update this goal<span[^>]*>: <bdi>{first}", refused.text
    )
    with unit_of_work(database_url) as s:
        assert s.get(Goal, goal_id).text == first  # type: ignore[union-attr]


def test_teacher_cannot_open_or_change_a_student_from_another_course(
    lti: LtiActions, database_url: str
) -> None:
    """The Biology teacher changes the id in the address to a student who is only in the
    Chemistry Club (here: the Chemistry teacher's student view). Not found, and nothing of
    that course's profile is read or written."""
    lti.launch(CHEM_TEACHER, context_id="course-chem-club")
    lti.launch("user-s01", context_id="course-chem-club")
    lti.launch("user-s01")
    teacher = lti.launch(TEACHER)
    with unit_of_work(database_url) as s:
        bio = context_id(s, lti.lms)
        club = context_id(s, lti.lms, "course-chem-club")
        chem_teacher = person_id(s, lti.lms, CHEM_TEACHER)
        shared = person_id(s, lti.lms, "user-s01")
        update_profile(
            s,
            context_id=club,
            person_id=shared,
            editor_is_teacher=True,
            teacher_notes=f"CLUB-ONLY note {unique()}",
        )
    edit = teacher.client.get(url(teacher.response, f"/profile/students/{shared}"))
    assert edit.status_code == 200
    assert "CLUB-ONLY" not in edit.text  # the Biology profile, not the club's
    hidden = form(edit, f"/profile/students/{shared}?").fields
    for outsider in (chem_teacher,):
        assert teacher.client.get(url(edit, f"/profile/students/{outsider}")).status_code == 404
        answer = teacher.client.post(
            url(edit, f"/profile/students/{outsider}"),
            data={**hidden, "teacher_notes": "written from Biology"},
        )
        assert answer.status_code == 404
        answer = teacher.client.post(
            url(edit, f"/profile/students/{outsider}/goals"), data={**hidden, "text": "Sneaky"}
        )
        assert answer.status_code == 404
    with unit_of_work(database_url) as s:
        assert get_profile(s, context_id=bio, person_id=chem_teacher) is None
        club_profile = get_profile(s, context_id=club, person_id=shared)
        assert club_profile is not None
        assert club_profile.teacher_notes.startswith("CLUB-ONLY")
        assert not s.scalars(select(Goal).where(Goal.text == "Sneaky")).all()


def test_teacher_notes_and_private_check_ins_stay_off_every_student_page(
    lti: LtiActions, database_url: str
) -> None:
    """Teacher notes are private: the student must not find them on the profile page, on the
    progress page, on their pathway pages or in the family report they can open."""
    student = "user-s23"
    home = lti.launch(student)
    secret = f"PRIVATE-{unique()}"
    with unit_of_work(database_url) as s:
        course, me = context_id(s, lti.lms), person_id(s, lti.lms, student)
        update_profile(
            s,
            context_id=course,
            person_id=me,
            editor_is_teacher=True,
            teacher_notes=secret,
            strengths="Asks good questions\nHelps others",
        )
        add_goal(
            s,
            context_id=course,
            person_id=me,
            text="Finish the lab report",
            created_by_id=me,
            editor_is_teacher=False,
        )
    pages = [home.response]
    for path in ("/profile/", "/progress/", "/reports/", f"/reports/students/{me}"):
        answer = home.client.get(url(home.response, path))
        if answer.status_code == 200:
            pages.append(answer)
    assert len(pages) >= 3
    for page in pages:
        assert secret not in page.text, page.url
    profile_page = home.client.get(url(home.response, "/profile/"))
    assert "Asks good questions\nHelps others" in profile_page.text  # shown with its line break


def test_teacher_saving_an_open_page_keeps_what_the_student_changed_meanwhile(
    lti: LtiActions, database_url: str
) -> None:
    """During a check-in the teacher opens the student's profile while the student, on their
    own screen, adds an interest. The teacher then saves a strength: the student's new
    interest must still be there (only what the teacher changed is changed). What the
    teacher did change wins."""
    student = "user-s22"
    client, mine = _profile_page(lti, student)
    post(client, form(mine, "/profile/?"), {"interests": "football", "career_goal_text": "Coach"})
    teacher = lti.launch(TEACHER)
    with unit_of_work(database_url) as s:
        course, me = context_id(s, lti.lms), person_id(s, lti.lms, student)
    edit = teacher.client.get(url(teacher.response, f"/profile/students/{me}"))
    assert edit.status_code == 200
    # The student changes their part while the teacher's page is open.
    post(
        client,
        form(mine, "/profile/?"),
        {"interests": "football, chess", "career_goal_text": "Coach"},
    )
    saved = post(
        teacher.client,
        form(edit, f"/profile/students/{me}?"),
        {
            "interests": "football",  # as the teacher's page still shows it
            "career_goal_text": "Football coach",  # the teacher's own correction
            "strengths": "Kind to others",
            "teacher_notes": "",
            "needs_and_supports": "",
            "non_academic_notes": "",
            "shown": form(edit, f"/profile/students/{me}?").fields.get("shown", ""),
        },
    )
    assert "The profile is saved" in saved.text
    with unit_of_work(database_url) as s:
        profile = get_profile(s, context_id=course, person_id=me)
        assert profile is not None
        assert profile.interests == ["football", "chess"]
        assert profile.career_goal_text == "Football coach"
        assert profile.strengths == "Kind to others"
