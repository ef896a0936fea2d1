"""Build one benchmark course for bench/pages.py: roster, framework, evidence, pathways, choices.

Bulk rows (people, memberships, evidence, choices, profiles) go in with Core ``insert()``
executemany; the small authored parts (competencies, pathways, steps, options) and the stored
levels go through the domain services, so the pages read what the tool itself would write.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.db import Database, utcnow
from lti_app.learners.models import LearnerProfile
from lti_app.learners.vocab import CareerCluster, Modality
from lti_app.mastery import services as mastery
from lti_app.mastery.calculation import calculate
from lti_app.mastery.levels import levels_for_course
from lti_app.mastery.models import Evidence, EvidenceSource, StudentCompetencyLevel
from lti_app.mastery.scales import get_or_create_scale, recompute_course
from lti_app.pathways import services as pathways
from lti_app.pathways.models import Choice, ChoiceStatus, StepUnlock
from lti_app.pathways.options import OptionInput, create_option
from lti_app.tool.models import (
    Context,
    Deployment,
    LaunchSession,
    Membership,
    Person,
    Platform,
)

CHUNK = 5_000
INTERESTS = ("robots", "music", "animals", "space", "games", "cooking", "sport", "art")
# Status of a student's choice on step i of a pathway, for a student who has reached step k:
# steps before k are done, k itself is in one of these (cycled by student).
CURRENT_STATUSES = (
    ChoiceStatus.CHOSEN,
    ChoiceStatus.APPROVED,
    ChoiceStatus.IN_PROGRESS,
    ChoiceStatus.SUBMITTED,
    ChoiceStatus.RETURNED,
)


@dataclass(frozen=True)
class Size:
    """How big a course to build."""

    students: int
    competencies: int
    evidence_per_pair: int
    pathways: int
    steps: int
    options: int

    @property
    def label(self) -> str:
        return (
            f"{self.students} students, {self.competencies} competencies, "
            f"{self.evidence_per_pair} evidence/pair, {self.pathways} pathways x "
            f"{self.steps} steps x {self.options} options"
        )


@dataclass
class BuiltCourse:
    """What the measurements need: ids, launch sessions, and how long the build took."""

    size: Size
    context_id: int
    pathway_ids: list[int]
    teacher_launch_id: str
    student_launch_ids: list[str]
    evidence_rows: int = 0
    level_rows: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def _platform(session: Session) -> tuple[int, int]:
    """The one bench registration and deployment, shared by every course of the run."""
    platform = session.scalar(select(Platform).where(Platform.issuer == "https://lms.bench.test"))
    if platform is None:
        platform = Platform(
            issuer="https://lms.bench.test",
            client_id="bench-client",
            name="Bench LMS",
            auth_login_url="https://lms.bench.test/auth",
            token_url="https://lms.bench.test/token",  # noqa: S106 - a URL
            jwks_url="https://lms.bench.test/jwks",
        )
        session.add(platform)
        session.flush()
        session.add(Deployment(platform_id=platform.id, deployment_id="bench-deployment"))
        session.flush()
    deployment_id = session.scalar(
        select(Deployment.id).where(Deployment.platform_id == platform.id)
    )
    assert deployment_id is not None
    return platform.id, deployment_id


def _insert(session: Session, table: object, rows: list[dict[str, object]]) -> None:
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(table), rows[start : start + CHUNK])  # type: ignore[arg-type]


def build_course(db: Database, size: Size, *, key: str, seed: int = 7) -> BuiltCourse:
    """Create one course of `size` in its own transactions; return its ids and launches."""
    rnd = random.Random(seed)
    timings: dict[str, float] = {}
    now = utcnow()
    started = time.perf_counter()

    with db.begin() as session:
        platform_id, deployment_id = _platform(session)
        context = Context(
            platform_id=platform_id, context_id=f"bench-{key}", title=f"Bench course {key}"
        )
        session.add(context)
        teacher = Person(platform_id=platform_id, sub=f"{key}-teacher", name="Tess Teacher")
        session.add(teacher)
        session.flush()
        cid, teacher_id = context.id, teacher.id
        session.add(
            Membership(
                context_id=cid,
                person_id=teacher_id,
                roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
                is_teacher=True,
                last_launch_at=now,
            )
        )
        _insert(
            session,
            Person,
            [
                {
                    "platform_id": platform_id,
                    "sub": f"{key}-student-{i:05d}",
                    "name": f"Student {i:05d}",
                    "given_name": "Student",
                    "family_name": f"{i:05d}",
                    "email": f"s{i}@{key}.bench.test",
                }
                for i in range(size.students)
            ],
        )
        student_ids = list(
            session.scalars(
                select(Person.id)
                .where(Person.platform_id == platform_id, Person.sub.like(f"{key}-student-%"))
                .order_by(Person.id)
            )
        )
        _insert(
            session,
            Membership,
            [
                {
                    "context_id": cid,
                    "person_id": pid,
                    "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
                    "is_learner": True,
                    "last_launch_at": now - timedelta(days=i % 9) if i % 4 else None,
                }
                for i, pid in enumerate(student_ids)
            ],
        )
        clusters, modalities = list(CareerCluster), list(Modality)
        _insert(
            session,
            LearnerProfile,
            [
                {
                    "context_id": cid,
                    "person_id": pid,
                    "interests": rnd.sample(INTERESTS, 2),
                    "career_clusters": [clusters[i % len(clusters)].value],
                    "preferred_modalities": [modalities[i % len(modalities)].value],
                }
                for i, pid in enumerate(student_ids)
            ],
        )
        comp_ids = []
        for i in range(size.competencies):
            competency = Competency(
                context_id=cid, code=f"C{i + 1:02d}", title=f"Competency {i + 1}", position=i
            )
            session.add(competency)
            session.flush()
            comp_ids.append(competency.id)
        scale = get_or_create_scale(session, context_id=cid)
        level_names = {
            Decimal(p): mastery.level_for_score(scale, Decimal(p)).name for p in (1, 2, 3, 4)
        }
    timings["roster + framework"] = time.perf_counter() - started

    # Evidence: each student has a skill; results drift upwards over time, oldest first.
    started = time.perf_counter()
    skill = {pid: rnd.uniform(1.2, 3.8) for pid in student_ids}
    first_day = now - timedelta(days=size.evidence_per_pair + 30)
    with db.begin() as session:
        batch: list[dict[str, object]] = []
        count = 0
        for pid in student_ids:
            for c_index, comp_id in enumerate(comp_ids):
                base = skill[pid] + (c_index % 5 - 2) * 0.3
                for k in range(size.evidence_per_pair):
                    value = round(base - 0.8 + 1.2 * k / max(1, size.evidence_per_pair - 1))
                    points = Decimal(min(4, max(1, value + rnd.choice((-1, 0, 0, 0, 1)))))
                    batch.append(
                        {
                            "context_id": cid,
                            "competency_id": comp_id,
                            "person_id": pid,
                            "points": points,
                            "level_name": level_names[points],
                            "source": (
                                EvidenceSource.SELF_ASSESSMENT
                                if k % 10 == 9
                                else EvidenceSource.TEACHER
                            ),
                            "note": "",
                            "recorded_by_id": teacher_id,
                            "observed_at": first_day + timedelta(days=k, minutes=c_index),
                        }
                    )
                    if len(batch) >= CHUNK:
                        session.execute(insert(Evidence), batch)
                        count += len(batch)
                        batch = []
        if batch:
            session.execute(insert(Evidence), batch)
            count += len(batch)
    timings["evidence insert"] = time.perf_counter() - started

    # Stored levels: the tool's own recomputation (the code evidence changes run), once.
    started = time.perf_counter()
    with db.begin() as session:
        recompute_course(session, context_id=cid)
    timings["recompute_course"] = time.perf_counter() - started

    started = time.perf_counter()
    with db.begin() as session:
        pathway_ids, steps_by_pathway = _author_pathways(session, cid, comp_ids, size, rnd)
        _choices_and_unlocks(session, cid, student_ids, steps_by_pathway, teacher_id, rnd)
        teacher_launch = _launch(session, platform_id, deployment_id, cid, teacher_id, "teacher")
        sample = student_ids[:: max(1, len(student_ids) // 10)][:10]
        student_launches = [
            _launch(session, platform_id, deployment_id, cid, pid, "learner") for pid in sample
        ]
    timings["pathways + choices"] = time.perf_counter() - started

    with db.begin() as session:
        level_rows = len(levels_for_course(session, context_id=cid))
        _check_stored_level(session, cid, student_ids[0], comp_ids[0])

    return BuiltCourse(
        size=size,
        context_id=cid,
        pathway_ids=pathway_ids,
        teacher_launch_id=teacher_launch,
        student_launch_ids=student_launches,
        evidence_rows=count,
        level_rows=level_rows,
        timings=timings,
    )


def _author_pathways(
    session: Session, cid: int, comp_ids: list[int], size: Size, rnd: random.Random
) -> tuple[list[int], dict[int, list[tuple[int, list[tuple[int, bool]]]]]]:
    """Pathways through the services: step i assesses one competency and, from the second step
    on, waits for the competency of the step before it."""
    modalities = list(Modality)
    clusters = list(CareerCluster)
    pathway_ids: list[int] = []
    steps_by_pathway: dict[int, list[tuple[int, list[tuple[int, bool]]]]] = {}
    for p in range(size.pathways):
        pathway = pathways.create_pathway(
            session,
            context_id=cid,
            title=f"Pathway {p + 1}",
            description="<p>Work through the steps at your own pace.</p>",
            competency_ids=comp_ids[p * 3 : p * 3 + 3],
        )
        pathway_ids.append(pathway.id)
        steps: list[tuple[int, list[tuple[int, bool]]]] = []
        previous: int | None = None
        for s in range(size.steps):
            comp = comp_ids[(p * size.steps + s) % len(comp_ids)]
            step = pathways.create_step(
                session,
                context_id=cid,
                pathway_id=pathway.id,
                title=f"Step {s + 1} of pathway {p + 1}",
                description="<p>Show what you know.</p>",
                competency_id=comp,
                prerequisite_ids=[] if previous is None else [previous],
            )
            previous = comp
            options: list[tuple[int, bool]] = []
            for o in range(size.options):
                needs_approval = o == size.options - 1
                option = create_option(
                    session,
                    context_id=cid,
                    step_id=step.id,
                    data=OptionInput(
                        title=f"Option {o + 1}",
                        modality=modalities[(s + o) % len(modalities)],
                        description="<p>Do the task and hand in a link.</p>",
                        links=[{"label": "Reading", "url": "https://example.org/reading"}],
                        interest_tags=rnd.sample(INTERESTS, 2),
                        career_clusters=[clusters[(s * 4 + o) % len(clusters)]],
                        challenge=1 + o % 3,
                        expected_minutes=30 + 15 * o,
                        requires_approval=needs_approval,
                    ),
                )
                options.append((option.id, needs_approval))
            steps.append((step.id, options))
        steps_by_pathway[pathway.id] = steps
    return pathway_ids, steps_by_pathway


def _choices_and_unlocks(
    session: Session,
    cid: int,
    student_ids: list[int],
    steps_by_pathway: dict[int, list[tuple[int, list[tuple[int, bool]]]]],
    teacher_id: int,
    rnd: random.Random,
) -> None:
    """Each student has reached some step of each pathway: earlier steps done, the current one
    chosen, approved, started, handed in or returned (so the teacher has work waiting)."""
    now = utcnow()
    choices: list[dict[str, object]] = []
    unlocks: list[dict[str, object]] = []
    for i, pid in enumerate(student_ids):
        for steps in steps_by_pathway.values():
            reached = rnd.randrange(0, len(steps))
            for s, (step_id, options) in enumerate(steps[: reached + 1]):
                status = (
                    ChoiceStatus.DONE
                    if s < reached
                    else CURRENT_STATUSES[(i + s) % len(CURRENT_STATUSES)]
                )
                option_id, needs_approval = options[(i + s) % len(options)]
                if status is ChoiceStatus.APPROVED and not needs_approval:
                    status = ChoiceStatus.CHOSEN
                submitted = status in {ChoiceStatus.SUBMITTED, ChoiceStatus.DONE}
                choices.append(
                    {
                        "context_id": cid,
                        "person_id": pid,
                        "step_id": step_id,
                        "option_id": option_id,
                        "status": status,
                        "submission_note": "My work." if submitted else "",
                        "submission_url": "https://example.org/work" if submitted else None,
                        "teacher_feedback": (
                            "Add a source." if status is ChoiceStatus.RETURNED else ""
                        ),
                        "chosen_at": now - timedelta(days=30 - s),
                        "submitted_at": now - timedelta(days=29 - s) if submitted else None,
                        "done_at": now - timedelta(days=28 - s)
                        if status is ChoiceStatus.DONE
                        else None,
                    }
                )
            if i % 7 == 0 and reached + 1 < len(steps):
                unlocks.append(
                    {
                        "context_id": cid,
                        "step_id": steps[reached + 1][0],
                        "person_id": pid,
                        "unlocked_by_id": teacher_id,
                        "unlocked_at": now,
                    }
                )
    _insert(session, Choice, choices)
    if unlocks:
        _insert(session, StepUnlock, unlocks)


def _launch(
    session: Session, platform_id: int, deployment_id: int, cid: int, person_id: int, role: str
) -> str:
    launch_id = secrets.token_urlsafe(24)
    session.add(
        LaunchSession(
            id=launch_id,
            platform_id=platform_id,
            deployment_id=deployment_id,
            context_id=cid,
            person_id=person_id,
            roles=[],
            role=role,
            message_type="LtiResourceLinkRequest",
            expires_at=utcnow() + timedelta(days=1),
        )
    )
    session.flush()
    return launch_id


def _check_stored_level(session: Session, cid: int, person_id: int, comp_id: int) -> None:
    """The stored level must equal the calculation over the counted evidence (sanity)."""
    scale = get_or_create_scale(session, context_id=cid)
    points = list(
        session.scalars(
            select(Evidence.points)
            .where(
                Evidence.context_id == cid,
                Evidence.person_id == person_id,
                Evidence.competency_id == comp_id,
                Evidence.source != EvidenceSource.SELF_ASSESSMENT,
                Evidence.withdrawn_at.is_(None),
            )
            .order_by(Evidence.observed_at, Evidence.id)
        )
    )
    expected = calculate(
        scale.method, points, weight=scale.weight, n=scale.n, mastery_points=scale.mastery_points
    )
    stored = session.scalar(
        select(StudentCompetencyLevel.score).where(
            StudentCompetencyLevel.context_id == cid,
            StudentCompetencyLevel.person_id == person_id,
            StudentCompetencyLevel.competency_id == comp_id,
        )
    )
    if stored != expected:
        raise RuntimeError(f"stored level {stored} differs from the calculation {expected}")
