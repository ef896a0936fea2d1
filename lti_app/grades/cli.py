"""`lti-app grades worker|status|retry`: run the score worker and look after the outbox."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from typing import Any

import click

from lti_app.db import DATABASE_ID_MAX, Database
from lti_app.grades import outbox_status
from lti_app.grades.client import AgsClient
from lti_app.grades.jobs import listen_for_notifications
from lti_app.grades.worker import GradeWorker, WorkerConfig
from lti_app.http import make_http_client, make_score_pool
from lti_app.logs import configure_logging
from lti_app.registration.reach import outbound_policy
from lti_app.settings import Settings
from lti_app.tool.client import TokenClient
from lti_app.tool.key_cli import checked_keyring


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.ensure_object(dict)["settings_loader"]()
    return settings


DATABASE_ID = click.IntRange(1, DATABASE_ID_MAX)
"""A row id: anything past the integer column's range ends in a database error (SQLite's
OverflowError is a traceback), while no row has it anyway."""


@click.group("grades")
def grades_group() -> None:
    """Send competency results to LMS gradebooks (Assignment and Grade Services)."""


@grades_group.command("worker")
@click.option(
    "--concurrency",
    default=16,
    show_default=True,
    type=click.IntRange(1, 1024),
    help="Requests per platform",
)
@click.option("--once", is_flag=True, help="Drain what is due now, then exit")
@click.option(
    "--context-id", "context_ids", type=DATABASE_ID, multiple=True, help="Only these courses"
)
@click.option(
    "--poll",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.01, 3600),
    help="Seconds between outbox checks",
)
@click.option(
    "--backoff-base",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="First retry delay (s)",
)
@click.option("--max-attempts", default=15, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--lease",
    type=click.FloatRange(1, 86400),
    default=None,
    help="Seconds before a dead worker's scores are sent again (default: 4x the read timeout)",
)
@click.pass_context
def worker_command(
    ctx: click.Context,
    concurrency: int,
    once: bool,
    context_ids: tuple[int, ...],
    poll: float,
    backoff_base: float,
    max_attempts: int,
    lease: float | None,
) -> None:
    """Drain the score outbox; run one or more per deployment (PostgreSQL: on any host)."""
    settings = _settings(ctx)
    # Before any score is claimed: a worker that cannot sign would hold every score it claims.
    # Only create_app set logging up: a worker's warnings came out bare, its INFO lines (tokens
    # issued, columns made) never, whatever LTI_APP_LOG_LEVEL said.
    configure_logging(settings.log_level)
    keyring = checked_keyring(settings)
    # Not at import: lti_app.cli imports this module. Before the release step's `lti-app db
    # upgrade`, every pass would fail on a missing column and log it, one traceback a poll.
    from lti_app.cli import check_database

    check_database(settings, until_it_answers="the worker tries again every poll")
    database = Database(settings.effective_database_url)
    policy = outbound_policy(settings, database)
    http = make_http_client(settings, policy)
    config = WorkerConfig(
        concurrency=concurrency,
        poll_interval=poll,
        backoff_base=backoff_base,
        max_attempts=max_attempts,
        context_ids=frozenset(context_ids) if context_ids else None,
        lease=timedelta(seconds=lease or max(60.0, settings.http_read_timeout * 4)),
    )
    pool = make_score_pool(settings, concurrency, policy)
    worker = GradeWorker(database, AgsClient(pool, TokenClient(database, http, keyring)), config)
    stop, wake = threading.Event(), threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        if once:
            stats = worker.drain()
            click.echo(
                f"sent {stats.sent}, retrying {stats.retried}, failed {stats.failed}, "
                f"superseded {stats.superseded}"
            )
            return
        click.echo(f"grade worker {worker.worker_id} running (Ctrl-C to stop)")
        listen_for_notifications(database, wake, stop)
        worker.run(stop, wake)
    finally:
        worker.close()
        http.close()
        database.dispose()


@grades_group.command("status")
@click.option("--context-id", type=DATABASE_ID, default=None, help="One course (Pathways id)")
@click.pass_context
def status_command(ctx: click.Context, context_id: int | None) -> None:
    """Outbox rows per status, and the latest problems with their reasons."""
    database = Database(_settings(ctx).effective_database_url)
    try:
        with database.session_factory() as session:
            counts = outbox_status.outbox_counts(session, context_id=context_id)
            problems = outbox_status.list_problems(session, context_id=context_id, limit=50)
        click.echo("  ".join(f"{status.value}={n}" for status, n in counts.items()))
        for p in problems:
            click.echo(
                f"#{p.id} {p.status.value} {p.person_name} / {p.competency_title}: "
                f"{p.reason} (attempts {p.attempts}, LMS status {p.last_status})"
            )
    finally:
        database.dispose()


@grades_group.command("retry")
@click.option("--context-id", type=DATABASE_ID, default=None, help="One course (Pathways id)")
@click.option("--id", "ids", type=DATABASE_ID, multiple=True, help="Outbox row ids (default: all)")
@click.pass_context
def retry_command(ctx: click.Context, context_id: int | None, ids: tuple[int, ...]) -> None:
    """Send failed and waiting scores again now."""
    database = Database(_settings(ctx).effective_database_url)
    try:
        with database.begin() as session:
            outlook = outbox_status.retry(session, context_id=context_id, outbox_ids=ids or None)
        click.echo(f"{outlook.will_send} score(s) queued again")
        if outlook.not_learners:
            click.echo(f"{outlook.not_learners} not sent: not active students of their course")
        if outlook.held:
            click.echo(f"{outlook.held} waiting for a gradebook column the LMS has not made")
    finally:
        database.dispose()
