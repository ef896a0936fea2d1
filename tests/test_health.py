"""The health check a load balancer polls: up while the database answers, 503 when it does not."""

from __future__ import annotations

from pathlib import Path

import httpx

from lti_app import create_app
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
