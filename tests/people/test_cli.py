"""`lti-app person export` and `lti-app person erase`, as an operator answers a data request.

Run against a migrated database of the test's own (SQLite, and PostgreSQL when one answers),
seeded with the demo course plus the rows the seed does not make (reflection, unlocked step,
group place, queued score).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Column, MetaData, func, select, text

from lti_app import migrate
from lti_app.competencies.models import Competency
from lti_app.db import Database, utcnow
from lti_app.demo.app import build_demo_platform
from lti_app.demo.content import seed_demo_course
from lti_app.demo.run import register_demo_platform
from lti_app.demo.seed import STUDENTS, TEACHER
from lti_app.grades.models import LineItem, ScoreOutbox
from lti_app.insights.exports import evidence_csv
from lti_app.insights.models import StudentGroup, StudentGroupMember
from lti_app.learners.goals_and_check_ins import add_check_in, add_goal
from lti_app.learners.models import CheckIn, Goal, LearnerProfile
from lti_app.learners.services import update_profile
from lti_app.mastery.models import Evidence
from lti_app.pathways.models import Attempt, Choice, Option, Step, StepUnlock
from lti_app.reports.models import StudentReflection
from lti_app.tool.models import Context, Person, Platform
from tests.test_cli_crafted import LONG_SECRET, pg_database

__all__ = ["pg_database"]

STUDENT = STUDENTS[0]
CLASSMATE = STUDENTS[1]


@dataclass(frozen=True)
class Seeded:
    url: str
    issuer: str
    client_id: str
    student_id: int
    teacher_id: int
    context_id: int


def _seed(url: str) -> Seeded:
    migrate.upgrade(url)
    _app, demo = build_demo_platform("http://localhost:8001", "http://127.0.0.1:8000")
    database = Database(url)
    with database.begin() as s:
        platform = register_demo_platform(s, demo)
        seed_demo_course(s, platform)
        people = {p.sub: p.id for p in s.scalars(select(Person))}
        student, teacher = people[STUDENT.user_id], people[TEACHER.user_id]
        cid = s.scalars(select(Context.id).where(Context.platform_id == platform.id)).one()
        # What the teacher keeps private about the student is theirs to see too.
        update_profile(
            s, context_id=cid, person_id=student, editor_is_teacher=True, teacher_notes="PRIVATE"
        )
        add_check_in(
            s, context_id=cid, person_id=student, author_id=teacher,
            held_on=date(2026, 3, 1), note="A private talk", is_private=True,
        )  # fmt: skip
        add_goal(
            s, context_id=cid, person_id=student, created_by_id=teacher,
            editor_is_teacher=True, text="Teacher's goal",
        )  # fmt: skip
        s.add(StudentReflection(context_id=cid, person_id=student, text="I learned a lot"))
        step = s.scalars(select(Step).where(Step.context_id == cid).limit(1)).one()
        for pid in (student, people[CLASSMATE.user_id]):
            s.add(
                StepUnlock(context_id=cid, step_id=step.id, person_id=pid, unlocked_by_id=teacher)
            )
        # An earlier try at a step, closed by the teacher's evidence (pathways.attempts).
        option = s.scalars(select(Option).where(Option.step_id == step.id).limit(1)).one()
        s.add(
            Attempt(
                context_id=cid, person_id=student, step_id=step.id, option_id=option.id,
                number=1, submission_note="My first try", chosen_at=utcnow(),
                submitted_at=utcnow(), done_at=utcnow(), closed_by_id=teacher,
                evidence_id=s.scalars(
                    select(Evidence.id).where(Evidence.person_id == student).limit(1)
                ).one(),
            )
        )  # fmt: skip
        group = StudentGroup(context_id=cid, name="Lab partners", created_by_id=teacher)
        s.add(group)
        s.flush()
        s.add(StudentGroupMember(group_id=group.id, context_id=cid, person_id=student))
        competency = s.scalars(
            select(Competency).where(Competency.context_id == cid).limit(1)
        ).one()
        column = LineItem(
            platform_id=platform.id, context_id=cid, competency_id=competency.id,
            label="Cells", score_maximum=Decimal(4), resource_id="r", tag="t",
        )  # fmt: skip
        s.add(column)
        s.flush()
        s.add(
            ScoreOutbox(
                platform_id=platform.id,
                context_id=cid,
                line_item_id=column.id,
                person_id=student,
                competency_id=competency.id,
                score_given=Decimal(3),
                score_maximum=Decimal(4),
                activity_progress="Completed",
                grading_progress="FullyGraded",
                scored_at=utcnow(),
                next_attempt_at=utcnow(),
            )
        )
        seeded = Seeded(url, platform.issuer, platform.client_id, student, teacher, cid)
    database.dispose()
    return seeded


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Seeded:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'people.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_database")
    return _seed(url)


@pytest.fixture
def cli(seeded: Seeded, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Result]:
    for name in list(os.environ):
        if name.startswith("LTI_APP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTI_APP_SECRET_KEY", LONG_SECRET)
    monkeypatch.setenv("LTI_APP_DATABASE_URL", seeded.url)

    def invoke(command: str, sub: str, *extra: str, input: str | None = None) -> Result:
        """`lti-app person COMMAND` for this platform and `sub` (none: `find`)."""
        from lti_app.cli import main

        who = ["--issuer", seeded.issuer, "--client-id", seeded.client_id]
        who += ["--sub", sub] if sub else []
        result = CliRunner().invoke(main, ["person", command, *who, *extra], input=input)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.output,
            result.exception,
        )
        return result

    return invoke


def _rows_of(url: str, person_id: int) -> dict[str, int]:
    """Rows of every table that name this person, in any column pointing at `person`."""
    database = Database(url)
    counts: dict[str, int] = {}
    with database.begin() as s:
        meta = MetaData()
        meta.reflect(s.connection())
        for name, table in meta.tables.items():
            columns: list[Column[object]] = [
                c for c in table.c if any(fk.column.table.name == "person" for fk in c.foreign_keys)
            ]
            if name == "person":
                columns = [table.c.id]
            for column in columns:
                n = s.scalar(select(func.count()).select_from(table).where(column == person_id))
                if n:
                    counts[f"{name}.{column.name}"] = n
    database.dispose()
    return counts


def _count(url: str, model: object, *where: object) -> int:
    database = Database(url)
    with database.begin() as s:
        n = s.scalar(select(func.count()).select_from(model).where(*where))  # type: ignore[arg-type]
    database.dispose()
    return int(n or 0)


def test_export_holds_the_persons_whole_record_and_no_other_students(
    cli: Callable[..., Result], seeded: Seeded, tmp_path: Path
) -> None:
    result = cli("export", STUDENT.user_id)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["person"]["sub"] == STUDENT.user_id
    assert data["person"]["email"] == STUDENT.email
    [course] = data["courses"]
    assert course["membership"]["is_learner"] is True
    assert course["profile"]["teacher_notes"] == "PRIVATE"
    assert course["reflection"]["text"] == "I learned a lot"
    assert course["groups"][0]["group"] == "Lab partners"
    assert course["unlocked_steps"][0]["unlocked_by"] == "Amara Okafor"
    assert Decimal(course["scores"][0]["score_given"]) == 3
    assert {"text": "Teacher's goal", "set_by": "Amara Okafor"}.items() <= course["goals"][
        -1
    ].items()
    assert any(c["note"] == "A private talk" and c["is_private"] for c in course["check_ins"])
    evidence = _count(seeded.url, Evidence, Evidence.person_id == seeded.student_id)
    assert len(course["evidence"]) == evidence > 0
    assert {e["recorded_by"] for e in course["evidence"]} <= {"Amara Okafor", STUDENT.name}
    choices = _count(seeded.url, Choice, Choice.person_id == seeded.student_id)
    assert len(course["choices"]) == choices
    [earlier] = course["earlier_tries"]
    assert earlier["submission_note"] == "My first try"
    assert earlier["closed_by"] == "Amara Okafor"
    assert earlier["closing_evidence"]["level_name"]
    # Another student of the same course is nowhere in it.
    assert CLASSMATE.user_id not in result.stdout
    assert CLASSMATE.family_name not in result.stdout

    saved = cli("export", STUDENT.user_id, "--output", str(tmp_path / "ana.json"))
    assert saved.exit_code == 0, saved.output
    assert (
        json.loads((tmp_path / "ana.json").read_text(encoding="utf-8"))
        | {"exported_at": data["exported_at"]}
        == data
    )
    assert stat.S_IMODE((tmp_path / "ana.json").stat().st_mode) == 0o600


def test_erase_asks_first_then_deletes_every_row_keyed_to_the_student(
    cli: Callable[..., Result], seeded: Seeded
) -> None:
    before = _rows_of(seeded.url, seeded.student_id)
    for table in ("membership", "learner_profile", "evidence", "student_competency_level",
                  "pathway_choice", "pathway_attempt", "pathway_step_unlock",
                  "student_group_member",
                  "student_reflection", "score_outbox"):  # fmt: skip
        assert f"{table}.person_id" in before, before
    classmate_rows = _count(seeded.url, Evidence, Evidence.person_id != seeded.student_id)

    refused = cli("erase", STUDENT.user_id, input="n\n")
    assert refused.exit_code == 1
    assert "cannot be undone" in refused.output
    assert _rows_of(seeded.url, seeded.student_id) == before

    erased = cli("erase", STUDENT.user_id, input="y\n")
    assert erased.exit_code == 0, erased.output
    assert "queued_scores" in erased.output
    assert "earlier_tries" in erased.output
    assert _rows_of(seeded.url, seeded.student_id) == {}
    assert _count(seeded.url, Evidence, Evidence.person_id != seeded.student_id) == classmate_rows
    assert _count(seeded.url, Person, Person.sub == CLASSMATE.user_id) == 1

    again = cli("export", STUDENT.user_id)
    assert again.exit_code == 1
    assert f"no person with sub {STUDENT.user_id!r}" in again.output


def test_erasing_a_teacher_keeps_what_they_wrote_about_students_without_their_name(
    cli: Callable[..., Result], seeded: Seeded
) -> None:
    recorded = _count(seeded.url, Evidence, Evidence.recorded_by_id == seeded.teacher_id)
    goals = _count(seeded.url, Goal, Goal.created_by_id == seeded.teacher_id)
    check_ins = _count(seeded.url, CheckIn, CheckIn.author_id == seeded.teacher_id)
    assert min(recorded, goals, check_ins) > 0
    evidence, all_goals = _count(seeded.url, Evidence), _count(seeded.url, Goal)

    exported = json.loads(cli("export", TEACHER.user_id).stdout)
    assert exported["written_about_others"]["evidence"] == recorded
    assert exported["written_about_others"]["earlier_tries_closed"] == 1
    assert "PRIVATE" not in json.dumps(exported)  # another student's private notes

    erased = cli("erase", TEACHER.user_id, "--yes")
    assert erased.exit_code == 0, erased.output
    assert f"{recorded} evidence" in erased.output
    assert "kept with the students, without their author" in erased.output
    assert _rows_of(seeded.url, seeded.teacher_id) == {}
    assert _count(seeded.url, Evidence) == evidence
    assert _count(seeded.url, Evidence, Evidence.recorded_by_id.is_(None)) == recorded
    assert _count(seeded.url, Goal) == all_goals
    # The student's earlier try stays theirs, without the name of who closed it.
    assert _count(seeded.url, Attempt, Attempt.closed_by_id.is_(None)) == 1
    assert _count(seeded.url, LearnerProfile, LearnerProfile.teacher_notes == "PRIVATE") == 1
    # The class's evidence export still lists every piece, the erased recorder left blank.
    database = Database(seeded.url)
    with database.begin() as s:
        lines = list(evidence_csv(s, context_id=seeded.context_id, zone=ZoneInfo("UTC")))
    database.dispose()
    assert sum(line.count("\n") for line in lines) == evidence + 1


def test_find_gives_the_sub_the_other_commands_need(
    cli: Callable[..., Result], seeded: Seeded
) -> None:
    found = cli("find", "", STUDENT.family_name.upper())
    assert found.exit_code == 0, found.output
    assert found.output.splitlines() == [f"{STUDENT.user_id}\t{STUDENT.name}\t{STUDENT.email}"]
    none = cli("find", "", "100%_nobody")
    assert none.exit_code == 1
    assert "matches '100%_nobody'" in none.output


def test_an_unknown_person_or_platform_is_one_plain_error(
    cli: Callable[..., Result], seeded: Seeded
) -> None:
    for unknown in (cli("export", "nobody-by-this-id"), cli("erase", "nobody-by-this-id", "--yes")):
        assert unknown.exit_code == 1
        assert "has no person with sub 'nobody-by-this-id'" in unknown.output
    database = Database(seeded.url)
    with database.begin() as s:
        s.execute(text("UPDATE platform SET client_id = 'moved'"))
    database.dispose()
    gone = cli("export", STUDENT.user_id)
    assert gone.exit_code == 1
    assert "no platform with issuer" in gone.output
    assert _count(seeded.url, Platform) == 1
