"""a student taken out of a group and put back keeps both stints in their history

A group kept one row per student, so putting a student back reopened that row and erased
their first stint from the history on their page. Each stint is now a row of its own: the
unique constraint on (group, student) becomes a partial unique index over open stints (one
at a time). Existing rows stay, each as the one stint it recorded.

The downgrade brings the one-row rule back by keeping each student's latest stint in a group
(the highest id: a new stint is always added after the previous one closed).

Revision ID: 0028_group_member_stints
Revises: 0027_saved_form
Create Date: 2026-12-11 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028_group_member_stints"
down_revision: str | None = "0027_saved_form"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_STINT = sa.text("removed_at IS NULL")


def upgrade() -> None:
    # The new index before the constraint goes: building it (the long part on a big table)
    # takes a lock that still lets the running release's pages read the table, and only the
    # drop then takes the table for itself, for what is left of the upgrade. On SQLite the
    # batch copy below keeps the index, where clause and all.
    op.create_index(
        "uq_student_group_member_open_stint",
        "student_group_member",
        ["group_id", "person_id"],
        unique=True,
        sqlite_where=OPEN_STINT,
        postgresql_where=OPEN_STINT,
    )
    with op.batch_alter_table("student_group_member", schema=None) as batch_op:
        batch_op.drop_constraint("uq_student_group_member_group_id_person_id", type_="unique")
        batch_op.create_index(
            batch_op.f("ix_student_group_member_group_id"), ["group_id"], unique=False
        )


def downgrade() -> None:
    member = sa.table(
        "student_group_member",
        sa.column("id", sa.Integer),
        sa.column("group_id", sa.Integer),
        sa.column("person_id", sa.Integer),
    )
    latest = sa.select(sa.func.max(member.c.id)).group_by(member.c.group_id, member.c.person_id)
    op.execute(member.delete().where(member.c.id.not_in(latest)))
    op.drop_index("uq_student_group_member_open_stint", table_name="student_group_member")
    with op.batch_alter_table("student_group_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_student_group_member_group_id"))
        batch_op.create_unique_constraint(
            "uq_student_group_member_group_id_person_id", ["group_id", "person_id"]
        )
