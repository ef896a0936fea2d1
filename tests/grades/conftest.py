"""A course on the running test LMS, wired to a score worker, for end-to-end grade tests.

Each test gets its own course (added to the demo platform's seed for the test's duration),
so line items and scores of one test never mix with another's.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.demo import seed
from lti_app.demo.seed import STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.demo.server import RunningPlatform
from lti_app.demo.state import ResourceLink as DemoResourceLink
from lti_app.grades import services
from lti_app.grades.client import AgsClient
from lti_app.grades.columns import set_gradebook_competencies
from lti_app.grades.gradebook import remember_ags_claim
from lti_app.grades.models import LineItem, OutboxStatus, ScoreOutbox
from lti_app.grades.outbox_status import outbox_counts
from lti_app.grades.worker import GradeWorker, WorkerConfig
from lti_app.http import make_http_client, make_score_pool
from lti_app.mastery.models import EvidenceSource, StudentCompetencyLevel
from lti_app.mastery.scales import get_or_create_scale
from lti_app.mastery.services import record_evidence
from lti_app.settings import Settings
from lti_app.tool.client import SCOPE_LINEITEM, SCOPE_SCORE, TokenClient
from lti_app.tool.keys import KeyRing
from lti_app.tool.models import (
    Context,
    Membership,
    MembershipStatus,
    Person,
    Platform,
    ResourceLink,
)
from tests.conftest import ToolServer

_numbers = itertools.count(1)


@dataclass
class GradeCourse:
    """Ids of a course on the test LMS with students, competencies and gradebook columns."""

    lms: RunningPlatform
    db: Database
    lms_context_id: str
    context_id: int
    platform_id: int
    teacher_id: int
    students: dict[str, int]
    """sub -> person id"""
    competency_ids: list[int]
    workers: list[GradeWorker] = field(default_factory=list)
    settings: Settings | None = None

    def record(
        self, points: Decimal | int, subs: list[str] | None = None, competency: int = 0
    ) -> list[int]:
        """Record evidence and queue scores in one transaction, as the evidence view does."""
        with self.db.begin() as session:
            changes = record_evidence(
                session,
                context_id=self.context_id,
                competency_id=self.competency_ids[competency],
                student_ids=[self.students[s] for s in (subs or list(self.students))],
                points=Decimal(points),
                source=EvidenceSource.TEACHER,
                note="",
                recorded_by_id=self.teacher_id,
            )
            return services.queue_scores(session, changes)

    def worker(self, *, timeout: float = 5.0, **overrides: Any) -> GradeWorker:
        assert self.settings is not None
        settings = dataclasses.replace(
            self.settings, http_read_timeout=timeout, http_connect_timeout=timeout
        )
        http = make_http_client(settings)
        keyring = KeyRing(secret=self.settings.effective_key_secret)
        tokens = TokenClient(self.db, http, keyring)
        config = dataclasses.replace(
            WorkerConfig(
                backoff_base=0.01,
                backoff_cap=0.05,
                poll_interval=0.05,
                config_retry=0.05,
                # As in production: an LMS down or throttling is waited out for days, not cut
                # short at a score's first throttle (a test wanting scores to fail after their
                # tries sets 0, tests/grades/test_outage_retries.py).
                retry_transient_for=timedelta(days=3),
                context_ids=frozenset({self.context_id}),
            ),
            **overrides,
        )
        pool = make_score_pool(settings, config.concurrency)
        worker = GradeWorker(self.db, AgsClient(pool, tokens), config)
        self.workers.append(worker)
        return worker

    def drain_until_settled(self, worker: GradeWorker, rounds: int = 200) -> None:
        """Drain until no row is pending or in flight (backoffs are tiny in tests)."""
        stop = threading.Event()
        for _ in range(rounds):
            worker.drain(stop)
            counts = self.counts()
            if counts[OutboxStatus.PENDING] == 0 and counts[OutboxStatus.SENDING] == 0:
                return
            stop.wait(0.02)
        raise AssertionError(f"outbox did not settle: {self.counts()}")

    def bind_columns_to_placement(self, *, known_to_the_lms: bool = True) -> str:
        """Give the course a placement (the link the teacher launched from) and bind its
        columns to it; return the placement's LMS id."""
        link_id = f"placement-{uuid.uuid4().hex[:8]}"
        if known_to_the_lms:
            self.lms.platform.state.resource_links[link_id] = DemoResourceLink(
                link_id, self.lms_context_id, "Pathways"
            )
        with self.db.begin() as session:
            link = ResourceLink(
                platform_id=self.platform_id, context_id=self.context_id, resource_link_id=link_id
            )
            session.add(link)
            session.flush()
            session.execute(
                update(LineItem)
                .where(LineItem.context_id == self.context_id)
                .values(resource_link_id=link.id)
            )
        return link_id

    def counts(self) -> dict[OutboxStatus, int]:
        with self.db.session_factory() as session:
            return outbox_counts(session, context_id=self.context_id)

    def line_items(self) -> dict[int, LineItem]:
        """competency id -> our line item row"""
        with self.db.session_factory() as session:
            return {
                i.competency_id: i
                for i in session.scalars(
                    select(LineItem).where(LineItem.context_id == self.context_id)
                )
            }

    def expected(self) -> dict[tuple[str, str], float | None]:
        """(line item URL, sub) -> the scoreGiven the LMS should hold now (points display)."""
        subs = {pid: sub for sub, pid in self.students.items()}
        items = self.line_items()
        out: dict[tuple[str, str], float | None] = {}
        with self.db.session_factory() as session:
            scale = get_or_create_scale(session, context_id=self.context_id)
            points = {level.name: float(level.points) for level in scale.levels}
            for row in session.scalars(
                select(StudentCompetencyLevel).where(
                    StudentCompetencyLevel.context_id == self.context_id
                )
            ):
                item = items.get(row.competency_id)
                if item is None or not item.is_enabled or row.person_id not in subs:
                    continue
                assert item.url is not None
                out[(item.url, subs[row.person_id])] = (
                    points[row.level_name] if row.level_name else None
                )
        return out

    def lms_item_ids(self) -> dict[str, int]:
        return {
            self.lms.platform.line_item_url(self.lms_context_id, li.id): li.id
            for li in self.lms.platform.state.line_items_in(self.lms_context_id)
        }

    def assert_lms_matches_mastery(self, *, allow_redelivery: int = 0) -> None:
        """Every score equals current mastery; no score older than one already accepted;
        no duplicate deliveries (beyond `allow_redelivery` rows in flight at a crash)."""
        state = self.lms.platform.state
        ids = self.lms_item_ids()
        expected = self.expected()
        assert expected, "the test recorded nothing"
        for (url, sub), given in expected.items():
            record = state.results(ids[url]).get(sub)
            assert record is not None, f"lost: {sub} on {url}"
            assert record.body.get("scoreGiven") == given, (sub, url, record.body)
        mine = set(ids.values())
        history: dict[tuple[int, str], list[str]] = defaultdict(list)
        with state.lock:
            records = [r for r in state.scores if r.line_item_id in mine]
        for record in records:
            assert record.status != 400, f"an older score was sent after a newer one: {record}"
            if record.status == 200:
                history[(record.line_item_id, record.user_id)].append(record.body["timestamp"])
        redelivered = 0
        for stamps in history.values():
            assert stamps == sorted(stamps), f"out of order: {stamps}"
            redelivered += len(stamps) - len(set(stamps))
        assert redelivered <= allow_redelivery, f"{redelivered} scores delivered twice"


