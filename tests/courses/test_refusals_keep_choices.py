"""A refused form on the teacher's pages comes back with what the teacher chose, not only what
they typed: the level, the competency, the students ticked and the private box. A teacher who
fixes the date and saves again without looking would otherwise record the first level."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from lti_app.insights.groups import create_group
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from tests.courses.frames import Frame, Ids, field_marks, make_competency, unique

MARKED = (True, True, True)
SLIPPED_YEAR = "0026-03-02"


@pytest.fixture
def ids(db: Database, lms: RunningPlatform) -> Ids:
    return Ids.of(db, lms)


def chosen(page: str, select_id: str) -> list[str]:
    """The text of the options a select of the page comes back with selected."""
    found = re.search(rf'<select\b[^>]*\bid="{select_id}".*?</select>', page, re.S)
    assert found is not None, select_id
    return [
        text.strip()
        for text in re.findall(r"<option\b[^>]*\bselected[^>]*>([^<]*)", found.group(0))
    ]


def ticked(page: str, name: str) -> set[str]:
    """The values of the page's checkboxes named `name` that come back checked."""
    boxes = re.findall(rf'<input type="checkbox" name="{name}"[^>]*>', page)
    return {
        re.search(r'value="([^"]*)"', box).group(1)  # type: ignore[union-attr]
        for box in boxes
        if " checked" in box
    }


def level_value(page: str, select_id: str, name: str) -> str:
    """The value the page's level menu sends for the level called `name`."""
    found = re.search(
        rf'<option value="([^"]+)"[^>]*>{name} \(', page.split(f'id="{select_id}"')[1]
    )
    assert found is not None, name
    return found.group(1)


def test_refused_evidence_comes_back_with_its_level_and_competency(
    teacher: Frame, bio_students: tuple[str, ...], db: Database, ids: Ids
) -> None:
    student = ids.person(bio_students[0])
    course = ids.context()
    with db.begin() as s:
        make_competency(s, course, unique("KA"))
        second = make_competency(s, course, unique("KB"))
    page = teacher.get(f"/course/students/{student}").text
    refused = teacher.post(
        f"/mastery/students/{student}/evidence",
        {
            "competency_id": str(second),
            "points": level_value(page, "rec-points", "Advanced"),
            "observed_on": SLIPPED_YEAR,
            "note": "lab report",
        },
    )
    assert refused.status_code == 400, refused.text[:1000]
    assert field_marks(refused.text, "rec-date") == MARKED
    assert [c.startswith("Advanced") for c in chosen(refused.text, "rec-points")] == [True]
    assert len(chosen(refused.text, "rec-competency")) == 1
    assert f'<option value="{second}" selected>' in refused.text


def test_refused_class_evidence_comes_back_with_level_competency_and_students(
    teacher: Frame, bio_students: tuple[str, ...], db: Database, ids: Ids
) -> None:
    picked = {str(ids.person(bio_students[1])), str(ids.person(bio_students[2]))}
    course, fourth = ids.context(), ids.person(bio_students[3])
    with db.begin() as s:
        make_competency(s, course, unique("KC"))
        second = make_competency(s, course, unique("KD"))
        group_name = unique("Lab table ")
        group = create_group(
            s,
            context_id=course,
            name=group_name,
            person_ids=[fourth],
            created_by_id=None,
        ).id
    page = teacher.get("/mastery/evidence/bulk").text
    ahead = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    refused = teacher.post(
        "/mastery/evidence/bulk",
        {
            "student": sorted(picked),
            "group_id": str(group),
            "competency_id": str(second),
            "points": level_value(page, "bulk-points", "Developing"),
            "observed_on": ahead,
            "note": "quiz",
        },
    )
    assert refused.status_code == 400, refused.text[:1000]
    assert field_marks(refused.text, "bulk-date") == MARKED
    assert [c.startswith("Developing") for c in chosen(refused.text, "bulk-points")] == [True]
    assert f'<option value="{second}" selected>' in refused.text
    assert ticked(refused.text, "student") == picked
    assert [c.startswith(group_name) for c in chosen(refused.text, "group_id")] == [True]


def test_a_refused_correction_comes_back_with_the_level_and_note_typed(
    teacher: Frame, bio_students: tuple[str, ...], db: Database, ids: Ids
) -> None:
    student = ids.person(bio_students[0])
    course = ids.context()
    with db.begin() as s:
        comp = make_competency(s, course, unique("KE"))
        record_evidence(
            s,
            context_id=course,
            competency_id=comp,
            student_ids=[student],
            points=Decimal(1),
            source=EvidenceSource.TEACHER,
            note="first try",
            recorded_by_id=student,
        )
    history = teacher.get(f"/course/students/{student}").text
    evidence_id = re.search(r"/mastery/evidence/(\d+)[^\"]*\"[^<]*History", history)
    assert evidence_id is not None
    page = teacher.get(f"/mastery/evidence/{evidence_id.group(1)}").text
    refused = teacher.post(
        f"/mastery/evidence/{evidence_id.group(1)}/correct",
        {
            "points": level_value(page, "cor-points", "Proficient"),
            "observed_on": SLIPPED_YEAR,
            "note": "second look",
        },
    )
    assert refused.status_code == 400, refused.text[:1000]
    assert field_marks(refused.text, "cor-date") == MARKED
    assert [c.startswith("Proficient") for c in chosen(refused.text, "cor-points")] == [True]
    assert re.search(r'id="cor-note"[^>]*>second look</textarea>', refused.text)


def test_a_check_in_too_long_marks_its_field_and_keeps_private_ticked(
    teacher: Frame, bio_students: tuple[str, ...], ids: Ids
) -> None:
    student = ids.person(bio_students[0])
    long_note = teacher.post(
        f"/course/students/{student}/check-ins",
        {"note": "x" * 5001, "next_steps": "read", "is_private": "on"},
    )
    assert long_note.status_code == 400
    assert field_marks(long_note.text, "ci-note") == MARKED
    assert field_marks(long_note.text, "ci-next")[0] is False
    assert re.search(r'id="ci-private" checked', long_note.text)
    long_steps = teacher.post(
        f"/course/students/{student}/check-ins", {"note": "talked", "next_steps": "y" * 5001}
    )
    assert long_steps.status_code == 400
    assert field_marks(long_steps.text, "ci-next") == MARKED
    assert field_marks(long_steps.text, "ci-note")[0] is False
