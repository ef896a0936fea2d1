"""The date a teacher types on the student page or the bulk form becomes a time that orders
correctly against undated evidence (pathway work marked done, self-assessments)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from lti_app.competencies.services import create_competency
from lti_app.courses import common
from lti_app.courses.recording import record_and_close
from lti_app.mastery import services as mastery_services
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.levels import current_levels
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.scales import update_scale
from tests.domain_fixtures import make_course

AFTERNOON = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 in New York


def test_evidence_dated_today_after_noon_is_more_recent_than_work_done_earlier(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    course = make_course(session)
    comp = create_competency(session, context_id=course.context_id, code="C1", title="C1").id
    update_scale(session, context_id=course.context_id, method=CalculationMethod.MOST_RECENT)
    student = course.student_ids[0]
    clock = {"now": AFTERNOON}
    monkeypatch.setattr(common, "utcnow", lambda: clock["now"])
    monkeypatch.setattr(mastery_services, "utcnow", lambda: clock["now"])

    # 15:00 UTC: the teacher marks the student's pathway work done (undated, so now).
    record_and_close(
        session,
        context_id=course.context_id,
        competency_id=comp,
        student_ids=[student],
        points=Decimal(1),
        note="work",
        recorded_by_id=course.teacher_id,
        source=EvidenceSource.PATHWAY_WORK,
    )
    # 16:00 UTC: the teacher records Proficient on the student page, whose date field holds
    # today as the form offered it.
    clock["now"] = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
    observed = common.observed_from(common.today())
    assert observed == common.Observed(clock["now"], date(2026, 3, 10))
    record_and_close(
        session,
        context_id=course.context_id,
        competency_id=comp,
        student_ids=[student],
        points=Decimal(3),
        note="talked it through",
        recorded_by_id=course.teacher_id,
        observed_at=observed.at,
        observed_on=observed.on,
    )
    row = current_levels(session, context_id=course.context_id, person_id=student)[comp]
    assert row.level_name == "Proficient"


def test_an_earlier_date_still_counts_as_noon_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "utcnow", lambda: AFTERNOON)
    noon = datetime(2026, 3, 9, 12, tzinfo=UTC)
    assert common.observed_from(date(2026, 3, 9)) == common.Observed(noon, date(2026, 3, 9))
    # A teacher a day ahead of UTC: now, on the day they typed.
    assert common.observed_from(date(2026, 3, 11)) == common.Observed(AFTERNOON, date(2026, 3, 11))
    with pytest.raises(ValueError, match="future"):
        common.observed_from(date(2026, 3, 12))
