"""evidence keeps the day it was observed as a date, beside the time

The day a teacher types is a calendar date. Only the time (noon of that day in the course's
zone) was kept, so choosing the course's time zone afterwards moved every date a day: a school
on the UTC default that then chose Pacific/Auckland read 5 December for evidence typed as
4 December. The date is now stored; existing rows get the date their time falls on in the
course's zone at upgrade time, which is the date their pages showed until now. The same for a
revision's old and new dates, and for a stored level's latest evidence.

The days are filled by one UPDATE per table, not one per row: the upgrade runs in one
transaction and ADD COLUMN locks the table, so a school's million evidence rows updated one
at a time kept every page that reads evidence waiting for minutes. PostgreSQL converts the
times itself (AT TIME ZONE); SQLite cannot, so the conversion is a Python function the
UPDATE calls.

A rolling upgrade keeps workers of the previous release serving after this ran, and their
model saves evidence and revisions without these days. The required days therefore default
to the database's CURRENT_DATE (a default cannot be computed from observed_at): evidence such
a worker saves in those minutes shows the day it was saved (UTC on SQLite, the server's zone
on PostgreSQL) rather than a past day the teacher typed, which the teacher can correct on the
evidence's page; without the default the save failed and the typed evidence was lost. This
release's models set every day themselves, so the default serves only those old workers. A
level an old worker recomputes keeps its last_evidence_on until this release recomputes it.

Revision ID: 0025_evidence_observed_on
Revises: 0024_copied_from
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

import lti_app.db
from lti_app.settings import SettingsError, load_settings
from lti_app.timezones import course_zone, local_date

revision: str = "0025_evidence_observed_on"
down_revision: str | None = "0024_copied_from"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

course = sa.table(
    "context",
    sa.column("id", sa.Integer()),
    sa.column("time_zone", sa.String()),
    sa.column("lms_time_zone", sa.String()),
)
# table: (the time column, the date column filled from it) for each of its days
FILLS: dict[str, tuple[tuple[str, str], ...]] = {
    "evidence": (("observed_at", "observed_on"),),
    "evidence_revision": (
        ("old_observed_at", "old_observed_on"),
        ("new_observed_at", "new_observed_on"),
    ),
    "student_competency_level": (("last_evidence_at", "last_evidence_on"),),
}
REQUIRED = {
    "evidence": ["observed_on"],
    "evidence_revision": ["old_observed_on", "new_observed_on"],
}
TODAY = sa.text("CURRENT_DATE")
"""What a worker of the previous release gets for a required day it does not send."""
BATCH = 1000
SQLITE_DAY = "pathways_0025_local_day"


def _school_zone() -> str:
    # The zone pages used for a course that has none of its own; settings as env.py reads them.
    env = dict(os.environ)
    env.setdefault("LTI_APP_SECRET_KEY", "migrations-need-no-secret")
    try:
        return load_settings(env).default_timezone
    except SettingsError:
        return os.environ.get("LTI_APP_DEFAULT_TIMEZONE", "UTC")


def _course_zones(conn: sa.Connection, default: str) -> dict[int, ZoneInfo]:
    """Each course's zone as its pages read it (a course per row: few rows)."""
    return {
        cid: course_zone(chosen=chosen, from_lms=lms, default=default)
        for cid, chosen, lms in conn.execute(sa.select(course))
    }


def _days_table(table: str) -> sa.TableClause:
    days = FILLS[table]
    return sa.table(
        table,
        sa.column("id", sa.Integer()),
        sa.column("context_id", sa.Integer()),
        *(sa.column(at, lti_app.db.UtcDateTime(timezone=True)) for at, _ in days),
        *(sa.column(on, sa.Date()) for _, on in days),
    )


