"""The add forms already saved, so the very same form sent again stores nothing new."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base

FORM_LIFE = timedelta(hours=12)
"""A launch session's life: no page of one, nor the form it shows, is older."""
NONCE_LENGTH = 32


class SavedForm(Base):
    """One rendered add form whose send was saved (its random nonce, never reused)."""

    __tablename__ = "saved_form"

    nonce: Mapped[str] = mapped_column(String(NONCE_LENGTH), primary_key=True)
    saved_at: Mapped[datetime] = mapped_column(index=True)
    """Rows older than `FORM_LIFE` answer no form that can still be sent: they are dropped."""
