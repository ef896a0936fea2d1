"""Tables of this feature: how each course's roster was last fetched from the LMS (NRPS).

People and memberships themselves live in `tool.models` (launches create them too); a sync
upserts them and keeps what the LMS sent, as received.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, created_at, intpk, str_enum, updated_at


class SyncStatus(enum.StrEnum):
    NEVER = "never"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"


class RosterSync(Base):
    """One course's roster service endpoint and the outcome of its last sync."""

    __tablename__ = "roster_sync"

    id: Mapped[intpk]
    platform_id: Mapped[int] = mapped_column(
        ForeignKey("platform.id", ondelete="CASCADE"), index=True
    )
    context_id: Mapped[int] = mapped_column(
        ForeignKey("context.id", ondelete="CASCADE"), unique=True
    )
    nrps_url: Mapped[str | None] = mapped_column(String(2048))
    """context_memberships_url from the latest launch that carried it."""
    differences_url: Mapped[str | None] = mapped_column(String(2048))
    """The `rel="differences"` link of the last full sync, when the platform offers one."""
    status: Mapped[SyncStatus] = mapped_column(str_enum(SyncStatus), default=SyncStatus.NEVER)
    lease_until: Mapped[datetime | None]
    """While a sync runs; another may start once this has passed (a crashed sync). After a
    failed sync, the time the LMS asked Pathways to wait until (Retry-After), if it did."""
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    succeeded_at: Mapped[datetime | None]
    member_count: Mapped[int] = mapped_column(default=0)
    """Students the last successful full sync received (the Students page's "N students"):
    learners, not the LMS's preview student nor the teachers the roster lists too."""
    last_error: Mapped[str] = mapped_column(Text, default="")
    """What an LMS admin should check, in plain words; empty after a success."""
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]
