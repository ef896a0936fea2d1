"""Running the score worker, and waking it.

After committing rows written by `services.queue_scores`, call::

    grades.jobs.notify_outbox(current_app)   # or notify_outbox() inside an app context

It wakes the in-process worker when one runs (the demo, `start_in_process_worker`). A
separate `lti-app grades worker` process wakes on PostgreSQL's NOTIFY (sent by
queue_scores at commit) and otherwise polls every second, so calling it is never required
for correctness: the outbox row is the job.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from flask import Flask, current_app, has_app_context
from sqlalchemy.engine import make_url

from lti_app.db import Database
from lti_app.grades.client import AgsClient
from lti_app.grades.services import NOTIFY_CHANNEL
from lti_app.grades.worker import GradeWorker, WorkerConfig
from lti_app.http import make_score_pool
from lti_app.roster.jobs import service_tokens
from lti_app.settings import Settings

LOG = logging.getLogger(__name__)
EXTENSION = "lti_app.grades.worker"


@dataclass
class RunningWorker:
    """A worker thread and the events that stop and wake it."""

    worker: GradeWorker
    thread: threading.Thread
    stop_event: threading.Event
    wake_event: threading.Event

    def wake(self) -> None:
        self.wake_event.set()

    def stop(self, timeout: float = 10) -> None:
        self.stop_event.set()
        self.wake_event.set()
        self.thread.join(timeout)
        self.worker.close()


def build_worker(app: Flask, config: WorkerConfig | None = None) -> GradeWorker:
    """A worker using the app's database and shared service tokens, with its own connections."""
    database: Database = app.extensions["lti_app.db"]
    settings: Settings = app.extensions["lti_app.settings"]
    config = config or WorkerConfig()
    pool = make_score_pool(settings, config.concurrency, app.extensions["lti_app.address_policy"])
    return GradeWorker(database, AgsClient(pool, service_tokens(app)), config)


def start_in_process_worker(app: Flask, config: WorkerConfig | None = None) -> RunningWorker:
    """Run the worker in a daemon thread of this process (the demo; single-process setups)."""
    existing = app.extensions.get(EXTENSION)
    if isinstance(existing, RunningWorker) and existing.thread.is_alive():
        return existing
    worker = build_worker(app, config)
    stop, wake = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=worker.run, args=(stop, wake), name="grade-worker", daemon=True
    )
    running = RunningWorker(worker, thread, stop, wake)
    app.extensions[EXTENSION] = running
    thread.start()
    listen_for_notifications(worker.db, wake, stop)
    return running


def notify_outbox(app: Flask | None = None) -> None:
    """Wake this process's worker, if it runs one (call after committing queued scores)."""
    if app is None and has_app_context():
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    running = app.extensions.get(EXTENSION) if app is not None else None
    if isinstance(running, RunningWorker):
        running.wake()


def listen_for_notifications(
    database: Database, wake: threading.Event, stop: threading.Event
) -> threading.Thread | None:
    """On PostgreSQL, wake the worker on NOTIFY from queue_scores; a no-op elsewhere."""
    url = make_url(database.url)
    if url.get_backend_name() != "postgresql":
        return None

    def listen() -> None:
        import psycopg

        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            wake.set()
            except psycopg.Error:
                LOG.warning("outbox LISTEN connection lost; polling until it is back")
                stop.wait(5)

    thread = threading.Thread(target=listen, name="outbox-listen", daemon=True)
    thread.start()
    return thread
