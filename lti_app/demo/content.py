"""The demo course's content, so `lti-app demo` shows the whole experience from the first launch.

`seed_demo_course` gives Biology 9 what a term of use would: the roster (as a roster sync
stores it), a competency framework, two pathways, learner profiles and goals, a few weeks of
evidence and some choices waiting for the teacher. It is idempotent: what exists is left as it
is, so running it again (or after teachers and students have used the demo) changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.importing import import_csv
from lti_app.competencies.models import Competency
from lti_app.db import utcnow
from lti_app.demo.seed import BIOLOGY, PEOPLE, STUDENTS, TEACHER
from lti_app.learners.models import GoalStatus
from lti_app.learners.services import add_check_in, add_goal, get_profile, update_profile
from lti_app.learners.vocab import CareerCluster, Modality
from lti_app.mastery.models import Evidence, EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices, reviewing
from lti_app.pathways.models import Choice, Option, Pathway, Step
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.services import create_pathway, create_step
from lti_app.roster.client import Member
from lti_app.roster.services import apply_members
from lti_app.tool.models import Context, Person, Platform

FRAMEWORK_CSV = """\
code,title,description,parent_code,prerequisite_codes,kind
CELL,Cells and life,How living things are built from cells and get their energy,,,academic
CELL.1,Cell structure,Name the parts of plant and animal cells and what each does,CELL,,academic
CELL.2,Microscopy,"Prepare a slide, focus a microscope, draw cells to scale",CELL,,academic
CELL.3,Cell transport,Explain diffusion and osmosis in cells,CELL,CELL.1,academic
CELL.4,Photosynthesis and respiration,How cells capture and release energy,CELL,CELL.3,academic
ECO,Ecosystems,How living things depend on each other and on their surroundings,,,academic
ECO.1,Food webs and energy flow,Build food webs and follow the energy in them,ECO,,academic
ECO.2,Cycles of matter,Explain the carbon and nitrogen cycles,ECO,ECO.1;CELL.4,academic
ECO.3,People and ecosystems,Weigh the effects of people on an ecosystem,ECO,ECO.1,academic
INQ,Scientific inquiry,"Plan a fair test, collect data and draw conclusions from it",,,academic
SKL,Learner skills,Skills for learning that go with every unit,,,non_academic
SKL.1,Collaboration,"Shares the work, listens, helps the group",SKL,,non_academic
SKL.2,Work habits,"Plans, meets deadlines, keeps going",SKL,,non_academic
"""


# One record a line, fields separated by "|"; an indented line continues the line before.
# pathway | title | competencies it leads to | description
# step    | title | competency it assesses | prerequisite competencies | description
# option  | title | modality | challenge 1-3 | minutes | interests | career clusters | approval
#         | description
# link    | label | url   (of the option above)
PATHWAYS = """
pathway | Cells and life | CELL | From the parts of a cell to how it gets its energy.
    Pick the way that suits you.
step | Meet the cell | CELL.1 | | What is inside a cell, and what does each part do?
option | Build a 3D cell model | project | 2 | 120 | art, drawing | ARTS | approval |
    Build a plant or animal cell from everyday materials and label every organelle.
    Tell your teacher your materials first.
option | Edible cell cake | offline_hands_on | 2 | 90 | cooking, baking | HOSPITALITY | approval |
    Bake a cell: every sweet is an organelle. Bring a photo and a key.
option | Virtual cell tour | video | 1 | 30 | gaming | | |
    Watch the tour, pause at each organelle and fill in the worksheet.
link | Cells alive: interactive cell models | https://www.cellsalive.com/cells/cell_model.htm
option | Muscle cells and the athlete | reading | 3 | 60 | sports | HEALTH_SCIENCE | |
    Read how training changes muscle cells and explain why athletes have more mitochondria.
step | Look through the microscope | CELL.2 | CELL.1 | See real cells and draw them to scale.
option | Onion and cheek cell lab | offline_hands_on | 2 | 60 | plants | STEM, HEALTH_SCIENCE
    | approval | Stain and observe onion skin and cheek cells in the lab. Safety briefing first.
option | Microscope simulator | online | 1 | 40 | gaming | INFORMATION_TECHNOLOGY | |
option | Yeast in bread dough | offline_hands_on | 3 | 90 | cooking, baking
    | HOSPITALITY, AGRICULTURE | |
    Watch yeast cells bud under the microscope and explain what makes bread rise.
