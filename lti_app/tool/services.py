"""Turn a validated launch into our records: person, course, placement, membership, session."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from lti_app.db import upsert_insert, utcnow
from lti_app.errors import LaunchError
from lti_app.mastery.models import MasteryScale
from lti_app.timezones import zone_named
from lti_app.tool.launch import USED, ValidatedLaunch
from lti_app.tool.launch_membership import teachers_launch_as_learners, write_membership
from lti_app.tool.launch_rows import RowRecord
from lti_app.tool.login import PURGE_ONE_IN, purge_expired
from lti_app.tool.messages import CLAIM, CLAIM_AGS, CLAIM_DL, CLAIM_NRPS, DEEP_LINKING_REQUEST
from lti_app.tool.models import (
    LOCALE_MAX_LENGTH,
    Context,
    Deployment,
    DeploymentStatus,
    LaunchSession,
    Membership,
    MembershipStatus,
    Person,
    Platform,
    ResourceLink,
)
from lti_app.tool.roles import (
    DEEP_LINKING_ROLES,
    CourseRole,
    context_role_names,
    course_role,
    is_preview,
)


@dataclass(frozen=True)
class LaunchContext:
    """What views need after a launch, without touching claims again."""

    launch: LaunchSession
    person: Person
    context: Context | None
    resource_link: ResourceLink | None
    left_course: bool = False
    """The LMS's roster has since marked this person inactive or deleted in the course: the
    launch no longer vouches for them (web.current_launch refuses it)."""
    no_longer_teaches: bool = False
    """A teacher's launch whose teaching role the LMS's roster has since taken away."""
    rejoined_course: bool = False
    """This launch made the membership count for grades again (it was inactive or deleted, or
    a teacher's or mentor's), or active again: what was held back from the LMS meanwhile
    (grades.claiming) must be sent again (launch_membership.write_membership)."""
    course_lacks_scale: bool = False
    """The course has no mastery scale stored yet (read with the launch session, at no extra
    statement): `web.current_launch` stores and commits the default before the page runs."""

    @property
    def is_placing_content(self) -> bool:
        """A teacher's deep-linking session: its pages stand in the LMS's "add content"
        dialog, whose only way back to the LMS is the picker's answer."""
        return (
            self.launch.message_type == DEEP_LINKING_REQUEST
            and self.launch.role in DEEP_LINKING_ROLES
        )


NAME_LIMITS = {"name": 1024, "given_name": 512, "family_name": 512}
NAME_CLAIMS = tuple(NAME_LIMITS)


@functools.cache
def _statements(dialect: str) -> dict[str, Any]:
    return {
        "person": RowRecord.build(
            dialect,
            Person,
            ("platform_id", "sub"),
            (*NAME_CLAIMS, "email", "picture"),
        ),
        # A launch that names nobody (Moodle's "Share launcher's name with tool: Delegate to
        # teacher", per activity) keeps the names an earlier launch or the roster stored, as
        # a roster sync does (roster.syncing.NAME_FIELDS): the class list would otherwise
        # call the student "User user-s02" until their next named launch.
        "person_unnamed": RowRecord.build(
            dialect, Person, ("platform_id", "sub"), ("email", "picture")
        ),
        "context": RowRecord.build(
            dialect, Context, ("platform_id", "context_id"), ("title", "label")
        ),
        # A teacher's launch that says which zone the LMS is in writes it too; other launches
        # leave the zone as the last teacher's launch set it.
        "context_with_zone": RowRecord.build(
            dialect, Context, ("platform_id", "context_id"), ("title", "label", "lms_time_zone")
        ),
        "resource_link": RowRecord.build(
            dialect,
            ResourceLink,
            ("platform_id", "resource_link_id"),
            ("context_id", "title", "custom"),
        ),
        # The login's single use: a replay, or a race of two posts of one launch, inserts
        # nothing. (rowcount is not reliable here, psycopg reports -1: the returned row is.)
        "launch_session": upsert_insert(dialect, LaunchSession.__table__)
        .on_conflict_do_nothing(index_elements=["login_nonce"])
        .returning(LaunchSession.__table__.c.id),
    }


def _text(value: Any, limit: int) -> str:
    # A withheld email or picture (privacy settings) clears what an earlier launch told us;
    # so does a withheld name when the launch sends another. NUL is valid JSON but PostgreSQL
    # text cannot hold it.
    return value.replace("\x00", "")[:limit] if isinstance(value, str) else ""


