"""evidence and its corrections outlive an erased author (`lti-app person erase`)

Who recorded or corrected evidence may become empty: erasing a teacher keeps the students'
evidence and drops the link to them.

Revision ID: 0019_evidence_author_erasable
Revises: 0018_context_time_zone
Create Date: 2026-12-07 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_evidence_author_erasable"
down_revision: str | None = "0018_context_time_zone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTHOR_COLUMNS = (("evidence", "recorded_by_id"), ("evidence_revision", "changed_by_id"))

evidence = sa.table(
    "evidence",
    sa.column("id", sa.Integer()),
    sa.column("person_id", sa.Integer()),
    sa.column("recorded_by_id", sa.Integer()),
)
evidence_revision = sa.table(
    "evidence_revision",
    sa.column("evidence_id", sa.Integer()),
    sa.column("changed_by_id", sa.Integer()),
)


def _author_column(table: str, column: str, *, erasable: bool) -> None:
    name = f"fk_{table}_{column}_person"
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(name, type_="foreignkey")
        batch_op.alter_column(column, existing_type=sa.Integer(), nullable=erasable)
        batch_op.create_foreign_key(
            name, "person", [column], ["id"], ondelete="SET NULL" if erasable else None
        )


def upgrade() -> None:
    for table, column in AUTHOR_COLUMNS:
        _author_column(table, column, erasable=True)


def downgrade() -> None:
    # Older versions require an author. The student is the one person such evidence surely
    # belongs to; dropping it instead would lose their record.
    op.execute(
        evidence.update()
        .where(evidence.c.recorded_by_id.is_(None))
        .values(recorded_by_id=evidence.c.person_id)
    )
    op.execute(
        evidence_revision.update()
        .where(evidence_revision.c.changed_by_id.is_(None))
        .values(
            changed_by_id=sa.select(evidence.c.person_id)
            .where(evidence.c.id == evidence_revision.c.evidence_id)
            .scalar_subquery()
        )
    )
    for table, column in AUTHOR_COLUMNS:
        _author_column(table, column, erasable=False)
