"""A double click on "Unlock for students": the second request must not fail (PostgreSQL).

The test's own transaction stands in for the first click: it has unlocked the step and not yet
committed when the second click's request arrives.
"""

from __future__ import annotations

import httpx
from sqlalchemy import select

from lti_app.db import Database
from lti_app.pathways.models import StepUnlock
from lti_app.pathways.unlocking import unlock_step_for_students
from tests.conftest import LtiActions
from tests.lock_waits import in_thread, needs_row_locks, until_waiting
from tests.pathways.test_views import STUDENT, TEACHER, Built
from tests.progress.pages import form, link, person_id, post, unit_of_work

pytestmark = needs_row_locks


def test_unlocking_a_step_twice_at_once_unlocks_it_once_without_an_error(
    lti: LtiActions, built: Built, database_url: str, db: Database
) -> None:
    """Both requests used to see no unlock yet and insert one; the second hit the unique
    constraint (a 500). Now the second waits for the first and finds its unlock."""
    lti.launch(STUDENT)
    with unit_of_work(database_url) as s:
        student = person_id(s, lti.lms, STUDENT)
        teacher_id = person_id(s, lti.lms, TEACHER)
    teacher = lti.launch(TEACHER)
    editor = teacher.client.get(link(teacher.response, "/pathways/manage?"))
    pathway_page = teacher.client.get(link(editor, f"/pathways/manage/{built.pathway_id}?"))
    step_page = teacher.client.get(link(pathway_page, f"/manage/steps/{built.locked_step_id}?"))
    unlock = form(step_page, f"/manage/steps/{built.locked_step_id}/unlock")
    results: dict[str, httpx.Response] = {}
    with db.begin() as first_click:
        unlock_step_for_students(
            first_click,
            context_id=built.context_id,
            step_id=built.locked_step_id,
            student_ids=[student],
            unlocked_by_id=teacher_id,
        )
        second = in_thread(
            lambda: post(
                teacher.client,
                unlock,
                {"student_ids": [str(student)], "action": "unlock"},
                follow=False,
            ),
            results,
            "second click",
        )
        until_waiting(db, 1, [second])
    second.join(30)
    assert results["second click"].status_code == 302, results["second click"].text[:400]
    with db.begin() as s:
        unlocks = s.scalars(
            select(StepUnlock.person_id).where(StepUnlock.step_id == built.locked_step_id)
        ).all()
    assert unlocks == [student]
