"""a launch remembers the user's language the LMS named (launch_presentation.locale)

Revision ID: 0021_launch_session_locale
Revises: 0020_backfill_first_deployment
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_launch_session_locale"
down_revision: str | None = "0020_backfill_first_deployment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("launch_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=35), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("launch_session", schema=None) as batch_op:
        batch_op.drop_column("locale")
