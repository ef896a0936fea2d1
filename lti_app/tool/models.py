"""Registrations, deployments, tool keys, and what launches tell us."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, ForeignKey, Index, String, Text, UniqueConstraint, and_
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_app.db import Base, created_at, intpk, str_enum, updated_at

LOCALE_MAX_LENGTH = 35
"""The length of language tag every reader must take (RFC 5646 4.4.1); a longer one is cut."""


class DeploymentStatus(enum.StrEnum):
    ACTIVE = "active"
    PENDING = "pending"
    DISABLED = "disabled"


class KeyStatus(enum.StrEnum):
    ACTIVE = "active"
    """Signs new messages and is published."""
    RETIRING = "retiring"
    """Published until retire_after so messages it signed still verify; never signs."""
    RETIRED = "retired"


class MembershipStatus(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    DELETED = "deleted"


class Platform(Base):
    """One registration of Pathways on an LMS: a tenant, keyed by (issuer, client_id)."""

    __tablename__ = "platform"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[intpk]
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    auth_login_url: Mapped[str] = mapped_column(String(1024))
    token_url: Mapped[str] = mapped_column(String(1024))
    token_audience: Mapped[str | None] = mapped_column(String(1024))
    """The `aud` for client assertions when it differs from token_url (authorization_server)."""
    jwks_url: Mapped[str] = mapped_column(String(1024))
    auto_approve_deployments: Mapped[bool] = mapped_column(default=False)
    approve_first_deployment: Mapped[bool] = mapped_column(default=False)
    """The LMS's registration answer named no deployment (Canvas makes it when its admin
    enables the tool, after the registration): the first one to launch is the one the admin
    confirmed, and is approved then. Cleared when it is used."""
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[created_at]

    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="platform", cascade="all, delete-orphan", order_by="Deployment.id"
    )


class Deployment(Base):
    """A deployment of a registration (Canvas: per account or course install)."""

    __tablename__ = "deployment"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id"),)

    id: Mapped[intpk]
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[DeploymentStatus] = mapped_column(
        str_enum(DeploymentStatus), default=DeploymentStatus.ACTIVE
    )
    created_at: Mapped[created_at]
    approved_at: Mapped[datetime | None]

    platform: Mapped[Platform] = relationship(back_populates="deployments")


class ToolKey(Base):
    """An RSA key pair of the tool; the private half is encrypted at rest."""

    __tablename__ = "tool_key"

    id: Mapped[intpk]
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_pem: Mapped[str] = mapped_column(Text)
    private_pem_encrypted: Mapped[str] = mapped_column(Text)
    status: Mapped[KeyStatus] = mapped_column(str_enum(KeyStatus), default=KeyStatus.ACTIVE)
    created_at: Mapped[created_at]
    retire_after: Mapped[datetime | None]


class JwksCacheEntry(Base):
    """A platform's key set as last fetched, shared by every worker."""

    __tablename__ = "jwks_cache_entry"

    jwks_url: Mapped[str] = mapped_column(String(1024), primary_key=True)
    keys: Mapped[dict[str, Any]] = mapped_column(JSON)
    fetched_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Context(Base):
    """A course on a platform."""

    __tablename__ = "context"
    __table_args__ = (UniqueConstraint("platform_id", "context_id"),)

    id: Mapped[intpk]
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(1024), default="")
    label: Mapped[str] = mapped_column(String(255), default="")
    time_zone: Mapped[str | None] = mapped_column(String(64))
    """The IANA zone the teacher chose for the course's dates; None: the LMS's, else the
    school's (lti_app.timezones)."""
    lms_time_zone: Mapped[str | None] = mapped_column(String(64))
    """The IANA zone the LMS last sent with a teacher's launch (Canvas: the teacher's own)."""
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]


class ResourceLink(Base):
    """One placement of Pathways in a course."""

    __tablename__ = "resource_link"
    __table_args__ = (UniqueConstraint("platform_id", "resource_link_id"),)

    id: Mapped[intpk]
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    context_id: Mapped[int | None] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    resource_link_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(1024), default="")
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[created_at]


class Person(Base):
    """A user of one platform registration; never matched across issuers."""

    __tablename__ = "person"
    __table_args__ = (UniqueConstraint("platform_id", "sub"),)

    id: Mapped[intpk]
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(1024), default="")
    given_name: Mapped[str] = mapped_column(String(512), default="")
    family_name: Mapped[str] = mapped_column(String(512), default="")
    email: Mapped[str] = mapped_column(String(512), default="")
    picture: Mapped[str] = mapped_column(String(2048), default="")
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    @property
    def display_name(self) -> str:
        return display_name(self.name, self.given_name, self.family_name, self.email, self.sub)