step | How things get in and out | CELL.3 | CELL.1 |
    Diffusion and osmosis: why cells swell, shrink or stay the same.
option | Gummy bear osmosis | offline_hands_on | 1 | 45 | cooking | | |
    Leave gummy bears in water, salt water and sugar water overnight; measure and explain.
option | What is in a sports drink? | real_world_task | 3 | 120 | sports
    | HEALTH_SCIENCE, MARKETING | approval |
    Compare three drinks' labels and advise a team on what to drink during a match.
option | Animated explainer | video | 2 | 30 | music, art | ARTS | |
step | Energy for life | CELL.4 | CELL.3 |
    Photosynthesis and respiration: where the energy comes from.
option | Plants in the dark | offline_hands_on | 2 | 150 | plants, gardening | AGRICULTURE | |
option | Photosynthesis podcast | project | 3 | 180 | music | ARTS | approval |
option | Energy reading and quiz | reading | 1 | 45 | | | |
pathway | Ecosystems | ECO | Who eats whom, where matter goes, and what people change.
step | Who eats whom | ECO.1 | | Build a food web and follow the energy.
option | Schoolyard biodiversity survey | offline_hands_on | 2 | 120 | animals, the outdoors
    | AGRICULTURE | approval | Survey a square metre of the schoolyard with a partner and
    build its food web. You leave the building, so ask first.
option | Food web strategy game | online | 1 | 40 | gaming | INFORMATION_TECHNOLOGY | |
option | Nature documentary notes | video | 2 | 60 | animals | | |
option | What is on your plate? | real_world_task | 3 | 90 | cooking | AGRICULTURE, HOSPITALITY
    | | Trace one meal back through the food chains it comes from.
step | Cycles of matter | ECO.2 | ECO.1, CELL.4 | Carbon and nitrogen: nothing is lost.
option | Compost column | offline_hands_on | 2 | 120 | gardening, plants | AGRICULTURE | |
option | Carbon cycle comic | project | 2 | 90 | art, drawing | ARTS | |
option | Reading: the nitrogen cycle | reading | 1 | 40 | | | |
step | People and ecosystems | ECO.3 | ECO.1 |
    How do people change an ecosystem, and what can we do about it?
option | Interview a ranger or a farmer | real_world_task | 3 | 120 | animals, the outdoors
    | AGRICULTURE, GOVERNMENT | approval |
option | Class debate: build on the wetland? | discussion | 2 | 60 | | LAW, GOVERNMENT | |
option | Campaign song or video | project | 2 | 120 | music, gaming | ARTS, MARKETING | |
"""

# key | interests | career clusters | preferred ways of learning | career goal
PROFILES = """
A | animals, drawing | AGRICULTURE | offline_hands_on, project |
    I want to be a vet or work at a wildlife rescue.
B | sports, football | HEALTH_SCIENCE | real_world_task, video | Physiotherapist for a team.
C | music, guitar | ARTS | project, discussion | Sound engineer or music producer.
D | gaming, coding | INFORMATION_TECHNOLOGY, STEM | online, video | Make educational games.
E | cooking, baking | HOSPITALITY | offline_hands_on | Open my own bakery one day.
F | plants, gardening | AGRICULTURE, STEM | offline_hands_on |
    Work in conservation or on an organic farm.
