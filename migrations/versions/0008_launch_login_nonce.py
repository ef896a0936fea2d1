"""a launch session records the login it completed; used_login goes

Revision ID: 0008_launch_login_nonce
Revises: 0007_login
Create Date: 2026-12-06 00:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0008_launch_login_nonce"
down_revision: str | None = "0007_login"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Launches whose login was used before the upgrade keep no record of it: their signed
    # state expires within minutes (login_state_ttl), and until then a replay of one would
    # have to come with the browser's own state cookie.
    with op.batch_alter_table("launch_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("login_nonce", sa.String(length=128), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_launch_session_login_nonce"), ["login_nonce"]
        )
    with op.batch_alter_table("used_login", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_used_login_expires_at"))
    op.drop_table("used_login")


def downgrade() -> None:
    op.create_table(
        "used_login",
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("used_at", lti_app.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", lti_app.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platform.id"],
            name=op.f("fk_used_login_platform_id_platform"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_used_login")),
    )
    with op.batch_alter_table("used_login", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_used_login_expires_at"), ["expires_at"], unique=False)
    with op.batch_alter_table("launch_session", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_launch_session_login_nonce"), type_="unique")
        batch_op.drop_column("login_nonce")
