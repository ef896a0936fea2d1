"""confirm forms sent to an LMS, so one sent twice does not register twice

Revision ID: 0009_registration_submission
Revises: 0008_launch_login_nonce
Create Date: 2026-12-06 04:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0009_registration_submission"
down_revision: str | None = "0008_launch_login_nonce"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registration_submission",
        sa.Column("form_digest", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            lti_app.db.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("form_digest", name=op.f("pk_registration_submission")),
    )


def downgrade() -> None:
    op.drop_table("registration_submission")
