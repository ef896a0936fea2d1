"""evidence keeps the day it was observed as a date, beside the time

The day a teacher types is a calendar date. Only the time (noon of that day in the course's
zone) was kept, so choosing the course's time zone afterwards moved every date a day: a school
on the UTC default that then chose Pacific/Auckland read 5 December for evidence typed as
4 December. The date is now stored; existing rows get the date their time falls on in the
course's zone at upgrade time, which is the date their pages showed until now. The same for a
revision's old and new dates, and for a stored level's latest evidence.

Revision ID: 0025_evidence_observed_on
Revises: 0024_copied_from
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import context, op

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
# (table, the time column, the date column filled from it)
FILLS = (
    ("evidence", "observed_at", "observed_on"),
    ("evidence_revision", "old_observed_at", "old_observed_on"),
    ("evidence_revision", "new_observed_at", "new_observed_on"),
    ("student_competency_level", "last_evidence_at", "last_evidence_on"),
)
REQUIRED = {"evidence": ["observed_on"], "evidence_revision": ["old_observed_on", "new_observed_on"]}
BATCH = 1000


def _school_zone() -> str:
    # The zone pages used for a course that has none of its own; settings as env.py reads them.
    env = dict(os.environ)
    env.setdefault("LTI_APP_SECRET_KEY", "migrations-need-no-secret")
    try:
        return load_settings(env).default_timezone
    except SettingsError:
        return os.environ.get("LTI_APP_DEFAULT_TIMEZONE", "UTC")


def _fill(conn: sa.Connection, table: str, at: str, on: str, default: str) -> None:
    rows = sa.table(
        table,
        sa.column("id", sa.Integer()),
        sa.column("context_id", sa.Integer()),
        sa.column(at, lti_app.db.UtcDateTime(timezone=True)),
        sa.column(on, sa.Date()),
    )
    zones = {
        cid: course_zone(chosen=chosen, from_lms=lms, default=default)
        for cid, chosen, lms in conn.execute(sa.select(course))
    }
    update = (
        rows.update()
        .where(rows.c.id == sa.bindparam("row_id"))
        .values({on: sa.bindparam("day")})
    )
    found = conn.execute(
        sa.select(rows.c.id, rows.c.context_id, rows.c[at]).where(rows.c[at].is_not(None))
    ).all()
    for start in range(0, len(found), BATCH):
        params = []
        for row_id, cid, moment in found[start : start + BATCH]:
            zone = zones.get(cid) or course_zone(chosen=None, from_lms=None, default=default)
            when: datetime = moment
            params.append({"row_id": row_id, "day": local_date(when, zone)})
        conn.execute(update, params)


def upgrade() -> None:
    if context.is_offline_mode():
        raise RuntimeError("0025 computes dates in each course's time zone: run it online")
    for table in ("evidence", "evidence_revision", "student_competency_level"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for _, _, on in (f for f in FILLS if f[0] == table):
                batch_op.add_column(sa.Column(on, sa.Date(), nullable=True))
    default = _school_zone()
    conn = op.get_bind()
    for table, at, on in FILLS:
        _fill(conn, table, at, on, default)
    for table, columns in REQUIRED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for on in columns:
                batch_op.alter_column(on, existing_type=sa.Date(), nullable=False)


def downgrade() -> None:
    for table in ("student_competency_level", "evidence_revision", "evidence"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for _, _, on in reversed([f for f in FILLS if f[0] == table]):
                batch_op.drop_column(on)
