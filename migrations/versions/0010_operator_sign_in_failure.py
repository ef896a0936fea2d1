"""wrong operator secrets per client address, to throttle guessing

Revision ID: 0010_operator_sign_in_failure
Revises: 0009_registration_submission
Create Date: 2026-12-06 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0010_operator_sign_in_failure"
down_revision: str | None = "0009_registration_submission"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operator_sign_in_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            lti_app.db.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_sign_in_failure")),
    )
    op.create_index(
        op.f("ix_operator_sign_in_failure_client_address"),
        "operator_sign_in_failure",
        ["client_address"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_operator_sign_in_failure_client_address"), table_name="operator_sign_in_failure"
    )
    op.drop_table("operator_sign_in_failure")
