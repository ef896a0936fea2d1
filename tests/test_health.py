"""The health check a load balancer polls: up while the database answers, 503 when it does not."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
from flask import Flask

from lti_app import create_app, migrate
from lti_app.demo.server import serve_in_thread
from lti_app.settings import load_settings
from tests.conftest import ToolServer


def test_healthz_says_ok_while_the_database_answers(tool_server: ToolServer) -> None:
    answer = httpx.get(f"{tool_server.url}/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "database": "ok"}
    assert answer.headers["Cache-Control"] == "no-store"
    assert "set-cookie" not in answer.headers


def _ask_without_database(tmp_path: Path, path: str, **params: str) -> httpx.Response:
    """Ask Pathways, whose database (with a password in its URL) does not answer."""
    secret_url = "postgresql+psycopg://pathways:db-password-123@127.0.0.1:1/pathways"
    settings = load_settings(
        {},
        env="test",
        secret_key="health-test-secret-" + "x" * 32,
        key_encryption_secret="pathways-test-keys",
        database_url=secret_url,
        instance_path=str(tmp_path),
        secure_cookies=False,
    )
    app = create_app(settings)
    url, stop = serve_in_thread(app)
    try:
        return httpx.get(
            f"{url}{path}", params={k: v.format(url=url) for k, v in params.items()}, timeout=30
        )
    finally:
        stop()
        app.extensions["lti_app.db"].dispose()


def test_healthz_is_503_without_details_when_the_database_is_gone(tmp_path: Path) -> None:
    answer = _ask_without_database(tmp_path, "/healthz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "database": "unreachable"}
    assert "db-password-123" not in answer.text
    assert "127.0.0.1:1" not in answer.text


def test_a_page_with_the_database_gone_says_try_again_not_unexpected(tmp_path: Path) -> None:
    """A school's database restarting is not a bug: the person is told to try again in a
    minute (503, Retry-After), as a load balancer is, and no address or password shows."""
    answer = _ask_without_database(
        tmp_path,
        "/lti/login",
        iss="https://lms.example",
        login_hint="u1",
        target_link_uri="{url}",
    )
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "30"
    assert "try again in a minute" in answer.text
    assert "Unexpected" not in answer.text
    assert "db-password-123" not in answer.text
    assert "127.0.0.1:1" not in answer.text
    assert answer.headers["X-Request-Id"] in answer.text


def _app_on(tmp_path: Path, database_url: str) -> Flask:
    settings = load_settings(
        {},
        env="test",
        secret_key="health-test-secret-" + "x" * 32,
        database_url=database_url,
        instance_path=str(tmp_path),
        secure_cookies=False,
    )
    return create_app(settings)


def test_healthz_is_503_until_the_schema_is_upgraded(tmp_path: Path) -> None:
    """Plain gunicorn on a database `lti-app db upgrade` never reached answered every launch
    with a 500 while /healthz said 200; a load balancer must keep such a worker out."""
    url = f"sqlite:///{tmp_path / 'pathways.sqlite3'}"
    app = _app_on(tmp_path, url)
    client = app.test_client()
    try:
        empty = client.get("/healthz")
        assert empty.status_code == 503
        assert empty.json == {"status": "unavailable", "database": "schema behind"}
        before_head = migrate._script().get_revision("head").down_revision
        migrate.upgrade(url, revision=before_head)
        assert client.get("/healthz").status_code == 503  # one revision behind
        migrate.upgrade(url)
        assert client.get("/healthz").json == {"status": "ok", "database": "ok"}
    finally:
        app.extensions["lti_app.db"].dispose()


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_outage_is_logged_once_not_at_every_check(tmp_path: Path) -> None:
    """A load balancer asks every few seconds: one traceback per check buried the logs."""
    app = _app_on(tmp_path, "postgresql+psycopg://pathways:pw@127.0.0.1:1/pathways")
    client = app.test_client()
    kept = _Kept()
    logging.getLogger("lti_app.health").addHandler(kept)
    try:
        for _ in range(3):
            assert client.get("/healthz").status_code == 503
    finally:
        logging.getLogger("lti_app.health").removeHandler(kept)
        app.extensions["lti_app.db"].dispose()
    logged = kept.records
    assert len(logged) == 1
    assert "did not answer" in logged[0].getMessage()
