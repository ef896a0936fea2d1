"""Settings and `lti-app` as a school's IT person and a newcomer meet them: odd values,
typos, missing and malformed arguments. Every mistake is one plain line and a non-zero exit,
never a Python traceback."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from lti_app import migrate
from lti_app.cli import main
from lti_app.db import make_engine
from lti_app.settings import EXAMPLE_SECRET, Settings, SettingsError, load_settings
from tests.tool.test_cli import add_args

LTI_APP = Path(sys.executable).with_name("lti-app")
LONG_SECRET = "s" * 48
# The SQLite run sets the variable empty: the local PostgreSQL is still the one to try.
PG_BASE = (
    os.environ.get("LTI_APP_TEST_DATABASE_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def settings_from(**env: str) -> Settings:
    """Settings from the real config/ folder and exactly these variables."""
    return load_settings({"LTI_APP_SECRET_KEY": LONG_SECRET, **env})


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["yes", "on", "1", "TRUE", " true ", "Yes"])
def test_boolean_spellings_an_it_person_uses_mean_true(raw: str) -> None:
    assert settings_from(LTI_APP_REGISTRATION_PRIVATE_HOSTS=raw).registration_private_hosts


@pytest.mark.parametrize("raw", ["no", "off", "0", "FALSE"])
def test_boolean_spellings_an_it_person_uses_mean_false(raw: str) -> None:
    assert not settings_from(LTI_APP_DEMO_ENABLED=raw).demo_enabled


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("LTI_APP_DEMO_ENABLED", ""),
        ("LTI_APP_JWKS_MIN_TTL", ""),
        ("LTI_APP_JWKS_MIN_TTL", "1.5"),
        ("LTI_APP_JWKS_MIN_TTL", "-5"),
        ("LTI_APP_CLOCK_SKEW_SECONDS", "99999999999999999999"),
        ("LTI_APP_CLOCK_SKEW_SECONDS", "301"),
        ("LTI_APP_HTTP_READ_TIMEOUT", "nan"),
        ("LTI_APP_HTTP_READ_TIMEOUT", "inf"),
        ("LTI_APP_HTTP_CONNECT_TIMEOUT", "0"),
        ("LTI_APP_LOGIN_STATE_TTL", "-1"),
        ("LTI_APP_LAUNCH_TOKEN_TTL", "1e12"),
        ("LTI_APP_KEY_ROTATION_GRACE_DAYS", "10000"),
        ("LTI_APP_LOG_LEVEL", "LOUD"),
    ],
)
def test_odd_value_stops_start_up_naming_the_variable(variable: str, raw: str) -> None:
    """Negative, huge, non-finite or fractional numbers are typos, not choices: the clock
    skew is capped at 5 minutes (LTI 1.3), a TTL cannot be negative, a timeout not zero."""
    with pytest.raises(SettingsError, match=variable):
        settings_from(**{variable: raw})


def test_spaces_around_values_are_forgiven_except_in_secrets() -> None:
    """`KEY= value ` in an env file: numbers, words and addresses are trimmed; a secret is
    kept exactly (trimming it would change the keys it already encrypted)."""
    settings = settings_from(
        LTI_APP_JWKS_MIN_TTL=" 30 ",
        LTI_APP_LOG_LEVEL=" debug ",
        LTI_APP_PUBLIC_URL=" https://pathways.example.edu ",
        LTI_APP_DATABASE_URL=" sqlite:////tmp/x.sqlite3\n",
        LTI_APP_KEY_ENCRYPTION_SECRET=" keep me ",
    )
    assert settings.jwks_min_ttl == 30
    assert settings.log_level == "DEBUG"
    assert settings.public_url == "https://pathways.example.edu"
    assert settings.database_url == "sqlite:////tmp/x.sqlite3"
    assert settings.key_encryption_secret == " keep me "


def test_misspelt_variable_stops_start_up_and_suggests_the_right_one() -> None:
    """LTI_APP_SECERT_KEY silently ignored would leave the real setting at its default: the
    config files already refuse unknown keys, so the environment does too, with a hint."""
    with pytest.raises(SettingsError, match=r"LTI_APP_SECERT_KEY.*LTI_APP_SECRET_KEY"):
        settings_from(LTI_APP_SECERT_KEY="x")
    with pytest.raises(SettingsError, match="LTI_APP_REGISTRATION_PRIVATE_HOST'"):
        settings_from(LTI_APP_REGISTRATION_PRIVATE_HOST="true")


def test_variables_read_by_gunicorn_and_the_tests_are_not_typos() -> None:
    settings_from(
        LTI_APP_BIND="0.0.0.0:9000",
        LTI_APP_WORKERS="3",
        LTI_APP_THREADS="2",
        LTI_APP_TEST_DATABASE_URL=PG_BASE,
    )


def test_environment_without_its_config_file_is_refused() -> None:
    """LTI_APP_ENV=prodution must not quietly run with development's defaults (HSTS off,
    private-network registration on)."""
    with pytest.raises(SettingsError, match=r"LTI_APP_ENV.*prodution.*production"):
        settings_from(LTI_APP_ENV="prodution")


@pytest.mark.parametrize(
    "url",
    [
        "postgressql+psycopg://pathways:hunter2@db/pathways",
        "mysql://pathways:hunter2@db/pathways",
        "db.example.edu/pathways",
    ],
)
def test_database_url_typo_is_named_without_the_password(url: str) -> None:
    with pytest.raises(SettingsError, match="LTI_APP_DATABASE_URL") as caught:
        settings_from(LTI_APP_DATABASE_URL=url)
    assert "hunter2" not in str(caught.value)


def test_plain_postgresql_url_means_the_installed_driver() -> None:
    """People write postgresql:// (or Heroku's postgres://): psycopg 3 is what ships."""
    for scheme in ("postgresql", "postgres"):
        settings = settings_from(LTI_APP_DATABASE_URL=f"{scheme}://u@db/pathways")
        assert settings.database_url == "postgresql+psycopg://u@db/pathways"


