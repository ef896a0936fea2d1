"""A school's IT department runs Pathways as the README says: behind its own proxy, under
plain gunicorn or `lti-app serve`, upgrading the database as a release step, and rotating keys
from a shell that is not the servers'. Each mistake there is one plain message, and none of
them leaves Pathways answering LMSs wrongly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from flask import Flask

from lti_app import create_app, migrate
from lti_app.cli import main
from lti_app.settings import SettingsError, load_settings

LTI_APP = Path(sys.executable).with_name("lti-app")
SERVERS_SECRET = "the-servers-secret-" + "s" * 32
FORGED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "pathways.example.edu",
    "X-Forwarded-For": "203.0.113.5",
}


def _environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The servers' environment: this machine's, without the test run's LTI_APP_* values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LTI_APP_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    env["LTI_APP_INSTANCE_PATH"] = str(tmp_path / "instance")
    return {**env, **variables}


# --- behind the school's proxy --------------------------------------------------------------


def _app_behind(tmp_path: Path, forwarded_allow_ips: str) -> Flask:
    return create_app(
        load_settings(
            {},
            env="test",
            secret_key=SERVERS_SECRET,
            database_url=f"sqlite:///{tmp_path / 'p.sqlite3'}",
            instance_path=str(tmp_path),
            forwarded_allow_ips=forwarded_allow_ips,
        )
    )


def _login_url_given_to_canvas(app: Flask, peer: str) -> str:
    """What an LMS admin pastes into Canvas: the developer key's login URL."""
    answer = app.test_client().get(
        "/lti/canvas.json", headers=FORGED, environ_base={"REMOTE_ADDR": peer}
    )
    assert answer.status_code == 200
    url: str = answer.get_json()["oidc_initiation_url"]
    return url


def test_a_load_balancer_named_by_its_network_sets_the_urls_lmss_are_given(
    tmp_path: Path,
) -> None:
    """A cloud load balancer changes addresses within its subnet, so the README's
    LTI_APP_FORWARDED_ALLOW_IPS names the subnet; gunicorn reads that variable as networks
    too. Ignoring it handed Canvas the internal http address as the login URL."""
    app = _app_behind(tmp_path, "10.0.0.0/16, 192.0.2.10")
    assert _login_url_given_to_canvas(app, "10.0.7.21") == "https://pathways.example.edu/lti/login"
    assert _login_url_given_to_canvas(app, "192.0.2.10").startswith("https://pathways.example.edu")
    # Anyone else reaching Pathways cannot choose the addresses it gives out.
    assert _login_url_given_to_canvas(app, "10.1.0.9") == "http://localhost/lti/login"


def test_a_proxy_on_gunicorns_unix_socket_is_believed(tmp_path: Path) -> None:
    """nginx in front of gunicorn bound to a unix socket (gunicorn's own deployment guide):
    only local processes reach it, and gunicorn trusts such a peer; Pathways must as well, or
    it gives out the wrong host and counts every visitor as one address."""
    app = _app_behind(tmp_path, "127.0.0.1,::1")
    assert _login_url_given_to_canvas(app, "") == "https://pathways.example.edu/lti/login"


@pytest.mark.parametrize("value", ["10.0.0.5 10.0.0.6", "10.0.0.5;10.0.0.6", "10.0.0.0/33", "lb"])
def test_a_proxy_list_nobody_can_read_stops_start_up_naming_the_setting(value: str) -> None:
    with pytest.raises(SettingsError, match="LTI_APP_FORWARDED_ALLOW_IPS"):
        load_settings({"LTI_APP_SECRET_KEY": SERVERS_SECRET, "LTI_APP_FORWARDED_ALLOW_IPS": value})


# --- starting the servers -------------------------------------------------------------------


