"""a membership remembers it is the LMS's preview student (Canvas's Test Student)

Memberships whose roles already name TestUser are marked at once, so the Test Student leaves
class lists at the upgrade rather than at the course's next launch or roster sync.

Revision ID: 0017_membership_is_preview
Revises: 0016_platform_first_deployment
Create Date: 2026-12-07 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_membership_is_preview"
down_revision: str | None = "0016_platform_first_deployment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEST_USER = "http://purl.imsglobal.org/vocab/lti/system/person#TestUser"

membership = sa.table(
    "membership",
    sa.column("roles", sa.JSON()),
    sa.column("is_preview", sa.Boolean()),
)


def upgrade() -> None:
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_preview", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # The roles are a JSON list of strings: the role, quoted, appears in its text only as an
    # element of the list (on SQLite and PostgreSQL alike).
    op.execute(
        membership.update()
        .where(sa.cast(membership.c.roles, sa.Text()).like(f'%"{TEST_USER}"%'))
        .values(is_preview=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.drop_column("is_preview")