@pytest.mark.parametrize("secret", ["abc", "   ", EXAMPLE_SECRET])
def test_short_blank_or_example_secret_is_refused_in_production(secret: str) -> None:
    with pytest.raises(SettingsError, match="LTI_APP_SECRET_KEY"):
        load_settings({"LTI_APP_ENV": "production", "LTI_APP_SECRET_KEY": secret})


def test_short_secret_is_fine_on_a_laptop_but_blank_is_not() -> None:
    """Development and tests may use any non-blank secret; only production needs 32+."""
    assert load_settings({"LTI_APP_SECRET_KEY": "abc"}).secret_key == "abc"
    with pytest.raises(SettingsError, match="LTI_APP_SECRET_KEY"):
        load_settings({"LTI_APP_SECRET_KEY": "   "})


@pytest.mark.parametrize(
    ("env", "url"),
    [("development", "pathways.example.edu"), ("production", "http://pathways.example.edu")],
)
def test_public_url_must_be_an_address_and_https_in_production(env: str, url: str) -> None:
    with pytest.raises(SettingsError, match="LTI_APP_PUBLIC_URL"):
        settings_from(LTI_APP_ENV=env, LTI_APP_PUBLIC_URL=url)


# --- the CLI in process (the same click entry point the console script runs) -------------


@pytest.fixture(scope="module")
def scratch_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'pathways.sqlite3'}"
    migrate.upgrade(url)
    return url


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LTI_APP_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cli(scratch_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Result]:
    _clean_env(monkeypatch)
    monkeypatch.chdir(tmp_path)  # an instance/ folder, if any, lands here
    monkeypatch.setenv("LTI_APP_SECRET_KEY", LONG_SECRET)
    monkeypatch.setenv("LTI_APP_DATABASE_URL", scratch_db)

    def invoke(*args: str, input: str | None = None, **env: str) -> Result:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        result = CliRunner().invoke(main, list(args), input=input)
        # A user mistake ends in click's one-line message (SystemExit), never an exception.
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.output,
            result.exception,
        )
        return result

    return invoke


def fresh_issuer() -> str:
    return f"https://lms-{uuid.uuid4().hex[:8]}.example"


