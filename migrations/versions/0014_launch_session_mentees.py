"""a mentor's launch remembers the students it may see (role_scope_mentor)

Revision ID: 0014_launch_session_mentees
Revises: 0013_line_item_lms_owned
Create Date: 2026-12-06 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_launch_session_mentees"
down_revision: str | None = "0013_line_item_lms_owned"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("launch_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mentees", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("launch_session", schema=None) as batch_op:
        batch_op.drop_column("mentees")
