"""The dashboard and the class chart load in a constant number of queries, however many
students or levels."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from lti_app.competencies.services import create_competency
from lti_app.insights.charts import class_series
from lti_app.insights.dashboard import load_dashboard
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.scales import get_or_create_scale
from lti_app.mastery.services import record_evidence
from tests.conftest import LtiActions
from tests.domain_fixtures import make_course
from tests.insights.conftest import Seeded
from tests.progress.pages import unit_of_work


@contextmanager
def count_queries(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = session.get_bind()

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_dashboard_query_count_does_not_grow_with_the_class(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    with unit_of_work(database_url) as s:
        get_or_create_scale(s, context_id=seeded.context_id)
        with count_queries(s) as before:
            small = load_dashboard(s, context_id=seeded.context_id)
        record_evidence(
            s,
            context_id=seeded.context_id,
            competency_id=seeded.c2,
            student_ids=list(seeded.students.values()),
            points=Decimal(2),
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=seeded.teacher_id,
        )
        s.expire_all()
        with count_queries(s) as after:
            bigger = load_dashboard(s, context_id=seeded.context_id)
    assert sum(len(r.cells) for r in bigger.rows) > sum(len(r.cells) for r in small.rows)
    assert len(before) == len(after) <= 10


def test_class_chart_query_count_does_not_grow_with_the_class(session: Session) -> None:
    counts = []
    for size in (1, 8):
        course = make_course(session, students=size)
        parent = create_competency(session, context_id=course.context_id, code="P", title="P").id
        part = create_competency(
            session, context_id=course.context_id, code="PA", title="PA", parent_id=parent
        ).id
        for days_ago in (15, 1):
            record_evidence(
                session,
                context_id=course.context_id,
                competency_id=part,
                student_ids=course.student_ids,
                points=Decimal(3),
                source=EvidenceSource.TEACHER,
                note="",
                recorded_by_id=course.teacher_id,
                observed_at=datetime.now(UTC) - timedelta(days=days_ago),
            )
        session.expire_all()
        with count_queries(session) as statements:
            series = class_series(
                session,
                context_id=course.context_id,
                person_ids=set(course.student_ids),
                labels={parent: "P", part: "PA"},
                now=datetime.now(UTC),
            )
        assert series[0].points[-1].label == f"average 3.00; {size} of {size} at mastery"
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 4
