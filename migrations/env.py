"""Alembic environment: the URL comes from Pathways' settings, the schema from its models."""

from __future__ import annotations

import os

from alembic import context
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection

from lti_app.db import make_engine
from lti_app.models import Base
from lti_app.settings import load_settings, normalise_database_url

config = context.config
target_metadata = Base.metadata

MIGRATION_LOCK = 0x50617468776179  # "Pathway": any constant no other user of the database takes
"""The PostgreSQL advisory lock a run of the migrations holds until it commits."""


def _url() -> str:
    explicit = config.get_main_option("sqlalchemy.url") or os.environ.get("LTI_APP_DATABASE_URL")
    if explicit:
        # As the app reads it: "postgresql://" means psycopg 3 here, not the absent psycopg2.
        return normalise_database_url(explicit)
    # Migrations need no secret; a placeholder keeps load_settings' check quiet.
    env = dict(os.environ)
    env.setdefault("LTI_APP_SECRET_KEY", "migrations-need-no-secret")
    return load_settings(env).effective_database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = make_engine(_url())
        try:
            with engine.connect() as connection:
                _run(connection)
        finally:  # a lost try is run again (`migrate.upgrade`): leave no connection open
            engine.dispose()
    else:
        _run(connectable)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        # One transaction for the whole run on SQLite as well (Alembic's default there is one
        # per revision), so the foreign key check below can still undo all of it.
        transactional_ddl=True,
    )
    if connection.dialect.name != "sqlite":
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Every replica may run the release step `lti-app db upgrade` at once: without
                # the lock both read the same revision and make the same tables, and one fails
                # ("already exists"). The second now waits here, then finds nothing to do (the
                # revision is read after this, in run_migrations). On SQLite, make_engine's BEGIN
                # IMMEDIATE makes the second wait the same way, as long as its busy timeout.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
                _time_lock_waits(connection)
            context.run_migrations()
        return
    # Batch mode copies a SQLite table, drops the old one and renames the copy. With foreign
    # keys enforced (make_engine turns them on) that DROP deletes every row referencing the
    # table ON DELETE CASCADE: upgrading past 0013 emptied the grade outbox. SQLite's recipe
    # (https://www.sqlite.org/lang_altertable.html#otheralter) turns enforcement off, which
    # takes effect only outside a transaction, and checks the keys before committing.
    if connection.in_transaction():
        raise RuntimeError("SQLite migrations need a connection that is not in a transaction")
    raw = connection.connection.driver_connection
    if raw is None:
        raise RuntimeError("SQLite migrations need an open connection")
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        with context.begin_transaction():
            context.run_migrations()
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:  # raising here rolls the whole run back
                raise CommandError(  # `lti-app db upgrade` shows it as one line
                    "rows would reference rows that do not exist (table, rowid, parent, key): "
                    f"{broken[:10]}; nothing was changed"
                )
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def _time_lock_waits(connection: Connection) -> None:
    """Make a wait for a lock the running release holds fail after lock_timeout_ms, so
    `migrate.upgrade` rolls back and tries again instead of queuing every page behind it.

    Only past where the run reads its revision: the one lock that read can wait on is another
    release step's, which the advisory lock above already waits for as long as it takes.
    """
    timeout_ms = config.attributes.get("lock_timeout_ms")
    if not timeout_ms:
        return
    context.get_context().get_current_heads()
    # SET takes no parameters; the value is the int Pathways passed.
    connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(timeout_ms)}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
