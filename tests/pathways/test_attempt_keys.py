"""A student's earlier try holds on to its step and option in the database itself.

During a rolling upgrade the release before pathway_attempt existed still serves, and its
delete of a step, an option or a pathway checks only for choices: the database must refuse it
rather than take the try along, while a course, a registration or a student going still takes
their tries with them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Delete, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.pathways import options, services
from lti_app.pathways.models import Attempt, Option, Pathway, Step
from lti_app.pathways.options import OptionInput
from lti_app.people.erasure import erase_person
from lti_app.tool.models import Context, Person, Platform

Built = tuple[int, int, int]
"""The pathway, step and option ids of a step the student tried once before."""


@pytest.fixture
def tried(session: Session, course: int, student: int) -> Built:
    """A step whose only trace of the student is an earlier try: they withdrew the new pick
    in the old release, which deleted the choice (the try stays, keyed to student and step)."""
    pathway = services.create_pathway(session, context_id=course, title="Cells")
    step = services.create_step(session, context_id=course, pathway_id=pathway.id, title="Meet")
    option = options.create_option(
        session, context_id=course, step_id=step.id, data=OptionInput("Tour")
    )
    session.add(
        Attempt(
            context_id=course,
            person_id=student,
            step_id=step.id,
            option_id=option.id,
            number=1,
            submission_note="my tour essay",
            chosen_at=utcnow(),
            done_at=utcnow(),
        )
    )
    session.flush()
    return pathway.id, step.id, option.id


def _tries(session: Session, student: int) -> list[str]:
    session.expire_all()
    return list(
        session.scalars(select(Attempt.submission_note).where(Attempt.person_id == student))
    )


@pytest.mark.parametrize(
    "statement",
    [
        lambda built: delete(Option).where(Option.id == built[2]),
        lambda built: delete(Step).where(Step.id == built[1]),
        lambda built: delete(Pathway).where(Pathway.id == built[0]),
    ],
    ids=["option", "step", "pathway"],
)
def test_the_old_releases_delete_of_what_an_earlier_try_used_fails_and_keeps_the_try(
    session: Session, student: int, tried: Built, statement: Callable[[Built], Delete]
) -> None:
    """It used to succeed: ON DELETE CASCADE removed the student's earlier try unseen."""
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(statement(tried))
    assert _tries(session, student) == ["my tour essay"]
    assert session.get(Option, tried[2]) is not None


def test_deleting_the_course_takes_its_pathways_and_earlier_tries_in_one_go(
    session: Session, course: int, student: int, tried: Built
) -> None:
    session.execute(delete(Context).where(Context.id == course))
    assert _tries(session, student) == []
    assert session.get(Option, tried[2]) is None


def test_removing_the_registration_takes_its_courses_and_earlier_tries(
    session: Session, platform: Platform, student: int, tried: Built
) -> None:
    """What `lti-app platform remove` does."""
    session.delete(platform)
    session.flush()
    assert _tries(session, student) == []
    assert session.get(Pathway, tried[0]) is None


def test_erasing_the_student_takes_their_earlier_try_and_keeps_the_pathway(
    session: Session, course: int, student: int, tried: Built
) -> None:
    person = session.get(Person, student)
    assert person is not None
    erased = erase_person(session, person)
    assert erased.deleted["earlier_tries"] == 1
    assert _tries(session, student) == []
    assert session.get(Option, tried[2]) is not None
    # With the try gone, the course's own delete of the option (which checks tries) goes through.
    options.delete_option(session, context_id=course, option_id=tried[2])
    assert session.get(Option, tried[2]) is None
