"""Rows the domain features hang on (platform, course, people), for domain tests only."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sqlalchemy.orm import Session

from lti_app.tool.models import Context, Person, Platform

_counter = itertools.count(1)


@dataclass(frozen=True)
class Course:
    """Ids of one course with a teacher and its students."""

    context_id: int
    teacher_id: int
    student_ids: list[int]


def make_platform(session: Session) -> Platform:
    n = next(_counter)
    platform = Platform(
        issuer=f"https://lms{n}.example.test",
        client_id=f"client-{n}",
        auth_login_url="https://lms.example.test/auth",
        token_url="https://lms.example.test/token",
        jwks_url="https://lms.example.test/jwks",
    )
    session.add(platform)
    session.flush()
    return platform


def make_person(session: Session, platform: Platform, name: str = "") -> int:
    n = next(_counter)
    person = Person(platform_id=platform.id, sub=f"user-{n}", name=name or f"Person {n}")
    session.add(person)
    session.flush()
    return person.id


def make_course(session: Session, platform: Platform | None = None, students: int = 3) -> Course:
    platform = platform or make_platform(session)
    n = next(_counter)
    context = Context(platform_id=platform.id, context_id=f"course-{n}", title=f"Course {n}")
    session.add(context)
    session.flush()
    return Course(
        context_id=context.id,
        teacher_id=make_person(session, platform, "Teacher"),
        student_ids=[make_person(session, platform) for _ in range(students)],
    )
