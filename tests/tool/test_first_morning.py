"""The first morning of a course: the teacher placed Pathways in a module last night, and at
8 a.m. the whole class opens it at once. Nobody Pathways has met before, in a course and a
placement it has not seen: every launch writes the same new rows at the same moment."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from lti_app.db import Database
from lti_app.demo import seed
from lti_app.demo.seed import STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.tool.models import Context, Membership, ResourceLink
from tests.conftest import Launched, LtiActions


def test_a_whole_class_opening_a_new_course_at_once_all_land_on_their_home(
    lti: LtiActions, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    context_id = f"course-first-morning-{uuid.uuid4().hex[:8]}"
    class_ = STUDENTS[:30]
    monkeypatch.setitem(
        seed.COURSES,
        context_id,
        Course(
            context_id=context_id,
            label="FM1",
            title="First morning",
            enrollments=(
                Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
                *(Enrollment(s.user_id, Role.LEARNER) for s in class_),
            ),
        ),
    )
    link_id = f"rl-first-morning-{uuid.uuid4().hex[:8]}"
    users = [TEACHER.user_id, *(s.user_id for s in class_)]

    def open_pathways(user_id: str) -> Launched:
        return lti.launch(user_id, context_id=context_id, resource_link_id=link_id)

    with ThreadPoolExecutor(len(users)) as pool:
        launched = list(pool.map(open_pathways, users))

    refused = [
        (user, opened.response.status_code)
        for user, opened in zip(users, launched, strict=True)
        if opened.response.status_code != 200
    ]
    assert refused == [], launched[0].text[:1500]
    assert all("role-badge" in opened.text for opened in launched)
    with db.session_factory() as session:
        courses = session.scalars(select(Context.id).where(Context.context_id == context_id))
        (course,) = courses.all()
        links = session.scalar(
            select(func.count()).where(
                ResourceLink.context_id == course, ResourceLink.resource_link_id == link_id
            )
        )
        members = session.scalar(select(func.count()).where(Membership.context_id == course))
    assert links == 1
    assert members == len(users)
