"""Migration 0025 on a school's database: every day filled as its course showed it, by a few
set-based statements (one UPDATE per row kept the evidence tables locked for minutes: 1M rows
took 2:56 on PostgreSQL with pages' evidence reads waiting), and a worker of the release before
0025, still serving during a rolling upgrade, can still save evidence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session

from lti_app.db import UtcDateTime, make_engine
from lti_app.mastery.models import Evidence, EvidenceSource
from lti_app.migrate import alembic_config
from lti_app.timezones import course_zone, local_date

BEFORE = "0024_copied_from"
TARGET = "0025_evidence_observed_on"
SCHOOL_ZONE = "America/Chicago"
EVIDENCE = 3000
REVISIONS = 600
STUDENTS = 40

# course: (its chosen zone, the LMS's)
COURSES: dict[int, tuple[str | None, str | None]] = {
    1: (None, None),  # the school's zone
    2: ("Pacific/Auckland", None),
    3: (None, "Asia/Kolkata"),
    4: ("Not/AZone", "Europe/Madrid"),
    5: ("Not/AZone", "Also/NotAZone"),  # the school's zone
}

_evidence = sa.table(
    "evidence",
    sa.column("id", sa.Integer()),
    sa.column("context_id", sa.Integer()),
    sa.column("competency_id", sa.Integer()),
    sa.column("person_id", sa.Integer()),
    sa.column("points", sa.Numeric()),
    sa.column("level_name", sa.String()),
    sa.column("source", sa.String()),
    sa.column("note", sa.Text()),
    sa.column("recorded_by_id", sa.Integer()),
    sa.column("observed_at", UtcDateTime()),
    sa.column("created_at", UtcDateTime()),
    sa.column("updated_at", UtcDateTime()),
    sa.column("observed_on", sa.Date()),
)
_revision = sa.table(
    "evidence_revision",
    sa.column("id", sa.Integer()),
    sa.column("evidence_id", sa.Integer()),
    sa.column("context_id", sa.Integer()),
    sa.column("action", sa.String()),
    sa.column("changed_by_id", sa.Integer()),
    sa.column("changed_at", UtcDateTime()),
    sa.column("old_points", sa.Numeric()),
    sa.column("new_points", sa.Numeric()),
    sa.column("old_note", sa.Text()),
    sa.column("new_note", sa.Text()),
    sa.column("old_observed_at", UtcDateTime()),
    sa.column("new_observed_at", UtcDateTime()),
    sa.column("old_observed_on", sa.Date()),
    sa.column("new_observed_on", sa.Date()),
)
_level = sa.table(
    "student_competency_level",
    sa.column("id", sa.Integer()),
    sa.column("context_id", sa.Integer()),
    sa.column("person_id", sa.Integer()),
    sa.column("competency_id", sa.Integer()),
    sa.column("is_mastered", sa.Boolean()),
    sa.column("evidence_count", sa.Integer()),
    sa.column("last_evidence_at", UtcDateTime()),
    sa.column("updated_at", UtcDateTime()),
    sa.column("last_evidence_on", sa.Date()),
)
EVIDENCE_TABLES = ("evidence", "evidence_revision", "student_competency_level")


def _moment(i: int) -> datetime:
    # Every 37 minutes: each course's evidence falls on both sides of midnight in its zone.
    return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=37 * i)


def _seed_courses(conn: sa.Connection) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO platform (id, issuer, client_id, name, auth_login_url, token_url,"
            " jwks_url, auto_approve_deployments, is_active) VALUES (1, 'https://lms.example',"
            " 'c', 'LMS', 'https://lms.example/a', 'https://lms.example/t',"
            " 'https://lms.example/j', true, true)"
        )
    )
    for course, (chosen, lms) in COURSES.items():
        conn.execute(
            sa.text(
                "INSERT INTO context (id, platform_id, context_id, title, label, time_zone,"
                " lms_time_zone) VALUES (:id, 1, :ctx, 'Biology', 'BIO', :chosen, :lms)"
            ),
            {"id": course, "ctx": f"ctx-{course}", "chosen": chosen, "lms": lms},
        )
        conn.execute(
            sa.text(
                "INSERT INTO competency (id, context_id, code, title, description, kind,"
                " position) VALUES (:id, :id, 'C1', 'Cells', '', 'academic', 0)"
            ),
            {"id": course},
        )
    conn.execute(
        sa.text(
            "INSERT INTO person (id, platform_id, sub, name, given_name, family_name, email,"
            " picture) VALUES (:id, 1, :sub, '', '', '', '', '')"
        ),
        [{"id": p, "sub": f"u{p}"} for p in range(1, STUDENTS + 1)],
    )


def _course_of(i: int) -> int:
    return i % len(COURSES) + 1


def _seed_school(conn: sa.Connection) -> None:
    _seed_courses(conn)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    conn.execute(
        _evidence.insert(),
        [
            {
                "id": i,
                "context_id": _course_of(i),
                "competency_id": _course_of(i),
                "person_id": i % STUDENTS + 1,
                "points": Decimal(3),
                "level_name": "Proficient",
                "source": "teacher",
                "note": "",
                "recorded_by_id": 1,
                "observed_at": _moment(i),
                "created_at": created,
                "updated_at": created,
            }
            for i in range(1, EVIDENCE + 1)
        ],
    )
    conn.execute(
        _revision.insert(),
        [
            {
                "evidence_id": i,
                "context_id": _course_of(i),
                "action": "corrected",
                "changed_by_id": 1,
                "changed_at": created,
                "old_points": Decimal(2),
                "new_points": Decimal(3),
                "old_note": "",
                "new_note": "",
                "old_observed_at": _moment(i) - timedelta(hours=7),
                "new_observed_at": _moment(i),
            }
            for i in range(1, REVISIONS + 1)
        ],
    )
    conn.execute(
        _level.insert(),
        [
            {
                "context_id": course,
                "person_id": person,
                "competency_id": course,
                "is_mastered": False,
                "evidence_count": 1,
                # Every seventh student has no counted evidence: no day either.
                "last_evidence_at": None if person % 7 == 0 else _moment(course * person * 5),
                "updated_at": created,
            }
            for course in COURSES
            for person in range(1, STUDENTS + 1)
        ],
    )


def _expected_day(course: int, moment: datetime | None) -> date | None:
    chosen, lms = COURSES[course]
    zone = course_zone(chosen=chosen, from_lms=lms, default=SCHOOL_ZONE)
    return None if moment is None else local_date(moment, zone)


@pytest.fixture
def school(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LTI_APP_DEFAULT_TIMEZONE", SCHOOL_ZONE)
    command.upgrade(alembic_config(empty_database_url), BEFORE)
    engine = make_engine(empty_database_url)
    with engine.begin() as conn:
        _seed_school(conn)
    engine.dispose()
    return empty_database_url


def _wrong_days(conn: sa.Connection) -> list[tuple[Any, ...]]:
    wrong: list[tuple[Any, ...]] = []
    for table, at, on in (
        (_evidence, "observed_at", "observed_on"),
        (_revision, "old_observed_at", "old_observed_on"),
        (_revision, "new_observed_at", "new_observed_on"),
        (_level, "last_evidence_at", "last_evidence_on"),
    ):
        for row_id, course, moment, day in conn.execute(
            sa.select(table.c.id, table.c.context_id, table.c[at], table.c[on])
        ):
            if day != _expected_day(course, moment):
                wrong.append((table.name, row_id, course, moment, day))
    return wrong


def test_upgrade_fills_every_day_with_a_few_statements_not_one_per_row(school: str) -> None:
    updates: list[int] = []

    def count(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        words = statement.split(None, 2)
        if words[0].upper() == "UPDATE" and words[1].strip('"').lower() in EVIDENCE_TABLES:
            updates.append(len(parameters) if executemany else 1)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        command.upgrade(alembic_config(school), TARGET)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)

    # One statement per table (the revisions' two days together): the evidence tables are
    # locked for one pass over each, however many rows a school has.
    assert sum(updates) <= len(EVIDENCE_TABLES), f"{sum(updates)} UPDATEs, {len(updates)} calls"
    engine = make_engine(school)
    with engine.connect() as conn:
        filled = conn.execute(sa.select(sa.func.count()).select_from(_evidence)).scalar()
        wrong = _wrong_days(conn)
    engine.dispose()
    assert filled == EVIDENCE
    assert wrong == []


def _migration() -> ModuleType:
    script = ScriptDirectory.from_config(alembic_config()).get_revision(TARGET)
    assert script is not None
    return script.module


def test_courses_in_a_zone_the_database_does_not_know_get_their_days_in_batches(
    school: str,
) -> None:
    """PostgreSQL's zone names can be older than Python's (a zone added by a newer tzdata):
    those courses' days are worked out in Python, a batch of rows at a time."""
    command.upgrade(alembic_config(school), TARGET)
    engine = make_engine(school)
    with engine.begin() as conn:
        conn.execute(_evidence.update().values(observed_on=date(2000, 1, 1)))
        conn.execute(
            _level.update()
            .where(_level.c.last_evidence_at.is_not(None))
            .values(last_evidence_on=date(2000, 1, 1))
        )
        conn.execute(
            _revision.update().values(
                old_observed_on=date(2000, 1, 1), new_observed_on=date(2000, 1, 1)
            )
        )
        migration = _migration()
        zones = migration._course_zones(conn, SCHOOL_ZONE)
        migration._fill_in_batches(conn, {course: zones[course] for course in (2, 4)}, batch=70)
        wrong = {(table, course) for table, _, course, _, _ in _wrong_days(conn)}
    engine.dispose()
    # Only the courses asked for were filled, all their rows.
    assert wrong == {(table, course) for table in EVIDENCE_TABLES for course in (1, 3, 5)}


