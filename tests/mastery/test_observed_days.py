"""Evidence keeps the day it was observed: "most recent" and the stored latest day go by it,
and a correction of that day is kept in the history."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from lti_app.competencies.services import create_competency
from lti_app.mastery import services
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.levels import current_levels
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.scales import update_scale
from tests.domain_fixtures import make_course


def test_most_recent_goes_by_the_day_observed_after_the_zone_changed(session: Session) -> None:
    """Typed 3 December while the course was on UTC: noon UTC. Then the course moved to
    Auckland, where evidence typed "today" (4 December, 00:30) is 11:30 UTC on 3 December,
    earlier than that noon: by the time alone, the 3 December result was the most recent."""
    course = make_course(session)
    comp = create_competency(session, context_id=course.context_id, code="D1", title="D1").id
    update_scale(session, context_id=course.context_id, method=CalculationMethod.MOST_RECENT)
    student = course.student_ids[0]
    for points, at, on in (
        (1, datetime(2025, 12, 3, 12, 0, tzinfo=UTC), date(2025, 12, 3)),
        (3, datetime(2025, 12, 3, 11, 30, tzinfo=UTC), date(2025, 12, 4)),
    ):
        services.record_evidence(
            session,
            context_id=course.context_id,
            competency_id=comp,
            student_ids=[student],
            points=Decimal(points),
            source=EvidenceSource.TEACHER,
            note=f"result {points}",
            recorded_by_id=course.teacher_id,
            observed_at=at,
            observed_on=on,
        )
    row = current_levels(session, context_id=course.context_id, person_id=student)[comp]
    assert (row.level_name, row.last_evidence_on) == ("Proficient", date(2025, 12, 4))
    history = services.evidence_history(session, context_id=course.context_id, person_id=student)
    assert [e.observed_on for e in history] == [date(2025, 12, 3), date(2025, 12, 4)]

    # Moving the later result back a day keeps both days in its history.
    services.correct_evidence(
        session,
        context_id=course.context_id,
        evidence_id=history[1].id,
        observed_at=datetime(2025, 12, 2, 12, 0, tzinfo=UTC),
        observed_on=date(2025, 12, 2),
        changed_by_id=course.teacher_id,
    )
    row = current_levels(session, context_id=course.context_id, person_id=student)[comp]
    assert (row.level_name, row.last_evidence_on) == ("Emerging", date(2025, 12, 3))
    revision = history[1].revisions[0]
    assert (revision.old_observed_on, revision.new_observed_on) == (
        date(2025, 12, 4),
        date(2025, 12, 2),
    )