def test_plain_gunicorn_with_a_bad_setting_says_which_without_a_traceback(
    tmp_path: Path,
) -> None:
    """`gunicorn 'lti_app:create_app()'` is the README's other way to serve: a bad setting
    is one line naming it, then gunicorn stops (it would print a traceback per worker)."""
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "lti_app:create_app()"],
        env=_environment(tmp_path, LTI_APP_ENV="production", LTI_APP_SECRET_KEY="too-short"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "LTI_APP_SECRET_KEY" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _serve(tmp_path: Path, url: str, port: int, **variables: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own lti-app, fixed arguments
        [str(LTI_APP), "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env=_environment(
            tmp_path, LTI_APP_SECRET_KEY=SERVERS_SECRET, LTI_APP_DATABASE_URL=url, **variables
        ),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _stop(server: subprocess.Popen[str]) -> tuple[str, str]:
    if server.poll() is None:
        os.killpg(server.pid, 15)
    return server.communicate(timeout=60)


@pytest.mark.parametrize("revision", [None, "0011_sign_in_failure_purpose"])
def test_serve_refuses_a_database_the_release_step_missed_until_it_is_upgraded(
    tmp_path: Path, empty_database_url: str, revision: str | None
) -> None:
    """README: `lti-app db upgrade` is a release step and the app never migrates itself. A
    server started without it answered every launch with a 500 while /healthz said 200, so
    the load balancer kept sending LMS launches to it."""
    if revision:
        migrate.upgrade(empty_database_url, revision)
    assert "lti-app db upgrade" in _refused(_serve(tmp_path, empty_database_url, _free_port()))

    migrate.upgrade(empty_database_url)  # the operator does what it said
    port = _free_port()
    server = _serve(tmp_path, empty_database_url, port)
    try:
        answer = None
        for _ in range(300):
            if server.poll() is not None:
                break
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None, _stop(server)
        assert answer.status_code == 200
    finally:
        _stop(server)


def _wait_until_serving(server: subprocess.Popen[str], port: int) -> None:
    for _ in range(300):
        if server.poll() is not None:
            pytest.fail(f"lti-app serve stopped:\n{_stop(server)[1]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"lti-app serve did not answer:\n{_stop(server)[1]}")


def test_one_request_id_joins_the_error_page_the_app_log_and_the_access_log(
    tmp_path: Path, empty_database_url: str
) -> None:
    """A teacher sends the IT department the request id on a refused launch's page; the
    access log (gunicorn's) had no id, so the line of that request could not be found."""
    migrate.upgrade(empty_database_url)
    port = _free_port()
    server = _serve(tmp_path, empty_database_url, port)
    try:
        _wait_until_serving(server, port)
        refused = httpx.post(f"http://127.0.0.1:{port}/lti/launch", data={"state": "x"})
        behind_proxy = httpx.get(
            f"http://127.0.0.1:{port}/healthz", headers={"X-Request-Id": "lb-7f3a9c"}
        )
        forged = httpx.get(
            f"http://127.0.0.1:{port}/healthz", headers={"X-Request-Id": "a\tb rid=fake"}
        )
    finally:
        out, err = _stop(server)
    assert refused.status_code == 400
    rid = refused.headers["X-Request-Id"]
    assert rid in refused.text
    access = [line for line in out.splitlines() if '"POST /lti/launch"' in line]
    assert len(access) == 1, out
    assert access[0].endswith(f"rid={rid}"), out
    assert any(f"rid={rid}" in line and "launch" in line for line in err.splitlines()), err
    # A proxy's own id is kept, so its log and ours agree; one that is not an id is replaced.
    assert behind_proxy.headers["X-Request-Id"] == "lb-7f3a9c"
    assert "rid=lb-7f3a9c" in out
    assert forged.headers["X-Request-Id"] not in ("", "a\tb rid=fake")
    assert "rid=fake" not in out


def test_a_login_check_with_a_long_lms_hint_reaches_pathways_under_gunicorn(
    tmp_path: Path, empty_database_url: str
) -> None:
    """The login's cookie check carries the LMS's login parameters in its address; a JWT
    lti_message_hint of a few kilobytes got gunicorn's bare "Request Line is too large"."""
    migrate.upgrade(empty_database_url)
    port = _free_port()
    server = _serve(tmp_path, empty_database_url, port)
    try:
        _wait_until_serving(server, port)
        answer = httpx.get(
            f"http://127.0.0.1:{port}/lti/login/check",
            params={"state": "x" * 300, "lti_message_hint": "h" * 6000, "login_hint": "u"},
        )
    finally:
        _stop(server)
    assert answer.status_code == 400
    assert "does not match a login Pathways started" in answer.text


def _refused(server: subprocess.Popen[str]) -> str:
    """What `lti-app serve` said when it refused to start (a failure if it started)."""
    try:
        _out, err = server.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        _out, err = _stop(server)
        pytest.fail(f"lti-app serve started:\n{err}")
    assert server.returncode == 1
    assert "Traceback" not in err
    return err


def test_serve_refuses_a_key_secret_that_opens_none_of_the_tool_keys(
    tmp_path: Path, empty_database_url: str
) -> None:
    """One host's LTI_APP_KEY_ENCRYPTION_SECRET has a typo: launches worked, but its key set
    (/.well-known/jwks.json) and every signature answered 500 from the first request on."""
    migrate.upgrade(empty_database_url)
    made = _keys(
        empty_database_url,
        "rotate",
        LTI_APP_SECRET_KEY=SERVERS_SECRET,
        LTI_APP_KEY_ENCRYPTION_SECRET="k" * 40,
    )
    assert made.exit_code == 0, made.output
    server = _serve(
        tmp_path, empty_database_url, _free_port(), LTI_APP_KEY_ENCRYPTION_SECRET="K" * 40
    )
    assert "LTI_APP_KEY_ENCRYPTION_SECRET" in _refused(server)


def test_an_app_started_by_plain_gunicorn_refuses_a_secret_that_opens_none_of_the_tool_keys(
    tmp_path: Path, empty_database_url: str
) -> None:
    """`gunicorn 'lti_app:create_app()'` and `lti-app demo` skip serve's checks: the app
    started, and a teacher's deep-linking pick was an "unexpected error" page."""
    migrate.upgrade(empty_database_url)
    settings = load_settings(
        {},
        env="test",
        secret_key=SERVERS_SECRET,
        key_encryption_secret="k" * 40,
        database_url=empty_database_url,
        instance_path=str(tmp_path),
    )
    first = create_app(settings)  # no key yet: the first is made on first use
    assert first.test_client().get("/.well-known/jwks.json").status_code == 200
    first.extensions["lti_app.db"].dispose()
    restarted = load_settings(
        {},
        env="test",
        secret_key=SERVERS_SECRET,
        key_encryption_secret="K" * 40,
        database_url=empty_database_url,
        instance_path=str(tmp_path),
    )
    with pytest.raises(SettingsError, match="LTI_APP_KEY_ENCRYPTION_SECRET") as refused:
        create_app(restarted)
    assert "opens none of the tool keys" in str(refused.value)
    again = create_app(settings)  # the servers' own secret still starts
    again.extensions["lti_app.db"].dispose()


# --- keys rotated from an operator's shell --------------------------------------------------


def _keys(url: str, *args: str, **env: str) -> Result:
    return CliRunner().invoke(
        main,
        ["keys", *args],
        env={"LTI_APP_DATABASE_URL": url, "LTI_APP_ENV": "test", **env},
    )


def test_rotating_keys_with_another_secret_than_the_servers_changes_nothing(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's shell lacks LTI_APP_KEY_ENCRYPTION_SECRET, so LTI_APP_SECRET_KEY
    stands in. The key it stored could not be opened by the servers, and six minutes later it
    was due to sign: every service token and deep-linking answer failed."""
    for name in list(os.environ):
        if name.startswith("LTI_APP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    migrate.upgrade(empty_database_url)
    servers = {"LTI_APP_SECRET_KEY": SERVERS_SECRET, "LTI_APP_KEY_ENCRYPTION_SECRET": "k" * 40}
    assert _keys(empty_database_url, "rotate", **servers).exit_code == 0
    before = _keys(empty_database_url, "list", **servers).output

    shell = {"LTI_APP_SECRET_KEY": SERVERS_SECRET}
    refused = _keys(empty_database_url, "rotate", **shell)
    assert refused.exit_code == 1
    assert "LTI_APP_KEY_ENCRYPTION_SECRET" in refused.output
    assert "nothing was changed" in refused.output
    assert _keys(empty_database_url, "list", **servers).output == before

    assert _keys(empty_database_url, "rotate", **servers).exit_code == 0
    # A secret changed on purpose (the servers already have it) may still start a new key.
    assert _keys(empty_database_url, "rotate", "--new-secret", **shell).exit_code == 0


def test_a_leaked_key_is_replaced_at_once_and_the_command_says_so(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("LTI_APP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    migrate.upgrade(empty_database_url)
    servers = {"LTI_APP_SECRET_KEY": SERVERS_SECRET, "LTI_APP_KEY_ENCRYPTION_SECRET": "k" * 40}
    first = _keys(empty_database_url, "rotate", **servers)
    old_kid = first.output.split()[2].rstrip(":")
    both = _keys(empty_database_url, "rotate", "--leaked", "--grace-days", "3", **servers)
    assert both.exit_code == 2
    rotated = _keys(empty_database_url, "rotate", "--leaked", **servers)
    assert rotated.exit_code == 0, rotated.output
    assert "signs within a minute" in rotated.output
    assert f"retired {old_kid}" in rotated.output
    assert "still published" not in rotated.output


def test_servers_given_a_new_secret_serve_the_key_set_and_sign_right_after_rotate_new_secret(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's way to change the key encryption secret: `lti-app keys rotate
    --new-secret`, the servers restarted with the new secret. The key due to sign for six more
    minutes was one they could not open, and the key set and every signature failed (500)."""
    from lti_app.db import Database
    from lti_app.tool.keys import KeyRing

    for name in list(os.environ):
        if name.startswith("LTI_APP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    migrate.upgrade(empty_database_url)
    before = {"LTI_APP_SECRET_KEY": SERVERS_SECRET, "LTI_APP_KEY_ENCRYPTION_SECRET": "k" * 40}
    assert _keys(empty_database_url, "rotate", **before).exit_code == 0
    after = {**before, "LTI_APP_KEY_ENCRYPTION_SECRET": "n" * 40}
    rotated = _keys(empty_database_url, "rotate", "--new-secret", **after)
    assert rotated.exit_code == 0, rotated.output
    assert "signs within a minute" in rotated.output
    new_kid = rotated.output.split()[2].rstrip(":")

    settings = load_settings(
        {},
        env="test",
        secret_key=SERVERS_SECRET,
        key_encryption_secret="n" * 40,
        database_url=empty_database_url,
        instance_path=str(tmp_path),
    )
    app = create_app(settings)
    key_set = app.test_client().get("/.well-known/jwks.json")
    app.extensions["lti_app.db"].dispose()
    assert key_set.status_code == 200
    assert new_kid in {k["kid"] for k in key_set.get_json()["keys"]}
    assert len(key_set.get_json()["keys"]) == 2
    database = Database(empty_database_url)
    with database.begin() as session:
        assert KeyRing.from_settings(settings).snapshot(session).signing.kid == new_kid
    database.dispose()


def test_the_example_key_encryption_secret_is_refused_in_production() -> None:
    """An IT person copies config/.env.example and replaces the secret start-up complains
    about; the key encryption secret below it is as public as the file, and the tool's
    private keys would be encrypted with it."""
    example = Path(__file__).resolve().parent.parent / "config" / ".env.example"
    copied = dict(
        line.split("=", 1)
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    )
    copied["LTI_APP_SECRET_KEY"] = SERVERS_SECRET
    with pytest.raises(SettingsError, match="LTI_APP_KEY_ENCRYPTION_SECRET"):
        load_settings(copied)
    copied["LTI_APP_KEY_ENCRYPTION_SECRET"] = "k" * 40
    assert load_settings(copied).effective_key_secret == "k" * 40


def test_a_short_admin_secret_is_refused_in_production() -> None:
    """The operator console locks an address out after ten wrong secrets, which does not
    stop guesses from many addresses at a short one."""
    production = {
        "LTI_APP_ENV": "production",
        "LTI_APP_SECRET_KEY": SERVERS_SECRET,
        "LTI_APP_KEY_ENCRYPTION_SECRET": "k" * 40,
        "LTI_APP_DATABASE_URL": "postgresql://pathways@db.school.example/pathways",
    }
    with pytest.raises(SettingsError, match="LTI_APP_ADMIN_SECRET"):
        load_settings({**production, "LTI_APP_ADMIN_SECRET": "admin123"})
    assert load_settings({**production, "LTI_APP_ADMIN_SECRET": "a" * 16}).admin_secret
    assert load_settings(production).admin_secret == ""  # the console stays off


def test_a_request_waiting_on_sqlites_lock_gives_up_before_gunicorn_kills_its_worker(
    tmp_path: Path,
) -> None:
    """Both waited 30 s: a launch stuck behind a long write was killed with its worker (a bare
    502 from the proxy, the worker's other requests lost) instead of answering "try again"."""
    import runpy

    from sqlalchemy import text

    from lti_app.db import make_engine

    conf = runpy.run_path(str(Path(__file__).resolve().parents[1] / "config" / "gunicorn.conf.py"))
    engine = make_engine(f"sqlite:///{tmp_path / 'busy.sqlite3'}")
    with engine.connect() as conn:
        busy_ms = conn.execute(text("PRAGMA busy_timeout")).scalar_one()
    engine.dispose()
    assert 5_000 <= busy_ms <= (conf["timeout"] - 5) * 1000
