"""a course remembers its time zone: the teacher's choice and the one the LMS sent

Both empty on existing courses: their dates stay in the school's default zone
(LTI_APP_DEFAULT_TIMEZONE, UTC unless set) until a teacher launches from an LMS that sends
one, or chooses one.

Revision ID: 0018_context_time_zone
Revises: 0017_membership_is_preview
Create Date: 2026-12-09 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_context_time_zone"
down_revision: str | None = "0017_membership_is_preview"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("context", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lms_time_zone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("context", schema=None) as batch_op:
        batch_op.drop_column("lms_time_zone")
        batch_op.drop_column("time_zone")