COMMANDS = [
    [],
    ["platform"],
    ["platform", "add"],
    ["platform", "list"],
    ["platform", "show"],
    ["platform", "remove"],
    ["platform", "approve-deployment"],
    ["keys"],
    ["keys", "list"],
    ["keys", "rotate"],
    ["db"],
    ["db", "upgrade"],
    ["db", "downgrade"],
    ["serve"],
    ["demo"],
    ["grades"],
    ["grades", "worker"],
    ["grades", "status"],
    ["grades", "retry"],
    ["roster"],
    ["roster", "sync"],
    ["person"],
    ["person", "find"],
    ["person", "export"],
    ["person", "erase"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "lti-app")
def test_help_works_without_any_configuration(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newcomer types --help before setting anything up."""
    _clean_env(monkeypatch)
    monkeypatch.setenv("LTI_APP_CLOCK_SKEW_SECONDS", "soon")  # even a broken setting
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    lines = result.output.splitlines()
    assert len(lines) > 2
    assert lines[2].strip(), "every command says what it does"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--issuer", "not a url"),
        ("--issuer", "https://x.example/" + "a" * 5000),
        ("--client-id", "   "),
        ("--client-id", "é" * 256),
        ("--auth-login-url", "https:// a b"),
        ("--auth-login-url", "ftp://lms.example/auth"),
        ("--auth-login-url", "lms.example/auth"),
        ("--token-url", "https://lms.example/" + "t" * 2000),
        ("--jwks-url", ""),
        ("--deployment-id", ""),
        ("--name", "n" * 300),
    ],
)
def test_platform_add_refuses_malformed_values_naming_the_option(
    cli: Callable[..., Result], option: str, value: str
) -> None:
    """The issuer is the platform's URL (LTI 1.3's iss); a value longer than its column is
    named here, before PostgreSQL refuses it with a database error."""
    args = add_args(fresh_issuer())
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert option in result.output


def test_same_deployment_twice_is_one_deployment(cli: Callable[..., Result]) -> None:
    issuer = fresh_issuer()
    added = cli(*add_args(issuer, "c1", "--deployment-id", "d1", "--deployment-id", "d1"))
    assert added.exit_code == 0, added.output
    shown = cli("platform", "show", "--issuer", issuer, "--client-id", "c1").output
    assert shown.count("deployment d1: active") == 1


def test_values_pasted_with_spaces_are_trimmed(cli: Callable[..., Result]) -> None:
    """A client id copied from Canvas with a trailing space would never match a launch."""
    issuer = fresh_issuer()
    assert (
        cli(*add_args(f" {issuer} ", " 10000000000001 ", "--deployment-id", " 1:abc ")).exit_code
        == 0
    )
    shown = cli("platform", "show", "--issuer", issuer, "--client-id", "10000000000001")
    assert shown.exit_code == 0, shown.output
    assert "deployment 1:abc: active" in shown.output


def test_unicode_values_round_trip(cli: Callable[..., Result]) -> None:
    issuer = fresh_issuer()
    client_id = "ünï€ode-学校"
    added = cli(*add_args(issuer, client_id, "--name", "École Saint-Exupéry 学校"))
    assert added.exit_code == 0, added.output
    shown = cli("platform", "show", "--issuer", issuer, "--client-id", client_id).output
    assert "École Saint-Exupéry 学校" in shown


def test_plain_http_endpoints_are_refused_in_production_only(
    cli: Callable[..., Result],
) -> None:
    """LTI 1.3 travels over TLS; the demo LMS and a test Moodle on a laptop use http."""
    args = add_args(fresh_issuer())
    args[args.index("--token-url") + 1] = "http://lms.example/token"
    refused = cli(*args, LTI_APP_ENV="production")
    assert refused.exit_code == 2
    assert "--token-url" in refused.output
    assert "https" in refused.output
    assert cli(*args, LTI_APP_ENV="development").exit_code == 0


def test_duplicate_registration_names_the_existing_id(cli: Callable[..., Result]) -> None:
    issuer = fresh_issuer()
    assert cli(*add_args(issuer)).exit_code == 0
    again = cli(*add_args(issuer + " "))  # the same once trimmed
    assert again.exit_code == 1
    assert "already registered (id " in again.output


def test_approving_for_an_unknown_platform_fails(cli: Callable[..., Result]) -> None:
    result = cli(
        "platform",
        "approve-deployment",
        "--issuer",
        fresh_issuer(),
        "--client-id",
        "c1",
        "--deployment-id",
        "d9",
    )
    assert result.exit_code == 1
    assert "no platform" in result.output


def test_approving_a_deployment_that_never_launched_says_it_was_added(
    cli: Callable[..., Result],
) -> None:
    """Approving ahead of the first launch is allowed (the existing behaviour), but the
    admin is told the id was new, so a typo does not pass unnoticed."""
    issuer = fresh_issuer()
    cli(*add_args(issuer))
    approve = ["platform", "approve-deployment", "--issuer", issuer, "--client-id", "c1"]
    result = cli(*approve, "--deployment-id", "d-new")
    assert result.exit_code == 0
    assert "had not launched yet" in result.output
    assert cli(*approve, "--deployment-id", "  ").exit_code == 2


def test_removing_a_platform_with_courses_and_launches(
    cli: Callable[..., Result], scratch_db: str
) -> None:
    """The demo course (roster, evidence, launches) goes with its platform; without --yes
    and a "n" answer nothing is removed."""
    from lti_app.db import Database
    from lti_app.demo.app import build_demo_platform
    from lti_app.demo.content import seed_demo_course
    from lti_app.demo.run import register_demo_platform

    _app, demo = build_demo_platform("http://localhost:8001", "http://127.0.0.1:8000")
    database = Database(scratch_db)
    with database.begin() as session:
        platform = register_demo_platform(session, demo)
        seed_demo_course(session, platform)
        issuer, client_id = platform.issuer, platform.client_id
    database.dispose()
    target = ["platform", "remove", "--issuer", issuer, "--client-id", client_id]
    kept = cli(*target, input="n\n")
    assert kept.exit_code == 1
    assert issuer in cli("platform", "list").output
    removed = cli(*target, "--yes")
    assert removed.exit_code == 0, removed.output
    assert issuer not in cli("platform", "list").output


def test_database_without_tables_says_run_db_upgrade(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    for command in (["platform", "list"], ["keys", "list"], ["grades", "status"]):
        result = cli(*command, LTI_APP_DATABASE_URL=empty)
        assert result.exit_code == 1, command
        assert "lti-app db upgrade" in result.output


def test_database_folder_that_cannot_be_made_is_a_plain_error(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    """(Tests run as root, for whom every folder is writable: a file where a folder should
    be is the same mistake seen from the operating system.)"""
    (tmp_path / "a-file").write_text("x")
    url = f"sqlite:///{tmp_path / 'a-file' / 'sub' / 'pathways.sqlite3'}"
    for command in (["platform", "list"], ["db", "upgrade"]):
        result = cli(*command, LTI_APP_DATABASE_URL=url)
        assert result.exit_code == 1, result.output
        assert "a-file" in result.output


def test_unknown_revision_is_a_plain_error(cli: Callable[..., Result]) -> None:
    result = cli("db", "upgrade", "--revision", "bogus")
    assert result.exit_code == 1
    assert "bogus" in result.output


OLDER_REVISION = "0005_insights"


def test_upgrade_says_the_revision_the_database_is_at(
    cli: Callable[..., Result], empty_database_url: str
) -> None:
    partial = cli("db", "upgrade", "--revision", "0005", LTI_APP_DATABASE_URL=empty_database_url)
    assert partial.exit_code == 0, partial.output
    assert f"database at {OLDER_REVISION}" in partial.output
    full = cli("db", "upgrade", LTI_APP_DATABASE_URL=empty_database_url)
    assert full.exit_code == 0, full.output
    assert f"database at {migrate.resolve_revision('head')}" in full.output


def test_upgrade_to_an_older_revision_is_refused_naming_the_downgrade(
    cli: Callable[..., Result], empty_database_url: str
) -> None:
    """Alembic's upgrade to an older revision does nothing; it once said it had got there."""
    migrate.upgrade(empty_database_url)
    result = cli(
        "db", "upgrade", "--revision", OLDER_REVISION, LTI_APP_DATABASE_URL=empty_database_url
    )
    assert result.exit_code == 1, result.output
    assert f"lti-app db downgrade --revision {OLDER_REVISION}" in result.output
    assert "database at" not in result.output
    assert migrate.current_revision(empty_database_url) == migrate.resolve_revision("head")


def test_downgrade_goes_back_only_once_confirmed(
    cli: Callable[..., Result], empty_database_url: str
) -> None:
    """The way back before running an older release, which `serve` names."""
    migrate.upgrade(empty_database_url)
    head = migrate.resolve_revision("head")
    command = ["db", "downgrade", "--revision", OLDER_REVISION]
    declined = cli(*command, input="n\n", LTI_APP_DATABASE_URL=empty_database_url)
    assert declined.exit_code == 1, declined.output
    assert "dropped with their data" in declined.output
    assert migrate.current_revision(empty_database_url) == head

    confirmed = cli(*command, input="y\n", LTI_APP_DATABASE_URL=empty_database_url)
    assert confirmed.exit_code == 0, confirmed.output
    assert f"database at {OLDER_REVISION}" in confirmed.output
    assert migrate.current_revision(empty_database_url) == OLDER_REVISION
    assert cli(*command, "--yes", LTI_APP_DATABASE_URL=empty_database_url).exit_code == 0

    back = cli("db", "upgrade", LTI_APP_DATABASE_URL=empty_database_url)
    assert back.exit_code == 0, back.output
    assert migrate.current_revision(empty_database_url) == head


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--revision", "bogus"], "bogus"),
        (["--revision", "head"], "lti-app db upgrade --revision head"),
        ([], "Missing option '--revision'"),
    ],
)
def test_downgrade_refuses_an_unknown_newer_or_missing_revision(
    cli: Callable[..., Result], empty_database_url: str, args: list[str], says: str
) -> None:
    migrate.upgrade(empty_database_url, OLDER_REVISION)
    result = cli("db", "downgrade", *args, "--yes", LTI_APP_DATABASE_URL=empty_database_url)
    assert result.exit_code in {1, 2}, result.output
    assert says in result.output
    assert migrate.current_revision(empty_database_url) == OLDER_REVISION


