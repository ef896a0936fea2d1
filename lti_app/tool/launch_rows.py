"""The person, course and placement rows a launch keeps equal to its claims, written only
when they changed, and this process's one-minute memory of them (tool.services.sync_launch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, event, select
from sqlalchemy.orm import Session, SessionTransaction

from lti_app.db import Base, upsert_insert
from lti_app.tool.cache import EngineTtlCache


@dataclass(frozen=True)
class RowRecord:
    """Keep one row equal to what a launch says, writing only when something changed.

    Most launches change nothing about the person, course or placement: a read then, and
    no write, so thirty students opening the same course at once do not queue on its row.
    Statements have bound parameters and are built once, not once per launch.
    """

    table: str
    key: tuple[str, ...]
    fields: tuple[str, ...]
    """Compared with the stored row; a difference (or no row) writes all of them."""
    select: Any
    upsert: Any

    @classmethod
    def build(
        cls, dialect: str, model: type[Base], key: tuple[str, ...], fields: tuple[str, ...]
    ) -> RowRecord:
        table = Base.metadata.tables[model.__tablename__]
        written = key + fields + (("updated_at",) if "updated_at" in table.c else ())
        insert = upsert_insert(dialect, table).values(
            {name: bindparam(name, type_=table.c[name].type) for name in written}
        )
        upsert = insert.on_conflict_do_update(
            index_elements=list(key),
            set_={name: insert.excluded[name] for name in written if name not in key},
        ).returning(*table.c)
        select_row = select(table).where(
            *(table.c[name] == bindparam(name, type_=table.c[name].type) for name in key)
        )
        return cls(table.name, key, fields, select_row, upsert)

    def ensure(self, session: Session, conn: Connection, values: dict[str, Any]) -> Row[Any]:
        """The stored row after making it say `values` on the session's connection; no
        statement at all when this process saw the row say so in the last minute (KNOWN_ROWS)."""
        cache_key = (self.table, *(values[name] for name in self.key))
        known = KNOWN_ROWS.get(conn.engine, cache_key)
        if known is not None and self._says(known, values):
            return known
        row = conn.execute(self.select, {name: values[name] for name in self.key}).first()
        if row is None or not self._says(row, values):
            row = conn.execute(self.upsert, values).one()
        # Remembered once the launch's transaction commits: a launch that fails after this
        # point (its first page raising an unexpected error, a lost race on the login) rolls
        # its rows back, and SQLite gives a rolled-back id to the next new row, whom a
        # remembered copy would then pass off as this person or course.
        session.info.setdefault(_ROWS_TO_REMEMBER, []).append((conn.engine, cache_key, row))
        return row

    def _says(self, row: Row[Any], values: dict[str, Any]) -> bool:
        stored = row._mapping
        return all(stored[name] == values[name] for name in self.fields)


KNOWN_ROWS: EngineTtlCache[Row[Any]] = EngineTtlCache(ttl=60.0)
"""People, courses and placements as last read or written by this process. A change made
elsewhere (the roster, another worker) is not seen for up to a minute, which only means a
launch that repeats what this process last wrote does not write it again."""
_ROWS_TO_REMEMBER = "lti_app.tool.rows_to_remember"


@event.listens_for(Session, "after_commit")
def _remember_committed_rows(session: Session) -> None:
    for engine, cache_key, row in session.info.pop(_ROWS_TO_REMEMBER, ()):
        KNOWN_ROWS.put(engine, cache_key, row)


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted_rows(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # a rollback, or a close without a commit
        session.info.pop(_ROWS_TO_REMEMBER, None)
