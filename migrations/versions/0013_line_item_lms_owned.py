"""a column a launch named is the LMS's own: scores go there, its label and points stay

Revision ID: 0013_line_item_lms_owned
Revises: 0012_line_item_lms_makes_until
Create Date: 2026-12-06 15:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_line_item_lms_owned"
down_revision: str | None = "0012_line_item_lms_makes_until"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("line_item", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lms_owned", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("line_item", schema=None) as batch_op:
        batch_op.drop_column("lms_owned")
