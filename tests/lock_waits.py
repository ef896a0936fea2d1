"""Waiting, in a race test, until other transactions queue for a lock (PostgreSQL only).

A race test holds a lock in its own transaction, starts the competing request in a thread, and
lets go only once that request waits: the interleaving is then the same on every run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import pytest
from sqlalchemy import text

from lti_app.db import Database
from tests.conftest import POSTGRES_URL_ENV

T = TypeVar("T")

needs_row_locks = pytest.mark.skipif(
    not os.environ.get(POSTGRES_URL_ENV),
    reason="PostgreSQL only: SQLite runs one writing transaction at a time, so no race",
)

WAITERS = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


def until_waiting(db: Database, count: int, workers: Iterable[threading.Thread]) -> None:
    """Return once `count` transactions wait for a lock; fail if a worker finished first."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db.begin() as session:
            if (session.scalar(WAITERS) or 0) >= count:
                return
        finished = [w.name for w in workers if not w.is_alive()]
        assert not finished, f"{finished} finished without waiting for a lock"
        time.sleep(0.02)
    raise AssertionError(f"{count} transactions never waited for a lock")


def in_thread(run: Callable[[], T], results: dict[str, T], name: str) -> threading.Thread:
    """Start `run` in a thread that stores what it returns under `name`."""

    def target() -> None:
        results[name] = run()

    worker = threading.Thread(target=target, name=name, daemon=True)
    worker.start()
    return worker
