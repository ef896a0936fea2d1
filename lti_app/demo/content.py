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
from lti_app.demo.biology import (
    CHECK_INS,
    CHOICES,
    FRAMEWORK_CSV,
    GOALS,
    HISTORY,
    NOTES,
    PATHWAYS,
    PROFILE_OF,
    PROFILES,
)
from lti_app.demo.seed import BIOLOGY, PEOPLE, STUDENTS, TEACHER
from lti_app.learners.goals_and_check_ins import add_check_in, add_goal
from lti_app.learners.services import get_profile, update_profile
from lti_app.learners.vocab import CareerCluster, Modality
from lti_app.mastery.models import Evidence, EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices, reviewing
from lti_app.pathways.models import Choice, Option, Pathway, Step
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.services import create_pathway, create_step
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Context, Person, Platform


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
    """Read one of biology.py's tables: "|"-separated fields, indented lines continuing a record."""
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
            # The demo LMS leaves out empty fields; a sync then keeps the names it had.
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
