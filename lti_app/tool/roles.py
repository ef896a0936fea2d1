"""What a launch's LTI roles allow in this course. Context roles decide; institution roles don't."""

from __future__ import annotations

import enum
from collections.abc import Iterable

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
MEMBERSHIP_SUB = "http://purl.imsglobal.org/vocab/lis/v2/membership/"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
# LTI 1.3 Core §A.2.5 (LTI's own system role). Canvas gives it, with Learner, to the "Test
# Student" its Student View makes: a teacher looking at the course as a student would.
TEST_USER = "http://purl.imsglobal.org/vocab/lti/system/person#TestUser"

TEACHING_ROLES = frozenset({"Instructor", "TeachingAssistant", "ContentDeveloper", "Administrator"})
LEARNER_ROLES = frozenset({"Learner"})
MENTOR_ROLES = frozenset({"Mentor"})


class CourseRole(enum.StrEnum):
    TEACHER = "teacher"
    LEARNER = "learner"
    ADMIN = "admin"
    """An LMS administrator with no role in this course (admin placements)."""
    MENTOR = "mentor"
    """A parent or other mentor (Canvas's observers): sees the family report of each student
    the launch names in `role_scope_mentor`, and nothing else."""
    GUEST = "guest"
    """Someone the course gave no role we act on (empty roles, unknown roles)."""


# An LMS administrator who is not enrolled (Canvas: institution Administrator only) is sent a
# deep-linking request only when the LMS lets them edit the course's content.
DEEP_LINKING_ROLES = (CourseRole.TEACHER.value, CourseRole.ADMIN.value)


def context_role_names(roles: Iterable[str]) -> set[str]:
    """Short names of the context (membership) roles, from full URIs or deprecated short names.

    `…/membership/Instructor#TeachingAssistant` is a sub-role of Instructor: it counts as its
    principal role, Instructor. Counting the sub-role's own name made a teacher of
    `…/membership/Learner#Instructor` (a learner's sub-role, LTI 1.3 Core §A.2.3.1), and
    nobody of `…/membership/Instructor#Grader` sent without its principal role (including it
    is only best practice, Core §5.3.7). Institution and system roles are not context roles.
    """
    names: set[str] = set()
    for role in roles:
        if not isinstance(role, str):
            continue
        if role.startswith(MEMBERSHIP):
            names.add(role[len(MEMBERSHIP) :])
        elif role.startswith(MEMBERSHIP_SUB) and "#" in role:
            names.add(role[len(MEMBERSHIP_SUB) :].split("#", 1)[0])
        elif "/" not in role and "#" not in role and ":" not in role:
            # LTI 1.3 still allows the deprecated simple names for context roles.
            names.add(role)
    return names


def is_lms_admin(roles: Iterable[str]) -> bool:
    return any(
        isinstance(r, str)
        and r in {SYSTEM + "Administrator", INSTITUTION + "Administrator", SYSTEM + "SysAdmin"}
        for r in roles
    )


def is_preview(roles: Iterable[str]) -> bool:
    """Whether these roles are an LMS's preview student (Canvas's Test Student), not a person.

    Such a launch still gets the student pages (the teacher is checking what students see),
    but the membership is left out of class lists and the gradebook.
    """
    return any(r == TEST_USER for r in roles if isinstance(r, str))


def course_role(roles: Iterable[str]) -> CourseRole:
    """Decide by the context roles of this course; an LMS admin alone is not a teacher."""
    roles = list(roles)
    names = context_role_names(roles)
    if names & TEACHING_ROLES:
        return CourseRole.TEACHER
    if names & LEARNER_ROLES:
        return CourseRole.LEARNER
    if names & MENTOR_ROLES:
        return CourseRole.MENTOR
    if is_lms_admin(roles):
        return CourseRole.ADMIN
    return CourseRole.GUEST
