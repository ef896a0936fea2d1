"""The `lti-app` command."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from typing import Any

import click
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from lti_app.grades.cli import grades_group
from lti_app.people.cli import person_group
from lti_app.roster.cli import roster_group
from lti_app.settings import Settings, SettingsError, load_settings
from lti_app.tool.cli import platform_group
from lti_app.tool.key_cli import checked_keyring, keys_group


def _load() -> Settings:
    try:
        return load_settings()
    except SettingsError as err:
        raise click.ClickException(f"configuration: {err}") from err


def _where(url: str) -> str:
    """The database's address without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "(unreadable address)"


def _first_line(err: sa_exc.SQLAlchemyError) -> str:
    return str(getattr(err, "orig", None) or err).strip().splitlines()[0]


def _names_missing_schema(first_line: str) -> bool:
    """Whether the error names a table or column the database does not have (SQLite's and
    PostgreSQL's wording): what new code reading a database the release step missed meets."""
    return (
        "no such table" in first_line
        or "no such column" in first_line
        or "has no column named" in first_line
        or ("does not exist" in first_line and ("relation" in first_line or "column" in first_line))
    )


def _explain_database_error(err: sa_exc.SQLAlchemyError, url: str) -> str:
    first_line = _first_line(err)
    if _names_missing_schema(first_line):
        return (
            f"the database {_where(url)} has no Pathways tables yet (or an old version of "
            "them): run `lti-app db upgrade` first"
        )
    if isinstance(err, sa_exc.OperationalError | sa_exc.InterfaceError):
        return f"cannot open the database {_where(url)}: {first_line}"
    return f"database error at {_where(url)}: {first_line}"


def _not_ready(url: str, behind: str) -> str:
    return f"the database {_where(url)} is not ready for this version of Pathways: {behind}"


def _explain_failed_command(err: sa_exc.SQLAlchemyError, url: str) -> str:
    """A command's database error, saying so when the schema is behind (or ahead of) this
    version: a new `lti-app grades worker` started before the release step's `lti-app db
    upgrade` ended in "no such column: membership.is_preview"."""
    from lti_app import migrate

    if _names_missing_schema(_first_line(err)):
        # Asked only then: a database that does not answer would make the operator wait twice.
        behind = None
        with contextlib.suppress(sa_exc.SQLAlchemyError):
            behind = migrate.schema_behind(url)
        if behind:
            return _not_ready(url, behind)
    return _explain_database_error(err, url)


class _MainGroup(click.Group):
    """Turns an operator's environment mistakes into one plain line, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except sa_exc.SQLAlchemyError as err:
            url = os.environ.get("LTI_APP_DATABASE_URL", "")
            with contextlib.suppress(SettingsError):
                url = load_settings().effective_database_url
            raise click.ClickException(_explain_failed_command(err, url)) from err
        except OSError as err:
            if isinstance(err, BrokenPipeError):
                raise
            where = f" {err.filename}" if err.filename else ""
            raise click.ClickException(f"cannot use{where}: {err.strerror or err}") from err


@click.group(cls=_MainGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Pathways, a personalized-learning LTI 1.3 tool."""
    ctx.ensure_object(dict)["settings_loader"] = _load


main.add_command(platform_group)
main.add_command(keys_group)
main.add_command(roster_group)
main.add_command(grades_group)
main.add_command(person_group)


@main.group("db")
def db_group() -> None:
    """The database schema."""


def _revisions(url: str, revision: str) -> tuple[str | None, str | None]:
    """The revision the database is at and the full id of the one the operator named (None
    is base), or a plain error for a revision this version of Pathways does not know."""
    from alembic.util.exc import CommandError

    from lti_app import migrate

    try:
        target = migrate.resolve_revision(revision)
    except CommandError as err:
        raise click.ClickException(
            f"unknown revision {revision!r} ({err}): name a revision id or a unique start of "
            "one, head, or base"
        ) from err
    current = migrate.current_revision(url)
    if current is not None and not migrate.is_known(current):
        raise click.ClickException(
            f"the database {_where(url)} is at revision {current}, which a newer version of "
            "Pathways made: run its `lti-app db downgrade` first"
        )
    return current, target


