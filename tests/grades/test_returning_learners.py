"""A student who is not active in the course when their level changes gets no score (the worker
skips them); when they come back, by a launch or by the roster, their current level is sent."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import update

from lti_app.db import Database
from lti_app.grades.models import OutboxStatus
from lti_app.grades.services import queue_scores
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.scales import update_scale
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Membership, MembershipStatus
from tests.conftest import LtiActions
from tests.grades.conftest import GradeCourse, outbox_rows

AWAY = "user-s02"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


def _level_changes_while_away(course: GradeCourse, db: Database) -> None:
    """Developing for everyone and sent; AWAY leaves; "highest" makes everyone Proficient."""
    course.record(1)
    course.record(3)  # decaying average 65%: 2.3, Developing
    worker = course.worker()
    course.drain_until_settled(worker)
    course.assert_lms_matches_mastery()
    with db.begin() as s:  # what the roster sync does when the LMS lists them inactive
        s.execute(
            update(Membership)
            .where(
                Membership.context_id == course.context_id,
                Membership.person_id == course.students[AWAY],
            )
            .values(status=MembershipStatus.INACTIVE)
        )
    with db.begin() as s:
        queue_scores(
            s, update_scale(s, context_id=course.context_id, method=CalculationMethod.HIGHEST)
        )
    course.drain_until_settled(worker)
    assert course.counts()[OutboxStatus.SKIPPED] == 1


def test_a_learner_back_by_a_launch_gets_their_current_level_in_the_lms(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    _level_changes_while_away(course, db)

    lti.launch(AWAY, context_id=course.lms_context_id)  # back in the course: active again
    course.drain_until_settled(course.worker())
    course.assert_lms_matches_mastery()  # Proficient (3) for them too

    before = len(outbox_rows(db, course.context_id))
    lti.launch(AWAY, context_id=course.lms_context_id)  # an ordinary launch queues nothing
    assert len(outbox_rows(db, course.context_id)) == before


def test_a_learner_back_by_the_roster_gets_their_current_level_in_the_lms(
    make_course: Callable[..., GradeCourse], db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    _level_changes_while_away(course, db)

    members = [
        Member(sub, (LEARNER,), "Active", None, None, None, None, None) for sub in course.students
    ]
    with db.begin() as s:
        apply_members(
            s, platform_id=course.platform_id, context_id=course.context_id, members=members
        )
    course.drain_until_settled(course.worker())
    course.assert_lms_matches_mastery()

    before = len(outbox_rows(db, course.context_id))
    with db.begin() as s:  # the next sync lists them the same: nothing to send again
        apply_members(
            s, platform_id=course.platform_id, context_id=course.context_id, members=members
        )
    assert len(outbox_rows(db, course.context_id)) == before
