"""A course with hostile but real data, for the layout probes (test_layout_crafted.py).

The people and the course are added to the demo LMS's own seed for the length of a module, so
their names and the course title reach Pathways the way an LMS sends them: in the launch's
id_token and in the roster (NRPS). What teachers type (competencies, pathways, notes, groups)
is stored with Pathways' own services, as the editors would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.importing import import_csv
from lti_app.competencies.models import Competency
from lti_app.db import Database, utcnow
from lti_app.demo import seed as lms_seed
from lti_app.demo.platform import DemoPlatform
from lti_app.demo.seed import Course, Enrollment, Person, Role
from lti_app.demo.server import RunningPlatform
from lti_app.demo.state import ResourceLink
from lti_app.insights.groups import create_group
from lti_app.learners.goals_and_check_ins import add_check_in, add_goal
from lti_app.learners.models import GoalStatus
from lti_app.learners.services import update_profile
from lti_app.learners.vocab import CareerCluster, Modality
from lti_app.mastery.models import Evidence, EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices
from lti_app.pathways.models import TITLE_MAX_LENGTH as OPTION_TITLE_MAX
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.services import create_pathway, create_step
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Context, Platform
from lti_app.tool.models import Person as ToolPerson
from tests.conftest import registration_of

CONTEXT_ID = "course-hostile-layout"
LINK_ID = "rl-pathways-hostile-layout"

LONG_NAME = ("Wolfeschlegelsteinhausenbergerdorff" * 6)[:200]
"""A 200-character given name without a space: what an LMS sends when SIS data is odd."""
COURSE_TITLE = (
    "Biology 9 — Living Systems, Ecosystems and Scientific Inquiry for the whole year group "
    "(sections A, B, C and D, co-taught, with the lab practicals and the field trip) "
    "SIS:2024-2025/BIO9-LIVING-SYSTEMS-ECOSYSTEMS-INQUIRY-ALLSECTIONS-COTAUGHT "
    "علوم الأحياء للصف التاسع — 生物学九年级 — ביולוגיה לכיתה ט׳ "  # noqa: RUF001
)
COURSE_TITLE = (COURSE_TITLE * 2)[:300]
LONG_CODE = "SCI.HS.LS1-1.STRUCTURE-FUNCTION.CROSSCUT"
assert len(LONG_CODE) == 40
LONG_URL = (
    "https://drive.example-school-district.org/files/d/"
    + "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789" * 5
    + "/view?usp=sharing&resourcekey=0-abcdefghijklmnopqrstuvwxyz"
)
LONG_WORD_TITLE = "Photosynthesis" * 6 + " and respiration: " + "x" * 40
OPTION_TITLE = (
    "Build a working model of a plant or animal cell from everyday materials at home, "
    "label every organelle in two languages (English and the language of your family), "
    "and present it to the class " + "Supercalifragilisticexpialidocious" * 3
)[:OPTION_TITLE_MAX]
"""The longest option title the editor accepts (the column holds 255 characters)."""

ARABIC = ("محمد عبد الرحمن", "الهاشمي")
HEBREW = ("אברהם יהושע", "בן־דוד")
CHINESE = ("小龍", "李")


def _person(user_id: str, given: str, family: str, role: Role = Role.STUDENT) -> Person:
    return Person(user_id, given, family, f"{user_id}@students.demo-lms.test", role)


TEACHER = _person("user-hx-t01", "أمارا ליאורה", "Okafor-" + "Vanderwaalsenbergh" * 5, Role.FACULTY)
STUDENT = _person("user-hx-s01", LONG_NAME, "")
ADMIN = _person("user-hx-a01", "Administrator " + "ל" * 30, "عبد " * 20, Role.INSTITUTION_ADMIN)
OTHERS = (
    _person("user-hx-s02", *ARABIC),
    _person("user-hx-s03", *HEBREW),
    _person("user-hx-s04", *CHINESE),
    *(_person(f"user-hx-s{n:02d}", f"Learner{n:02d}", "Grid") for n in range(5, 13)),
)
STUDENTS = (STUDENT, *OTHERS)

COURSE = Course(
    context_id=CONTEXT_ID,
    label="BIO9-" + "HOSTILE" * 6,
    title=COURSE_TITLE,
    enrollments=(
        Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
        *(Enrollment(s.user_id, Role.LEARNER) for s in STUDENTS),
    ),
)


@dataclass(frozen=True)
class Seeded:
    """Ids of what the pages under test show."""

    context_id: int
    student_id: int
    arabic_id: int
    competency_id: int
    long_code_id: int
    pathway_id: int
    step_id: int
    option_id: int
    group_id: int
    evidence_id: int


@contextmanager
def hostile_lms(platform: DemoPlatform) -> Iterator[None]:
    """Add the course and its people to the demo LMS while the module runs."""
    people = (TEACHER, ADMIN, *STUDENTS)
    for person in people:
        lms_seed.PEOPLE[person.user_id] = person
    lms_seed.COURSES[CONTEXT_ID] = COURSE
    platform.state.resource_links[LINK_ID] = ResourceLink(LINK_ID, CONTEXT_ID, "Pathways")
    try:
        yield
    finally:
        platform.state.resource_links.pop(LINK_ID, None)
        lms_seed.COURSES.pop(CONTEXT_ID, None)
        for person in people:
            lms_seed.PEOPLE.pop(person.user_id, None)


def _framework_csv() -> str:
    """40 competencies: long codes, long and right-to-left and Chinese titles."""
    rows = ["code,title,description,parent_code,prerequisite_codes,kind"]
    rows.append("HE.1,מבנה התא ותפקידו,תיאור,,,academic")
    rows.append(f"{LONG_CODE},{LONG_WORD_TITLE},See {LONG_URL},HE.1,,academic")
    rows.append(f'AR.1,"{ARABIC[0]}: بنية الخلية ووظيفتها",وصف طويل للكفاية,,,academic')
    rows.append("ZH.1,细胞结构与功能以及显微镜的使用和观察记录,描述,,,academic")
    for i in range(36):
        code = f"G{i + 1:02d}.{'LONGCODE' * 3}"[:40] if i % 5 == 0 else f"G{i + 1:02d}"
        title = f"Grid competency {i + 1} " + ("with a much longer title " * 8 if i == 3 else "")
        rows.append(f'{code},"{title.strip()}",,,,academic')
    return "\n".join(rows) + "\n"


def seed_hostile_course(database_url: str, lms: RunningPlatform) -> Seeded:
    """Store the course's roster (as a roster sync would) and what its teacher would write."""
    db = Database(database_url)
    with db.begin() as session:
        platform = session.scalars(select(Platform).where(registration_of(lms))).one()
        seeded = _seed(session, platform)
    db.dispose()
    return seeded