def _echo_revision(url: str) -> None:
    from lti_app import migrate

    click.echo(f"database at {migrate.current_revision(url) or 'base (no Pathways tables)'}")


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Where to stop")
def db_upgrade(revision: str) -> None:
    """Apply migrations (run before starting a new version)."""
    from alembic.util.exc import CommandError

    from lti_app import migrate

    url = _load().effective_database_url
    current, target = _revisions(url, revision)
    if migrate.is_older(target, current):
        # Alembic's upgrade to an older revision quietly does nothing.
        raise click.ClickException(
            f"the database is at {current}, past {target or 'base'}; an upgrade never goes "
            f"back: run `lti-app db downgrade --revision {revision}` instead"
        )
    try:
        migrate.upgrade(url, revision, on_retry=lambda why: click.echo(why, err=True))
    except (CommandError, migrate.UpgradeBusyError) as err:
        raise click.ClickException(f"cannot upgrade to {revision!r}: {err}") from err
    _echo_revision(url)


@db_group.command("downgrade")
@click.option(
    "--revision", required=True, help="The revision to go back to (base: no Pathways tables)"
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation")
def db_downgrade(revision: str, yes: bool) -> None:
    """Undo migrations (before going back to an older version); drops what they added."""
    from alembic.util.exc import CommandError

    from lti_app import migrate

    url = _load().effective_database_url
    current, target = _revisions(url, revision)
    if target == current:
        _echo_revision(url)
        return
    if not migrate.is_older(target, current):
        raise click.ClickException(
            f"the database is at {current or 'base'}, before {target}: run "
            f"`lti-app db upgrade --revision {revision}` instead"
        )
    if not yes:
        losses = migrate.downgrade_losses(url, current=current, target=target)
        click.confirm(
            f"Downgrade the database {_where(url)} from {current} to {target or 'base'}? The "
            "tables and columns the later revisions added are dropped with their data"
            + (f"; {' and '.join(losses)} will be deleted." if losses else "."),
            abort=True,
        )
    try:
        migrate.downgrade(url, target or "base")
    except CommandError as err:
        raise click.ClickException(f"cannot downgrade to {revision!r}: {err}") from err
    _echo_revision(url)


def _check_key_file(settings: Settings) -> None:
    from lti_app.tool.keys import KeyRing, ToolKeyError

    try:
        KeyRing.from_settings(settings)
    except ToolKeyError as err:
        raise click.ClickException(f"configuration: {err}") from err


def check_database(settings: Settings, *, until_it_answers: str) -> None:
    """Refuse to start on a database the release step missed (or a newer release made); only
    warn about a database that does not answer yet (it may be starting too), saying what
    happens until it does."""
    from lti_app import migrate

    url = settings.effective_database_url
    try:
        behind = migrate.schema_behind(url)
    except sa_exc.SQLAlchemyError as err:
        click.echo(
            f"warning: {_explain_database_error(err, url)}; starting anyway, and "
            f"{until_it_answers} until it answers",
            err=True,
        )
        return
    if behind:
        raise click.ClickException(_not_ready(url, behind))


@main.command("serve")
@click.option("--bind", default=None, help="host:port (default 0.0.0.0:8000)")
@click.option("--workers", default=None, type=click.IntRange(min=1), help="gunicorn workers")
def serve(bind: str | None, workers: int | None) -> None:
    """Run Pathways under gunicorn (production)."""
    settings = _load()  # fail here, with a clear message, not in every worker
    checked_keyring(settings)  # the checks every process that signs makes
    check_database(settings, until_it_answers="every page but /healthz (503) fails")
    from lti_app.settings import shipped_folder

    config = shipped_folder("config") / "gunicorn.conf.py"
    args = [sys.executable, "-m", "gunicorn"]
    if config.is_file():
        args += ["-c", str(config)]
    if bind:
        args += ["--bind", bind]
    if workers:
        args += ["--workers", str(workers)]
    args.append("lti_app:create_app()")
    os.execvp(args[0], args)  # noqa: S606 - replace this process with gunicorn


PORT = click.IntRange(1, 65535)


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


@main.command("demo")
@click.option("--tool-port", default=8000, type=PORT, show_default=True, help="Pathways' port")
@click.option("--lms-port", default=8001, type=PORT, show_default=True, help="The demo LMS's port")
def demo(tool_port: int, lms_port: int) -> None:
    """Run Pathways with SQLite and a demo LMS to launch it from."""
    from lti_app.demo.run import run_demo

    if tool_port == lms_port:
        raise click.BadParameter("Pathways and the demo LMS need two different ports")
    for option, host, port in (
        ("--tool-port", "127.0.0.1", tool_port),
        ("--lms-port", "localhost", lms_port),
    ):
        if _port_taken(host, port):
            raise click.ClickException(
                f"port {port} is already in use (another `lti-app demo`, or another program): "
                f"stop it, or choose a free port with {option}"
            )
    _check_key_file(_load())
    try:
        run_demo(tool_port=tool_port, lms_port=lms_port)
    except SettingsError as err:  # create_app's StartUpError: the demo's keys, say
        raise click.ClickException(f"configuration: {err}") from err
