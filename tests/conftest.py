"""Shared fixtures: settings, a database per session (SQLite or PostgreSQL), a rolled-back
session per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lti_app.db import make_engine
from lti_app.models import Base

POSTGRES_URL_ENV = "LTI_APP_TEST_DATABASE_URL"


def _postgres_scratch_url(base_url: str) -> str:
    """Create a fresh database beside the one named, so parallel runs never collide."""
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    name = f"pathways_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base_url.rsplit("/", 1)[0] + "/" + name


def _drop_postgres(url: str) -> None:
    base, name = url.rsplit("/", 1)
    admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite in a temp folder, or a scratch PostgreSQL database when one is configured."""
    pg = os.environ.get(POSTGRES_URL_ENV)
    if pg:
        url = _postgres_scratch_url(pg)
        yield url
        _drop_postgres(url)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test, commits included."""
    connection = engine.connect()
    outer = connection.begin()
    sess = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield sess
    finally:
        sess.close()
        outer.rollback()
        connection.close()
