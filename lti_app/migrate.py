"""Run Alembic without an alembic.ini: `lti-app db upgrade` and the tests use this."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | None, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def check(database_url: str | None = None) -> None:
    command.check(alembic_config(database_url))


def schema_behind(database_url: str) -> str | None:
    """Why the database's schema is not the one this version of Pathways needs, or None.

    Pathways never migrates itself (`lti-app db upgrade` is a release step), so a server
    started on a database the release step missed would answer every launch with a 500
    while /healthz, which only asks whether the database answers, says all is well.

    :raises sqlalchemy.exc.SQLAlchemyError: the database cannot be opened.
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from lti_app.db import make_engine

    script = ScriptDirectory.from_config(alembic_config())
    heads = set(script.get_heads())
    engine = make_engine(database_url, sqlite_immediate=False)  # a read needs no write lock
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()
    if current == heads:
        return None
    if not current:
        return "it has no Pathways tables yet. Run `lti-app db upgrade` first"
    unknown = sorted(rev for rev in current if not _is_known(script, rev))
    if unknown:
        # An older release started on a database a newer one upgraded (a rollback).
        return (
            f"its schema is at revision {', '.join(unknown)}, which a newer version of "
            "Pathways made: run that version, or downgrade the database with it first"
        )
    return (
        f"its schema is at revision {', '.join(sorted(current))} and this Pathways needs "
        f"{', '.join(sorted(heads))}. Run `lti-app db upgrade` first"
    )


def _is_known(script: Any, revision: str) -> bool:
    from alembic.util.exc import CommandError

    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False