def _service_url(value: Any) -> str | None:
    """A URL the launch gave for a service, or None when it is not one we could call."""
    if not isinstance(value, str) or len(value) > URL_MAX_LENGTH or "\x00" in value:
        return None
    parts = urlsplit(value)
    return value if parts.scheme in ("https", "http") and parts.netloc else None


URL_MAX_LENGTH = 2048


def sync_launch(session: Session, launch: ValidatedLaunch, *, ttl_seconds: int) -> LaunchContext:
    """Upsert what the launch says about the person and course; open a launch session.

    Core statements on the session's connection, built once per database kind: a launch is
    the hottest write path (a class of thirty at 8 a.m.), and the ORM's unit of work around
    these five rows cost more than the database did. The returned objects are plain copies
    of the stored rows, not tracked by the session.
    """
    claims = launch.claims
    platform = launch.platform
    conn = session.connection()
    statements = _statements(conn.dialect.name)
    now = utcnow()
    person_values = {
        "platform_id": platform.id,
        "sub": str(claims["sub"]),
        "email": _text(claims.get("email"), 512),
        "picture": _text(claims.get("picture"), 2048),
        "updated_at": now,
    }
    named = any(isinstance(claims.get(name), str) for name in NAME_CLAIMS)
    if named:
        person_values.update(
            {name: _text(claims.get(name), limit) for name, limit in NAME_LIMITS.items()}
        )
    person_record = statements["person" if named else "person_unnamed"]
    person_row = person_record.ensure(session, conn, person_values)
    person = Person(**person_row._mapping)
    roles = [r for r in claims.get(CLAIM + "roles") or [] if isinstance(r, str)]
    role = course_role(roles)

    nrps = claims.get(CLAIM_NRPS)
    context: Context | None = None
    rejoined = False
    context_claim = claims.get(CLAIM + "context")
    if isinstance(context_claim, dict) and context_claim.get("id"):
        course = {
            "platform_id": platform.id,
            "context_id": str(context_claim["id"]),
            "title": _text(context_claim.get("title"), 1024),
            "label": _text(context_claim.get("label"), 255),
            "updated_at": now,
        }
        lms_zone = _lms_time_zone(claims) if role is CourseRole.TEACHER else None
        if lms_zone is not None:
            course["lms_time_zone"] = lms_zone
        record = "context" if lms_zone is None else "context_with_zone"
        context_row = statements[record].ensure(session, conn, course)
        context = Context(**context_row._mapping)
        membership = {
            "context_id": context.id,
            "person_id": person.id,
            "roles": roles,
            "status": MembershipStatus.ACTIVE,
            "is_teacher": role is CourseRole.TEACHER,
            "is_learner": "Learner" in context_role_names(roles),
            "is_preview": is_preview(roles),
            "first_launch_at": now,
            "last_launch_at": now,
            "updated_at": now,
        }
        rejoined = write_membership(
            conn,
            membership,
            teachers_switch_to_learner=teachers_launch_as_learners(
                claims, nrps.get("context_memberships_url") if isinstance(nrps, dict) else None
            ),
            acts_on_roles=role is not CourseRole.GUEST,
        )

    resource_link: ResourceLink | None = None
    link_claim = claims.get(CLAIM + "resource_link")
    if isinstance(link_claim, dict) and link_claim.get("id"):
        custom = claims.get(CLAIM + "custom")
        link_row = statements["resource_link"].ensure(
            session,
            conn,
            {
                "platform_id": platform.id,
                "resource_link_id": str(link_claim["id"]),
                "context_id": context.id if context else None,
                "title": _text(link_claim.get("title"), 1024),
                "custom": custom if isinstance(custom, dict) else {},
            },
        )
        resource_link = ResourceLink(**link_row._mapping)

    ags = claims.get(CLAIM_AGS)
    presentation = claims.get(CLAIM + "launch_presentation")
    dl_settings = claims.get(CLAIM_DL + "deep_linking_settings")
    values = {
        "id": secrets.token_urlsafe(24),
        "login_nonce": launch.login_nonce,
        "platform_id": platform.id,
        "deployment_id": launch.deployment.id,
        "context_id": context.id if context else None,
        "resource_link_id": resource_link.id if resource_link else None,
        "person_id": person.id,
        "roles": roles,
        "role": role.value,
        "message_type": launch.message_type,
        "nrps_url": _service_url(nrps.get("context_memberships_url"))
        if isinstance(nrps, dict)
        else None,
        "ags_claim": ags if isinstance(ags, dict) else None,
        "deep_linking_settings": dl_settings if isinstance(dl_settings, dict) else None,
        "return_url": _service_url(presentation.get("return_url"))
        if isinstance(presentation, dict)
        else None,
        "mentees": _mentees(claims.get(CLAIM + "role_scope_mentor")),
        "locale": (_text(presentation.get("locale"), LOCALE_MAX_LENGTH).strip() or None)
        if isinstance(presentation, dict)
        else None,
        "created_at": now,
        "expires_at": now + timedelta(seconds=ttl_seconds),
    }
    if conn.execute(statements["launch_session"], values).first() is None:
        raise LaunchError(USED)
    if secrets.randbelow(PURGE_ONE_IN) == 0:
        purge_expired(session)
    return LaunchContext(
        LaunchSession(**values), person, context, resource_link, rejoined_course=rejoined
    )