@pytest.mark.parametrize(
    "args",
    [
        ["grades", "status", "--context-id", "99999999999999999999"],
        ["grades", "retry", "--id", "99999999999999999999"],
        ["grades", "retry", "--context-id", "2147483648"],
        ["grades", "worker", "--once", "--context-id", "99999999999999999999"],
        ["grades", "status", "--context-id", "0"],
    ],
    ids=" ".join,
)
def test_an_id_no_row_can_have_is_refused_naming_the_option(
    cli: Callable[..., Result], args: list[str]
) -> None:
    """Past SQLite's 64-bit integers it was an OverflowError traceback."""
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{args[-2]}'" in result.output


def test_serve_on_a_newer_schema_names_the_downgrade_command(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_a_later_release'"))
    engine.dispose()
    behind = migrate.schema_behind(empty_database_url)
    assert behind is not None
    assert f"lti-app db downgrade --revision {migrate.resolve_revision('head')}" in behind


@pytest.mark.parametrize(
    "command",
    [
        ["platform", "list"],
        ["keys", "rotate"],
        ["db", "upgrade"],
        ["grades", "status"],
        ["roster", "sync", "--context", "x"],
        ["demo", "--tool-port", "1", "--lms-port", "2"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_bad_setting_is_one_line_naming_it_for_every_command(
    cli: Callable[..., Result], command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ports above are refused as taken or privileged only after the settings check.
    monkeypatch.setattr("lti_app.cli._port_taken", lambda host, port: False, raising=False)
    result = cli(*command, LTI_APP_CLOCK_SKEW_SECONDS="soon")
    assert result.exit_code == 1
    assert "LTI_APP_CLOCK_SKEW_SECONDS" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--tool-port", "70000"],
        ["demo", "--lms-port", "0"],
        ["demo", "--tool-port", "8123", "--lms-port", "8123"],
        ["keys", "rotate", "--grace-days", "-1"],
        ["grades", "status", "--context-id", "abc"],
        ["grades", "worker", "--once", "--concurrency", "0"],
        ["grades", "worker", "--once", "--concurrency", "-1"],
        ["grades", "worker", "--once", "--max-attempts", "0"],
        ["grades", "worker", "--once", "--poll", "-1"],
        ["grades", "worker", "--once", "--lease", "0"],
        ["serve", "--workers", "0"],
        ["platform", "show"],
        ["nosuch"],
    ],
    ids=" ".join,
)
def test_malformed_options_exit_2_before_anything_runs(args: list[str]) -> None:
    """Run as the console script, in a subprocess, since before these checks some of them
    started servers or a worker that loops without end (concurrency 0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LTI_APP_")}
    env |= {"LTI_APP_SECRET_KEY": LONG_SECRET, "LTI_APP_DATABASE_URL": "sqlite://"}
    try:
        done = subprocess.run(  # noqa: S603 - our own console script
            [str(LTI_APP), *args], env=env, capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"lti-app {' '.join(args)} did not stop")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "Try 'lti-app" in done.stderr


# --- as a user runs it: subprocesses -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LTI_APP_")}
    base |= {"LTI_APP_SECRET_KEY": LONG_SECRET} | env
    return subprocess.run(  # noqa: S603 - our own console script
        [str(LTI_APP), *args],
        env=base,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_demo_on_a_taken_port_tells_the_newcomer_plainly(tmp_path: Path) -> None:
    """Another program (or yesterday's demo) on 8000: say so and which option picks another
    port, before migrating or seeding anything."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        done = run_cli(
            tmp_path,
            "demo",
            "--tool-port",
            str(taken),
            "--lms-port",
            str(_free_port()),
            LTI_APP_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"port {taken} is already in use" in done.stderr
    assert "--tool-port" in done.stderr
    assert not (tmp_path / "demo.sqlite3").exists()


def test_mistyped_database_url_from_a_shell_is_one_line(tmp_path: Path) -> None:
    done = run_cli(
        tmp_path,
        "platform",
        "list",
        LTI_APP_DATABASE_URL="postgressql+psycopg://pathways:hunter2@127.0.0.1/pathways",
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "LTI_APP_DATABASE_URL" in done.stderr
    assert "hunter2" not in done.stderr


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A database of our own on the local PostgreSQL, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    from sqlalchemy.engine import make_url

    base = make_url(PG_BASE)
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as err:
        pytest.skip(f"no PostgreSQL at {base.render_as_string()}: {err}")
    name = f"cli_crafted_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_postgresql_mistakes_are_plain_and_a_plain_url_works(
    pg_database: str, tmp_path: Path
) -> None:
    """A database that does not exist, and one not yet upgraded, are one line each (the
    password never shown); `postgresql://` without the driver name works end to end."""
    from sqlalchemy.engine import make_url

    url = make_url(pg_database)
    missing = url.set(database=f"{url.database}_nope", password="hunter2")
    gone = run_cli(
        tmp_path,
        "platform",
        "list",
        LTI_APP_DATABASE_URL=missing.render_as_string(hide_password=False),
    )
    assert gone.returncode == 1
    assert "Traceback" not in gone.stderr
    assert "cannot open the database" in gone.stderr
    assert "hunter2" not in gone.stderr

    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    early = run_cli(tmp_path, "platform", "list", LTI_APP_DATABASE_URL=plain)
    assert early.returncode == 1
    assert "lti-app db upgrade" in early.stderr
    assert run_cli(tmp_path, "db", "upgrade", LTI_APP_DATABASE_URL=plain).returncode == 0
    listed = run_cli(tmp_path, "platform", "list", LTI_APP_DATABASE_URL=plain)
    assert listed.returncode == 0, listed.stderr
    assert "no platforms registered" in listed.stdout


# --- the tool key file --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "No such file"),
        (b"not a key\n", "cannot read the tool key file"),
    ],
    ids=["missing", "not-a-pem"],
)
def test_an_unusable_key_file_stops_start_up_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None, words: str
) -> None:
    """A typo in LTI_APP_TOOL_KEY_FILE is said when Pathways starts (app and `lti-app serve`),
    not as a 500 on the first launch or key set request hours later."""
    from lti_app import create_app

    key_file = tmp_path / "tool.pem"
    if content is not None:
        key_file.write_bytes(content)
    settings = settings_from(LTI_APP_TOOL_KEY_FILE=str(key_file), LTI_APP_DATABASE_URL="sqlite://")
    with pytest.raises(SettingsError, match="LTI_APP_TOOL_KEY_FILE") as err:
        create_app(settings)
    assert words in str(err.value)
    _clean_env(monkeypatch)
    monkeypatch.setenv("LTI_APP_SECRET_KEY", LONG_SECRET)
    monkeypatch.setenv("LTI_APP_DATABASE_URL", "sqlite://")
    monkeypatch.setenv("LTI_APP_TOOL_KEY_FILE", str(key_file))

    def gunicorn(*args: object) -> None:
        raise AssertionError("serve went on to start gunicorn")

    monkeypatch.setattr(os, "execvp", gunicorn)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1, result.output
    assert "LTI_APP_TOOL_KEY_FILE" in result.output
    assert "Traceback" not in result.output


def test_a_usable_key_file_is_what_pathways_publishes(tmp_path: Path) -> None:
    from lti_app import create_app
    from lti_app.tool.keys import thumbprint_kid
    from tests.tool.test_keys import write_key_file

    key_file = tmp_path / "tool.pem"
    private = write_key_file(key_file)
    settings = settings_from(
        LTI_APP_TOOL_KEY_FILE=str(key_file),
        LTI_APP_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    app = create_app(settings)
    try:
        [key] = app.test_client().get("/.well-known/jwks.json").get_json()["keys"]
    finally:
        app.extensions["lti_app.db"].dispose()
        app.extensions["lti_app.http"].close()
    assert key["kid"] == thumbprint_kid(private.public_key())


@pytest.fixture
def keys_made_elsewhere(tmp_path: Path) -> str:
    """A database whose tool key the servers made with their secret, not this shell's."""
    from lti_app.db import Database
    from lti_app.tool.keys import KeyRing

    url = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
    migrate.upgrade(url)
    database = Database(url)
    with database.begin() as session:
        KeyRing(secret="the servers' key secret").snapshot(session)
    database.dispose()
    return url


SIGNING_COMMANDS = [
    ["grades", "worker", "--once"],
    ["roster", "sync", "--context", "course-1"],
    ["serve"],
]


@pytest.mark.parametrize("command", SIGNING_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_that_signs_refuses_a_secret_that_opens_no_tool_key(
    cli: Callable[..., Result],
    keys_made_elsewhere: str,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:
    """Only `lti-app serve` checked: a score worker with another LTI_APP_KEY_ENCRYPTION_SECRET
    started, then failed every score it sent until each had used up its tries."""
    monkeypatch.setattr(os, "execvp", lambda *args: pytest.fail("serve started gunicorn"))
    result = cli(
        *command,
        LTI_APP_DATABASE_URL=keys_made_elsewhere,
        LTI_APP_KEY_ENCRYPTION_SECRET="another key secret",
    )
    assert result.exit_code == 1, result.output
    assert "LTI_APP_KEY_ENCRYPTION_SECRET" in result.output
    assert "opens none of the tool keys" in result.output


@pytest.mark.parametrize("command", SIGNING_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_that_signs_refuses_an_unusable_key_file(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setattr(os, "execvp", lambda *args: pytest.fail("serve started gunicorn"))
    result = cli(*command, LTI_APP_TOOL_KEY_FILE=str(tmp_path / "missing.pem"))
    assert result.exit_code == 1, result.output
    assert "LTI_APP_TOOL_KEY_FILE: cannot read the tool key file" in result.output


def test_keys_list_names_the_key_file_and_its_kid(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    """`keys list` said "no keys yet (one is created on first use)" while a key file signed."""
    from lti_app.tool.keys import thumbprint_kid
    from tests.tool.test_keys import write_key_file

    current, upcoming = tmp_path / "tool.pem", tmp_path / "next.pem"
    kid = thumbprint_kid(write_key_file(current).public_key())
    next_kid = thumbprint_kid(write_key_file(upcoming).public_key())
    listed = cli(
        "keys",
        "list",
        LTI_APP_TOOL_KEY_FILE=str(current),
        LTI_APP_TOOL_NEXT_KEY_FILE=str(upcoming),
    )
    assert listed.exit_code == 0, listed.output
    assert "no keys yet" not in listed.output
    assert f"the tool key comes from LTI_APP_TOOL_KEY_FILE ({current})" in listed.output
    assert f"{kid}\tsigns" in listed.output
    assert f"{next_kid}\tpublished" in listed.output


@pytest.mark.parametrize(
    "command",
    [["grades", "worker", "--once"], ["roster", "sync", "--context", "no-such-course"]],
    ids=lambda c: " ".join(c[:2]),
)
def test_workers_log_at_the_chosen_level_in_the_servers_format(
    cli: Callable[..., Result], command: list[str]
) -> None:
    """Only create_app set logging up: a worker's warnings came out bare and its INFO lines
    (tokens issued, gradebook columns made) never, whatever LTI_APP_LOG_LEVEL said."""
    logger = logging.getLogger("lti_app")
    before = (logger.level, list(logger.handlers), logger.propagate)
    try:
        cli(*command, LTI_APP_LOG_LEVEL="DEBUG")
        assert logger.level == logging.DEBUG
        [handler] = logger.handlers
        assert handler.formatter is not None
        assert "rid=%(request_id)s" in (handler.formatter._fmt or "")
    finally:
        logger.setLevel(before[0])
        logger.handlers[:] = before[1]
        logger.propagate = before[2]
