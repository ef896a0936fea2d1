"""Alembic environment: the URL comes from Pathways' settings, the schema from its models."""

from __future__ import annotations

import os

from alembic import context

from lti_app.db import make_engine
from lti_app.models import Base
from lti_app.settings import load_settings, normalise_database_url

config = context.config
target_metadata = Base.metadata


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
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
