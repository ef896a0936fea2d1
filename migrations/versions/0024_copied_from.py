"""competencies and pathways remember what they were copied from

A course copied in the LMS (Canvas's "Copy this course") keeps last term's ids in its links'
custom parameters and in its gradebook columns' resourceId; the copy in Pathways now records
which competency and pathway each one came from, so the new course can open and use its own.
Empty on existing rows: copies made before are not known.

Revision ID: 0024_copied_from
Revises: 0023_backfill_first_listed_at
Create Date: 2026-12-10 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_copied_from"
down_revision: str | None = "0023_backfill_first_listed_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("competency", "pathway")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("copied_from_id", sa.Integer(), nullable=True))
            batch_op.create_index(f"ix_{table}_copied_from_id", ["copied_from_id"], unique=False)
            batch_op.create_foreign_key(
                f"fk_{table}_copied_from_id_{table}",
                table,
                ["copied_from_id"],
                ["id"],
                ondelete="SET NULL",
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_copied_from_id_{table}", type_="foreignkey")
            batch_op.drop_index(f"ix_{table}_copied_from_id")
            batch_op.drop_column("copied_from_id")