@pytest.fixture
def upgraded(empty_database_url: str) -> Iterator[sa.Engine]:
    command.upgrade(alembic_config(empty_database_url), TARGET)
    engine = make_engine(empty_database_url)
    with engine.begin() as conn:
        _seed_courses(conn)
    yield engine
    engine.dispose()


def test_a_worker_of_the_previous_release_still_saves_evidence(upgraded: sa.Engine) -> None:
    """Until every worker is replaced, one of the release before 0025 saves evidence and its
    corrections as its model did, without the new days: the save must not fail (a 500 and the
    typed evidence lost)."""
    observed = datetime(2026, 12, 10, 18, tzinfo=UTC)
    with upgraded.begin() as conn:
        evidence_id = conn.execute(
            _evidence.insert()
            .values(
                context_id=1,
                competency_id=1,
                person_id=1,
                points=Decimal(3),
                level_name="Proficient",
                source="teacher",
                note="",
                recorded_by_id=1,
                observed_at=observed,
                created_at=observed,
                updated_at=observed,
            )
            .returning(_evidence.c.id)
        ).scalar_one()
        conn.execute(
            _revision.insert().values(
                evidence_id=evidence_id,
                context_id=1,
                action="corrected",
                changed_by_id=1,
                changed_at=observed,
                old_points=Decimal(3),
                new_points=Decimal(2),
                old_note="",
                new_note="",
                old_observed_at=observed,
                new_observed_at=observed,
            )
        )
    with upgraded.connect() as conn:
        days = conn.execute(
            sa.select(_evidence.c.observed_on, _revision.c.old_observed_on).join_from(
                _evidence, _revision, _revision.c.evidence_id == _evidence.c.id
            )
        ).one()
    # The database's day of the save (documented in 0025): a teacher sees a date, not a 500.
    today = datetime.now(UTC).date()
    assert all(abs(day - today) <= timedelta(days=1) for day in days), days


def test_new_code_still_sets_the_day_itself(upgraded: sa.Engine) -> None:
    # The server's default is for the previous release only: evidence saved without a day by
    # this release still gets its time's UTC day, not the database's today.
    with Session(upgraded) as session:
        evidence = Evidence(
            context_id=1,
            competency_id=1,
            person_id=1,
            points=Decimal(3),
            level_name="Proficient",
            source=EvidenceSource.TEACHER,
            observed_at=datetime(2020, 3, 1, 23, 30, tzinfo=UTC),
        )
        session.add(evidence)
        session.commit()
        session.expire_all()
        assert evidence.observed_on == date(2020, 3, 1)
