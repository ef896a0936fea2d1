"""a student's earlier tries at a step are kept when they try it again

Trying a step done below mastery again kept the first try's hand-in on the step's choice only
until the student handed in again, which overwrote it. Each earlier try is now a row of its
own: what was handed in, when, the option, and the teacher's evidence that closed it. A new
table: nothing existing changes, and the downgrade drops it (with the earlier tries).

Its step and option keys have no ON DELETE: the release before this one, still serving during
a rolling upgrade, deletes a step or option after checking only for choices, and CASCADE would
have taken a student's earlier try with it unseen. It now fails instead. Deleting a course or a
person still takes the tries along (context_id and person_id cascade in the same statement).

Revision ID: 0029_step_attempts
Revises: 0028_group_member_stints
Create Date: 2026-12-12 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = "0029_step_attempts"
down_revision: str | None = "0028_group_member_stints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pathway_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("context_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("option_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("submission_note", sa.Text(), nullable=False),
        sa.Column("submission_url", sa.String(length=2048), nullable=True),
        sa.Column("teacher_feedback", sa.Text(), nullable=False),
        sa.Column("chosen_at", lti_app.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("started_at", lti_app.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", lti_app.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("done_at", lti_app.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("evidence_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            lti_app.db.UtcDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["closed_by_id"],
            ["person.id"],
            name=op.f("fk_pathway_attempt_closed_by_id_person"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["context_id"],
            ["context.id"],
            name=op.f("fk_pathway_attempt_context_id_context"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["evidence.id"],
            name=op.f("fk_pathway_attempt_evidence_id_evidence"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["option_id"],
            ["pathway_option.id"],
            name=op.f("fk_pathway_attempt_option_id_pathway_option"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_pathway_attempt_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["pathway_step.id"],
            name=op.f("fk_pathway_attempt_step_id_pathway_step"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pathway_attempt")),
    )
    op.create_index(
        "ix_pathway_attempt_person_id_step_id",
        "pathway_attempt",
        ["person_id", "step_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_pathway_attempt_step_id"), "pathway_attempt", ["step_id"], unique=False
    )
    op.create_index(
        op.f("ix_pathway_attempt_option_id"), "pathway_attempt", ["option_id"], unique=False
    )
    op.create_index(
        op.f("ix_pathway_attempt_evidence_id"), "pathway_attempt", ["evidence_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pathway_attempt_evidence_id"), table_name="pathway_attempt")
    op.drop_index(op.f("ix_pathway_attempt_option_id"), table_name="pathway_attempt")
    op.drop_index(op.f("ix_pathway_attempt_step_id"), table_name="pathway_attempt")
    op.drop_index("ix_pathway_attempt_person_id_step_id", table_name="pathway_attempt")
    op.drop_table("pathway_attempt")
