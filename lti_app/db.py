"""Declarative base, column presets, engine and session handling."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from sqlalchemy import DateTime, Enum, MetaData, column, create_engine, event, func, select, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


E = TypeVar("E", bound=enum.Enum)


def str_enum(enum_cls: type[E], length: int = 32) -> Enum:
    """Store an enum's values (not member names) as VARCHAR, portable across backends."""
    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
    )


intpk = Annotated[int, mapped_column(primary_key=True)]
created_at = Annotated[datetime, mapped_column(default=utcnow, server_default=func.now())]
updated_at = Annotated[
    datetime, mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())
]


def upsert_insert(
    session_or_dialect: Session | str, model: Any
) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that knows ON CONFLICT for this session's database (both speak it).

    One statement instead of select-then-insert-or-update, and no race between two first
    launches of the same person.
    """
    dialect = (
        session_or_dialect
        if isinstance(session_or_dialect, str)
        else session_or_dialect.get_bind().dialect.name
    )
    if dialect == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


DATABASE_ID_MAX = 2**31 - 1
"""The largest id an integer column holds on PostgreSQL (SQLite cannot bind past 2**63): a
number past it, in a URL or a form, names no row and must not reach the database."""


def lock_course(session: Session, *, context_id: int) -> None:
    """Make this course's changes of one kind take turns until the transaction ends.

    Two presses of one button (a double click, two teachers) send two requests that would
    each miss the other's new rows: a PostgreSQL row lock on the course orders them (SQLite
    runs one writing transaction at a time anyway). A table clause, so that the domain
    packages need not import the LMS edge's models.
    """
    course = table("context", column("id"))
    session.execute(select(course.c.id).where(course.c.id == context_id).with_for_update())


def release_before_slow_work(session: Session) -> None:
    """End the session's transaction before a second or more of work that needs no database
    (rendering a PDF): nothing read so far is written back.

    A SQLite transaction holds the database's one write lock from its first query (BEGIN
    IMMEDIATE, `make_engine`), so every other request of every worker would wait out the slow
    work, and past the busy timeout fail; on PostgreSQL the connection would sit idle in
    transaction. The objects read so far are detached as they are rather than expired (as a
    rollback alone does): reading one again would begin a new transaction, and take the lock
    back, in the middle of the slow work. Anything not loaded yet raises DetachedInstanceError
    instead of doing so quietly. Queries made afterwards begin a new transaction as usual.
    """
    session.expunge_all()
    session.rollback()


# Under gunicorn's 30 s worker timeout (config/gunicorn.conf.py): a request waiting out the
# lock then gets the "try again in a minute" page instead of a killed worker and a bare 502.
SQLITE_BUSY_SECONDS = 20


def make_engine(url: str, *, sqlite_immediate: bool = True) -> Engine:
    """An engine tuned for the backend: SQLite gets WAL and a busy timeout for several workers.

    Its errors never carry the statement's values: SQLAlchemy writes them into the message
    ("[parameters: ...]") unless told not to, and those messages reach the logs (the 500
    handler, the background jobs), where LMS access tokens, people's names and e-mail
    addresses do not belong. The SQL text is kept; it names the table that failed.

    SQLite transactions start with BEGIN IMMEDIATE: a deferred transaction that reads and then
    writes fails at once with "database is locked" when another connection wrote in between
    (the busy timeout does not apply to that case), which several workers make routine.
    """
    if url.startswith("sqlite"):
        in_memory = url in {"sqlite://", "sqlite:///:memory:"}
        if not in_memory and url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS},
            poolclass=StaticPool if in_memory else None,
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy emits BEGIN.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if sqlite_immediate else "BEGIN")

        return engine
    # Recycling beats a ping before every checkout (a round trip per request) for dropped
    # connections after idle periods or database restarts.
    return create_engine(
        url, pool_size=10, max_overflow=10, pool_recycle=1800, hide_parameters=True
    )


class Database:
    """One engine and session factory per app."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A unit of work outside a request (jobs, CLI): commit on success, roll back on error."""
        with self.session_factory.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
