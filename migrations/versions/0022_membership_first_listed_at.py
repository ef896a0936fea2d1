"""a membership remembers when a roster sync first listed it

A full roster sync ends only the teachers a roster has listed before: Moodle launches a
teacher given the role on a whole category (not enrolled) as Instructor, but never lists them
in its roster. Existing memberships start unlisted (which of them a roster listed was not
kept); the next sync that lists them stamps them.

Revision ID: 0022_membership_first_listed_at
Revises: 0021_launch_session_locale
Create Date: 2026-12-08 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0022_membership_first_listed_at"
down_revision: str | None = "0021_launch_session_locale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_listed_at", lti_app.db.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.drop_column("first_listed_at")
