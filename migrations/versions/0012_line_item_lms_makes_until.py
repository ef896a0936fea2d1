"""a column placed by deep linking is left to the LMS to make for a while

Revision ID: 0012_line_item_lms_makes_until
Revises: 0011_sign_in_failure_purpose
Create Date: 2026-12-06 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0012_line_item_lms_makes_until"
down_revision: str | None = "0011_sign_in_failure_purpose"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("line_item", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lms_makes_until", lti_app.db.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("line_item", schema=None) as batch_op:
        batch_op.drop_column("lms_makes_until")
