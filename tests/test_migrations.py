"""The migrations build the same schema as the models, on SQLite and PostgreSQL, and go down."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, func, inspect, select, table, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.db import make_engine
from lti_app.migrate import alembic_config
from lti_app.tool.models import DeploymentStatus, Platform
from lti_app.tool.registrations import record_new_deployment


def test_upgrade_matches_models_and_downgrade_works(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, "head")
    command.check(config)  # raises if the models and the migrations disagree
    engine = create_engine(empty_database_url)
    assert "launch_session" in inspect(engine).get_table_names()
    engine.dispose()
    command.downgrade(config, "-1")
    command.upgrade(config, "head")


BEFORE_LINE_ITEM_REBUILDS = "0012_line_item_lms_makes_until"
"""The last revision before 0013, which (like its own downgrade) copies `line_item` on
SQLite; `score_outbox` references it ON DELETE CASCADE."""


def _seed_gradebook(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO platform (id, issuer, client_id, name, auth_login_url, token_url,"
                " jwks_url, auto_approve_deployments, is_active) VALUES (1, 'https://lms.example',"
                " 'c', 'LMS', 'https://lms.example/a', 'https://lms.example/t',"
                " 'https://lms.example/j', true, true)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO context (id, platform_id, context_id, title, label)"
                " VALUES (1, 1, 'ctx', 'Biology', 'BIO')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO person (id, platform_id, sub, name, given_name, family_name, email,"
                " picture) VALUES (1, 1, 's1', 'Ann', 'Ann', 'A', 'a@example.org', '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO competency (id, context_id, code, title, description, kind, position)"
                " VALUES (1, 1, 'C1', 'Cells', '', 'academic', 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO line_item (id, platform_id, context_id, competency_id, is_enabled,"
                " state, url, label, score_maximum, resource_id, tag, needs_update, last_error)"
                " VALUES (1, 1, 1, 1, true, 'ready', 'https://lms.example/li/1', 'Cells', 4,"
                " 'r', 't', false, '')"
            )
        )
        for outbox_id, status in enumerate(["sent", "pending", "failed"], start=1):
            conn.execute(
                text(
                    "INSERT INTO score_outbox (id, platform_id, context_id, line_item_id,"
                    " person_id, competency_id, score_given, score_maximum, activity_progress,"
                    " grading_progress, scored_at, is_update, status, attempts, next_attempt_at,"
                    " claimed_by, last_error) VALUES (:id, 1, 1, 1, 1, 1, 3, 4, 'Completed',"
                    " 'FullyGraded', '2026-01-01 00:00:00+00:00', false, :status, 0,"
                    " '2026-01-01 00:00:00+00:00', '', '')"
                ),
                {"id": outbox_id, "status": status},
            )
    engine.dispose()


def _row_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
        counts = {
            name: conn.execute(select(func.count()).select_from(table(name))).scalar_one()
            for name in tables
        }
    engine.dispose()
    return {table: n for table, n in counts.items() if n}


def test_upgrade_and_downgrade_keep_the_grade_outbox(empty_database_url: str) -> None:
    """SQLite's copy of `line_item` once cascaded into the outbox and deleted every score."""
    config = alembic_config(empty_database_url)
    command.upgrade(config, BEFORE_LINE_ITEM_REBUILDS)
    _seed_gradebook(empty_database_url)
    seeded = _row_counts(empty_database_url)
    assert seeded["score_outbox"] == 3
    assert seeded["line_item"] == 1

    command.upgrade(config, "head")
    assert _row_counts(empty_database_url) == seeded
    command.downgrade(config, BEFORE_LINE_ITEM_REBUILDS)
    assert _row_counts(empty_database_url) == seeded
    command.upgrade(config, "head")
    assert _row_counts(empty_database_url) == seeded


