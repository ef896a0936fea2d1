"""A level emptied while the LMS was not being told (the student away, or the column off) is
cleared in the LMS when the student comes back or the column is turned on again: the LMS must
not keep showing 3/4 "Proficient" while Pathways shows no level."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, update

from lti_app.competencies.services import archive_competency, create_competency
from lti_app.db import Database
from lti_app.grades.columns import set_display, set_gradebook_competencies
from lti_app.grades.models import GradeDisplay, OutboxStatus
from lti_app.grades.services import queue_scores
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.models import Evidence, StudentCompetencyLevel
from lti_app.mastery.scales import recompute_course, update_scale
from lti_app.mastery.services import withdraw_evidence
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Membership, MembershipStatus
from tests.conftest import LtiActions
from tests.courses.frames import lms_of_the_module  # noqa: F401  (this module's own LMS)
from tests.grades.conftest import GradeCourse, outbox_rows

AWAY = "user-s02"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
TEACHING_ASSISTANT = (
    "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
)


def _lms_scores(course: GradeCourse, competency_id: int) -> dict[str, object]:
    """What the LMS holds in a competency's column: scoreGiven per student who has a result."""
    item = course.line_items()[competency_id]
    lms_id = course.lms_item_ids()[item.url]
    return {
        sub: record.body.get("scoreGiven")
        for sub, record in course.lms.platform.state.results(lms_id).items()
    }


def _level(db: Database, course: GradeCourse, sub: str, competency_id: int) -> str | None:
    with db.session_factory() as s:
        return s.scalar(
            select(StudentCompetencyLevel.level_name).where(
                StudentCompetencyLevel.context_id == course.context_id,
                StudentCompetencyLevel.person_id == course.students[sub],
                StudentCompetencyLevel.competency_id == competency_id,
            )
        )


def _set_membership(db: Database, course: GradeCourse, sub: str, **values: object) -> None:
    """What a roster sync writes when the LMS lists the student otherwise (dropped, a TA)."""
    with db.begin() as s:
        s.execute(
            update(Membership)
            .where(
                Membership.context_id == course.context_id,
                Membership.person_id == course.students[sub],
            )
            .values(**values)
        )


def _withdraw_evidence_of(db: Database, course: GradeCourse, sub: str) -> None:
    with db.begin() as s:
        for evidence in s.scalars(
            select(Evidence).where(
                Evidence.context_id == course.context_id,
                Evidence.person_id == course.students[sub],
            )
        ).all():
            queue_scores(
                s,
                withdraw_evidence(
                    s,
                    context_id=course.context_id,
                    evidence_id=evidence.id,
                    changed_by_id=course.teacher_id,
                ),
            )


def _roster_lists_everyone_active(course: GradeCourse, db: Database) -> None:
    members = [
        Member(sub, (LEARNER,), "Active", None, None, None, None, None) for sub in course.students
    ]
    with db.begin() as s:
        apply_members(
            s, platform_id=course.platform_id, context_id=course.context_id, members=members
        )


def _launch(lti: LtiActions, course: GradeCourse, sub: str, roles: list[str]) -> None:
    # No roster claim: these tests say themselves what the roster lists, and when.
    launched = lti.launch(sub, context_id=course.lms_context_id, roles=roles, include_nrps=False)
    assert launched.response.status_code == 200, launched.text[:2000]