def display_name(name: str, given_name: str, family_name: str, email: str, sub: str) -> str:
    """How to call a person: the LMS's full name, else given + family, else email, else id."""
    full = name or " ".join(p for p in (given_name, family_name) if p)
    return full or email or f"User {sub[:8]}"


class Membership(Base):
    """A person in a course with their LTI roles, from launches and from the roster."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("context_id", "person_id"),)

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[MembershipStatus] = mapped_column(
        str_enum(MembershipStatus), default=MembershipStatus.ACTIVE
    )
    is_teacher: Mapped[bool] = mapped_column(default=False)
    is_learner: Mapped[bool] = mapped_column(default=False)
    is_preview: Mapped[bool] = mapped_column(default=False)
    """The LMS's preview student (Canvas's Test Student, role TestUser): a teacher seeing the
    course as a student would. Not listed with the class, not sent to the gradebook."""
    first_launch_at: Mapped[datetime | None]
    last_launch_at: Mapped[datetime | None]
    first_listed_at: Mapped[datetime | None]
    """When a roster sync first listed them (None: known from launches only). Only a teacher
    the roster has listed is ended by a roster that leaves them out: the LMS launches some
    teachers it never lists (Moodle's teacher of a whole category, not enrolled)."""
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]

    person: Mapped[Person] = relationship()

    @hybrid_property
    def counts_for_grades(self) -> bool:
        """One of the class whose levels go to the LMS's gradebook: active, a learner, not the
        preview student. A membership that comes to count again (by a launch or a roster sync)
        has its current levels sent again: the worker skipped them meanwhile."""
        return self.status == MembershipStatus.ACTIVE and self.is_learner and not self.is_preview

    @counts_for_grades.inplace.expression
    @classmethod
    def _counts_for_grades_expression(cls) -> ColumnElement[bool]:
        return and_(
            cls.status == MembershipStatus.ACTIVE,
            cls.is_learner.is_(True),
            cls.is_preview.is_(False),
        )


class LaunchSession(Base):
    """What a successful launch established, for the in-frame requests that follow."""

    __tablename__ = "launch_session"
    __table_args__ = (Index("ix_launch_session_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    login_nonce: Mapped[str | None] = mapped_column(String(128), unique=True)
    """The nonce of the login this launch completed. The login itself travels signed in the
    OIDC `state` (no write at login); this unique column is what makes it single-use, in the
    launch's one insert. A session outlives the signed state that could replay it."""
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"))
    context_id: Mapped[int | None] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    resource_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_link.id", ondelete="CASCADE")
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    role: Mapped[str] = mapped_column(String(16))
    """teacher, learner, admin or guest: what this launch may do in this course."""
    message_type: Mapped[str] = mapped_column(String(64))
    nrps_url: Mapped[str | None] = mapped_column(String(2048))
    ags_claim: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    deep_linking_settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    return_url: Mapped[str | None] = mapped_column(String(2048))
    mentees: Mapped[list[str] | None] = mapped_column(JSON)
    """A mentor's launch: the LMS user ids (sub) of the students it may see
    (`role_scope_mentor`); None for every other role."""
    locale: Mapped[str | None] = mapped_column(String(LOCALE_MAX_LENGTH))
    """The user's language as the LMS named it (`launch_presentation.locale`: Canvas sends the
    user's locale, "es-MX"; Moodle the user's lang, "es_mx"); None when it named none."""
    created_at: Mapped[created_at]
    expires_at: Mapped[datetime]


class LaunchFailure(Base):
    """A rejected launch, kept for the admin console (no tokens, no secrets)."""

    __tablename__ = "launch_error_log"

    id: Mapped[intpk]
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platform.id", ondelete="CASCADE"), index=True
    )
    issuer: Mapped[str] = mapped_column(String(255), default="")
    client_id: Mapped[str] = mapped_column(String(255), default="")
    deployment_id: Mapped[str] = mapped_column(String(255), default="")
    reason: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[created_at]


class ServiceToken(Base):
    """An OAuth2 access token for LMS services, shared by workers until shortly before expiry."""

    __tablename__ = "service_token"
    __table_args__ = (UniqueConstraint("platform_id", "token_url", "scopes"),)

    id: Mapped[intpk]
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    token_url: Mapped[str] = mapped_column(String(1024))
    scopes: Mapped[str] = mapped_column(String(2048))
    """The requested scopes, sorted and space-separated: part of the cache key."""
    granted_scopes: Mapped[str] = mapped_column(String(2048), default="")
    access_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime]
    created_at: Mapped[created_at]
