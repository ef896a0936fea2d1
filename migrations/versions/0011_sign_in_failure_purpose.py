"""wrong shared secrets of every kind (admin secret, registration access code) in one table

The operator's table becomes `sign_in_failure` with a `purpose`, so the registration access
code is throttled by the same code. Rows live 15 minutes; those there are carried over.

Revision ID: 0011_sign_in_failure_purpose
Revises: 0010_operator_sign_in_failure
Create Date: 2026-12-06 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0011_sign_in_failure_purpose"
down_revision: str | None = "0010_operator_sign_in_failure"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created_at() -> sa.Column[datetime]:
    return sa.Column(
        "created_at",
        lti_app.db.UtcDateTime(timezone=True),
        server_default=sa.text("(CURRENT_TIMESTAMP)"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "sign_in_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(
                "operator",
                "registration",
                name="secretpurpose",
                native_enum=False,
                create_constraint=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failure")),
    )
    op.create_index(
        "ix_sign_in_failure_purpose_client_address",
        "sign_in_failure",
        ["purpose", "client_address"],
        unique=False,
    )
    op.execute(
        "INSERT INTO sign_in_failure (purpose, client_address, created_at) "
        "SELECT 'operator', client_address, created_at FROM operator_sign_in_failure"
    )
    op.drop_index(
        op.f("ix_operator_sign_in_failure_client_address"), table_name="operator_sign_in_failure"
    )
    op.drop_table("operator_sign_in_failure")


def downgrade() -> None:
    op.create_table(
        "operator_sign_in_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_sign_in_failure")),
    )
    op.create_index(
        op.f("ix_operator_sign_in_failure_client_address"),
        "operator_sign_in_failure",
        ["client_address"],
        unique=False,
    )
    op.execute(
        "INSERT INTO operator_sign_in_failure (client_address, created_at) "
        "SELECT client_address, created_at FROM sign_in_failure WHERE purpose = 'operator'"
    )
    op.drop_index("ix_sign_in_failure_purpose_client_address", table_name="sign_in_failure")
    op.drop_table("sign_in_failure")
