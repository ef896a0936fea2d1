"""What a registration was made with and granted, and the LMS service calls that failed."""

from __future__ import annotations

import enum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, created_at, intpk, str_enum, updated_at


class RegistrationMethod(enum.StrEnum):
    DYNAMIC = "dynamic"
    """LTI Dynamic Registration, from /lti/register."""
    MANUAL = "manual"


class PlatformRegistration(Base):
    """How a platform registration was made, and the services the LMS granted it."""

    __tablename__ = "platform_registration"

    id: Mapped[intpk]
    platform_id: Mapped[int] = mapped_column(
        ForeignKey("platform.id", ondelete="CASCADE"), unique=True
    )
    method: Mapped[RegistrationMethod] = mapped_column(str_enum(RegistrationMethod))
    product_family_code: Mapped[str] = mapped_column(String(64), default="")
    """The LMS product as it names itself (canvas, moodle, ...), from its configuration."""
    platform_version: Mapped[str] = mapped_column(String(64), default="")
    openid_configuration_url: Mapped[str] = mapped_column(String(1024), default="")
    registration_endpoint: Mapped[str] = mapped_column(String(1024), default="")
    requested_scopes: Mapped[str] = mapped_column(Text, default="")
    """Space-separated service scopes Pathways asked for."""
    granted_scopes: Mapped[str] = mapped_column(Text, default="")
    """Space-separated scopes in the LMS's registration answer (what it says it granted)."""
    privacy_level: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class RegistrationSubmission(Base):
    """A registration sent to an LMS. The same one sent twice (a double click, Back or a reload
    and submit again) must not register Pathways twice: Canvas accepts its registration token
    for an hour."""

    __tablename__ = "registration_submission"

    form_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the configuration URL and registration token (of the sealed form the confirm
    page carried, when the LMS gave no token). The column keeps its first name."""
    created_at: Mapped[created_at]


class ServiceFailure(Base):
    """A failed call to an LMS service (roster, gradebook, token), kept for the admin console."""

    __tablename__ = "service_error_log"

    id: Mapped[intpk]
    platform_id: Mapped[int] = mapped_column(
        ForeignKey("platform.id", ondelete="CASCADE"), index=True
    )
    service: Mapped[str] = mapped_column(String(32))
    """roster, grades or token."""
    status: Mapped[int | None]
    """The LMS's HTTP status, when it answered."""
    reason: Mapped[str] = mapped_column(Text)
    """Plain words for an admin; never a token or a request body."""
    created_at: Mapped[created_at]
