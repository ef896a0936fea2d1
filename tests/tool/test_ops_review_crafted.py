"""What a school's IT department reads in Pathways' logs: every refused launch under the
registration it came from and the request id the person was shown, and, when the database
fails mid-write, which table and what went wrong, never a secret the statement carried."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from lti_app import create_app
from lti_app.db import Database, utcnow
from lti_app.demo.server import RunningPlatform
from lti_app.errors import RequestIdFilter
from lti_app.roster.jobs import start_background_sync
from lti_app.tool.login import purge_launch_failures
from lti_app.tool.models import LaunchFailure, ServiceToken
from tests.conftest import LtiActions, ToolServer

SQLITE_REFUSE = [
    # A trigger that names a table that is not there: SQLite fails the write as it would on a
    # full disk or a broken file (OperationalError, not a constraint the code expects).
    "CREATE TRIGGER ops_refuse_insert BEFORE INSERT ON service_token "
    "BEGIN INSERT INTO ops_no_such_table VALUES (1); END",
    "CREATE TRIGGER ops_refuse_update BEFORE UPDATE ON service_token "
    "BEGIN INSERT INTO ops_no_such_table VALUES (1); END",
]
SQLITE_ALLOW = ["DROP TRIGGER ops_refuse_insert", "DROP TRIGGER ops_refuse_update"]
POSTGRES_REFUSE = [
    "CREATE FUNCTION ops_refuse() RETURNS trigger AS "
    "$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$ "
    "LANGUAGE plpgsql",
    "CREATE TRIGGER ops_refuse BEFORE INSERT OR UPDATE ON service_token "
    "FOR EACH ROW EXECUTE FUNCTION ops_refuse()",
]
POSTGRES_ALLOW = ["DROP TRIGGER ops_refuse ON service_token", "DROP FUNCTION ops_refuse()"]


@pytest.fixture
def token_writes_fail(db: Database, lms: RunningPlatform) -> Iterator[None]:
    """The database refuses to store service tokens, as a full disk would."""
    postgres = db.engine.dialect.name == "postgresql"
    with db.begin() as session:
        # A token another test stored would be used as it is; this test needs a fresh one.
        session.execute(delete(ServiceToken))
        for statement in POSTGRES_REFUSE if postgres else SQLITE_REFUSE:
            session.execute(text(statement))
    try:
        yield
    finally:
        with db.begin() as session:
            for statement in POSTGRES_ALLOW if postgres else SQLITE_ALLOW:
                session.execute(text(statement))


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        # As config: the production log line, request id included (lti_app/logs.py).
        self.addFilter(RequestIdFilter())
        self.setFormatter(
            logging.Formatter("%(levelname)s %(name)s rid=%(request_id)s %(message)s")
        )

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # with the traceback, as the log file has it


def test_a_failed_write_logs_no_lms_access_token(
    lti: LtiActions,
    lms: RunningPlatform,
    tool_server: ToolServer,
    db: Database,
    token_writes_fail: None,
) -> None:
    """A teacher's launch syncs the roster in the background; the LMS's access token could not
    be stored. The log said so, and printed the bearer token (SQLAlchemy's "[parameters:
    ...]"), which lets anyone reading logs fetch rosters and post grades for an hour."""
    assert lti.launch("user-t01").response.status_code == 200
    with db.session_factory() as session:
        course = lti.course_id(session)
    # A worker of its own: the running tool already holds a token in memory.
    app = create_app(tool_server.settings)
    logger = logging.getLogger("lti_app")
    keep = _Keep()
    logger.addHandler(keep)
    issued_before = set(lms.platform.state.tokens)
    try:
        thread: threading.Thread | None = None
        for _ in range(600):  # the launch's own background sync of this course may still run
            thread = start_background_sync(
                app,
                context_id=course,
                nrps_url=lms.platform.memberships_url("course-bio9"),
                min_interval=None,
            )
            if thread is not None:
                break
            time.sleep(0.05)
        assert thread is not None
        thread.join(timeout=120)
    finally:
        logger.removeHandler(keep)
        app.extensions["lti_app.db"].dispose()
    issued = set(lms.platform.state.tokens) - issued_before
    assert issued, "the sync asked the LMS for a token"
    log = "\n".join(keep.lines)
    assert "background roster sync failed" in log
    assert "service_token" in log  # what failed is still there for the operator
    for token in issued:
        assert token not in log


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    logger = logging.getLogger("lti_app")
    keep = _Keep()
    logger.addHandler(keep)
    try:
        yield keep.lines
    finally:
        logger.removeHandler(keep)


def _lms_answers(lti: LtiActions, form: dict[str, str]) -> httpx.Response:
    """Start a launch, then post to Pathways what the LMS's authorization endpoint posts back
    in place of an id_token (Moodle's mod/lti/auth.php: `error` and the tool's `state`)."""
    browser = lti.browser()
    to_lms = browser.get(lti.platform.login_url(lti.spec("user-t01")))
    assert to_lms.is_redirect
    state = parse_qs(urlsplit(to_lms.headers["location"]).query)["state"][0]
    return browser.post(f"{lti.tool.url}/lti/launch", data={**form, "state": state})


def test_an_lms_refusing_the_login_is_logged_under_its_registration_with_a_hint(
    lti: LtiActions, log_lines: list[str]
) -> None:
    """Moodle answers a login whose client_id is not its tool's with error=unauthorized_client.
    The teacher saw the word and a request id; the log had no line for that request, so the
    admin holding the request id found nothing, and the page did not say what to compare."""
    answer = _lms_answers(lti, {"error": "unauthorized_client"})
    assert answer.status_code == 400
    assert "unauthorized_client" in answer.text
    assert "client ID" in answer.text
    rid = answer.headers["X-Request-Id"]
    config = lti.platform.config
    refusals = [line for line in log_lines if "launch rejected" in line]
    assert refusals, log_lines
    assert f"iss={config.issuer} client_id={config.client_id}" in refusals[-1]
    assert "unauthorized_client" in refusals[-1]
    assert f"rid={rid} " in refusals[-1]


def test_an_lms_refusal_cannot_forge_log_lines(lti: LtiActions, log_lines: list[str]) -> None:
    answer = _lms_answers(
        lti, {"error": "invalid_request", "error_description": "x\nWARNING forged line"}
    )
    assert answer.status_code == 400
    assert not any(line.startswith("WARNING forged") for line in "\n".join(log_lines).splitlines())
    assert any("launch rejected" in line and "invalid_request" in line for line in log_lines)


def test_the_record_of_refused_launches_stays_bounded(session: Session) -> None:
    """Anyone can post a bad launch, and each is recorded for the admin console: the record
    keeps the newest and the last month, not every junk post forever."""
    old = utcnow() - timedelta(days=31)
    session.add(LaunchFailure(reason="a month ago", created_at=old))
    session.add_all(LaunchFailure(reason=f"refused {n}") for n in range(12))
    session.flush()
    purge_launch_failures(session, keep=10)
    kept = session.scalars(select(LaunchFailure.reason).order_by(LaunchFailure.id)).all()
    assert kept == [f"refused {n}" for n in range(2, 12)]
