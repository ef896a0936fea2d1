"""a sent score remembers the column it went to (a comment already standing there)

Revision ID: 0015_score_outbox_sent_url
Revises: 0014_launch_session_mentees
Create Date: 2026-12-06 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_score_outbox_sent_url"
down_revision: str | None = "0014_launch_session_mentees"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("score_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_url", sa.String(length=2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("score_outbox", schema=None) as batch_op:
        batch_op.drop_column("sent_url")