@pytest.fixture
def make_course(
    lms: RunningPlatform,
    db: Database,
    tool_server: ToolServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., GradeCourse]]:
    made: list[GradeCourse] = []

    def make(
        students: int = 5,
        competencies: int = 2,
        extra_enrollments: tuple[Enrollment, ...] = (),
        *,
        canvas_line_items: bool = False,
    ) -> GradeCourse:
        # The tool makes its signing key on first use: make it before a worker signs with it.
        httpx.get(tool_server.url + "/.well-known/jwks.json", timeout=10).raise_for_status()
        n = next(_numbers)
        lms_context_id = f"course-grades-{n}-{uuid.uuid4().hex[:6]}"
        chosen = STUDENTS[:students]
        course = Course(
            context_id=lms_context_id,
            label=f"G{n}",
            title=f"Grades test {n}",
            enrollments=(
                Enrollment(TEACHER.user_id, Role.INSTRUCTOR),
                *(Enrollment(s.user_id, Role.LEARNER) for s in chosen),
                *extra_enrollments,
            ),
        )
        monkeypatch.setitem(seed.COURSES, lms_context_id, course)
        platform = lms.platform
        platform.canvas_line_items = canvas_line_items  # reset_hooks() puts it back
        with db.begin() as session:
            registration = session.scalar(
                select(Platform).where(
                    Platform.issuer == platform.config.issuer,
                    Platform.client_id == platform.config.client_id,
                )
            )
            assert registration is not None
            context = Context(
                platform_id=registration.id, context_id=lms_context_id, title=course.title
            )
            session.add(context)
            session.flush()
            people: dict[str, int] = {}
            for enrollment in course.enrollments:
                person = session.scalar(
                    select(Person).where(
                        Person.platform_id == registration.id, Person.sub == enrollment.user_id
                    )
                )
                if person is None:
                    person = Person(platform_id=registration.id, sub=enrollment.user_id)
                    session.add(person)
                    session.flush()
                session.add(
                    Membership(
                        context_id=context.id,
                        person_id=person.id,
                        roles=[str(enrollment.role)],
                        status=MembershipStatus.ACTIVE,
                        is_learner=enrollment.role is Role.LEARNER,
                        is_teacher=enrollment.role is Role.INSTRUCTOR,
                    )
                )
                people[enrollment.user_id] = person.id
            competency_ids = [
                create_competency(
                    session, context_id=context.id, code=f"C{i + 1}", title=f"Competency {i + 1}"
                ).id
                for i in range(competencies)
            ]
            remember_ags_claim(
                session,
                context_id=context.id,
                claim={
                    "lineitems": platform.line_items_url(lms_context_id),
                    "scope": [SCOPE_LINEITEM, SCOPE_SCORE],
                },
                resource_link_id=None,
            )
            set_gradebook_competencies(
                session, context_id=context.id, competency_ids=competency_ids
            )
            teacher_id = people.pop(TEACHER.user_id)
            result = GradeCourse(
                lms=lms,
                db=db,
                lms_context_id=lms_context_id,
                context_id=context.id,
                platform_id=registration.id,
                teacher_id=teacher_id,
                students={s.user_id: people[s.user_id] for s in chosen},
                competency_ids=competency_ids,
                settings=tool_server.settings,
            )
        made.append(result)
        return result

    yield make
    for course in made:
        for worker in course.workers:
            worker.close()
    lms.platform.reset_hooks()


def outbox_rows(db: Database, context_id: int) -> list[ScoreOutbox]:
    with db.session_factory() as session:
        return list(
            session.scalars(
                select(ScoreOutbox)
                .where(ScoreOutbox.context_id == context_id)
                .order_by(ScoreOutbox.id)
            )
        )
