"""The teacher's student page on goals and check-ins: who wrote a note, its lines kept, overdue
goals said in words, and a goal set by mistake deleted after a confirming step."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from lti_app.learners.goals_and_check_ins import add_check_in, add_goal
from lti_app.learners.models import CheckIn, Goal
from tests.insights.conftest import FreshCourse, fresh_course
from tests.progress.pages import form, person_id, post, unit_of_work, url

__all__ = ["fresh_course"]
TEACHER, CO_TEACHER = "user-t01", "user-t02"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
TEACHER_CSS = Path(__file__).resolve().parents[2] / "lti_app" / "static" / "css" / "teacher.css"


def _article(page: str, needle: str) -> str:
    match = re.search(
        r"<article[^>]*>(?:(?!</article>).)*" + re.escape(needle) + r".*?</article>", page, re.S
    )
    assert match, needle
    return match.group(0)


def _student_page(fc: FreshCourse) -> str:
    home = fc.lti.launch(TEACHER)
    page = home.client.get(url(home.response, f"/course/students/{fc.student_id}"))
    assert page.status_code == 200
    return page.text


def test_check_in_history_says_which_teacher_held_it(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """Two teachers share a class: Amara reads who held the check-in Henrik recorded."""
    fc = fresh_course
    co = fc.lti.launch(CO_TEACHER, roles=[INSTRUCTOR])
    page = co.client.get(url(co.response, f"/course/students/{fc.student_id}"))
    saved = post(
        co.client,
        form(page, "/check-ins"),
        {
            "held_on": datetime.now(UTC).date().isoformat(),
            "note": "We agreed:\r\n1. Reading log\r\n2. Lab write-up",
            "next_steps": "Finish lab",
        },
    )
    assert saved.status_code == 200
    with unit_of_work(database_url) as s:
        row = s.scalars(select(CheckIn).where(CheckIn.context_id == fc.context_id)).one()
        assert row.author_id == person_id(s, fc.lti.lms, CO_TEACHER)
    article = _article(_student_page(fc), "Reading log")
    assert re.search(r"by [^<]*Lindqvist", article)


def test_check_in_history_keeps_the_lines_of_notes_and_next_steps(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    with unit_of_work(database_url) as s:
        add_check_in(
            s,
            context_id=fc.context_id,
            person_id=fc.student_id,
            author_id=fc.teacher_id,
            held_on=datetime.now(UTC).date(),
            note="We agreed:\n1. Reading log\n2. Lab write-up",
            next_steps="- finish lab\n- read ch. 4",
        )
    article = _article(_student_page(fc), "Reading log")
    assert re.search(r'<p class="pre-line" dir="auto">We agreed:\n1\. Reading log', article)
    assert re.search(r'<bdi class="pre-line">- finish lab\n- read ch\. 4', article)
    assert re.search(r"\.pre-line\s*\{[^}]*white-space:\s*pre-line", TEACHER_CSS.read_text())


def test_a_goal_past_its_target_date_says_overdue_in_words(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    today = datetime.now(UTC).date()
    with unit_of_work(database_url) as s:
        for text, days in (("Late goal", -3), ("Future goal", 5)):
            add_goal(
                s,
                context_id=fc.context_id,
                person_id=fc.student_id,
                text=text,
                target_date=today + timedelta(days=days),
                created_by_id=fc.teacher_id,
                editor_is_teacher=True,
            )
    text = _student_page(fc)
    goals = text.split('id="goals"', 1)[1].split('id="check-ins"', 1)[0]
    cards = re.findall(r'<div class="card" id="goal-\d+">.*?</details>\s*</div>', goals, re.S)
    late = next(c for c in cards if "Late goal" in c)
    future = next(c for c in cards if "Future goal" in c)
    assert "Overdue" in late
    assert "Overdue" not in future


def test_teacher_deletes_a_goal_set_by_mistake_after_confirming(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    with unit_of_work(database_url) as s:
        goal = add_goal(
            s,
            context_id=fc.context_id,
            person_id=fc.student_id,
            text="Typo goal",
            created_by_id=fc.student_id,
            editor_is_teacher=False,
        )
        goal_id = goal.id
        add_check_in(
            s,
            context_id=fc.context_id,
            person_id=fc.student_id,
            author_id=fc.teacher_id,
            held_on=datetime.now(UTC).date(),
            note="Talked",
        )
    home = fc.lti.launch(TEACHER)
    page = home.client.get(url(home.response, f"/course/students/{fc.student_id}"))
    # The delete button is behind a disclosure that says what deleting does.
    confirm = re.search(r"<details[^>]*>\s*<summary>Delete this goal.*?</details>", page.text, re.S)
    assert confirm
    assert f"/goals/{goal_id}/delete" in confirm.group(0)
    assert "family report" in confirm.group(0)
    delete = form(page, f"/goals/{goal_id}/delete")
    refused = home.client.post(delete.action, data={})  # no CSRF token: refused
    assert refused.status_code >= 400
    with unit_of_work(database_url) as s:
        assert s.get(Goal, goal_id) is not None
    done = post(home.client, delete)
    assert done.status_code == 200
    assert "The goal is deleted." in done.text
    assert "Typo goal" not in done.text
    with unit_of_work(database_url) as s:
        assert s.get(Goal, goal_id) is None
    report = home.client.get(url(home.response, f"/reports/students/{fc.student_id}"))
    assert "Typo goal" not in report.text


def test_teacher_cannot_delete_a_goal_of_another_student(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    fc.lti.launch("user-s02")
    with unit_of_work(database_url) as s:
        other = person_id(s, fc.lti.lms, "user-s02")
        goal_id = add_goal(
            s,
            context_id=fc.context_id,
            person_id=other,
            text="Their goal",
            created_by_id=other,
            editor_is_teacher=False,
        ).id
    home = fc.lti.launch(TEACHER)
    page = home.client.get(url(home.response, f"/course/students/{fc.student_id}"))
    delete = form(page, "/check-ins")  # any form of the page, for its tokens
    delete.action = delete.action.replace("/check-ins", f"/goals/{goal_id}/delete")
    assert post(home.client, delete).status_code == 404
    with unit_of_work(database_url) as s:
        assert s.get(Goal, goal_id) is not None
