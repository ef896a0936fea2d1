"""The class's progress over time, week by week: weeks end on the course's calendar days and
the table under the chart ("Date | Level points | Meaning") never lists a day twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from lti_app.competencies.services import create_competency
from lti_app.insights.charts import class_series, seen_in
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from tests.domain_fixtures import Course, make_course


def _days(
    session: Session,
    course: Course,
    results: list[tuple[datetime, int]],
    now: datetime,
    zone: ZoneInfo,
) -> list[date]:
    comp = create_competency(session, context_id=course.context_id, code="W1", title="W1").id
    for when, points in results:
        record_evidence(
            session,
            context_id=course.context_id,
            competency_id=comp,
            student_ids=[course.student_ids[0]],
            points=Decimal(points),
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=course.teacher_id,
            observed_at=when,
            observed_on=when.astimezone(zone).date(),
        )
    series = seen_in(
        class_series(
            session,
            context_id=course.context_id,
            person_ids=set(course.student_ids),
            labels={comp: "W1"},
            now=now,
            zone=zone,
        ),
        zone,
    )
    return [p.at.date() for p in series[0].points]


def test_the_weekly_table_does_not_list_today_twice(session: Session) -> None:
    now = datetime.now(UTC) - timedelta(minutes=5)
    first = now - timedelta(days=14, minutes=10)  # two weeks ago, a little earlier in the day
    days = _days(
        session,
        make_course(session),
        [(first, 1), (now - timedelta(minutes=1), 3)],
        now,
        ZoneInfo("UTC"),
    )
    assert len(days) == len(set(days)), days
    assert days[-1] == now.date()


def test_weeks_end_on_the_courses_days(session: Session) -> None:
    zone = ZoneInfo("Pacific/Auckland")
    now = datetime(2026, 3, 10, 11, 0, tzinfo=zone).astimezone(UTC)
    first = datetime(2026, 2, 24, 10, 0, tzinfo=zone).astimezone(UTC)
    days = _days(session, make_course(session), [(first, 1), (now, 3)], now, zone)
    assert days == [date(2026, 3, 3), date(2026, 3, 10)]
