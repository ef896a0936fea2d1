"""0016's flag for a Canvas registered before it: its first deployment is approved at launch

0016 added the flag as false everywhere. A Canvas registered dynamically before it, whose admin
had not yet enabled the tool, stayed locked out after the upgrade: its first launch waited for
an approval that only a launch that worked could give. The rule is the one registration applies
(lti_app.registration.services.store_registration). 0016 itself is left as it was: schools have
already run it.

Revision ID: 0020_backfill_first_deployment
Revises: 0019_evidence_author_erasable
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_backfill_first_deployment"
down_revision: str | None = "0019_evidence_author_erasable"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

platform = sa.table(
    "platform",
    sa.column("id", sa.Integer()),
    sa.column("auto_approve_deployments", sa.Boolean()),
    sa.column("approve_first_deployment", sa.Boolean()),
)
platform_registration = sa.table(
    "platform_registration",
    sa.column("platform_id", sa.Integer()),
    sa.column("method", sa.String()),
)
deployment = sa.table("deployment", sa.column("platform_id", sa.Integer()))


def upgrade() -> None:
    dynamic = sa.exists().where(
        platform_registration.c.platform_id == platform.c.id,
        platform_registration.c.method == "dynamic",
    )
    has_deployment = sa.exists().where(deployment.c.platform_id == platform.c.id)
    op.execute(
        platform.update()
        .where(platform.c.auto_approve_deployments.is_(False), dynamic, ~has_deployment)
        .values(approve_first_deployment=True)
    )


def downgrade() -> None:
    # Nothing to undo: 0016's downgrade drops the column, and before that the flag only
    # lets a launch through that registration would have let through had it been made now.
    pass
