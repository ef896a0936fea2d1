"""The demo LMS's people and courses: fixed data, varied on purpose (accents, scripts, markup)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

LIS = "http://purl.imsglobal.org/vocab/lis/v2"


class Role(StrEnum):
    """LIS role URIs the demo platform sends."""

    INSTRUCTOR = f"{LIS}/membership#Instructor"
    LEARNER = f"{LIS}/membership#Learner"
    MENTOR = f"{LIS}/membership#Mentor"
    """Canvas's observers (parents): sent with the observed students in `role_scope_mentor`."""
    FACULTY = f"{LIS}/institution/person#Faculty"
    STUDENT = f"{LIS}/institution/person#Student"
    INSTITUTION_ADMIN = f"{LIS}/institution/person#Administrator"
    USER = f"{LIS}/system/person#User"
    SYSTEM_ADMIN = f"{LIS}/system/person#Administrator"
    TEST_USER = "http://purl.imsglobal.org/vocab/lti/system/person#TestUser"
    """LTI's own system role: Canvas sends it beside Learner for its Student View's Test
    Student (listed in the roster and launched like a student)."""


@dataclass(frozen=True)
class Person:
    """A platform user; `user_id` is the opaque `sub` the tool sees."""

    user_id: str
    given_name: str
    family_name: str
    email: str | None
    institution_role: Role = Role.STUDENT
    """Sent beside the context role, as Canvas does; tools must authorize by the context role."""

    @property
    def name(self) -> str:
        """Full name as the platform displays it (family name first for CJK names)."""
        if self.given_name and self.family_name and _is_cjk(self.family_name):
            return f"{self.family_name}{self.given_name}"
        return " ".join(p for p in (self.given_name, self.family_name) if p)


def _is_cjk(text: str) -> bool:
    return all("\u4e00" <= ch <= "\u9fff" for ch in text)


@dataclass(frozen=True)
class Enrollment:
    """A person's place in a course: one context role (Instructor or Learner)."""

    user_id: str
    role: Role
    preview: bool = False
    """The LMS's preview student (Canvas's Test Student): also has Role.TEST_USER."""

    @property
    def roles(self) -> list[str]:
        """This enrolment's roles, as the roster lists them."""
        return [str(self.role), str(Role.TEST_USER)] if self.preview else [str(self.role)]


@dataclass(frozen=True)
class Course:
    """A course (LTI context)."""

    context_id: str
    label: str
    title: str
    enrollments: tuple[Enrollment, ...]

    def role_of(self, user_id: str) -> Role | None:
        """The context role of `user_id` here, or None when not enrolled."""
        enrollment = self.enrollment_of(user_id)
        return enrollment.role if enrollment else None

    def enrollment_of(self, user_id: str) -> Enrollment | None:
        return next((e for e in self.enrollments if e.user_id == user_id), None)


def _p(n: int, given: str, family: str, email: str | None = "") -> Person:
    user_id = f"user-s{n:02d}"
    if email == "":
        local = f"s{n:02d}"
        email = f"{local}@students.demo-lms.test"
    return Person(user_id, given, family, email)


TEACHER = Person("user-t01", "Amara", "Okafor", "amara.okafor@demo-lms.test", Role.FACULTY)
SECOND_TEACHER = Person(
    "user-t02", "Henrik", "Lindqvist", "henrik.lindqvist@demo-lms.test", Role.FACULTY
)
ADMIN = Person("user-a01", "Ada", "Admin", "admin@demo-lms.test", Role.INSTITUTION_ADMIN)
PARENT = Person("user-p01", "Máire", "O'Brien", "maire.obrien@families.demo-lms.test", Role.USER)
"""Siobhán O'Brien's mother: observes her in every course (no enrollment of her own)."""

