"""Turn a validated launch into our records: person, course, placement, membership, session."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.db import Base, upsert_insert, utcnow
from lti_app.tool.launch import CLAIM, CLAIM_AGS, CLAIM_DL, CLAIM_NRPS, ValidatedLaunch
from lti_app.tool.models import (
    Context,
    LaunchSession,
    Membership,
    MembershipStatus,
    Person,
    ResourceLink,
)
from lti_app.tool.roles import CourseRole, context_role_names, course_role

M = TypeVar("M", bound=Base)


@dataclass(frozen=True)
class LaunchContext:
    """What views need after a launch, without touching claims again."""

    launch: LaunchSession
    person: Person
    context: Context | None
    resource_link: ResourceLink | None


def _upsert(session: Session, model: type[M], key: dict[str, Any], values: dict[str, Any]) -> M:
    """Insert the row or update it in place, in one statement; returns the row as stored."""
    stmt = (
        upsert_insert(session, model)
        .values(**key, **values)
        .on_conflict_do_update(index_elements=list(key), set_=values)
        .returning(model)
    )
    row: M = session.scalars(stmt, execution_options={"populate_existing": True}).one()
    return row


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def sync_launch(session: Session, launch: ValidatedLaunch, *, ttl_seconds: int) -> LaunchContext:
    """Upsert what the launch says about the person and course; open a launch session."""
    claims = launch.claims
    platform = launch.platform
    now = utcnow()
    person = _upsert(
        session,
        Person,
        {"platform_id": platform.id, "sub": str(claims["sub"])},
        {
            "name": _text(claims.get("name"), 1024),
            "given_name": _text(claims.get("given_name"), 512),
            "family_name": _text(claims.get("family_name"), 512),
            "email": _text(claims.get("email"), 512),
            "picture": _text(claims.get("picture"), 2048),
            "updated_at": now,
        },
    )
    roles = [r for r in claims.get(CLAIM + "roles") or [] if isinstance(r, str)]
    role = course_role(roles)

    context: Context | None = None
    context_claim = claims.get(CLAIM + "context")
    if isinstance(context_claim, dict) and context_claim.get("id"):
        context = _upsert(
            session,
            Context,
            {"platform_id": platform.id, "context_id": str(context_claim["id"])},
            {
                "title": _text(context_claim.get("title"), 1024),
                "label": _text(context_claim.get("label"), 255),
                "updated_at": now,
            },
        )
        names = context_role_names(roles)
        membership_values: dict[str, Any] = {
            "roles": roles,
            "status": MembershipStatus.ACTIVE,
            "is_teacher": role is CourseRole.TEACHER,
            "is_learner": "Learner" in names,
            "last_launch_at": now,
            "updated_at": now,
        }
        stmt = upsert_insert(session, Membership).values(
            context_id=context.id, person_id=person.id, first_launch_at=now, **membership_values
        )
        # The first launch is kept; only a roster-made row (no launch yet) gets it now.
        first = func.coalesce(Membership.__table__.c.first_launch_at, stmt.excluded.first_launch_at)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["context_id", "person_id"],
                set_={**membership_values, "first_launch_at": first},
            )
        )

    resource_link: ResourceLink | None = None
    link_claim = claims.get(CLAIM + "resource_link")
    if isinstance(link_claim, dict) and link_claim.get("id"):
        custom = claims.get(CLAIM + "custom")
        resource_link = _upsert(
            session,
            ResourceLink,
            {"platform_id": platform.id, "resource_link_id": str(link_claim["id"])},
            {
                "context_id": context.id if context else None,
                "title": _text(link_claim.get("title"), 1024),
                "custom": custom if isinstance(custom, dict) else {},
            },
        )

    nrps = claims.get(CLAIM_NRPS)
    ags = claims.get(CLAIM_AGS)
    presentation = claims.get(CLAIM + "launch_presentation")
    dl_settings = claims.get(CLAIM_DL + "deep_linking_settings")
    launch_session = LaunchSession(
        id=secrets.token_urlsafe(24),
        platform_id=platform.id,
        deployment_id=launch.deployment.id,
        context_id=context.id if context else None,
        resource_link_id=resource_link.id if resource_link else None,
        person_id=person.id,
        roles=roles,
        role=role.value,
        message_type=launch.message_type,
        nrps_url=nrps.get("context_memberships_url") if isinstance(nrps, dict) else None,
        ags_claim=ags if isinstance(ags, dict) else None,
        deep_linking_settings=dl_settings if isinstance(dl_settings, dict) else None,
        return_url=presentation.get("return_url") if isinstance(presentation, dict) else None,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    session.add(launch_session)
    session.flush()
    return LaunchContext(launch_session, person, context, resource_link)


def load_launch_context(session: Session, launch_session_id: str) -> LaunchContext | None:
    """Reload a launch session and what it points at, in one query; None when gone or expired."""
    row = session.execute(
        select(LaunchSession, Person, Context, ResourceLink)
        .join(Person, Person.id == LaunchSession.person_id)
        .outerjoin(Context, Context.id == LaunchSession.context_id)
        .outerjoin(ResourceLink, ResourceLink.id == LaunchSession.resource_link_id)
        .where(LaunchSession.id == launch_session_id)
    ).first()
    if row is None:
        return None
    launch, person, context, link = row
    if launch.expires_at <= utcnow():
        return None
    return LaunchContext(launch, person, context, link)
