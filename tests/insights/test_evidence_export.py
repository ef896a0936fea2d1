"""The evidence log download on a large course: the same lines, without an ORM object per row
(36,000 rows took ~2.4 s of CPU, mostly building Evidence and two Person objects each)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import event
from sqlalchemy.orm import Session

from lti_app.competencies.services import create_competency
from lti_app.insights.exports import evidence_csv
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.tool.models import Membership, Person
from tests.domain_fixtures import make_course


def test_the_evidence_log_names_students_and_recorders_and_loads_no_objects(
    session: Session,
) -> None:
    course = make_course(session, students=2)
    for pid in course.student_ids:
        session.add(Membership(context_id=course.context_id, person_id=pid, is_learner=True))
    session.add(Membership(context_id=course.context_id, person_id=course.teacher_id))
    first, second = course.student_ids
    session.get_one(Person, second).name = ""
    session.get_one(Person, second).given_name = "Ana"
    session.get_one(Person, second).family_name = "Ruiz"
    comp = create_competency(session, context_id=course.context_id, code="=C1", title="Cells")
    now = datetime.now(UTC)
    for days, recorder, source in (
        (3, course.teacher_id, EvidenceSource.TEACHER),
        (1, second, EvidenceSource.SELF_ASSESSMENT),
    ):
        record_evidence(
            session,
            context_id=course.context_id,
            competency_id=comp.id,
            student_ids=[second] if source is EvidenceSource.SELF_ASSESSMENT else [first, second],
            points=Decimal(3),
            source=source,
            note="+ lab;=notes",
            recorded_by_id=recorder,
            observed_at=now - timedelta(days=days),
        )
    session.flush()
    session.expunge_all()

    text = "".join(
        evidence_csv(session, context_id=course.context_id, zone=ZoneInfo("Europe/Madrid"))
    )

    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0][:3] == ["student", "competency_code", "competency"]
    students = sorted((line[0], line[8], line[6]) for line in lines[1:])
    teacher = "Teacher"
    first_name = session.get_one(Person, first).display_name
    assert students == sorted(
        [
            (first_name, teacher, "teacher"),
            ("Ana Ruiz", teacher, "teacher"),
            ("Ana Ruiz", "Ana Ruiz", "self_assessment"),
        ]
    )
    # Formula guards still apply: the code and the note's text after ";".
    assert {line[1] for line in lines[1:]} == {"'=C1"}
    assert {line[7] for line in lines[1:]} == {"'+ lab;'=notes"}
    loaded: list[object] = []
    event.listen(session, "loaded_as_persistent", lambda _s, obj: loaded.append(obj))
    "".join(evidence_csv(session, context_id=course.context_id, zone=ZoneInfo("UTC")))
    assert loaded == []
