"""Needs attention: a name leads to where the teacher does what its section asks."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from lti_app.learners.goals_and_check_ins import add_goal
from tests.insights.conftest import FreshCourse
from tests.progress.pages import unit_of_work, url

TEACHER = "user-t01"


def test_an_overdue_goal_leads_to_the_students_goals_and_check_in_form(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """ "Goals past their target date: hold a goal check-in" led to progress over time, which
    shows neither the goal nor a check-in form."""
    fc = fresh_course
    goal_text = "Explain photosynthesis to my family"
    with unit_of_work(database_url) as s:
        add_goal(
            s,
            context_id=fc.context_id,
            person_id=fc.student_id,
            text=goal_text,
            target_date=datetime.now(UTC).date() - timedelta(days=3),
            created_by_id=fc.student_id,
            editor_is_teacher=False,
        )
    home = fc.lti.launch(TEACHER)
    attention = home.client.get(url(home.response, "/insights/attention"))
    section = attention.text.split('id="att-goal_overdue"', 1)[1].split("</section>", 1)[0]
    href = html.unescape(re.search(r'href="([^"]+)"', section).group(1))  # type: ignore[union-attr]
    assert href.split("?")[0].endswith(f"/course/students/{fc.student_id}")
    assert href.endswith("#goals")
    page = home.client.get(str(attention.url.join(href)))
    assert page.status_code == 200
    assert 'id="goals"' in page.text
    assert goal_text in page.text
    assert "/check-ins" in page.text  # the check-in form
    # Students without launches still lead to progress over time.
    absent = attention.text.split('id="att-no_evidence"', 1)[1].split("</section>", 1)[0]
    assert f"/insights/students/{fc.student_id}" in html.unescape(absent)