def test_upgrade_marks_the_test_students_already_stored(empty_database_url: str) -> None:
    """Canvas's Test Student leaves class lists at the upgrade, not at its course's next sync."""
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0016_platform_first_deployment")
    _seed_gradebook(empty_database_url)
    roles = {
        1: '["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]',
        2: '["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner", '
        '"http://purl.imsglobal.org/vocab/lti/system/person#TestUser"]',
    }
    engine = make_engine(empty_database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO person (id, platform_id, sub, name, given_name, family_name, email,"
                " picture) VALUES (2, 1, 'fake', 'Test Student', '', '', '', '')"
            )
        )
        for person_id, listed in roles.items():
            conn.execute(
                text(
                    "INSERT INTO membership (context_id, person_id, roles, status, is_teacher,"
                    " is_learner) VALUES (1, :person, :roles, 'active', false, true)"
                ),
                {"person": person_id, "roles": listed},
            )
    engine.dispose()

    command.upgrade(config, "head")
    engine = make_engine(empty_database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT person_id, is_preview FROM membership")).all()
        marked: dict[int, bool] = {person: bool(flag) for person, flag in rows}
    engine.dispose()
    assert marked == {1: False, 2: True}


def test_evidence_outlives_its_erased_recorder_and_the_downgrade_keeps_it(
    empty_database_url: str,
) -> None:
    """Erasing a teacher keeps the students' evidence; an older version, which needs an
    author, gets it back attributed to the student rather than losing it."""
    config = alembic_config(empty_database_url)
    command.upgrade(config, "head")
    _seed_gradebook(empty_database_url)
    engine = make_engine(empty_database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO person (id, platform_id, sub, name, given_name, family_name, email,"
                " picture) VALUES (2, 1, 't1', 'Teacher', '', '', '', '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO evidence (id, context_id, competency_id, person_id, points,"
                " level_name, source, note, recorded_by_id, observed_at, observed_on) VALUES"
                " (1, 1, 1, 1, 3, 'Proficient', 'teacher', 'Good lab', 2,"
                " '2026-01-01 00:00:00+00:00', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO evidence_revision (evidence_id, context_id, action, changed_by_id,"
                " old_points, new_points, old_note, new_note, old_observed_at, new_observed_at,"
                " old_observed_on, new_observed_on) VALUES (1, 1, 'corrected', 2, 2, 3, '',"
                " 'Good lab', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00',"
                " '2026-01-01', '2026-01-01')"
            )
        )
        conn.execute(text("DELETE FROM person WHERE id = 2"))
    with engine.connect() as conn:
        authors = conn.execute(
            text(
                "SELECT e.recorded_by_id, r.changed_by_id FROM evidence e"
                " JOIN evidence_revision r ON r.evidence_id = e.id"
            )
        ).all()
    engine.dispose()
    assert [tuple(row) for row in authors] == [(None, None)]

    command.downgrade(config, "0018_context_time_zone")
    engine = make_engine(empty_database_url)
    with engine.connect() as conn:
        authors = conn.execute(
            text(
                "SELECT e.recorded_by_id, r.changed_by_id FROM evidence e"
                " JOIN evidence_revision r ON r.evidence_id = e.id"
            )
        ).all()
    engine.dispose()
    assert [tuple(row) for row in authors] == [(1, 1)]
    command.upgrade(config, "head")


def test_upgrade_lets_a_canvas_registered_before_0016_launch_its_first_deployment(
    empty_database_url: str,
) -> None:
    """A Canvas registered dynamically before 0016, its admin not yet having enabled the tool,
    was still refused at its first launch after the upgrade: a deployment awaiting approval
    that only a launch that worked (or the operator) could approve."""
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0015_score_outbox_sent_url")
    # (issuer, method, auto-approves, has a deployment already)
    platforms = {
        1: ("https://waiting.example", "dynamic", False, False),
        2: ("https://installed.example", "dynamic", False, True),
        3: ("https://open.example", "dynamic", True, False),
        4: ("https://by-hand.example", "manual", False, False),
    }
    engine = make_engine(empty_database_url)
    with engine.begin() as conn:
        for platform_id, (issuer, method, auto, installed) in platforms.items():
            conn.execute(
                text(
                    "INSERT INTO platform (id, issuer, client_id, name, auth_login_url,"
                    " token_url, jwks_url, auto_approve_deployments, is_active) VALUES (:id,"
                    " :iss, 'c', 'Canvas', :iss, :iss, :iss, :auto, true)"
                ),
                {"id": platform_id, "iss": issuer, "auto": auto},
            )
            conn.execute(
                text(
                    "INSERT INTO platform_registration (platform_id, method, product_family_code,"
                    " platform_version, openid_configuration_url, registration_endpoint,"
                    " requested_scopes, granted_scopes, privacy_level) VALUES (:id, :method,"
                    " 'canvas', 'cloud', :iss, :iss, '', '', 'public')"
                ),
                {"id": platform_id, "method": method, "iss": issuer},
            )
            if installed:
                conn.execute(
                    text(
                        "INSERT INTO deployment (platform_id, deployment_id, status)"
                        " VALUES (:id, 'first', 'active')"
                    ),
                    {"id": platform_id},
                )
    engine.dispose()

    command.upgrade(config, "head")

    engine = make_engine(empty_database_url)
    with Session(engine) as session:
        statuses = {
            platform_id: record_new_deployment(
                session, session.get_one(Platform, platform_id), "enabled-after-the-upgrade"
            ).status
            for platform_id in platforms
        }
        session.rollback()
    engine.dispose()
    assert statuses == {
        1: DeploymentStatus.ACTIVE,  # the launch the Canvas admin makes on enabling it
        2: DeploymentStatus.PENDING,  # its first deployment came and went through approval
        3: DeploymentStatus.ACTIVE,
        4: DeploymentStatus.PENDING,  # registered by hand: the operator approves
    }


def test_upgrade_keeps_each_evidence_day_as_its_course_showed_it(empty_database_url: str) -> None:
    """Existing evidence gets the day its time fell on in its course's zone at the upgrade,
    the day its pages showed: noon UTC on 4 December is 5 December in Auckland."""
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0022_membership_first_listed_at")
    _seed_gradebook(empty_database_url)  # course 1: no zone of its own, the school's UTC
    late = "2026-12-04 12:00:00+00:00"
    engine = make_engine(empty_database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO context (id, platform_id, context_id, title, label, time_zone)"
                " VALUES (2, 1, 'ctx-nz', 'Biology NZ', 'BIO', 'Pacific/Auckland')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO competency (id, context_id, code, title, description, kind, position)"
                " VALUES (2, 2, 'C1', 'Cells', '', 'academic', 0)"
            )
        )
        for course in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO evidence (id, context_id, competency_id, person_id, points,"
                    " level_name, source, note, recorded_by_id, observed_at) VALUES (:id, :id,"
                    " :id, 1, 3, 'Proficient', 'teacher', '', 1, :at)"
                ),
                {"id": course, "at": late},
            )
            conn.execute(
                text(
                    "INSERT INTO evidence_revision (evidence_id, context_id, action,"
                    " changed_by_id, old_points, new_points, old_note, new_note,"
                    " old_observed_at, new_observed_at) VALUES (:id, :id, 'corrected', 1, 2, 3,"
                    " '', '', '2026-12-01 12:00:00+00:00', :at)"
                ),
                {"id": course, "at": late},
            )
            conn.execute(
                text(
                    "INSERT INTO student_competency_level (context_id, person_id, competency_id,"
                    " is_mastered, evidence_count, last_evidence_at) VALUES (:id, 1, :id, true,"
                    " 1, :at)"
                ),
                {"id": course, "at": late},
            )
    engine.dispose()

    command.upgrade(config, "head")
    engine = make_engine(empty_database_url)
    with engine.connect() as conn:
        days = conn.execute(
            text(
                "SELECT e.context_id, e.observed_on, r.old_observed_on, r.new_observed_on,"
                " l.last_evidence_on FROM evidence e"
                " JOIN evidence_revision r ON r.evidence_id = e.id"
                " JOIN student_competency_level l ON l.context_id = e.context_id"
                " ORDER BY e.context_id"
            )
        ).all()
    engine.dispose()
    as_text = [tuple(str(value) for value in row) for row in days]
    assert as_text == [
        ("1", "2026-12-04", "2026-12-01", "2026-12-04", "2026-12-04"),
        ("2", "2026-12-05", "2026-12-02", "2026-12-05", "2026-12-05"),
    ]