G | medicine, reading | HEALTH_SCIENCE | reading | Become a nurse, maybe a doctor.
H | dance, music, art | ARTS | project, video |
I | the outdoors, animals, fishing | AGRICULTURE, LAW | real_world_task | Park ranger.
J | gaming, sports | | video, online | Not sure yet.
K | cooking, sports | HEALTH_SCIENCE, HOSPITALITY | real_world_task | Sports dietitian.
"""
PROFILE_OF = "ABCDEFGHIJKABCDEFGHIJKABCDE-G-"
"""The profile of each student, s01 to s30 (a dash: the student has not filled one in)."""

# Points on each competency, oldest first; the observations are spread over the past weeks.
HISTORY: dict[int, dict[str, tuple[int, ...]]] = {
    1: {"CELL.1": (2, 3, 4), "CELL.2": (3,), "SKL.1": (3, 4), "SKL.2": (3,)},
    2: {"CELL.1": (2, 2), "SKL.1": (2, 3), "SKL.2": (2,)},
    3: {"CELL.1": (1, 2), "SKL.2": (2, 2)},
    4: {"CELL.1": (2,), "SKL.1": (3,)},
    5: {"CELL.1": (3, 3), "CELL.2": (2,), "SKL.1": (3,), "SKL.2": (4,)},
    6: {"CELL.1": (1,), "SKL.2": (1, 2)},
    7: {"SKL.1": (3,), "SKL.2": (3,)},
    8: {"CELL.1": (2, 3), "SKL.1": (4,)},
    10: {"CELL.1": (1, 2), "SKL.2": (2,)},
    11: {"CELL.1": (3, 4), "CELL.2": (3,), "SKL.1": (3,)},
    12: {"CELL.1": (3, 4), "SKL.1": (2, 3), "SKL.2": (3, 3)},
    13: {"CELL.1": (2,), "SKL.2": (3,)},
    15: {"CELL.1": (3,), "CELL.2": (3, 4), "SKL.1": (4,), "SKL.2": (4,)},
    17: {"CELL.1": (2, 3), "SKL.1": (3,)},
    19: {"CELL.1": (1, 1, 2), "SKL.2": (1, 2)},
    20: {"CELL.1": (4,), "SKL.1": (3,)},
    22: {"CELL.1": (2, 3), "SKL.2": (3,)},
    25: {"CELL.1": (3,), "SKL.1": (2,)},
}

# (student, pathway, step, option, how far): choices made before the demo starts.
CHOICES: tuple[tuple[int, str, str, str, str], ...] = (
    (1, "Cells and life", "Meet the cell", "Build a 3D cell model", "done"),
    (1, "Cells and life", "Look through the microscope", "Onion and cheek cell lab", "approved"),
    (4, "Cells and life", "Meet the cell", "Build a 3D cell model", "chosen"),
    (5, "Cells and life", "Meet the cell", "Edible cell cake", "done"),
    (7, "Cells and life", "Meet the cell", "Virtual cell tour", "submitted"),
    (9, "Ecosystems", "Who eats whom", "Schoolyard biodiversity survey", "chosen"),
    (11, "Cells and life", "Meet the cell", "Muscle cells and the athlete", "done"),
    (12, "Cells and life", "Meet the cell", "Virtual cell tour", "done"),
    (12, "Cells and life", "Look through the microscope", "Microscope simulator", "in_progress"),
    (15, "Cells and life", "Meet the cell", "Muscle cells and the athlete", "done"),
    (20, "Ecosystems", "Who eats whom", "Food web strategy game", "chosen"),
)

# student | goal | target in days from today | status
GOALS = (
    (1, "Reach Advanced on cell structure", 14, GoalStatus.MET),
    (1, "Finish the microscope step before the holidays", 21, GoalStatus.IN_PROGRESS),
    (2, "Hand in every step on time this unit", 28, GoalStatus.IN_PROGRESS),
    (4, "Ask for help when I get stuck instead of waiting", 21, GoalStatus.NOT_STARTED),
    (8, "Try a hands-on option at least once", 30, GoalStatus.NOT_STARTED),
    (12, "Get to Proficient in microscopy", 21, GoalStatus.IN_PROGRESS),
    (15, "Lead my group's schoolyard survey", 35, GoalStatus.NOT_STARTED),
    (19, "Get to Developing on cell structure", 14, GoalStatus.IN_PROGRESS),
)
CHECK_INS = (4, 12)
"""Students the teacher held a check-in with last week."""


def seed_demo_course(session: Session, platform: Platform) -> None:
    """Give the demo LMS's Biology 9 course its roster and content in Pathways, once."""
    context = _context(session, platform)
    people = _roster(session, platform, context)
    teacher_id = people[TEACHER.user_id]
    import_csv(session, context_id=context.id, data=FRAMEWORK_CSV)
    codes = dict(
        session.execute(
            select(Competency.code, Competency.id).where(Competency.context_id == context.id)
        ).all()
    )
    options = _pathways(session, context.id, codes)
    profiles = {r[0]: r[1:] for r in _records(PROFILES)}
    for n, student in enumerate(STUDENTS, start=1):
        person_id = people[student.user_id]
        key = PROFILE_OF[n - 1]
        if (
            key in profiles
            and get_profile(session, context_id=context.id, person_id=person_id) is None
        ):
            _profile(session, context.id, person_id, n, profiles[key], teacher_id)
        if n in HISTORY and not _has_evidence(session, context.id, person_id):
            _history(session, context.id, person_id, HISTORY[n], codes, teacher_id)
    for n, pathway, step, option, status in CHOICES:
        person_id = people[f"user-s{n:02d}"]
        _choice(session, context.id, person_id, options[pathway, step, option], status, teacher_id)
    session.flush()


