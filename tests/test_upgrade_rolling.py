"""Upgrading to 0028/0029 while the release before them still serves, and going back."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from lti_app import migrate
from lti_app.cli import main
from lti_app.db import make_engine
from lti_app.insights.models import StudentGroup
from tests.conftest import POSTGRES_URL_ENV
from tests.lock_waits import WAITERS

BEFORE = "0027_saved_form"
"""The schema of the release before group stints and earlier tries."""

on_postgres = pytest.mark.skipif(
    not os.environ.get(POSTGRES_URL_ENV),
    reason="PostgreSQL only: SQLite runs one writing transaction at a time",
)


def _seed(conn: Connection) -> None:
    """A course, two students, a teacher, a group: what the old release's requests touch."""
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
            " VALUES (1, 1, 'bio', 'Bio', 'BIO')"
        )
    )
    for pid in (1, 2, 3):
        conn.execute(
            text(
                "INSERT INTO person (id, platform_id, sub, name, given_name, family_name, email,"
                " picture) VALUES (:id, 1, :sub, 'P', '', '', '', '')"
            ),
            {"id": pid, "sub": f"u{pid}"},
        )
    conn.execute(
        text(
            "INSERT INTO student_group (id, context_id, name, basis, created_at)"
            " VALUES (1, 1, 'Reds', 'manual', '2026-01-01 00:00:00+00:00')"
        )
    )


@pytest.fixture
def engine_at_head(empty_database_url: str) -> Iterator[Engine]:
    migrate.upgrade(empty_database_url, BEFORE)
    engine = make_engine(empty_database_url)
    with engine.begin() as conn:
        _seed(conn)
    migrate.upgrade(empty_database_url)
    yield engine
    engine.dispose()


def test_a_groups_stints_come_oldest_first_whatever_order_the_database_stored_them(
    engine_at_head: Engine,
) -> None:
    """Code that keeps the last row per student (the release before this one did) then keeps
    the student's open stint. PostgreSQL lists rows in the order they sit in the table, and a
    newer row can take a slot freed before an older one's: it kept the closed stint, and
    saving the group reopened it beside the open one (a 500) or left a removal undone."""
    with engine_at_head.begin() as conn:
        for row_id, removed in ((10, None), (5, "2026-02-01 00:00:00+00:00")):
            conn.execute(
                text(
                    "INSERT INTO student_group_member (id, group_id, context_id, person_id,"
                    " added_at, removed_at) VALUES (:id, 1, 1, 1, '2026-01-01 00:00:00+00:00',"
                    " :removed)"
                ),
                {"id": row_id, "removed": removed},
            )
    with Session(engine_at_head) as session:
        group = session.get(StudentGroup, 1)
        assert group is not None
        assert [m.id for m in group.members] == [5, 10]
        last_per_student = {m.person_id: m for m in group.members}
        assert last_per_student[1].removed_at is None


def _upgrade_in_thread(url: str, outcome: dict[str, object]) -> threading.Thread:
    said: list[str] = []

    def run() -> None:
        try:
            migrate.upgrade(url, on_retry=said.append)
        except Exception as err:  # the test reports it
            outcome["error"] = err
        outcome["said"] = said

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker


def _until_upgrade_waits(engine: Engine, worker: threading.Thread) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(WAITERS).scalar_one() >= 1:
                return
        assert worker.is_alive(), "the upgrade finished without waiting for a lock"
        time.sleep(0.02)
    raise AssertionError("the upgrade never waited for a lock")


