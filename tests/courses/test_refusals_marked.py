"""A refused form on the teacher's student page and the class evidence page names the field it
is about: the field says it is invalid and is described by the message, and the message links
to it ("Go to the field"), as the pathway, competency and goal forms do."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from tests.courses.frames import Frame, Ids, field_marks, make_competency, unique

MARKED = (True, True, True)
REC_FIELDS = ("rec-competency", "rec-points", "rec-date", "rec-note")


@pytest.fixture
def ids(db: Database, lms: RunningPlatform) -> Ids:
    return Ids.of(db, lms)


def _competency(db: Database, ids: Ids, code: str) -> int:
    with db.begin() as s:
        return make_competency(s, ids.context(), code)


@pytest.mark.parametrize(
    ("typed", "field"),
    [
        ({"points": "99"}, "rec-points"),  # off the course's scale (1 to 4)
        ({"observed_on": "next Tuesday"}, "rec-date"),
        ({"observed_on": "0026-03-02"}, "rec-date"),  # a slipped year
    ],
)
def test_refused_evidence_marks_and_links_its_field(
    teacher: Frame,
    bio_students: tuple[str, ...],
    db: Database,
    ids: Ids,
    typed: dict[str, str],
    field: str,
) -> None:
    student = ids.person(bio_students[0])
    comp = _competency(db, ids, unique("RF"))
    refused = teacher.post(
        f"/mastery/students/{student}/evidence",
        {"competency_id": str(comp), "points": "3", "note": "lab", **typed},
    )
    assert refused.status_code == 400, refused.text[:1000]
    assert field_marks(refused.text, field) == MARKED
    # Only that field: the others are not said to be wrong.
    assert [field_marks(refused.text, f)[0] for f in REC_FIELDS if f != field] == [False] * 3


def test_a_check_in_dated_in_the_future_marks_and_links_its_date(
    teacher: Frame, bio_students: tuple[str, ...], ids: Ids
) -> None:
    student = ids.person(bio_students[0])
    ahead = (datetime.now(UTC).date() + timedelta(days=10)).isoformat()
    refused = teacher.post(
        f"/course/students/{student}/check-ins", {"held_on": ahead, "note": "talked"}
    )
    assert refused.status_code == 400
    assert "cannot be in the future" in refused.text
    assert field_marks(refused.text, "ci-date") == MARKED
    assert field_marks(refused.text, "rec-date")[0] is False


def test_a_teachers_refused_goal_marks_and_links_its_field(
    teacher: Frame, bio_students: tuple[str, ...], ids: Ids
) -> None:
    student = ids.person(bio_students[1])
    refused = teacher.post(f"/course/students/{student}/goals", {"text": "   "})
    assert refused.status_code == 400
    assert field_marks(refused.text, "goal-new-text") == MARKED
    assert field_marks(refused.text, "goal-new-date")[0] is False
    dated = teacher.post(
        f"/course/students/{student}/goals", {"text": "Read", "target_date": "June"}
    )
    assert field_marks(dated.text, "goal-new-date") == MARKED


def test_refused_class_evidence_marks_and_links_its_field(
    teacher: Frame, bio_students: tuple[str, ...], db: Database, ids: Ids
) -> None:
    student = ids.person(bio_students[0])
    comp = _competency(db, ids, unique("RFB"))
    sent = {"student": str(student), "competency_id": str(comp), "points": "3"}
    off_scale = teacher.post("/mastery/evidence/bulk", {**sent, "points": "0.5"})
    assert off_scale.status_code == 400
    assert field_marks(off_scale.text, "bulk-points") == MARKED
    bad_day = teacher.post("/mastery/evidence/bulk", {**sent, "observed_on": "2O25-01-01"})
    assert field_marks(bad_day.text, "bulk-date") == MARKED
    assert field_marks(bad_day.text, "bulk-points")[0] is False
    nobody = teacher.post(
        "/mastery/evidence/bulk", {k: v for k, v in sent.items() if k != "student"}
    )
    assert re.search(r"Tick at least one student", nobody.text)
    assert field_marks(nobody.text, "all-students") == MARKED
