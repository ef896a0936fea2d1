"""add forms remember which rendered form was saved, not when their page was shown

The same words sent from another page shown before a save (a tab left open, the bulk page)
were taken for that save sent again and dropped while the page said they were recorded. Each
add form now carries a random nonce; a save marks it used here, and only that very form sent
again stores nothing. Marks older than a launch session's life are dropped now and then.

Revision ID: 0027_saved_form
Revises: 0026_outbox_waiting_since
Create Date: 2026-12-10 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0027_saved_form"
down_revision: str | None = "0026_outbox_waiting_since"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "saved_form",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("saved_at", lti_app.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_saved_form")),
    )
    op.create_index(op.f("ix_saved_form_saved_at"), "saved_form", ["saved_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_saved_form_saved_at"), table_name="saved_form")
    op.drop_table("saved_form")
