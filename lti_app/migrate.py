"""Run Alembic without an alembic.ini: `lti-app db upgrade` and the tests use this."""

from __future__ import annotations

import functools
from typing import Any

from alembic import command
from alembic.config import Config

from lti_app.settings import shipped_folder

MIGRATIONS_DIR = shipped_folder("migrations")


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


def current_revision(database_url: str) -> str | None:
    """The revision the database's schema is at, or None when it has no Pathways tables.

    :raises sqlalchemy.exc.SQLAlchemyError: the database cannot be opened.
    """
    from alembic.runtime.migration import MigrationContext

    from lti_app.db import make_engine

    engine = make_engine(database_url, sqlite_immediate=False)  # a read needs no write lock
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    # The history is linear, so a database is at one revision at most.
    return ", ".join(sorted(current)) or None


def resolve_revision(revision: str) -> str | None:
    """The full id of a revision an operator named (an id, a unique prefix of one, head or
    base); None means base, the database without Pathways tables.

    :raises alembic.util.exc.CommandError: this version of Pathways has no such revision.
    """
    found = _script().get_revision(revision)
    return found.revision if found is not None else None


def is_known(revision: str) -> bool:
    """Whether this version of Pathways has the revision (a newer one may have made it)."""
    from alembic.util.exc import CommandError

    try:
        return _script().get_revision(revision) is not None
    except CommandError:
        return False


def is_older(revision: str | None, than: str | None) -> bool:
    """Whether `revision` comes before `than` in the history (None being base)."""
    if than is None or revision == than:
        return False
    if revision is None:
        return True
    return any(s.revision == revision for s in _script().walk_revisions("base", than))


@functools.cache
def head_revision() -> str:
    """The revision this version of Pathways needs (the files do not change while it runs)."""
    return ", ".join(sorted(_script().get_heads()))


def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def schema_behind(database_url: str) -> str | None:
    """Why the database's schema is not the one this version of Pathways needs, or None.

    Pathways never migrates itself (`lti-app db upgrade` is a release step), so a server
    started on a database the release step missed would answer every launch with a 500
    while /healthz, which only asks whether the database answers, says all is well.

    :raises sqlalchemy.exc.SQLAlchemyError: the database cannot be opened.
    """
    heads = head_revision()
    current = current_revision(database_url)
    if current == heads:
        return None
    if current is None:
        return "it has no Pathways tables yet. Run `lti-app db upgrade` first"
    if not is_known(current):
        # An older release started on a database a newer one upgraded (a rollback).
        return (
            f"its schema is at revision {current}, which a newer version of Pathways made: "
            f"run that version, or first run `lti-app db downgrade --revision {heads}` with it"
        )
    return (
        f"its schema is at revision {current} and this Pathways needs {heads}. "
        "Run `lti-app db upgrade` first"
    )
