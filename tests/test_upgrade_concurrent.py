"""Every replica of a deployment runs the release step `lti-app db upgrade` at the same moment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from lti_app import migrate
from tests.conftest import POSTGRES_URL_ENV
from tests.lock_waits import WAITERS

LTI_APP = Path(sys.executable).with_name("lti-app")

pytestmark = pytest.mark.skipif(
    not os.environ.get(POSTGRES_URL_ENV),
    reason="PostgreSQL only: SQLite's BEGIN IMMEDIATE already runs one upgrade at a time",
)


def _until_waiting(engine: Engine, count: int, steps: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 30  # the processes import Pathways first
    while time.monotonic() < deadline:
        # A transaction of its own each time: one reads pg_stat_activity once.
        with engine.connect() as conn:
            if conn.execute(WAITERS).scalar_one() >= count:
                return
        finished = [step.args for step in steps if step.poll() is not None]
        assert not finished, f"{finished} finished without waiting for the lock"
        time.sleep(0.05)
    raise AssertionError(f"{count} release steps never waited for the lock")


@pytest.mark.parametrize(
    "start", [None, "0016_platform_first_deployment"], ids=["new database", "from 0016"]
)
def test_two_release_steps_at_once_both_succeed(empty_database_url: str, start: str | None) -> None:
    """The second replica's step failed ("column ... already exists", or a duplicate pg_type
    for a table both made), failing its deploy, though the first had upgraded the database."""
    if start:
        migrate.upgrade(empty_database_url, start)
    else:  # an alembic_version table to hold both steps at, and no Pathways tables
        migrate.upgrade(empty_database_url, "0001_core")
        migrate.downgrade(empty_database_url, "base")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LTI_APP_")}
    environment |= {
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "LTI_APP_DATABASE_URL": empty_database_url,
        "LTI_APP_SECRET_KEY": "s" * 48,
    }
    engine = create_engine(empty_database_url)
    with engine.connect() as holder:
        # Both steps wait at their first read of the revision, then start together: the
        # overlap of a real deploy, on every run rather than by chance.
        holder.execute(text("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE"))
        steps = [
            subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
                [str(LTI_APP), "db", "upgrade"],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            try:
                _until_waiting(engine, 2, steps)
            finally:
                holder.rollback()
            outcomes = [step.communicate(timeout=120) for step in steps]
        finally:
            for step in steps:
                if step.poll() is None:
                    step.kill()
                    step.communicate()
    engine.dispose()
    head = migrate.head_revision()
    assert [
        (step.returncode, out.strip()) for step, (out, _) in zip(steps, outcomes, strict=True)
    ] == [(0, f"database at {head}")] * 2
