"""Run Alembic without an alembic.ini: `lti-app db upgrade` and the tests use this."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.exc import OperationalError

from lti_app.settings import shipped_folder

MIGRATIONS_DIR = shipped_folder("migrations")


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


LOCK_TIMEOUT_MS = 5000
"""How long, on PostgreSQL, an upgrade waits for a lock the running release holds: pages that
need the same table queue behind the waiting upgrade, so it gives up and tries again."""
UPGRADE_TRIES = 5
RETRY_PAUSE_S = 2.0
"""The pause before the second try; each later one waits as much longer."""

_LOCK_CONFLICTS = {
    "55P03": "waited more than {seconds:g} s for a table a request of the running release holds",
    "40P01": "deadlocked with a request of the running release",
}
"""PostgreSQL's SQLSTATEs for a lost lock wait (lock_timeout) and a deadlock, as said to the
operator."""


class UpgradeBusyError(Exception):
    """The upgrade lost every try to requests of the running release; nothing was changed."""


def upgrade(
    database_url: str | None = None,
    revision: str = "head",
    *,
    on_retry: Callable[[str], None] | None = None,
) -> None:
    """Bring the database to `revision`, trying again from scratch (the run is one transaction,
    so a lost try changed nothing) when a request of the running release was in the way.

    :param on_retry: told why, before each further try.
    :raises UpgradeBusyError: every try lost.
    """
    for attempt in range(1, UPGRADE_TRIES + 1):
        config = alembic_config(database_url)
        config.attributes["lock_timeout_ms"] = LOCK_TIMEOUT_MS
        try:
            command.upgrade(config, revision)
        except OperationalError as err:
            why = _lock_conflict(err)
            if why is None:
                raise
            if attempt == UPGRADE_TRIES:
                raise UpgradeBusyError(
                    f"the upgrade {why}, {UPGRADE_TRIES} times; nothing was changed. Run it "
                    "again when fewer people use Pathways"
                ) from err
            if on_retry is not None:
                on_retry(
                    f"the upgrade {why}; nothing was changed. Trying again "
                    f"({attempt + 1} of {UPGRADE_TRIES})"
                )
            time.sleep(RETRY_PAUSE_S * attempt)
        else:
            return


def _lock_conflict(err: OperationalError) -> str | None:
    said = _LOCK_CONFLICTS.get(getattr(err.orig, "sqlstate", None) or "")
    return said.format(seconds=LOCK_TIMEOUT_MS / 1000) if said else None


def downgrade(database_url: str | None, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


_ROWS_A_DOWNGRADE_DELETES = {
    # 0028's downgrade keeps only each student's latest stint in a group.
    "0028_group_member_stints": (
        "SELECT count(*) FROM student_group_member WHERE id NOT IN "
        "(SELECT max(id) FROM student_group_member GROUP BY group_id, person_id)",
        ("earlier group stint", "earlier group stints"),
    ),
    "0029_step_attempts": (
        "SELECT count(*) FROM pathway_attempt",
        ("earlier try", "earlier tries"),
    ),
}
"""Rows a revision's downgrade deletes from tables that stay, or that hold students' work,
counted before an operator is asked: the query, and what one row and several are called."""


def downgrade_losses(database_url: str, *, current: str | None, target: str | None) -> list[str]:
    """What going back from `current` to `target` deletes of students' history, as counted
    phrases ("3 earlier group stints"); none when there is none of it."""
    from lti_app.db import make_engine

    undone = [
        r
        for r in _ROWS_A_DOWNGRADE_DELETES
        if is_known(r) and is_older(target, r) and not is_older(current, r)
    ]
    if not undone:
        return []
    engine = make_engine(database_url, sqlite_immediate=False)
    try:
        with engine.connect() as connection:
            counts = {
                r: connection.exec_driver_sql(_ROWS_A_DOWNGRADE_DELETES[r][0]).scalar_one()
                for r in undone
            }
    finally:
        engine.dispose()
    return [f"{n} {_ROWS_A_DOWNGRADE_DELETES[r][1][n != 1]}" for r, n in counts.items() if n]


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
