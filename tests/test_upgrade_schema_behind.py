"""New code started on a database the release step (`lti-app db upgrade`) has not upgraded yet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lti_app import migrate

LTI_APP = Path(sys.executable).with_name("lti-app")
BEFORE_NEW_COLUMNS = "0015_score_outbox_sent_url"
"""Before platform.approve_first_deployment (0016) and membership.is_preview (0017)."""


def _run(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LTI_APP_")}
    environment |= {
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "LTI_APP_DATABASE_URL": url,
        "LTI_APP_SECRET_KEY": "s" * 48,
        "LTI_APP_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    try:
        return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
            [str(LTI_APP), *args],
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"lti-app {' '.join(args)} kept running: {err.stderr!r}"[:2000])


@pytest.mark.parametrize(
    "command",
    [
        ["grades", "worker"],
        ["grades", "worker", "--once"],
        ["platform", "list"],
    ],
    ids=" ".join,
)
def test_a_command_on_a_database_the_release_step_missed_says_to_upgrade_it(
    empty_database_url: str, tmp_path: Path, command: list[str]
) -> None:
    """The worker logged "no such column: membership.is_preview" with a traceback at every
    poll (with --once, exited on it); `platform list` said "database error" and the SQL."""
    migrate.upgrade(empty_database_url, BEFORE_NEW_COLUMNS)
    done = _run(tmp_path, empty_database_url, *command)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert (
        "is not ready for this version of Pathways: its schema is at revision "
        f"{BEFORE_NEW_COLUMNS} and this Pathways needs {migrate.head_revision()}. "
        "Run `lti-app db upgrade` first"
    ) in done.stderr
    assert migrate.current_revision(empty_database_url) == BEFORE_NEW_COLUMNS
