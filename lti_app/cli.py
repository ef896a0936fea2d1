"""The `lti-app` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from lti_app.grades.cli import grades_group
from lti_app.roster.cli import roster_group
from lti_app.settings import Settings, SettingsError, load_settings
from lti_app.tool.cli import keys_group, platform_group


def _load() -> Settings:
    try:
        return load_settings()
    except SettingsError as err:
        raise click.ClickException(f"configuration: {err}") from err


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Pathways, a personalized-learning LTI 1.3 tool."""
    ctx.ensure_object(dict)["settings_loader"] = _load


main.add_command(platform_group)
main.add_command(keys_group)
main.add_command(roster_group)
main.add_command(grades_group)


@main.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations (run before starting a new version)."""
    from lti_app import migrate

    settings = _load()
    migrate.upgrade(settings.effective_database_url, revision)
    click.echo(f"database at {revision}")


@main.command("serve")
@click.option("--bind", default=None, help="host:port (default 0.0.0.0:8000)")
@click.option("--workers", default=None, type=int)
def serve(bind: str | None, workers: int | None) -> None:
    """Run Pathways under gunicorn (production)."""
    _load()  # fail here, with a clear message, not in every worker
    config = Path(__file__).resolve().parent.parent / "config" / "gunicorn.conf.py"
    args = [sys.executable, "-m", "gunicorn"]
    if config.is_file():
        args += ["-c", str(config)]
    if bind:
        args += ["--bind", bind]
    if workers:
        args += ["--workers", str(workers)]
    args.append("lti_app:create_app()")
    os.execvp(args[0], args)  # noqa: S606 - replace this process with gunicorn


@main.command("demo")
@click.option("--tool-port", default=8000, type=int)
@click.option("--lms-port", default=8001, type=int)
def demo(tool_port: int, lms_port: int) -> None:
    """Run Pathways with SQLite and a demo LMS to launch it from."""
    from lti_app.demo.run import run_demo

    run_demo(tool_port=tool_port, lms_port=lms_port)