def _records(text: str) -> list[list[str]]:
    """Read one of the tables above: "|"-separated fields, indented lines continuing a record."""
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(" ") and lines:
            lines[-1] += " " + line.strip()
        elif line.strip():
            lines.append(line.strip())
    return [[field.strip() for field in line.split("|")] for line in lines]


def _names(field: str) -> list[str]:
    return [name.strip() for name in field.split(",") if name.strip()]


def _context(session: Session, platform: Platform) -> Context:
    context = session.scalar(
        select(Context).where(
            Context.platform_id == platform.id, Context.context_id == BIOLOGY.context_id
        )
    )
    if context is None:
        context = Context(platform_id=platform.id, context_id=BIOLOGY.context_id)
        session.add(context)
    if (context.title, context.label) != (BIOLOGY.title, BIOLOGY.label):
        context.title, context.label = BIOLOGY.title, BIOLOGY.label
    session.flush()
    return context


def _roster(session: Session, platform: Platform, context: Context) -> dict[str, int]:
    """Store the course's members exactly as a roster sync of the demo LMS's NRPS would."""
    members = [
        Member(
            user_id=person.user_id,
            roles=(str(enrollment.role),),
            status="Active",
            # The demo LMS leaves out empty fields; a sync then keeps what it had.
            name=person.name or None,
            given_name=person.given_name or None,
            family_name=person.family_name or None,
            email=person.email or None,
            picture=None,
        )
        for enrollment in BIOLOGY.enrollments
        for person in [PEOPLE[enrollment.user_id]]
    ]
    apply_members(session, platform_id=platform.id, context_id=context.id, members=members)
    rows = session.execute(
        select(Person.sub, Person.id).where(
            Person.platform_id == platform.id, Person.sub.in_([m.user_id for m in members])
        )
    )
    return dict(rows.all())


def _pathways(
    session: Session, context_id: int, codes: dict[str, int]
) -> dict[tuple[str, str, str], int]:
    """Create the pathways, steps and options that are missing; return option ids by titles."""
    found: dict[tuple[str, str, str], int] = {}
    pathway: Pathway | None = None
    step: Step | None = None
    option: Option | None = None
    records = _records(PATHWAYS)
    for index, (kind, title, *rest) in enumerate(records):
        if kind == "pathway":
            pathway = session.scalar(
                select(Pathway).where(Pathway.context_id == context_id, Pathway.title == title)
            ) or create_pathway(
                session,
                context_id=context_id,
                title=title,
                description=f"<p>{rest[1]}</p>",
                competency_ids=[codes[c] for c in _names(rest[0])],
            )
        elif kind == "step" and pathway is not None:
            step = session.scalar(
                select(Step).where(Step.pathway_id == pathway.id, Step.title == title)
            ) or create_step(
                session,
                context_id=context_id,
                pathway_id=pathway.id,
                title=title,
                description=f"<p>{rest[2]}</p>",
                competency_id=codes[rest[0]],
                prerequisite_ids=[codes[c] for c in _names(rest[1])],
            )
        elif kind == "option" and pathway is not None and step is not None:
            option = session.scalar(
                select(Option).where(Option.step_id == step.id, Option.title == title)
            )
            if option is None:
                modality, challenge, minutes, interests, clusters, approval, text = rest
                data = OptionInput(
                    title=title,
                    modality=Modality(modality),
                    challenge=int(challenge),
                    expected_minutes=int(minutes),
                    interest_tags=_names(interests),
                    career_clusters=[CareerCluster[c] for c in _names(clusters)],
                    requires_approval=approval == "approval",
                    description=f"<p>{text}</p>" if text else "",
                    links=_links_after(records, index),
                )
                option = create_option(session, context_id=context_id, step_id=step.id, data=data)
            found[pathway.title, step.title, title] = option.id
    return found


def _links_after(records: list[list[str]], index: int) -> list[dict[str, str]]:
    """The link records that follow the option at `index`."""
    links = []
    for record in records[index + 1 :]:
        if record[0] != "link":
            break
        links.append({"label": record[1], "url": record[2]})
    return links