def test_a_ta_made_a_student_again_loses_in_the_lms_the_level_withdrawn_meanwhile(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    (competency,) = course.competency_ids
    course.record(3)
    worker = course.worker()
    course.drain_until_settled(worker)
    assert set(_lms_scores(course, competency).values()) == {3.0}

    _launch(lti, course, AWAY, [INSTRUCTOR, TEACHING_ASSISTANT])  # a TA for a while
    _withdraw_evidence_of(db, course, AWAY)
    course.drain_until_settled(worker)
    assert course.counts()[OutboxStatus.SKIPPED] == 1  # not one of the class then
    assert _level(db, course, AWAY, competency) is None
    assert _lms_scores(course, competency)[AWAY] == 3.0

    _launch(lti, course, AWAY, [LEARNER])  # a student again
    course.drain_until_settled(worker)
    assert _lms_scores(course, competency)[AWAY] is None, "the LMS kept the withdrawn level"
    course.assert_lms_matches_mastery()


def test_a_student_back_by_the_roster_has_no_level_in_the_lms_after_a_switch_to_n_times(
    make_course: Callable[..., GradeCourse], db: Database
) -> None:
    """Also in the column of an archived competency, which stays on until the teacher turns it
    off."""
    course = make_course(students=2, competencies=2)
    kept, archived = course.competency_ids
    course.record(3, competency=0)
    course.record(3, competency=1)
    worker = course.worker()
    course.drain_until_settled(worker)
    with db.begin() as s:
        archive_competency(s, context_id=course.context_id, competency_id=archived)
        queue_scores(s, recompute_course(s, context_id=course.context_id))
    assert course.line_items()[archived].is_enabled

    _set_membership(db, course, AWAY, status=MembershipStatus.INACTIVE)
    with db.begin() as s:
        queue_scores(
            s,
            update_scale(s, context_id=course.context_id, method=CalculationMethod.N_TIMES, n=3),
        )
    course.drain_until_settled(worker)
    assert _level(db, course, AWAY, archived) is None
    assert _lms_scores(course, archived)[AWAY] == 3.0  # skipped: away

    _roster_lists_everyone_active(course, db)
    course.drain_until_settled(worker)
    for competency in (kept, archived):
        assert _lms_scores(course, competency)[AWAY] is None, "the LMS kept a dropped level"
    course.assert_lms_matches_mastery()


def test_a_parents_column_is_cleared_for_a_student_away_when_all_its_parts_were_archived(
    make_course: Callable[..., GradeCourse], db: Database
) -> None:
    course = make_course(students=2, competencies=0)
    with db.begin() as s:
        parent = create_competency(s, context_id=course.context_id, code="P", title="Parent").id
        parts = [
            create_competency(
                s, context_id=course.context_id, code=f"P.{i}", title=f"Part {i}", parent_id=parent
            ).id
            for i in (1, 2)
        ]
        set_gradebook_competencies(s, context_id=course.context_id, competency_ids=[parent])
    course.competency_ids = parts
    course.record(3, competency=0)
    course.record(3, competency=1)
    worker = course.worker()
    course.drain_until_settled(worker)
    assert set(_lms_scores(course, parent).values()) == {3.0}

    _set_membership(db, course, AWAY, status=MembershipStatus.INACTIVE)
    with db.begin() as s:  # each part archived on its own: the parent rolls up nothing now
        for part in parts:
            archive_competency(s, context_id=course.context_id, competency_id=part)
        queue_scores(s, recompute_course(s, context_id=course.context_id))
    course.drain_until_settled(worker)
    assert _level(db, course, AWAY, parent) is None
    assert _lms_scores(course, parent)[AWAY] == 3.0

    _roster_lists_everyone_active(course, db)
    course.drain_until_settled(worker)
    assert _lms_scores(course, parent) == dict.fromkeys(course.students)


def test_a_column_turned_back_on_loses_a_level_withdrawn_while_it_was_off(
    make_course: Callable[..., GradeCourse], db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    (competency,) = course.competency_ids
    course.record(3)
    worker = course.worker()
    course.drain_until_settled(worker)
    with db.begin() as s:
        set_gradebook_competencies(s, context_id=course.context_id, competency_ids=[])
    _withdraw_evidence_of(db, course, AWAY)
    course.drain_until_settled(worker)
    assert _lms_scores(course, competency)[AWAY] == 3.0  # the column was off: nothing sent

    with db.begin() as s:
        set_gradebook_competencies(
            s, context_id=course.context_id, competency_ids=course.competency_ids
        )
    course.drain_until_settled(worker)
    assert _lms_scores(course, competency)[AWAY] is None, "the LMS kept the withdrawn level"
    course.assert_lms_matches_mastery()


def test_no_clearing_score_goes_where_the_lms_holds_none(
    make_course: Callable[..., GradeCourse], db: Database
) -> None:
    """A student the LMS never scored, or one whose level was already cleared there, comes back:
    nothing is sent for them."""
    course = make_course(students=3, competencies=1)
    (competency,) = course.competency_ids
    never_scored, cleared = "user-s01", AWAY
    scored = [sub for sub in course.students if sub != never_scored]
    course.record(3, subs=scored)
    worker = course.worker()
    course.drain_until_settled(worker)
    _withdraw_evidence_of(db, course, cleared)
    course.drain_until_settled(worker)
    assert _lms_scores(course, competency)[cleared] is None
    assert never_scored not in _lms_scores(course, competency)

    for sub in (never_scored, cleared):
        _set_membership(db, course, sub, status=MembershipStatus.INACTIVE)
    before = len(outbox_rows(db, course.context_id))
    _roster_lists_everyone_active(course, db)
    assert len(outbox_rows(db, course.context_id)) == before

    # A change of display re-sends the one level there is, and clears nothing.
    with db.begin() as s:
        queued = set_display(s, context_id=course.context_id, display=GradeDisplay.PERCENT)
    assert [r.person_id for r in outbox_rows(db, course.context_id) if r.id in queued] == [
        course.students["user-s03"]
    ]