def _fill_on_postgresql(conn: sa.Connection, zones: Mapping[int, ZoneInfo]) -> None:
    names = sorted({zone.key for zone in zones.values()})
    known = set(
        conn.execute(
            sa.text("SELECT name FROM pg_timezone_names WHERE name = ANY(:names)"),
            {"names": names},
        ).scalars()
    )
    here = {cid: zone.key for cid, zone in zones.items() if zone.key in known}
    course_zones = (
        sa.func.unnest(
            sa.bindparam("ids", list(here), type_=postgresql.ARRAY(sa.Integer())),
            sa.bindparam("zones", list(here.values()), type_=postgresql.ARRAY(sa.Text())),
        )
        .table_valued(sa.column("context_id", sa.Integer()), sa.column("zone", sa.Text()))
        .render_derived(name="z")
    )
    for table, days in FILLS.items():
        rows = _days_table(table)
        # The times are timestamptz: timezone() (AT TIME ZONE) gives the wall clock there,
        # whose date is the day.
        conn.execute(
            rows.update()
            .where(rows.c.context_id == course_zones.c.context_id)
            .values(
                {
                    on: sa.cast(sa.func.timezone(course_zones.c.zone, rows.c[at]), sa.Date())
                    for at, on in days
                }
            )
        )
    # A zone newer than the server's zone data (Python's tzdata can be ahead): rare, per row.
    _fill_in_batches(conn, {cid: zone for cid, zone in zones.items() if cid not in here})


def _fill_on_sqlite(conn: sa.Connection, zones: Mapping[int, ZoneInfo]) -> None:
    # SQLite has no time zones: the UPDATE calls Python for each row's day, reading the stored
    # text as pages read it (UtcDateTime).
    stored = lti_app.db.UtcDateTime(timezone=True).dialect_impl(conn.dialect)
    read: Any = stored.result_processor(conn.dialect, None)

    def day(at: object, cid: int) -> str | None:
        if at is None:
            return None
        moment: datetime = read(at)
        return local_date(moment, zones[cid]).isoformat()

    raw: Any = conn.connection.driver_connection
    raw.create_function(SQLITE_DAY, 2, day, deterministic=True)
    try:
        for table, days in FILLS.items():
            rows = _days_table(table)
            conn.execute(
                rows.update().values(
                    {
                        on: getattr(sa.func, SQLITE_DAY)(rows.c[at], rows.c.context_id)
                        for at, on in days
                    }
                )
            )
    finally:
        raw.create_function(SQLITE_DAY, 2, None)


def _fill_in_batches(
    conn: sa.Connection, zones: Mapping[int, ZoneInfo], batch: int = BATCH
) -> None:
    """These courses' days worked out in Python, a batch of rows (by id) at a time."""
    if not zones:
        return
    for table, days in FILLS.items():
        rows = _days_table(table)
        update = (
            rows.update()
            .where(rows.c.id == sa.bindparam("row_id"))
            .values({on: sa.bindparam(f"day_{on}") for _, on in days})
        )
        read = sa.select(rows.c.id, rows.c.context_id, *(rows.c[at] for at, _ in days))
        read = read.where(rows.c.context_id.in_(list(zones))).order_by(rows.c.id).limit(batch)
        last = 0
        while found := conn.execute(read.where(rows.c.id > last)).all():
            params = []
            for row in found:
                zone = zones[row.context_id]
                param: dict[str, object] = {"row_id": row.id}
                for at, on in days:
                    moment: datetime | None = row._mapping[at]
                    param[f"day_{on}"] = None if moment is None else local_date(moment, zone)
                params.append(param)
            conn.execute(update, params)
            last = found[-1].id


def upgrade() -> None:
    if context.is_offline_mode():
        raise RuntimeError("0025 computes dates in each course's time zone: run it online")
    for table, days in FILLS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for _, on in days:
                batch_op.add_column(sa.Column(on, sa.Date(), nullable=True))
    conn = op.get_bind()
    zones = _course_zones(conn, _school_zone())
    if conn.dialect.name == "postgresql":
        _fill_on_postgresql(conn, zones)
    elif conn.dialect.name == "sqlite":
        _fill_on_sqlite(conn, zones)
    else:
        _fill_in_batches(conn, zones)
    for table, columns in REQUIRED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for on in columns:
                batch_op.alter_column(
                    on, existing_type=sa.Date(), nullable=False, server_default=TODAY
                )


def downgrade() -> None:
    for table in reversed(FILLS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for _, on in reversed(FILLS[table]):
                batch_op.drop_column(on)
