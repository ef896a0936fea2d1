"""`lti-app roster sync`: fetch a course's roster from its LMS now."""

from __future__ import annotations

import click
from sqlalchemy import select

from lti_app.db import Database
from lti_app.http import make_http_client
from lti_app.logs import configure_logging
from lti_app.registration.reach import outbound_policy
from lti_app.roster.client import NrpsClient
from lti_app.roster.jobs import sync_roster
from lti_app.settings import Settings
from lti_app.tool.client import TokenClient
from lti_app.tool.key_cli import checked_keyring
from lti_app.tool.models import Context, Platform


@click.group("roster")
def roster_group() -> None:
    """Course rosters from the LMS (Names and Role Provisioning Services)."""


@roster_group.command("sync")
@click.option("--context", "context", required=True, help="The LMS's context_id of the course")
@click.option("--issuer", default=None, help="The platform's issuer, when several have it")
@click.option("--client-id", default=None)
@click.option("--full/--differences", default=True, help="Full roster, or changes only")
@click.pass_context
def sync_command(
    ctx: click.Context, context: str, issuer: str | None, client_id: str | None, full: bool
) -> None:
    """Sync one course's members now (uses the roster address its launches carried)."""
    settings: Settings = ctx.ensure_object(dict)["settings_loader"]()
    # Only create_app set logging up: a worker's warnings came out bare, its INFO lines (tokens
    # issued, columns made) never, whatever LTI_APP_LOG_LEVEL said.
    configure_logging(settings.log_level)
    keyring = checked_keyring(settings)
    database = Database(settings.effective_database_url)
    http = make_http_client(settings, outbound_policy(settings, database))
    try:
        with database.session_factory() as session:
            stmt = (
                select(Context.id, Platform.issuer, Platform.client_id)
                .join(Platform, Platform.id == Context.platform_id)
                .where(Context.context_id == context)
            )
            if issuer:
                stmt = stmt.where(Platform.issuer == issuer)
            if client_id:
                stmt = stmt.where(Platform.client_id == client_id)
            found = list(session.execute(stmt))
        if not found:
            raise click.ClickException(f"no course with context_id {context!r}")
        if len(found) > 1:
            names = ", ".join(f"{iss} ({cid})" for _id, iss, cid in found)
            raise click.ClickException(f"several platforms have {context!r}: {names}; add --issuer")
        nrps = NrpsClient(http, TokenClient(database, http, keyring))
        result = sync_roster(database, nrps, context_id=found[0][0], full=full)
        if result.skipped:
            raise click.ClickException("a sync of this course is already running")
        if not result.ok:
            wait = f" The LMS asked to wait {result.retry_after:g} s." if result.retry_after else ""
            raise click.ClickException(result.message + wait)
        click.echo(
            f"{result.members} student(s) listed, {result.deactivated} now inactive; "
            f"{result.teachers_deactivated} teacher(s) no longer listed, now inactive"
        )
    finally:
        http.close()
        database.dispose()
