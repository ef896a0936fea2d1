"""The teacher's course pages as teachers really use them: double clicks on every form, a
mistake in one field that must not cost the rest of what was typed, invisible characters,
impossible dates and hand-edited addresses."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from lti_app.db import Database
from lti_app.learners.models import CheckIn, Goal, LearnerProfile
from lti_app.mastery.models import Evidence
from lti_app.pathways.choices import choose_option, submit_choice
from lti_app.pathways.models import Choice, ChoiceStatus
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.services import create_pathway, create_step
from tests.courses.frames import Frame, Ids, make_competency, unique


def clicks(frame: Frame, path: str, data: dict[str, Any], times: int = 3) -> list[int]:
    """Post the same form `times` times at the same moment (an impatient double click)."""
    frame.csrf_token()
    barrier = threading.Barrier(times)
    codes: list[int] = []

    def click() -> None:
        barrier.wait()
        codes.append(frame.post(path, data).status_code)

    threads = [threading.Thread(target=click) for _ in range(times)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def _goals(db: Database, student: int, text: str) -> int:
    with db.begin() as s:
        return int(
            s.scalar(
                select(func.count(Goal.id))
                .join(LearnerProfile, LearnerProfile.id == Goal.profile_id)
                .where(LearnerProfile.person_id == student, Goal.text == text)
            )
            or 0
        )


def _check_ins(db: Database, student: int, note: str) -> int:
    with db.begin() as s:
        return int(
            s.scalar(
                select(func.count(CheckIn.id))
                .join(LearnerProfile, LearnerProfile.id == CheckIn.profile_id)
                .where(LearnerProfile.person_id == student, CheckIn.note == note)
            )
            or 0
        )


# --- double clicks ------------------------------------------------------------------------------


def test_double_click_on_add_goal_stores_one_goal(
    teacher: Frame, bio_students: tuple[str, ...], ids: Ids, db: Database
) -> None:
    """The same goal posted two or three times at once (or resent) is one goal: the family
    report would otherwise list it twice. A goal in other words is a new goal."""
    student = ids.person("user-s02")
    text = unique("Read a chapter every week ")
    path = f"/course/students/{student}/goals"
    codes = clicks(teacher, path, {"text": text, "target_date": ""})
    assert codes == [303] * 3, codes
    assert _goals(db, student, text) == 1
    again = teacher.post(path, {"text": text, "target_date": ""})  # a resend, seconds later
    assert again.status_code == 303
    assert _goals(db, student, text) == 1
    page = teacher.follow(again)
    assert page.text.count(f">{text}</textarea>") == 1  # one goal to edit
    other = teacher.post(path, {"text": text + " and another", "target_date": ""})
    assert other.status_code == 303
    assert _goals(db, student, text + " and another") == 1


def test_double_click_on_add_check_in_stores_one_check_in(
    teacher: Frame, bio_students: tuple[str, ...], ids: Ids, db: Database
) -> None:
    """The same conversation posted twice within seconds is one check-in (the family report
    quotes each check-in)."""
    student = ids.person("user-s03")
    note = unique("Talked about the field trip ")
    data = {"held_on": "", "note": note, "next_steps": "Bring boots"}
    codes = clicks(teacher, f"/course/students/{student}/check-ins", data)
    assert codes == [303] * 3, codes
    assert _check_ins(db, student, note) == 1


@dataclass(frozen=True)
class Submitted:
    student: int
    competency: int
    choices: list[int]


@pytest.fixture
def submitted(teacher: Frame, bio_students: tuple[str, ...], ids: Ids, db: Database) -> Submitted:
    """user-s10 has handed in two pieces of work on steps that each assess one competency."""
    cid, student = ids.context(), ids.person("user-s10")
    with db.begin() as s:
        competency = make_competency(s, cid, unique("DBL"))
        pathway = create_pathway(s, context_id=cid, title="Double clicks")
        made = []
        for n in range(2):
            step = create_step(
                s,
                context_id=cid,
                pathway_id=pathway.id,
                title=f"Step {n}",
                competency_id=competency,
            )
            option = create_option(s, context_id=cid, step_id=step.id, data=OptionInput(f"O{n}"))
            choice = choose_option(s, context_id=cid, person_id=student, option_id=option.id)
            submit_choice(s, context_id=cid, person_id=student, choice_id=choice.id, note="done")
            made.append(choice.id)
    return Submitted(student, competency, made)


def _evidence(db: Database, s: Submitted) -> int:
    with db.begin() as session:
        return int(
            session.scalar(
                select(func.count(Evidence.id)).where(
                    Evidence.person_id == s.student, Evidence.competency_id == s.competency
                )
            )
            or 0
        )


def test_double_click_on_mark_done_with_a_level_records_the_evidence_once(
    teacher: Frame, submitted: Submitted, db: Database
) -> None:
    """Marking two pieces of work done at Proficient records two pieces of evidence; a double
    click must not record four (with "n times at mastery" that would count as mastered)."""
    data = {"action": "done", "choice": [str(c) for c in submitted.choices], "level": "3"}
    codes = clicks(teacher, "/course/pending", data)
    assert codes == [303] * 3, codes
    assert _evidence(db, submitted) == 2
    resent = teacher.post("/course/pending", data)  # the browser's "resend the form?"
    assert resent.status_code == 303
    assert _evidence(db, submitted) == 2


def test_double_click_on_send_back_shows_success_not_an_error(
    teacher: Frame, submitted: Submitted, db: Database
) -> None:
    """The second click of "Send back with the note" finds the work already sent back with
    that very note: the teacher sees it done, not "That did not work"."""
    data = {"action": "return", "choice": str(submitted.choices[0]), "note": "Add a diagram"}
    codes = clicks(teacher, "/course/pending", data, times=2)
    assert codes == [303, 303], codes
    again = teacher.post("/course/pending", data)
    assert again.status_code == 303
    assert "Sent 1 choice(s) back" in teacher.follow(again).text
    with db.begin() as s:
        choice = s.get(Choice, submitted.choices[0])
        assert choice is not None
        assert choice.status is ChoiceStatus.RETURNED
    # A different note on work already sent back is still refused in words.
    other = teacher.post("/course/pending", {**data, "note": "Something else"})
    assert other.status_code == 400
    assert "cannot be sent back" in other.text


def test_a_refused_action_on_waiting_items_keeps_the_ticks_note_and_level(
    teacher: Frame, submitted: Submitted
) -> None:
    """ "Approve" pressed on handed-in work (which is reviewed, not approved) is refused in
    words; the items stay ticked and the note and level the teacher chose are still there."""
    ticked = submitted.choices[0]
    note = unique("Great diagram, add labels ")
    answer = teacher.post(
        "/course/pending",
        {"action": "approve", "choice": str(ticked), "note": note, "level": "3"},
    )
    assert answer.status_code == 400
    assert note in answer.text
    assert re.search(rf'id="choice-{ticked}" checked', answer.text)
    assert re.search(r'<option value="3(\.0+)?" selected>', answer.text)


def test_approve_with_handed_in_work_among_the_ticked_approves_the_picks_and_says_so(
    teacher: Frame, submitted: Submitted, ids: Ids, db: Database
) -> None:
    """ "Select all", then "Approve": the picks waiting for approval are approved, and the
    handed-in work (reviewed, not approved) stays waiting, which the notice says, instead of
    the whole batch being refused."""
    cid = ids.context()
    with db.begin() as s:
        pathway = create_pathway(s, context_id=cid, title=unique("Approvals "))
        step = create_step(
            s,
            context_id=cid,
            pathway_id=pathway.id,
            title="Pick",
            competency_id=submitted.competency,
        )
        option = create_option(
            s,
            context_id=cid,
            step_id=step.id,
            data=OptionInput("Needs a yes", requires_approval=True),
        )
        pick = choose_option(s, context_id=cid, person_id=submitted.student, option_id=option.id)
        pick_id = pick.id
    answer = teacher.post(
        "/course/pending",
        {"action": "approve", "choice": [str(pick_id), *map(str, submitted.choices)]},
    )
    assert answer.status_code == 303, answer.text[-600:]
    page = teacher.follow(answer).text
    assert "Approved 1 choice(s)." in page
    assert "still waits for you to mark it done or send it back" in page
    with db.begin() as s:
        assert s.get(Choice, pick_id).status is ChoiceStatus.APPROVED  # type: ignore[union-attr]
        for choice_id in submitted.choices:
            assert s.get(Choice, choice_id).status is ChoiceStatus.SUBMITTED  # type: ignore[union-attr]


# --- what the teacher typed ----------------------------------------------------------------------


def test_a_mistake_in_one_profile_field_keeps_everything_else_typed(
    teacher: Frame, bio_students: tuple[str, ...], ids: Ids
) -> None:
    """A teacher who filled six profile fields and made one too long gets the page back with
    the message and every field as typed, not the old profile (their writing silently gone)."""
    student = ids.person("user-s01")
    typed = {
        "interests": "robots, " + unique("knitting"),
        "strengths": unique("Explains ideas to others "),
        "needs_and_supports": "x" * 5001,
        "teacher_notes": unique("Quiet on Mondays "),
    }
    answer = teacher.post(
        f"/course/students/{student}/profile", {**typed, "career_clusters": ["Health Science"]}
    )
    assert answer.status_code == 400
    assert "too long" in answer.text
    assert typed["strengths"] in answer.text
    assert typed["teacher_notes"] in answer.text
    assert typed["interests"] in answer.text
    assert "x" * 5001 in answer.text
    assert 'value="Health Science" checked' in answer.text


def test_a_bad_date_keeps_the_check_in_and_goal_that_were_typed(
    teacher: Frame, bio_students: tuple[str, ...], ids: Ids, db: Database
) -> None:
    """A mistyped date must not cost the teacher the conversation notes they just wrote."""
    student = ids.person("user-s01")
    note = unique("We talked about her science fair idea ")
    answer = teacher.post(
        f"/course/students/{student}/check-ins",
        {"held_on": "2025-02-30", "note": note, "next_steps": "Sketch the poster"},
    )
    assert answer.status_code == 400
    assert "not a date" in answer.text
    assert note in answer.text
    assert "Sketch the poster" in answer.text
    goal = unique("Finish the poster ")
    answer = teacher.post(
        f"/course/students/{student}/goals", {"text": goal, "target_date": "31/12/2025"}
    )
    assert answer.status_code == 400
    assert goal in answer.text
    assert _goals(db, student, goal) == 0


def test_a_check_in_cannot_be_held_in_the_far_future(
    teacher: Frame, bio_students: tuple[str, ...], ids: Ids, db: Database
) -> None:
    """Product decision: a check-in records a conversation that took place ("Held on"); a date
    in year 9999 is a typo the family report would print ("Conversation on 31 December 9999").
    Tomorrow is still accepted (a teacher east of UTC is a day ahead)."""
    student = ids.person("user-s02")
    note = unique("Typo year ")
    answer = teacher.post(
        f"/course/students/{student}/check-ins", {"held_on": "9999-12-31", "note": note}
    )
    assert answer.status_code == 400
    assert "future" in answer.text
    assert _check_ins(db, student, note) == 0


def test_invisible_characters_in_teacher_text_are_dropped_not_a_server_error(
    teacher: Frame, bio_students: tuple[str, ...], ids: Ids, db: Database
) -> None:
    """Text pasted from another program may hold NUL (PostgreSQL refuses it): the goal and the
    check-in are saved without it."""
    student = ids.person("user-s03")
    tag = unique("")
    goal = teacher.post(f"/course/students/{student}/goals", {"text": f"Goal\x00 {tag}"})
    assert goal.status_code == 303, goal.text[-500:]
    check_in = teacher.post(
        f"/course/students/{student}/check-ins", {"note": f"Note\x00 {tag}", "next_steps": "a\x00b"}
    )
    assert check_in.status_code == 303, check_in.text[-500:]
    page = teacher.follow(check_in)
    assert f"Goal {tag}" in page.text
    assert f"Note {tag}" in page.text
    assert "\x00" not in page.text


@pytest.mark.parametrize(
    "params",
    [
        {"notice": "approved", "n": "99999999999999999999999999"},
        {"notice": "<script>alert(1)</script>"},
        {"notice": "approved", "n": "<b>9</b>"},
    ],
)
def test_odd_notice_parameters_never_break_or_inject(
    teacher: Frame, params: dict[str, str]
) -> None:
    """A hand-edited address shows the page; a notice never carries text from the address."""
    page = teacher.get("/course/", **params)
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "<b>9</b>" not in page.text


def test_mark_done_with_a_level_outside_the_scale_changes_nothing(
    teacher: Frame, submitted: Submitted, db: Database
) -> None:
    """An impossible level (a hand-edited form) is refused and the work stays waiting."""
    for level in ("7", "NaN", "1e999999", "abc", "-1"):
        data = {"action": "done", "choice": str(submitted.choices[0]), "level": level}
        answer: httpx.Response = teacher.post("/course/pending", data)
        assert answer.status_code == 400, (level, answer.status_code)
    with db.begin() as s:
        choice = s.get(Choice, submitted.choices[0])
        assert choice is not None
        assert choice.status is ChoiceStatus.SUBMITTED
    assert _evidence(db, submitted) == 0
