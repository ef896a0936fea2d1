"""`lti-app platform …` and `lti-app keys …` as an administrator uses them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lti_app.cli import main
from lti_app.db import utcnow
from lti_app.settings import Settings
from lti_app.tool.key_rotation import MIN_PUBLISHED_AFTER_ROTATION
from lti_app.tool.keys import KeyRing
from lti_app.tool.models import ToolKey


@pytest.fixture
def run(
    database_url: str,
    engine: object,
    monkeypatch: pytest.MonkeyPatch,
    tool_settings: Settings,
) -> Callable[..., Result]:
    # The same secret as the running test tool: keys made here must stay readable to it.
    monkeypatch.setenv("LTI_APP_SECRET_KEY", tool_settings.secret_key)
    monkeypatch.setenv("LTI_APP_KEY_ENCRYPTION_SECRET", tool_settings.key_encryption_secret)
    monkeypatch.setenv("LTI_APP_DATABASE_URL", database_url)
    monkeypatch.setenv("LTI_APP_ENV", "test")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def add_args(issuer: str, client_id: str = "c1", *extra: str) -> list[str]:
    return [
        "platform",
        "add",
        "--issuer",
        issuer,
        "--client-id",
        client_id,
        "--auth-login-url",
        "https://lms.example/auth",
        "--token-url",
        "https://lms.example/token",
        "--jwks-url",
        "https://lms.example/jwks",
        *extra,
    ]


def test_add_list_show_approve_remove(run: Callable[..., Result]) -> None:
    issuer = f"https://lms-{uuid.uuid4().hex[:8]}.example"
    added = run(*add_args(issuer, "c1", "--deployment-id", "d1"))
    assert added.exit_code == 0, added.output
    assert issuer in run("platform", "list").output
    shown = run("platform", "show", "--issuer", issuer, "--client-id", "c1")
    assert "deployment d1: active" in shown.output
    approved = run(
        "platform",
        "approve-deployment",
        "--issuer",
        issuer,
        "--client-id",
        "c1",
        "--deployment-id",
        "d2",
    )
    assert approved.exit_code == 0
    assert (
        "deployment d2: active"
        in run("platform", "show", "--issuer", issuer, "--client-id", "c1").output
    )
    removed = run("platform", "remove", "--issuer", issuer, "--client-id", "c1", "--yes")
    assert removed.exit_code == 0
    assert issuer not in run("platform", "list").output


def test_same_issuer_may_have_several_client_ids(run: Callable[..., Result]) -> None:
    issuer = "https://canvas.instructure.com"
    first, second = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    assert run(*add_args(issuer, first)).exit_code == 0
    assert run(*add_args(issuer, second)).exit_code == 0


def test_duplicate_registration_is_refused_with_exit_1(run: Callable[..., Result]) -> None:
    issuer = f"https://dup-{uuid.uuid4().hex[:8]}.example"
    run(*add_args(issuer))
    again = CliRunner().invoke(main, add_args(issuer))
    assert again.exit_code == 1
    assert "already registered" in again.output


def test_bad_url_is_refused_naming_the_option(run: Callable[..., Result]) -> None:
    args = add_args("https://x.example")
    args[args.index("--jwks-url") + 1] = "not a url"
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "--jwks-url" in result.output


@pytest.mark.parametrize(
    "url",
    [
        "https://[fd00::1/jwks",
        "https://lms.example:443a/jwks",
        "https://lms.example:99999/jwks",
        "https://1.2.3.999/jwks",
        "https://lms\u200b.example/jwks",
    ],
    ids=["unclosed-ipv6", "port-not-a-number", "port-out-of-range", "bad-ipv4", "zero-width"],
)
def test_url_no_request_could_use_is_refused_naming_the_option(
    run: Callable[..., Result], url: str
) -> None:
    # Stored, each one failed every launch from that LMS with "Unexpected error".
    issuer = f"https://bad-url-{uuid.uuid4().hex[:8]}.example"
    args = add_args(issuer)
    args[args.index("--jwks-url") + 1] = url
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "--jwks-url" in result.output
    assert "is not an http(s) URL" in result.output
    assert issuer not in run("platform", "list").output


def test_disable_and_enable_a_platform_by_id_or_by_issuer(run: Callable[..., Result]) -> None:
    issuer = f"https://off-{uuid.uuid4().hex[:8]}.example"
    added = run(*add_args(issuer, "c1"))
    platform_id = added.output.split("registered platform ", 1)[1].split(":", 1)[0]
    disabled = run("platform", "disable", "--id", platform_id)
    assert disabled.exit_code == 0, disabled.output
    assert f"platform {platform_id} ({issuer} client c1) is disabled" in disabled.output
    assert "launches are refused" in disabled.output
    assert "within 10 seconds" in disabled.output
    assert f"lti-app platform enable --id {platform_id}" in disabled.output
    listed = [line for line in run("platform", "list").output.splitlines() if issuer in line]
    assert listed[0].endswith("DISABLED")
    again = run("platform", "disable", "--issuer", issuer, "--client-id", "c1")
    assert again.exit_code == 0
    assert "was already disabled" in again.output
    enabled = run("platform", "enable", "--issuer", issuer, "--client-id", "c1")
    assert enabled.exit_code == 0, enabled.output
    assert "is enabled" in enabled.output
    assert "active: True" in run("platform", "show", "--issuer", issuer, "--client-id", "c1").output


def test_disable_and_enable_a_deployment(run: Callable[..., Result]) -> None:
    issuer = f"https://dep-off-{uuid.uuid4().hex[:8]}.example"
    run(*add_args(issuer, "c1", "--deployment-id", "d1", "--deployment-id", "d2"))
    which = ["--issuer", issuer, "--client-id", "c1"]
    disabled = run("platform", "disable-deployment", *which, "--deployment-id", "d1")
    assert disabled.exit_code == 0, disabled.output
    assert f"deployment d1 of {issuer} client c1 is disabled" in disabled.output
    shown = run("platform", "show", *which).output
    assert "deployment d1: disabled" in shown
    assert "deployment d2: active" in shown
    enabled = run("platform", "enable-deployment", *which, "--deployment-id", "d1")
    assert enabled.exit_code == 0, enabled.output
    assert "deployment d1: active" in run("platform", "show", *which).output
    unknown = CliRunner().invoke(
        main, ["platform", "disable-deployment", *which, "--deployment-id", "d3"]
    )
    assert unknown.exit_code == 1
    assert "no deployment 'd3'" in unknown.output
    assert "d1, d2" in unknown.output


@pytest.mark.parametrize(
    ("args", "exit_code", "words"),
    [
        ([], 2, "name the platform"),
        (["--issuer", "https://lms.example"], 2, "name the platform"),
        (["--id", "1", "--issuer", "https://lms.example", "--client-id", "c"], 2, "by --id or"),
        (["--id", "0"], 2, "--id"),
        (["--id", "2147483647"], 1, "no platform with id 2147483647"),
        (["--issuer", "https://nope.example", "--client-id", "x"], 1, "no platform"),
    ],
    ids=["nothing", "issuer-alone", "both", "id-zero", "unknown-id", "unknown-issuer"],
)
@pytest.mark.parametrize("command", ["disable", "enable", "disable-deployment"])
def test_naming_no_platform_is_an_error(
    run: Callable[..., Result], command: str, args: list[str], exit_code: int, words: str
) -> None:
    extra = ["--deployment-id", "d1"] if command.endswith("deployment") else []
    result = CliRunner().invoke(main, ["platform", command, *args, *extra])
    assert result.exit_code == exit_code, result.output
    assert words in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unknown_platform_is_an_error(run: Callable[..., Result]) -> None:
    result = CliRunner().invoke(
        main, ["platform", "show", "--issuer", "https://nope", "--client-id", "x"]
    )
    assert result.exit_code == 1
    assert "no platform" in result.output


@pytest.fixture
def tool_keys_restored(engine: Engine) -> Iterator[None]:
    """Put the tool's keys back as they were: the running test tool, its grade workers and the
    test LMS share this database, and a key rotated here would sign their next service-token
    requests before the LMS could have seen it published (a later test's 400 invalid_client)."""
    with Session(engine) as session:
        before = {k.kid: (k.status, k.retire_after) for k in session.scalars(select(ToolKey))}
    yield
    with Session(engine) as session, session.begin():
        for key in session.scalars(select(ToolKey)):
            if key.kid not in before:
                session.delete(key)
            else:
                key.status, key.retire_after = before[key.kid]


@pytest.mark.usefixtures("tool_keys_restored")
def test_keys_rotate_publishes_two_keys(run: Callable[..., Result]) -> None:
    first = run("keys", "rotate")
    assert first.exit_code == 0, first.output
    second = run("keys", "rotate")
    assert "still published" in second.output
    listed = run("keys", "list").output
    assert "active" in listed
    assert "retiring" in listed


@pytest.mark.usefixtures("tool_keys_restored")
def test_rotating_without_grace_days_says_what_the_servers_do(
    run: Callable[..., Result], engine: Engine, tool_settings: Settings
) -> None:
    """`keys rotate --grace-days 0` said "signs in about 6 minutes" and "still published until
    <today>", while the old key left the key set at once and the new one signed at once."""
    with Session(engine) as session, session.begin():  # the first key, if none is yet
        signing = KeyRing(secret=tool_settings.key_encryption_secret).snapshot(session).signing
    rotated = run("keys", "rotate", "--grace-days", "0")
    assert rotated.exit_code == 0, rotated.output
    assert "signs in about 6 minutes" in rotated.output
    found = re.search(
        rf"still published until (\S+ \S+)Z: {re.escape(signing.kid)}", rotated.output
    )
    assert found is not None, rotated.output
    until = datetime.strptime(found[1], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert until >= utcnow() + MIN_PUBLISHED_AFTER_ROTATION - timedelta(minutes=1)
    with Session(engine) as session:
        snapshot = KeyRing(secret=tool_settings.key_encryption_secret).snapshot(session)
    assert snapshot.signing.kid == signing.kid
    assert signing.kid in {key["kid"] for key in snapshot.jwks["keys"]}


def test_missing_secret_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LTI_APP_SECRET_KEY", raising=False)
    result = CliRunner().invoke(main, ["platform", "list"])
    assert result.exit_code == 1
    assert "LTI_APP_SECRET_KEY" in result.output
