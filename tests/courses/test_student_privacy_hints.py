"""The teacher's student page says which of its fields the student and the family read.

The profile's "Strengths", "Needs and supports" and "Non-academic skills" sit in one form with
the private teacher notes, yet the student reads them on their profile; an evidence note is
printed in the family report. A teacher must not have to guess which is which.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

from lti_app.competencies.services import create_competency
from lti_app.learners.services import update_profile
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from tests.courses.frames import token_in
from tests.insights.conftest import FreshCourse, fresh_course
from tests.progress.pages import unit_of_work

__all__ = ["fresh_course"]


def _label(page: str, field_id: str) -> str:
    """The words of the label of one field, tags removed."""
    found = re.search(f'<label for="{re.escape(field_id)}">(.*?)</label>', page, re.S)
    assert found, field_id
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def test_fields_the_student_and_family_read_say_so(
    fresh_course: FreshCourse, database_url: str
) -> None:
    c = fresh_course
    with unit_of_work(database_url) as s:
        competency = create_competency(s, context_id=c.context_id, code="N1", title="Numbers")
        update_profile(
            s,
            context_id=c.context_id,
            person_id=c.student_id,
            editor_is_teacher=True,
            needs_and_supports="NEEDS-reading support",
        )
        record_evidence(
            s,
            context_id=c.context_id,
            competency_id=competency.id,
            student_ids=[c.student_id],
            points=Decimal(2),
            source=EvidenceSource.TEACHER,
            note="NOTE-worked with a partner",
            recorded_by_id=c.teacher_id,
            observed_at=datetime.now(UTC),
        )
    base = c.lti.tool.url
    # What the teacher typed is what the student and the family read...
    student = c.lti.launch("user-s01")
    params = {"lt": token_in(student.text)}
    assert "NEEDS-reading support" in student.client.get(f"{base}/profile/", params=params).text
    report = student.client.get(f"{base}/reports/students/{c.student_id}", params=params).text
    assert "NOTE-worked with a partner" in report

    # ...and the teacher's form says so, next to the notes that stay private.
    teacher = c.lti.launch("user-t01")
    page = teacher.client.get(
        f"{base}/course/students/{c.student_id}", params={"lt": token_in(teacher.text)}
    ).text
    for field in ("pf-strengths", "pf-needs_and_supports", "pf-non_academic_notes"):
        assert "(the student sees this)" in _label(page, field), _label(page, field)
    assert _label(page, "rec-note") == "Note (shown to the student and in the family report)"
    assert "never shown to the student or family" in _label(page, "pf-teacher_notes")
    for field in ("pf-career_goal_text", "pf-teacher_notes"):
        assert "student sees" not in _label(page, field)
