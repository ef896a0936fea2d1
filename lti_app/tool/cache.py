"""Short-lived, per-process copies of rows every launch reads and rarely changes.

A class of thirty opening Pathways at 8 a.m. sends thirty launches of one registration, one
deployment, one course and one placement: reading those rows again for each launch was a
third of a launch's database work. Entries belong to one database (engine), so tests and
tools that open several databases in one process never see each other's rows.

What a stale entry can do is bounded: registrations are kept only while active and for
seconds, and are dropped at once when this process changes one; a launch that meets a row
deleted behind its back fails on a foreign key, and the launch view then empties these caches
and runs the launch again against the database (tool.views).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine

V = TypeVar("V")


class EngineTtlCache(Generic[V]):
    """Values by key, per engine, each for `ttl` seconds; at most `max_entries` per engine."""

    def __init__(self, ttl: float, max_entries: int = 20_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._by_engine: weakref.WeakKeyDictionary[Engine, dict[Hashable, tuple[float, V]]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        _ALL.add(self)

    def _entries(self, engine: Engine) -> dict[Hashable, tuple[float, V]]:
        entries = self._by_engine.get(engine)
        if entries is None:
            with self._lock:
                entries = self._by_engine.setdefault(engine, {})
        return entries

    def get(self, engine: Engine, key: Hashable) -> V | None:
        hit = self._entries(engine).get(key)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1]

    def put(self, engine: Engine, key: Hashable, value: V) -> None:
        entries = self._entries(engine)
        if len(entries) >= self.max_entries:
            # Rather than an LRU: a full cache is rare (thousands of courses in seconds) and
            # refilling it costs one read per launch.
            entries.clear()
        entries[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        with self._lock:
            for entries in self._by_engine.values():
                entries.clear()


_ALL: weakref.WeakSet[EngineTtlCache[Any]] = weakref.WeakSet()


def clear_all() -> None:
    """Forget every cached row (after a launch met one that was gone)."""
    for cache in list(_ALL):
        cache.clear()