def _profile(
    session: Session,
    context_id: int,
    person_id: int,
    n: int,
    profile: list[str],
    teacher_id: int,
) -> None:
    interests, clusters, modalities, career_goal = profile
    update_profile(
        session,
        context_id=context_id,
        person_id=person_id,
        editor_is_teacher=True,
        interests=_names(interests),
        career_clusters=[CareerCluster[c] for c in _names(clusters)],
        preferred_modalities=_names(modalities),
        career_goal_text=career_goal,
        strengths="Asks sharp questions in discussions." if n % 3 == 0 else "",
        needs_and_supports=(
            "Audio versions of readings help; extra time on written tasks." if n % 7 == 0 else ""
        ),
        non_academic_notes="Works well in a pair; keeps the group on track." if n % 4 == 0 else "",
        teacher_notes="Talk to the family about the science fair." if n == 12 else "",
    )
    today = utcnow().date()
    for _, text, days, status in (g for g in GOALS if g[0] == n):
        goal = add_goal(
            session,
            context_id=context_id,
            person_id=person_id,
            text=text,
            target_date=today + timedelta(days=days),
            created_by_id=person_id,
            editor_is_teacher=False,
        )
        goal.status = status
    if n in CHECK_INS:
        add_check_in(
            session,
            context_id=context_id,
            person_id=person_id,
            author_id=teacher_id,
            held_on=today - timedelta(days=6),
            note="Looked at the cell structure evidence together.",
            next_steps="Pick an option for the next step by Friday.",
        )


def _has_evidence(session: Session, context_id: int, person_id: int) -> bool:
    query = select(Evidence.id).where(
        Evidence.context_id == context_id, Evidence.person_id == person_id
    )
    return session.scalar(query.limit(1)) is not None


def _history(
    session: Session,
    context_id: int,
    person_id: int,
    history: dict[str, tuple[int, ...]],
    codes: dict[str, int],
    teacher_id: int,
) -> None:
    morning = utcnow().replace(hour=9, minute=30, second=0, microsecond=0)
    for offset, (code, points) in enumerate(history.items()):
        for i, value in enumerate(points):
            # Oldest first, about ten days apart, the latest a few days ago.
            days_ago = 2 + offset + 10 * (len(points) - 1 - i)
            record_evidence(
                session,
                context_id=context_id,
                competency_id=codes[code],
                student_ids=[person_id],
                points=Decimal(value),
                source=EvidenceSource.TEACHER,
                note=NOTES[code],
                recorded_by_id=teacher_id,
                observed_at=morning - timedelta(days=days_ago),
            )


NOTES = {
    "CELL.1": "Labelled cell diagram and exit ticket.",
    "CELL.2": "Microscope drawing, checked at the bench.",
    "SKL.1": "Observed during group work.",
    "SKL.2": "Planner and deadlines this week.",
}


def _choice(
    session: Session, context_id: int, person_id: int, option_id: int, status: str, teacher: int
) -> None:
    """Bring a student's choice as far as `status`, the way the student and teacher would."""
    option = session.get_one(Option, option_id)
    mine = select(Choice).where(Choice.person_id == person_id, Choice.step_id == option.step_id)
    if session.scalar(mine) is not None:
        return
    begun = utcnow() - timedelta(days=9)
    choice = choices.choose_option(
        session, context_id=context_id, person_id=person_id, option_id=option_id
    )
    choice.chosen_at = begun
    if status == "chosen":
        return
    if option.requires_approval:
        reviewing.approve_choices(
            session, context_id=context_id, choice_ids=[choice.id], decided_by_id=teacher
        )
        choice.approved_at = begun + timedelta(days=1)
    if status == "approved":
        return
    choices.start_choice(session, context_id=context_id, person_id=person_id, choice_id=choice.id)
    choice.started_at = begun + timedelta(days=2)
    if status == "in_progress":
        return
    choices.submit_choice(
        session,
        context_id=context_id,
        person_id=person_id,
        choice_id=choice.id,
        note="Here is my worksheet; the last question was hard.",
    )
    choice.submitted_at = begun + timedelta(days=6)
    if status == "submitted":
        return
    reviewing.complete_choices(
        session,
        context_id=context_id,
        choice_ids=[choice.id],
        closed_by_id=teacher,
        feedback="Well done: clear labels and a good explanation.",
    )
    choice.done_at = begun + timedelta(days=7)