def _seed(s: Session, platform: Platform) -> Seeded:
    context = Context(
        platform_id=platform.id, context_id=CONTEXT_ID, title=COURSE.title, label=COURSE.label
    )
    s.add(context)
    s.flush()
    members = [
        Member(
            user_id=p.user_id,
            roles=(str(COURSE.role_of(p.user_id)),),
            status="Active",
            name=p.name,
            given_name=p.given_name or None,
            family_name=p.family_name or None,
            email=p.email,
            picture=None,
        )
        for p in (TEACHER, *STUDENTS)
    ]
    apply_members(s, platform_id=platform.id, context_id=context.id, members=members)
    ids = dict(
        s.execute(
            select(ToolPerson.sub, ToolPerson.id).where(
                ToolPerson.platform_id == platform.id,
                ToolPerson.sub.in_([m.user_id for m in members]),
            )
        ).all()
    )
    teacher_id, student_id = ids[TEACHER.user_id], ids[STUDENT.user_id]
    student_ids = [ids[p.user_id] for p in STUDENTS]

    import_csv(s, context_id=context.id, data=_framework_csv())
    codes = dict(
        s.execute(
            select(Competency.code, Competency.id).where(Competency.context_id == context.id)
        ).all()
    )
    now = utcnow()
    note = f"Checked the lab report at {LONG_URL} — see the rubric there."
    for n, (code, comp_id) in enumerate(sorted(codes.items())):
        if code == "HE.1":  # a parent: its level is rolled up from its sub-competencies
            continue
        for k, person_id in enumerate(student_ids):
            if k and (n + k) % 4 == 3:
                continue
            record_evidence(
                s,
                context_id=context.id,
                competency_id=comp_id,
                student_ids=[person_id],
                points=Decimal(1 + (n + k) % 4),
                source=EvidenceSource.TEACHER,
                note=note if code == LONG_CODE else "",
                recorded_by_id=teacher_id,
                observed_at=now - timedelta(days=1 + (n + k) % 20),
            )

    pathway = create_pathway(
        s,
        context_id=context.id,
        title=("Cells, energy and life: " + LONG_WORD_TITLE)[:OPTION_TITLE_MAX],
        description=f"<p>Start here: <a href='{LONG_URL}'>{LONG_URL}</a></p>",
        competency_ids=[codes[LONG_CODE], codes["AR.1"], codes["ZH.1"]],
    )
    step = create_step(
        s,
        context_id=context.id,
        pathway_id=pathway.id,
        title="Meet the cell — " + "Mitochondrion" * 8,
        description=f"<p>{LONG_URL}</p>",
        competency_id=codes[LONG_CODE],
    )
    option = create_option(
        s,
        context_id=context.id,
        step_id=step.id,
        data=OptionInput(
            title=OPTION_TITLE,
            modality=Modality.PROJECT,
            description=f"<p>Materials list: {LONG_URL}</p>",
            links=[{"label": "Rubric " + "R" * 120, "url": LONG_URL}],
            interest_tags=["art", "Interest" * 8],
            career_clusters=[CareerCluster.ARTS],
            requires_approval=False,
        ),
    )
    create_option(
        s,
        context_id=context.id,
        step_id=step.id,
        data=OptionInput(title=f"{ARABIC[0]} — {HEBREW[0]} — 细胞之旅", modality=Modality.VIDEO),
    )
    choice = choices.choose_option(
        s, context_id=context.id, person_id=student_id, option_id=option.id
    )
    choices.start_choice(s, context_id=context.id, person_id=student_id, choice_id=choice.id)
    choices.submit_choice(
        s,
        context_id=context.id,
        person_id=student_id,
        choice_id=choice.id,
        note=f"My model is here: {LONG_URL}",
    )

    update_profile(
        s,
        context_id=context.id,
        person_id=student_id,
        editor_is_teacher=True,
        interests=["drawing", "Interest" * 8],
        career_clusters=[CareerCluster.ARTS, CareerCluster.STEM],
        preferred_modalities=["project", "offline_hands_on"],
        career_goal_text=f"Veterinarian. My portfolio: {LONG_URL}",
        strengths="Asks sharp questions " + "Z" * 150,
        needs_and_supports=f"Audio readings: {LONG_URL}",
        non_academic_notes="Works well in a pair.",
        teacher_notes=f"Family meeting notes: {LONG_URL}",
    )
    today = now.date()
    goal = add_goal(
        s,
        context_id=context.id,
        person_id=student_id,
        text=f"Reach Advanced on {LONG_CODE} — plan at {LONG_URL}",
        target_date=today + timedelta(days=14),
        created_by_id=student_id,
        editor_is_teacher=False,
    )
    goal.status = GoalStatus.IN_PROGRESS
    add_check_in(
        s,
        context_id=context.id,
        person_id=student_id,
        author_id=teacher_id,
        held_on=today - timedelta(days=3),
        note=f"Looked at {LONG_URL} together.",
        next_steps="Pick an option " + "N" * 120,
    )
    group = create_group(
        s,
        context_id=context.id,
        name=("Lab group " + "Mitochondria" * 10)[:80],
        person_ids=student_ids[:6],
        created_by_id=teacher_id,
    )
    s.flush()
    return Seeded(
        context_id=context.id,
        student_id=student_id,
        arabic_id=ids[OTHERS[0].user_id],
        competency_id=codes["AR.1"],
        long_code_id=codes[LONG_CODE],
        pathway_id=pathway.id,
        step_id=step.id,
        option_id=option.id,
        group_id=group.id,
        evidence_id=s.scalars(
            select(Evidence.id).where(
                Evidence.person_id == student_id, Evidence.competency_id == codes[LONG_CODE]
            )
        ).first()
        or 0,
    )