@on_postgres
def test_an_upgrade_caught_in_a_deadlock_with_a_request_tries_again_and_succeeds(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request of the old release wrote its person row, then read the groups, while the
    upgrade held student_group_member (0028) and waited for person (0029's foreign keys):
    PostgreSQL broke the deadlock by rolling the upgrade back, and the release step failed."""
    monkeypatch.setattr(migrate, "LOCK_TIMEOUT_MS", 300)  # under deadlock_timeout's 1 s
    monkeypatch.setattr(migrate, "RETRY_PAUSE_S", 0.0)
    migrate.upgrade(empty_database_url, BEFORE)
    engine = make_engine(empty_database_url)
    with engine.begin() as conn:
        _seed(conn)
    outcome: dict[str, object] = {}
    with engine.connect() as request:
        request.execute(text("UPDATE person SET name = 'Launched' WHERE id = 3"))
        worker = _upgrade_in_thread(empty_database_url, outcome)
        _until_upgrade_waits(engine, worker)
        # The request now reads what the upgrade holds; it gets its answer once the
        # upgrade lets go, so the request does not fail either.
        request.execute(text("SELECT count(*) FROM student_group_member")).scalar_one()
        request.commit()
    worker.join(timeout=120)
    engine.dispose()
    assert "error" not in outcome, outcome.get("error")
    said = outcome["said"]
    assert isinstance(said, list)
    assert said, "the upgrade never had to try again"
    assert "nothing was changed. Trying again (2 of 5)" in said[0]
    assert migrate.current_revision(empty_database_url) == migrate.head_revision()


@on_postgres
def test_an_upgrade_that_loses_every_try_says_so_and_changes_nothing(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate, "LOCK_TIMEOUT_MS", 100)
    monkeypatch.setattr(migrate, "RETRY_PAUSE_S", 0.0)
    monkeypatch.setattr(migrate, "UPGRADE_TRIES", 2)
    migrate.upgrade(empty_database_url, BEFORE)
    engine = make_engine(empty_database_url)
    with engine.begin() as conn:
        _seed(conn)
    said: list[str] = []
    with engine.connect() as request:  # a transaction left open on a group's members
        request.execute(text("UPDATE student_group SET name = 'Blues' WHERE id = 1"))
        request.execute(text("SELECT count(*) FROM student_group_member")).scalar_one()
        with pytest.raises(migrate.UpgradeBusyError) as raised:
            migrate.upgrade(empty_database_url, on_retry=said.append)
        request.rollback()
    engine.dispose()
    assert len(said) == 1
    assert "waited more than 0.1 s for a table" in str(raised.value)
    assert "2 times; nothing was changed" in str(raised.value)
    assert migrate.current_revision(empty_database_url) == BEFORE


def test_downgrade_counts_the_earlier_stints_and_tries_it_deletes_before_asking(
    engine_at_head: Engine, empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said only that the tables the later revisions added are dropped: 0028's downgrade
    also deletes every stint but a student's latest in each group."""
    with engine_at_head.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO student_group_member (id, group_id, context_id, person_id,"
                " added_at, removed_at) VALUES"
                " (1, 1, 1, 1, '2026-01-01 00:00:00+00:00', '2026-01-02 00:00:00+00:00'),"
                " (2, 1, 1, 1, '2026-01-03 00:00:00+00:00', '2026-01-04 00:00:00+00:00'),"
                " (3, 1, 1, 1, '2026-01-05 00:00:00+00:00', NULL),"
                " (4, 1, 1, 2, '2026-01-05 00:00:00+00:00', NULL)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO pathway (id, context_id, title, description, position)"
                " VALUES (1, 1, 'P', '', 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO pathway_step (id, context_id, pathway_id, position, title,"
                " description) VALUES (1, 1, 1, 0, 'S', '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO pathway_option (id, context_id, step_id, position, title,"
                " description, links, modality, interest_tags, career_clusters, challenge,"
                " requires_approval) VALUES (1, 1, 1, 0, 'O', '', '[]', 'reading', '[]', '[]',"
                " 2, false)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO pathway_attempt (context_id, person_id, step_id, option_id,"
                " number, submission_note, teacher_feedback, chosen_at) VALUES"
                " (1, 1, 1, 1, 1, 'first', '', '2026-01-01 00:00:00+00:00')"
            )
        )
    for name in [n for n in os.environ if n.startswith("LTI_APP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LTI_APP_SECRET_KEY", "s" * 48)
    monkeypatch.setenv("LTI_APP_DATABASE_URL", empty_database_url)
    runner = CliRunner()

    def downgrade(to: str) -> str:
        result = runner.invoke(main, ["db", "downgrade", "--revision", to], input="n\n")
        assert result.exit_code == 1, result.output
        return result.output

    assert "2 earlier group stints and 1 earlier try will be deleted" in downgrade(BEFORE)
    said = downgrade("0028_group_member_stints")
    assert "1 earlier try will be deleted" in said
    assert "group stint" not in said
    assert migrate.current_revision(empty_database_url) == migrate.head_revision()
