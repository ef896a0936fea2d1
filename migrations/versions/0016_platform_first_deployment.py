"""a dynamic registration whose answer named no deployment approves its first one at launch

Revision ID: 0016_platform_first_deployment
Revises: 0015_score_outbox_sent_url
Create Date: 2026-12-07 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_platform_first_deployment"
down_revision: str | None = "0015_score_outbox_sent_url"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("platform", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "approve_first_deployment", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("platform", schema=None) as batch_op:
        batch_op.drop_column("approve_first_deployment")
