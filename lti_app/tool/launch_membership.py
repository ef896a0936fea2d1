"""How a launch writes the launching person's membership of the course (tool.services.sync_launch):
one statement on most launches, a second when the launch brings them back into the class."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Connection, bindparam, func, update

from lti_app.db import upsert_insert
from lti_app.tool.models import Membership, MembershipStatus

CLAIM_TOOL_PLATFORM = "https://purl.imsglobal.org/spec/lti/claim/tool_platform"
MOODLE_MEMBERSHIPS = re.compile(r"/bindings/[^/]+/memberships/?$")
"""The path of Moodle's roster service (ltiservice_memberships)."""

MEMBERSHIP_KEY = ["context_id", "person_id"]
MEMBERSHIP_FIELDS = [
    "roles",
    "status",
    "is_teacher",
    "is_learner",
    "is_preview",
    "last_launch_at",
    "updated_at",
]


@functools.cache
def _statements(dialect: str) -> dict[str, Any]:
    membership = Membership.__table__
    insert = upsert_insert(dialect, membership).values(
        {
            name: bindparam(name, type_=membership.c[name].type)
            for name in MEMBERSHIP_KEY + MEMBERSHIP_FIELDS + ["first_launch_at"]
        }
    )
    updates: dict[str, Any] = {name: insert.excluded[name] for name in MEMBERSHIP_FIELDS}
    # The first launch is kept; a roster-made row (no launch yet) gets this one.
    updates["first_launch_at"] = func.coalesce(
        membership.c.first_launch_at, insert.excluded.first_launch_at
    )
    active = membership.c.status == MembershipStatus.ACTIVE
    # Moodle's "Switch role to… Student" launches the teacher's own account as a plain Learner
    # (mod/lti/locallib.php lti_get_ims_role asks mod/lti:manage of the switched role; no
    # TestUser role, unlike Canvas's Student View). A teacher who launches as a learner there
    # is therefore taken for a teacher looking at the student pages: the launch gets them, the
    # membership stays teaching and is marked the course's preview student, so the teacher is
    # not one of the class and their other tab keeps teaching. A real demotion is the roster's
    # to apply (roster.syncing.apply_members); teachers no roster lists (a site admin teaching
    # unenrolled, a category teacher, a Moodle with the roster service off) switch role too.
    listed_teacher = membership.c.is_teacher.is_(True)
    counts: ColumnElement[bool] = Membership.counts_for_grades  # type: ignore[assignment]
    as_learner = {**updates, "is_teacher": listed_teacher, "is_preview": listed_teacher}
    return {
        # An active (or new) membership is written and returned in one statement; one the
        # roster marked inactive or deleted is left as it is and not returned, so the launch
        # learns it is a return without reading the row first (then "rejoin" writes it).
        "membership": insert.on_conflict_do_update(
            index_elements=MEMBERSHIP_KEY, set_=updates, where=active
        ).returning(membership.c.person_id),
        # A launch as one of the class: a return too when the membership did not count for
        # grades before (a TA or a mentor made a student again).
        "learner_membership": insert.on_conflict_do_update(
            index_elements=MEMBERSHIP_KEY, set_=updates, where=counts
        ).returning(membership.c.person_id),
        # The same on an LMS whose teachers can switch their own account to a student's
        # (Moodle), a listed teacher aside.
        "learner_membership_switchable": insert.on_conflict_do_update(
            index_elements=MEMBERSHIP_KEY,
            set_=as_learner,
            where=counts | (active & listed_teacher),
        ).returning(membership.c.person_id),
        # A launch with no role Pathways acts on (empty or unknown roles) says nothing about
        # the membership: a student the roster listed stays one of the class.
        "guest_membership": insert.on_conflict_do_update(
            index_elements=MEMBERSHIP_KEY,
            set_={
                "last_launch_at": insert.excluded.last_launch_at,
                "first_launch_at": updates["first_launch_at"],
            },
        ),
        "rejoin": update(Membership)
        .where(
            membership.c.context_id == bindparam("key_context_id"),
            membership.c.person_id == bindparam("key_person_id"),
        )
        .values(
            {
                **{
                    name: bindparam(name, type_=membership.c[name].type)
                    for name in MEMBERSHIP_FIELDS
                },
                "first_launch_at": func.coalesce(
                    membership.c.first_launch_at, bindparam("first_launch_at")
                ),
            }
        ),
    }


def teachers_launch_as_learners(claims: Mapping[str, Any], nrps_url: object) -> bool:
    """Whether the LMS launches a teacher's own account as a plain Learner when the teacher
    looks at the course as a student: Moodle does (by its tool_platform claim, or its roster
    service's address); Canvas previews with a Test Student of its own, so there a Learner
    launch of a teacher is a real demotion."""
    tool_platform = claims.get(CLAIM_TOOL_PLATFORM)
    if isinstance(tool_platform, Mapping):
        family = tool_platform.get("product_family_code")
        if isinstance(family, str) and family.strip().lower() == "moodle":
            return True
    return isinstance(nrps_url, str) and is_moodle_roster_url(nrps_url)


def is_moodle_roster_url(nrps_url: str) -> bool:
    """Whether a roster service address is Moodle's (ltiservice_memberships)."""
    return MOODLE_MEMBERSHIPS.search(urlsplit(nrps_url).path) is not None


def write_membership(
    conn: Connection,
    values: dict[str, Any],
    *,
    teachers_switch_to_learner: bool = False,
    acts_on_roles: bool = True,
) -> bool:
    """Store what the launch says about the membership; True when the launch brought the person
    back: the membership did not count for grades and now does, or was inactive or deleted.

    The worker skips the scores of people who do not count (grades.claiming), so what changed
    meanwhile must be sent again (grades.views.resend_to_returning_learner).
    """
    statements = _statements(conn.dialect.name)
    if not acts_on_roles:
        conn.execute(statements["guest_membership"], values)
        return False
    launched = Membership(
        status=values["status"], is_learner=values["is_learner"], is_preview=values["is_preview"]
    )
    if not launched.counts_for_grades or values["is_teacher"]:
        # A launch that teaches (Instructor and Learner both: a Canvas teacher also enrolled
        # as a student) is never the preview student nor a return to the class.
        upsert = statements["membership"]
    elif teachers_switch_to_learner:
        upsert = statements["learner_membership_switchable"]
    else:
        upsert = statements["learner_membership"]
    if conn.execute(upsert, values).first() is not None:
        return False
    rejoin = {name: values[name] for name in [*MEMBERSHIP_FIELDS, "first_launch_at"]}
    rejoin.update(key_context_id=values["context_id"], key_person_id=values["person_id"])
    conn.execute(statements["rejoin"], rejoin)
    return True
