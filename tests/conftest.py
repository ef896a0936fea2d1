"""Shared fixtures: settings, a database per session (SQLite or PostgreSQL), a rolled-back
session per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import ColumnElement, and_, create_engine, delete, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lti_app.db import make_engine
from lti_app.migrate import alembic_config
from lti_app.models import Base

# Tests never assert on wall-clock time: on a loaded 2-core machine Hypothesis's deadline and
# its "input generation is slow" check failed a pure-function test that was right.
hypothesis_settings.register_profile(
    "pathways", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("pathways")

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


def _scratch_database(sqlite_file: Path) -> Iterator[str]:
    """A new database: a scratch PostgreSQL one when the run uses PostgreSQL, else SQLite."""
    pg = os.environ.get(POSTGRES_URL_ENV)
    if pg:
        url = _postgres_scratch_url(pg)
        yield url
        _drop_postgres(url)
    else:
        yield f"sqlite:///{sqlite_file}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The run's database (SQLite in a temp folder, or a scratch PostgreSQL database)."""
    yield from _scratch_database(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of one test's own."""
    yield from _scratch_database(tmp_path / "empty.sqlite3")


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    # Deferred transactions: a test's rolled-back session must not hold SQLite's write lock
    # while the running tool server (its own engine) works.
    eng = make_engine(database_url, sqlite_immediate=False)
    Base.metadata.create_all(eng)
    # At head, as `lti-app db upgrade` leaves it (test_migrations checks the two schemas
    # agree): `lti-app grades worker`, like `serve`, refuses a database with no revision.
    command.stamp(alembic_config(database_url), "head")
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


# --- A running Pathways and a running LMS, over real HTTP on loopback -----------------------

from dataclasses import dataclass  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

import httpx  # noqa: E402
from flask import Flask  # noqa: E402

from lti_app import create_app  # noqa: E402
from lti_app.db import Database  # noqa: E402
from lti_app.demo.browser import follow_launch  # noqa: E402
from lti_app.demo.launches import LaunchSpec  # noqa: E402
from lti_app.demo.run import register_demo_platform  # noqa: E402
from lti_app.demo.server import RunningPlatform, serve_in_thread, start_demo_platform  # noqa: E402
from lti_app.settings import Settings, load_settings  # noqa: E402

if TYPE_CHECKING:
    from tests.courses.frames import Ids


@dataclass(frozen=True)
class ToolServer:
    url: str
    app: Flask
    settings: Settings


@pytest.fixture(scope="session")
def tool_settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(
        {},
        env="test",
        secret_key="test-secret-key-" + "x" * 32,
        key_encryption_secret="pathways-test-keys",
        database_url=database_url,
        instance_path=str(tmp_path_factory.mktemp("instance")),
        # httpx, like any non-browser client, keeps Secure cookies off plain http.
        secure_cookies=False,
    )


@pytest.fixture(scope="session")
def tool_server(tool_settings: Settings, engine: Engine) -> Iterator[ToolServer]:
    app = create_app(tool_settings)
    url, stop = serve_in_thread(app)
    yield ToolServer(url, app, tool_settings)
    stop()
    app.extensions["lti_app.db"].dispose()


def forget_cached_keys(tool: ToolServer, session: Session, lms: RunningPlatform) -> None:
    """Forget the keys Pathways cached for this LMS's key set address (in its process and in
    the database). Loopback ports are reused: an LMS that stopped earlier in the run may have
    had this address with keys of its own, and after two such LMSs one unknown key is not
    looked up again for seconds (jwks.UNKNOWN_KID_REFETCH_INTERVAL), so a third's launches
    were refused."""
    from lti_app.tool.models import JwksCacheEntry

    jwks_url = lms.platform.url("/jwks")
    tool.app.extensions["lti_app.jwks"]._entries.pop(jwks_url, None)
    session.execute(delete(JwksCacheEntry).where(JwksCacheEntry.jwks_url == jwks_url))


@pytest.fixture(scope="session")
def lms(tool_server: ToolServer, database_url: str) -> Iterator[RunningPlatform]:
    running = start_demo_platform(tool_server.url)
    db = Database(database_url)
    with db.begin() as sess:
        forget_cached_keys(tool_server, sess, running)
        register_demo_platform(sess, running.platform)
    db.dispose()
    yield running
    running.stop()


def registration_of(lms: RunningPlatform) -> ColumnElement[bool]:
    """This LMS's registration, by issuer and client_id: loopback ports are reused, so an LMS
    that stopped earlier in the run may have registered this one's issuer (its address)."""
    from lti_app.tool.models import Platform

    config = lms.platform.config
    return and_(Platform.issuer == config.issuer, Platform.client_id == config.client_id)


@dataclass
class Launched:
    response: httpx.Response
    client: httpx.Client

    @property
    def text(self) -> str:
        return self.response.text


class LtiActions:
    """Launch Pathways from the test LMS the way a browser would (flaskr's AuthActions)."""

    def __init__(self, lms: RunningPlatform, tool: ToolServer) -> None:
        self.lms = lms
        self.platform = lms.platform
        self.tool = tool
        self._clients: list[httpx.Client] = []

    def browser(self) -> httpx.Client:
        client = httpx.Client(timeout=30)
        self._clients.append(client)
        return client

    def spec(self, user_id: str = "user-t01", **kwargs: Any) -> LaunchSpec:
        return self.platform.make_launch(user_id, **kwargs)

    def launch(
        self, user_id: str = "user-t01", *, client: httpx.Client | None = None, **kwargs: Any
    ) -> Launched:
        spec = self.spec(user_id, **kwargs)
        return self.launch_spec(spec, client=client)

    def launch_spec(self, spec: LaunchSpec, *, client: httpx.Client | None = None) -> Launched:
        client = client or self.browser()
        return Launched(follow_launch(client, self.platform.login_url(spec)), client)

    def course_id(self, session: Session, context_id: str = "course-bio9") -> int:
        """Pathways' id of this LMS's course (other tests' LMSs may use the same course ids)."""
        from lti_app.tool.models import Context, Platform

        config = self.platform.config
        found = session.scalar(
            select(Context.id)
            .join(Platform, Platform.id == Context.platform_id)
            .where(
                Platform.issuer == config.issuer,
                Platform.client_id == config.client_id,
                Context.context_id == context_id,
            )
        )
        assert found is not None, f"no course {context_id} from this LMS"
        return found

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Database]:
    """The tool's database, for tests that prepare or look at rows themselves."""
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def ids(db: Database, lms: RunningPlatform) -> Ids:
    """Pathways' ids of the test LMS's people and courses."""
    from tests.courses.frames import Ids  # frames imports this module

    return Ids.of(db, lms)


@pytest.fixture
def lti(lms: RunningPlatform, tool_server: ToolServer) -> Iterator[LtiActions]:
    actions = LtiActions(lms, tool_server)
    yield actions
    actions.close()
    platform = lms.platform
    platform.state.clear_faults()
    platform.delay_ms = 0
    platform.token_refusal = None
    platform.granted_scopes = platform.config.granted_scopes
    # Time passes between tests: let the next test's unknown kid trigger its own refetch.
    for entry in tool_server.app.extensions["lti_app.jwks"]._entries.values():
        entry.last_unknown_kid_refetch = 0.0


@contextmanager
def registration_disabled(db: Database, platform_id: int) -> Iterator[None]:
    """The registration disabled (as `lti-app platform disable` does) for the block, then
    enabled again: the test LMS's registration is shared by the whole run."""
    from lti_app.tool.models import Platform

    def set_active(active: bool) -> None:
        with db.begin() as sess:
            sess.execute(
                update(Platform).where(Platform.id == platform_id).values(is_active=active)
            )

    set_active(False)
    try:
        yield
    finally:
        set_active(True)
