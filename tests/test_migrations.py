"""The migrations build the same schema as the models, on SQLite and PostgreSQL, and go down."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from lti_app.migrate import alembic_config
from tests.conftest import POSTGRES_URL_ENV, _drop_postgres, _postgres_scratch_url


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    pg = os.environ.get(POSTGRES_URL_ENV)
    if pg:
        url = _postgres_scratch_url(pg)
        yield url
        _drop_postgres(url)
    else:
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"


def test_upgrade_matches_models_and_downgrade_works(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.upgrade(config, "head")
    command.check(config)  # raises if the models and the migrations disagree
    engine = create_engine(empty_database_url)
    assert "launch_session" in inspect(engine).get_table_names()
    engine.dispose()
    command.downgrade(config, "-1")
    command.upgrade(config, "head")