def _lms_time_zone(claims: dict[str, Any]) -> str | None:
    """The IANA zone the launch's `timezone` custom field names, or None.

    Canvas fills it from `$Person.address.timezone` (registration.configuration): the
    launching user's zone, so only a teacher's launch speaks for the course. A platform that
    does not know the variable sends it back unreplaced ("$Person.address.timezone"), which is
    no zone; so is anything else a launch puts there.
    """
    custom = claims.get(CLAIM + "custom")
    zone = zone_named(custom.get("timezone")) if isinstance(custom, dict) else None
    return zone.key if zone is not None else None


MAX_MENTEES = 500
"""More students than any mentor follows in one course: a Canvas observer is also how schools
link a counsellor or learning-support teacher to a whole year group, and each observed student
is one entry. The rest of a longer list is not kept."""


def _mentees(claim: Any) -> list[str]:
    """The students a launch names as observed (Canvas: each observed student's LTI id, which is
    their `sub`); anything but a list of ids names nobody. Kept whatever the launch's role: a
    Canvas student who also observes a sibling in the same course launches as a learner."""
    if not isinstance(claim, list):
        return []
    # No NUL: no `sub` holds one (messages.id_claim refuses it), and PostgreSQL refuses a text
    # parameter with one, so a single such entry made every page of the mentor's session a 500.
    usable = (
        sub
        for sub in claim[:MAX_MENTEES]
        if isinstance(sub, str) and 0 < len(sub) <= 255 and "\x00" not in sub
    )
    return list(dict.fromkeys(usable))


_HAS_SCALE = (
    exists()
    .where(MasteryScale.context_id == LaunchSession.context_id)
    .correlate(LaunchSession)
    .label("has_scale")
)


def load_launch_context(session: Session, launch_session_id: str) -> LaunchContext | None:
    """Reload a launch session and what it points at, in one query; None when gone or expired."""
    row = session.execute(
        select(
            LaunchSession,
            Person,
            Context,
            ResourceLink,
            Membership.status,
            Membership.is_teacher,
            _HAS_SCALE,
        )
        .join(Person, Person.id == LaunchSession.person_id)
        .outerjoin(Context, Context.id == LaunchSession.context_id)
        .outerjoin(ResourceLink, ResourceLink.id == LaunchSession.resource_link_id)
        # A registration or deployment an administrator disabled ends its open sessions too.
        .join(Deployment, Deployment.id == LaunchSession.deployment_id)
        .join(Platform, Platform.id == LaunchSession.platform_id)
        .outerjoin(
            Membership,
            (Membership.context_id == LaunchSession.context_id)
            & (Membership.person_id == LaunchSession.person_id),
        )
        .where(
            LaunchSession.id == launch_session_id,
            Deployment.status == DeploymentStatus.ACTIVE,
            Platform.is_active.is_(True),
        )
    ).first()
    if row is None:
        return None
    launch, person, context, link, status, is_teacher, has_scale = row
    if launch.expires_at <= utcnow():
        return None
    return LaunchContext(
        launch,
        person,
        context,
        link,
        left_course=_left_course(launch, status),
        # The launch itself marked the membership as teaching: only a later roster sync that
        # listed the person without a teaching role (say, as a student now) unmarks it.
        no_longer_teaches=launch.role == CourseRole.TEACHER.value and is_teacher is False,
        course_lacks_scale=context is not None and not has_scale,
    )


def _left_course(launch: LaunchSession, status: MembershipStatus | None) -> bool:
    # A roster sync marks only people the LMS stopped listing (or listed as inactive), never
    # the teacher whose launch or Refresh started it (roster.syncing.deactivate_missing). An
    # LMS administrator's launch acts by the institution role, not a membership, so no roster
    # can end it.
    return (
        status is not None
        and status is not MembershipStatus.ACTIVE
        and launch.role != CourseRole.ADMIN.value
    )
