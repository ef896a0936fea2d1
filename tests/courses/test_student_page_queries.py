"""The teacher's page for one student (also where the gradebook's "review submission" opens)
reads the same number of statements however long the student's evidence history grows: it
asked each evidence row's corrections in turn (835 statements for 41 competencies with 20
pieces of evidence)."""

from __future__ import annotations

import threading
from decimal import Decimal

from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import correct_evidence, evidence_history, record_evidence
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import (
    BIO_STUDENTS,
    Ids,
    counted,
    ensure_launched,
    frame,
    make_competency,
    unique,
)


def add_corrected_evidence(db: Database, ids: Ids, student: int, teacher: int, n: int) -> None:
    context_id = ids.context()
    with db.begin() as session:
        competency = make_competency(session, context_id, unique("HIST"))
        for points in range(n):
            record_evidence(
                session,
                context_id=context_id,
                competency_id=competency,
                student_ids=[student],
                points=Decimal(points % 4 + 1),
                source=EvidenceSource.TEACHER,
                note=f"observation {points}",
                recorded_by_id=teacher,
            )
        for evidence in evidence_history(
            session, context_id=context_id, person_id=student, competency_id=competency
        ):
            correct_evidence(
                session,
                context_id=context_id,
                evidence_id=evidence.id,
                note=evidence.note + " (corrected)",
                changed_by_id=teacher,
            )


def test_the_students_page_reads_the_same_statements_for_a_longer_history(
    fresh_lms: RunningPlatform, tool_server: ToolServer, db: Database
) -> None:
    # A course of its own (a second LMS): the history added here stays out of other tests'.
    ensure_launched(fresh_lms, tool_server, BIO_STUDENTS[:1])
    teacher = frame(LtiActions(fresh_lms, tool_server).launch("user-t01"), tool_server.url)
    ids = Ids.of(db, fresh_lms)
    student = ids.person(BIO_STUDENTS[0])
    teacher_id = ids.person("user-t01")
    for thread in threading.enumerate():  # the teacher's launch syncs the roster meanwhile
        if thread.name.startswith("roster-sync-"):
            thread.join(30)
    add_corrected_evidence(db, ids, student, teacher_id, 2)
    teacher.get(f"/course/students/{student}")  # first reads (keys, caches) out of the count
    with counted(tool_server) as before:
        page = teacher.get(f"/course/students/{student}")
    assert page.status_code == 200
    add_corrected_evidence(db, ids, student, teacher_id, 12)
    with counted(tool_server) as after:
        page = teacher.get(f"/course/students/{student}")
    assert page.status_code == 200
    assert page.text.count("Corrected") >= 14
    assert len(after) == len(before), [s for s in after if "evidence_revision" in s][:3]