STUDENTS: tuple[Person, ...] = (
    _p(1, "José", "Núñez"),
    _p(2, "Siobhán", "O'Brien"),
    _p(3, "小龍", "李"),
    _p(4, "Ольга", "Петрова"),
    _p(5, "محمد", "علي"),
    _p(6, "Zoë", "Müller-Schmidt"),
    _p(7, "François", "Lefèvre"),
    _p(8, "Aiyana", "Redcloud"),
    _p(9, "Nguyễn", "Thị Minh Khai"),
    _p(10, "Bobby", "<b>Tables</b>"),
    _p(11, "Chidi", "Anagonye"),
    _p(12, "Priya", "Ramanathan"),
    _p(13, "Mateus", "Gonçalves"),
    _p(14, "Aoife", "Ní Bhriain"),
    _p(15, "Kwame", "Mensah"),
    _p(16, "Søren", "Kierkegaard"),
    _p(17, "Łucja", "Wiśniewska"),
    _p(18, "Yuki", "田中"),
    _p(19, "Dmitri", "Sokolov"),
    _p(20, "Fatima", "Zahra"),
    _p(21, "Liam", "D'Angelo"),
    _p(22, "Emma", "van der Berg"),
    _p(23, "Ngozi", "Adichie"),
    _p(24, "Tomás", "Ó Súilleabháin"),
    _p(25, "Hana", "Kovářová"),
    _p(26, "Mei", "陈"),
    _p(27, "Oscar", "Johansson"),
    _p(28, "Leilani", "Kahale"),
    _p(29, "Noah", "Smith-Jones"),
    _p(30, "Kai", "", email=None),  # a single name and no email: both are legal in LTI
)

PEOPLE: dict[str, Person] = {
    p.user_id: p for p in (TEACHER, SECOND_TEACHER, ADMIN, PARENT, *STUDENTS)
}
OBSERVES: dict[str, tuple[str, ...]] = {PARENT.user_id: ("user-s02",)}
"""Who each parent observes (Canvas: ObserverEnrollments linked to the students)."""

BIOLOGY = Course(
    context_id="course-bio9",
    label="BIO9",
    title="Biology 9 — Living Systems",
    enrollments=(
        Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
        *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS),
    ),
)

# Tiny, and sharing one student and no teacher with Biology: for cross-course checks.
CHEMISTRY = Course(
    context_id="course-chem-club",
    label="CHEM-CLUB",
    title="Chemistry Club",
    enrollments=(
        Enrollment(SECOND_TEACHER.user_id, Role.INSTRUCTOR),
        Enrollment(STUDENTS[0].user_id, Role.LEARNER),
        Enrollment(STUDENTS[1].user_id, Role.LEARNER),
    ),
)

COURSES: dict[str, Course] = {c.context_id: c for c in (BIOLOGY, CHEMISTRY)}

DEFAULT_RESOURCE_LINK_ID = "rl-pathways"
"""Each course starts with one placement of Pathways, `<DEFAULT_RESOURCE_LINK_ID>-<label>`."""


def default_resource_link_id(course: Course) -> str:
    """The id of the course's pre-placed Pathways link."""
    return f"{DEFAULT_RESOURCE_LINK_ID}-{course.label.lower()}"


def roles_for(person: Person, course: Course | None) -> list[str]:
    """The roles claim for `person` launching in `course` (context role first, then institution)."""
    roles: list[str] = []
    enrollment = course.enrollment_of(person.user_id) if course else None
    if enrollment is not None:
        roles.extend(enrollment.roles)
    elif course is not None and observed_in(person, course):
        roles.append(Role.MENTOR)
    roles.append(person.institution_role)
    if person.institution_role is Role.INSTITUTION_ADMIN:
        roles.append(Role.SYSTEM_ADMIN)
    return [str(r) for r in roles]


def observed_in(person: Person, course: Course) -> list[str]:
    """The students of `course` that `person` observes (their `role_scope_mentor`)."""
    return [s for s in OBSERVES.get(person.user_id, ()) if course.role_of(s) is Role.LEARNER]
