"""a queued score remembers since when the LMS has not been there for it

The three days a score waits out an LMS that is throttling or down were counted from when it
was queued, so days in which Pathways was not allowed to send it (a registration disabled by
the operator, a course waiting for an LMS administrator) counted too: the first throttle after
re-enabling failed the whole backlog. Existing scores start with no wait running; their next
such failure starts it.

Revision ID: 0026_outbox_waiting_since
Revises: 0025_evidence_observed_on
Create Date: 2026-12-10 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0026_outbox_waiting_since"
down_revision: str | None = "0025_evidence_observed_on"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("score_outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("waiting_since", lti_app.db.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("score_outbox", schema=None) as batch_op:
        batch_op.drop_column("waiting_since")
