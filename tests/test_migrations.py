"""The migrations build the same schema as the models, on SQLite and PostgreSQL, and go down."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect

from lti_app.migrate import alembic_config


def test_upgrade_matches_models_and_downgrade_works(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, "head")
    command.check(config)  # raises if the models and the migrations disagree
    engine = create_engine(empty_database_url)
    assert "launch_session" in inspect(engine).get_table_names()
    engine.dispose()
    command.downgrade(config, "-1")
    command.upgrade(config, "head")
