"""`lti-app keys list|rotate`: the tool's own signing keys, and the key check every process
that signs makes at start-up."""

from __future__ import annotations

import click
from sqlalchemy import select

from lti_app.db import Database
from lti_app.settings import Settings
from lti_app.tool.cli import command_database
from lti_app.tool.key_checks import start_up_keyring
from lti_app.tool.key_files import KEY_FILE_SETTING
from lti_app.tool.key_rotation import rotate_keys
from lti_app.tool.keys import (
    JWKS_MAX_AGE_SECONDS,
    PUBLISH_BEFORE_SIGNING,
    KeyRing,
    ToolKeyError,
    secret_opens_keys,
)
from lti_app.tool.models import KeyStatus, ToolKey


def checked_keyring(settings: Settings) -> KeyRing:
    """`key_checks.start_up_keyring` for a command that signs: a key setting it cannot sign
    with is one line naming the setting, before any work is taken on."""
    database = Database(settings.effective_database_url)
    try:
        return start_up_keyring(settings, database)
    except ToolKeyError as err:
        raise click.ClickException(f"configuration: {err}") from err
    finally:
        database.dispose()


@click.group("keys")
def keys_group() -> None:
    """The tool's signing keys."""


@keys_group.command("list")
@click.pass_context
def keys_list(ctx: click.Context) -> None:
    """List keys with their state and age."""
    db = command_database(ctx)
    settings: Settings = ctx.obj["settings"]
    if settings.tool_key_file:
        # The database's keys (if any, from before) neither sign nor are published meanwhile.
        snapshot = checked_keyring(settings).snapshot_without_session(db)
        signing = snapshot.signing.kid
        click.echo(f"the tool key comes from {KEY_FILE_SETTING} ({settings.tool_key_file})")
        for key in snapshot.jwks["keys"]:
            click.echo(f"{key['kid']}\t{'signs' if key['kid'] == signing else 'published'}")
        return
    with db.begin() as session:
        rows = session.scalars(select(ToolKey).order_by(ToolKey.created_at)).all()
        if not rows:
            click.echo("no keys yet (one is created on first use)")
        for k in rows:
            until = f" until {k.retire_after:%Y-%m-%d %H:%M}Z" if k.retire_after else ""
            click.echo(f"{k.kid}\t{k.status.value}{until}\tcreated {k.created_at:%Y-%m-%d %H:%M}Z")


@keys_group.command("rotate")
@click.option("--grace-days", type=click.IntRange(0, 365), default=None)
@click.option(
    "--new-secret",
    is_flag=True,
    help="The key encryption secret was changed on purpose and the servers have the new one: "
    "rotate although the current keys were encrypted with another.",
)
@click.option(
    "--leaked",
    is_flag=True,
    help="The current keys may have leaked: stop publishing them now and sign with the new "
    "key at once (LMSs that cached the key set refuse Pathways' signatures for up to "
    f"{round(JWKS_MAX_AGE_SECONDS / 60)} minutes).",
)
@click.pass_context
def keys_rotate(ctx: click.Context, grace_days: int | None, new_secret: bool, leaked: bool) -> None:
    """Publish a new key beside the old one; it signs once platforms can have seen it."""
    if leaked and grace_days is not None:
        raise click.UsageError("--leaked unpublishes the current keys at once: no --grace-days")
    db = command_database(ctx)
    settings: Settings = ctx.obj["settings"]
    if settings.tool_key_file:
        minutes = round(PUBLISH_BEFORE_SIGNING.total_seconds() / 60)
        raise click.ClickException(
            "the tool key comes from LTI_APP_TOOL_KEY_FILE; rotate it by naming the new file "
            "in LTI_APP_TOOL_NEXT_KEY_FILE (published, never signs) and restarting; after "
            f"{minutes} minutes or more, name it in LTI_APP_TOOL_KEY_FILE, the old one in "
            "LTI_APP_TOOL_PREVIOUS_KEY_FILE, clear the next, and restart; clear the previous "
            "after a few days"
        )
    with db.begin() as session:
        opens_current_keys = secret_opens_keys(session, settings.effective_key_secret)
        if not new_secret and not opens_current_keys:
            raise click.ClickException(
                "the current tool keys cannot be decrypted with this shell's "
                "LTI_APP_KEY_ENCRYPTION_SECRET (or LTI_APP_SECRET_KEY when that is not set), so "
                "Pathways would not be able to use a key made with it either: set the secret "
                "the servers use and run this again (or add --new-secret if the servers "
                "already use a new one); nothing was changed"
            )
        new, retired = rotate_keys(
            session,
            secret=settings.effective_key_secret,
            grace_days=settings.key_rotation_grace_days if grace_days is None else grace_days,
            leaked=leaked,
        )
        minutes = round(PUBLISH_BEFORE_SIGNING.total_seconds() / 60)
        cached = round(JWKS_MAX_AGE_SECONDS / 60)
        if leaked:
            click.echo(
                f"new key {new.kid}: published now and signs within a minute; the earlier keys "
                f"are no longer published, so an LMS that fetched the key set in the last "
                f"{cached} minutes refuses Pathways' signatures until it fetches it again"
            )
        elif opens_current_keys:
            click.echo(f"new key {new.kid}: published now, signs in about {minutes} minutes")
        else:
            # The servers skip keys their secret cannot open (KeyRing._signing_key).
            click.echo(
                f"new key {new.kid}: published now and signs within a minute, as the "
                "servers' secret opens none of the earlier keys; an LMS that fetched the key "
                f"set in the last {cached} minutes may refuse Pathways' signatures until it "
                "fetches it again"
            )
        for kid in retired:
            click.echo(f"retired {kid}")
        retiring = session.scalars(select(ToolKey).where(ToolKey.status == KeyStatus.RETIRING))
        for k in retiring:
            click.echo(f"still published until {k.retire_after:%Y-%m-%d %H:%M}Z: {k.kid}")
