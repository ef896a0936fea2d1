"""Wrong shared secrets, kept so that guessing is throttled in every worker on every host."""

from __future__ import annotations

import enum

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, created_at, intpk, str_enum


class SecretPurpose(enum.StrEnum):
    """Which shared secret a person typed: each has its own count per address."""

    OPERATOR = "operator"
    """The admin secret (operator sign-in to the console)."""
    REGISTRATION = "registration"
    """The registration access code (Dynamic Registration's confirm page)."""


class SignInFailure(Base):
    """One wrong shared secret, from one client address (no secret is kept)."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (
        Index("ix_sign_in_failure_purpose_client_address", "purpose", "client_address"),
    )

    id: Mapped[intpk]
    purpose: Mapped[SecretPurpose] = mapped_column(str_enum(SecretPurpose))
    client_address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[created_at]
