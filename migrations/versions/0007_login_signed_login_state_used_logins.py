"""signed login state: logins travel in the OIDC state; used_login makes them single-use

Revision ID: 0007_login
Revises: 0006_roster_grades
Create Date: 2026-11-23 15:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import lti_app.db

revision: str = '0007_login'
down_revision: str | None = '0006_roster_grades'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('used_login',
    sa.Column('nonce', sa.String(length=128), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('used_at', lti_app.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', lti_app.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['platform_id'], ['platform.id'], name=op.f('fk_used_login_platform_id_platform'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('nonce', name=op.f('pk_used_login'))
    )
    with op.batch_alter_table('used_login', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_login_expires_at'), ['expires_at'], unique=False)
    # Logins in flight during the upgrade fail once with "unknown state"; the user relaunches.
    with op.batch_alter_table('login_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_state_expires_at'))
    op.drop_table('login_state')


def downgrade() -> None:
    op.create_table('login_state',
    sa.Column('state', sa.String(length=128), nullable=False),
    sa.Column('nonce', sa.String(length=128), nullable=False),
    sa.Column('browser_hash', sa.String(length=64), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('target_link_uri', sa.String(length=2048), nullable=False),
    sa.Column('storage_target', sa.String(length=255), nullable=True),
    sa.Column('created_at', lti_app.db.UtcDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('expires_at', lti_app.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('used_at', lti_app.db.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['platform_id'], ['platform.id'], name=op.f('fk_login_state_platform_id_platform'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state', name=op.f('pk_login_state')),
    sa.UniqueConstraint('nonce', name=op.f('uq_login_state_nonce'))
    )
    with op.batch_alter_table('login_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_state_expires_at'), ['expires_at'], unique=False)
    with op.batch_alter_table('used_login', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_login_expires_at'))
    op.drop_table('used_login')