BEFORE_GROUP_STINTS = "0027_saved_form"


def test_upgrade_keeps_group_members_and_lets_a_student_put_back_start_a_new_stint(
    empty_database_url: str,
) -> None:
    """The members stored before 0028 stay (one current, one removed); after it, the removed
    student put back gets a second row, while a second current row is still refused. The
    downgrade keeps each student's latest stint."""
    config = alembic_config(empty_database_url)
    command.upgrade(config, BEFORE_GROUP_STINTS)
    _seed_gradebook(empty_database_url)
    engine = make_engine(empty_database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO person (id, platform_id, sub, name, given_name, family_name, email,"
                " picture) VALUES (2, 1, 's2', 'Bo', 'Bo', 'B', 'b@example.org', '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO student_group (id, context_id, name, basis, created_at)"
                " VALUES (1, 1, 'Readers', 'manual', '2026-01-01 00:00:00+00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO student_group_member (id, group_id, context_id, person_id,"
                " added_at, removed_at) VALUES"
                " (1, 1, 1, 1, '2026-01-01 00:00:00+00:00', NULL),"
                " (2, 1, 1, 2, '2026-01-01 00:00:00+00:00', '2026-02-01 00:00:00+00:00')"
            )
        )
    engine.dispose()

    command.upgrade(config, "head")
    assert _row_counts(empty_database_url)["student_group_member"] == 2
    put_back = (
        "INSERT INTO student_group_member (id, group_id, context_id, person_id, added_at,"
        " removed_at) VALUES (:id, 1, 1, :person, '2026-03-01 00:00:00+00:00', NULL)"
    )
    engine = make_engine(empty_database_url)
    with engine.begin() as conn:
        conn.execute(text(put_back), {"id": 3, "person": 2})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(put_back), {"id": 4, "person": 1})
    engine.dispose()
    assert _row_counts(empty_database_url)["student_group_member"] == 3

    command.downgrade(config, BEFORE_GROUP_STINTS)
    engine = make_engine(empty_database_url)
    with engine.connect() as conn:
        kept = conn.execute(
            text("SELECT id, person_id FROM student_group_member ORDER BY id")
        ).all()
    engine.dispose()
    assert [tuple(row) for row in kept] == [(1, 1), (3, 2)]
    command.upgrade(config, "head")
