"""memberships a roster listed before 0022 are marked listed

0022 started every existing membership unlisted, and a full sync ends only teachers a roster
has listed: a teacher the LMS removed before the upgrade was never listed again, so never
ended, and kept teaching the course in Pathways (copying from it, its open pages). A membership
is marked listed here only where what was stored shows a roster listed it:

- the roster made it: no launch had made it, or its first launch came long after it was made;
- a teacher still active after the course's last sync, which succeeded before 0022, began
  after her last launch and provably listed a teacher. Before 0022 a full sync ended every
  teacher its roster left out only when that roster listed some teacher (jobs.sync_roster's
  `teachers`), the teacher whose launch started it and LMS administrators aside. Proof is an
  active teacher of the course whose row the roster made and no launch of hers can have made
  a teacher (she never launched, or the course's roster is not Moodle's, which calls its
  non-editing teachers Learners), or a teacher that sync ended (a teacher gone inactive while
  it ran). A teacher who launched shortly before that sync began may have been its starter
  and is left unlisted.

A teacher known from launches only (Moodle's teacher of a whole category, not enrolled, whose
courses' rosters list no teacher at all), or who launched after the last sync, stays
unlisted, and so does every membership of a course a sync has listed since 0022 (its unlisted
teachers were left out by a roster that now keeps them). Left unlisted where a roster did
list them (a course whose teachers all made their own rows by launching, its starter pressed
Refresh, a last sync that used the roster's differences link), a removed teacher is not
ended, as before this revision. Marked where the proving teacher left the LMS before that
sync, which then listed no teacher, a launch-only teacher is ended by the next full sync she
does not start, as before 0022.

Revision ID: 0023_backfill_first_listed_at
Revises: 0022_membership_first_listed_at
Create Date: 2026-12-09 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
import re
from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0023_backfill_first_listed_at"
down_revision: str | None = "0022_membership_first_listed_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LAUNCH_MADE_IT = timedelta(minutes=10)
"""A launch writes its membership's first launch at once (one transaction): a first launch
later than this after the row was made was not the launch that made it."""
STARTER_MARGIN = timedelta(minutes=5)
"""A teacher's launch starts its course's sync within moments (roster.jobs.after_launch)."""
MOODLE_ROSTER = re.compile(r"/bindings/[^/]+/memberships/?$")
"""Moodle's roster service (roster.syncing.roster_understates_teaching): a launch, not its
roster, makes its non-editing teachers teachers."""

membership = sa.table(
    "membership",
    sa.column("id", sa.Integer()),
    sa.column("context_id", sa.Integer()),
    sa.column("status", sa.String()),
    sa.column("is_teacher", sa.Boolean()),
    sa.column("is_learner", sa.Boolean()),
    sa.column("first_launch_at", lti_app.db.UtcDateTime(timezone=True)),
    sa.column("last_launch_at", lti_app.db.UtcDateTime(timezone=True)),
    sa.column("first_listed_at", lti_app.db.UtcDateTime(timezone=True)),
    sa.column("created_at", lti_app.db.UtcDateTime(timezone=True)),
    sa.column("updated_at", lti_app.db.UtcDateTime(timezone=True)),
)
roster_sync = sa.table(
    "roster_sync",
    sa.column("context_id", sa.Integer()),
    sa.column("nrps_url", sa.String()),
    sa.column("status", sa.String()),
    sa.column("started_at", lti_app.db.UtcDateTime(timezone=True)),
    sa.column("finished_at", lti_app.db.UtcDateTime(timezone=True)),
)


def _made_by_roster(first_launch: datetime | None, made: datetime | None) -> bool:
    return first_launch is None or (made is not None and first_launch > made + LAUNCH_MADE_IT)


def upgrade() -> None:
    conn = op.get_bind()
    # Read before anything is marked: these courses were synced since 0022.
    listed_since_0022 = set(
        conn.scalars(
            sa.select(membership.c.context_id)
            .where(membership.c.first_listed_at.is_not(None))
            .distinct()
        )
    )
    last_sync = {
        context_id: (started_at, finished_at, MOODLE_ROSTER.search(nrps_url or "") is not None)
        for context_id, nrps_url, started_at, finished_at in conn.execute(
            sa.select(
                roster_sync.c.context_id,
                roster_sync.c.nrps_url,
                roster_sync.c.started_at,
                roster_sync.c.finished_at,
            ).where(
                roster_sync.c.status == "ok",
                roster_sync.c.started_at.is_not(None),
                roster_sync.c.finished_at.is_not(None),
            )
        )
        if context_id not in listed_since_0022
    }
    # Courses whose last sync listed a teacher: only such a sync ended the teachers it left
    # out, so only there does surviving it say the roster listed a teacher.
    listed_a_teacher: set[int] = set()
    for context_id, status, is_learner, first_launch, made, updated in conn.execute(
        sa.select(
            membership.c.context_id,
            membership.c.status,
            membership.c.is_learner,
            membership.c.first_launch_at,
            membership.c.created_at,
            membership.c.updated_at,
        ).where(membership.c.is_teacher.is_(True))
    ):
        if context_id not in last_sync:
            continue
        started, finished, moodle = last_sync[context_id]
        if status == "active" and _made_by_roster(first_launch, made):
            if first_launch is None or not moodle:
                listed_a_teacher.add(context_id)
        # Only a sync makes a membership inactive; a learner it ends whatever it listed.
        elif status == "inactive" and not is_learner and updated is not None:
            if started <= updated <= finished:
                listed_a_teacher.add(context_id)
    conn.execute(
        membership.update()
        .where(membership.c.first_listed_at.is_(None), membership.c.first_launch_at.is_(None))
        .values(first_listed_at=membership.c.created_at)
    )
    # Only a teacher's mark changes what a sync does (learners are ended unlisted or not).
    teachers = conn.execute(
        sa.select(
            membership.c.id,
            membership.c.context_id,
            membership.c.first_launch_at,
            membership.c.last_launch_at,
            membership.c.created_at,
        ).where(
            membership.c.first_listed_at.is_(None),
            membership.c.status == "active",
            membership.c.is_teacher.is_(True),
            membership.c.is_learner.is_(False),
        )
    ).all()
    listed: dict[int, datetime] = {}
    for row_id, context_id, first_launch, last_launch, made in teachers:
        if first_launch is not None and _made_by_roster(first_launch, made):
            listed[row_id] = made
            continue
        if context_id in listed_a_teacher and last_launch is not None:
            started = last_sync[context_id][0]
            if last_launch < started - STARTER_MARGIN:
                listed[row_id] = started
    for row_id, listed_at in listed.items():
        conn.execute(
            membership.update()
            .where(membership.c.id == row_id)
            .values(first_listed_at=listed_at)
        )


def downgrade() -> None:
    # Nothing to undo: 0022's downgrade drops the column.
    pass
