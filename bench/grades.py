"""Grades benchmark: scores from the outbox to the test LMS, 20 ms away.

Times `GradeWorker.drain()` from the moment the outbox holds the rows (line items exist, as
they do once a teacher picked the columns) until every score is recorded as sent. Then the
same for what pylti1p3's defaults amount to: one score at a time, a new token each time
(measured on 300 scores; the 10,000 figure is extrapolated).

    .venv/bin/python bench/grades.py [--delay-ms 20] [--concurrency 32] [--database-url URL]
        [--skip-naive] [--lms-server gunicorn|werkzeug] [--profile FILE]

Each line reports wall time and CPU per score in each process (tool, test LMS, PostgreSQL):
the tool, the LMS and the database share the machine's cores, so CPU per score is what caps
the rate, and it is steadier than wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import logging
import os
import pstats
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt
from sqlalchemy import select, text

from lti_app import create_app
from lti_app.competencies.models import Competency
from lti_app.db import Database
from lti_app.demo.seed import Role
from lti_app.demo.server import serve_in_thread
from lti_app.grades import services
from lti_app.grades.client import SCORE_TYPE, AgsClient, score_url
from lti_app.grades.columns import set_gradebook_competencies
from lti_app.grades.gradebook import remember_ags_claim
from lti_app.grades.models import LineItem, OutboxStatus, ScoreOutbox
from lti_app.grades.outbox_status import outbox_counts
from lti_app.grades.worker import GradeWorker, WorkerConfig
from lti_app.http import make_http_client, make_score_pool
from lti_app.mastery.services import MasteryChange
from lti_app.models import Base
from lti_app.settings import load_settings
from lti_app.tool.client import SCOPE_LINEITEM, SCOPE_SCORE, TokenClient
from lti_app.tool.keys import KeyRing
from lti_app.tool.models import Context, Membership, MembershipStatus, Person, Platform


class RemoteLms:
    """The test LMS in its own process, as an LMS is on its own machine (grades_platform.py)."""

    def __init__(self, tool_url: str, delay_ms: int, server: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        script = Path(__file__).with_name("grades_platform.py")
        self.process = subprocess.Popen(
            [
                *(sys.executable, str(script), "--port", str(port), "--tool", tool_url),
                *("--delay-ms", str(delay_ms), "--server", server),
            ]
        )
        self.http = httpx.Client(base_url=self.base_url, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.http.get("/bench/ready").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.1)

    def add_course(self, name: str, subs: list[str]) -> None:
        self.http.post("/bench/course", json={"name": name, "subs": subs}).raise_for_status()

    def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = self.http.get("/bench/counters").json()
        return counters

    def scores(self, context: str) -> dict[tuple[str, str], float | None]:
        """(line item URL, userId) -> the scoreGiven the LMS holds now."""
        rows = self.http.get("/bench/scores", params={"context": context}).json()
        return {(url, user): given for url, user, given, _stamp in rows}

    def line_items_url(self, context_id: str) -> str:
        return f"{self.base_url}/api/contexts/{context_id}/lineitems"

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(10)


def postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL process on this machine.

    Backends that exit take their CPU with them, so a figure can be slightly low (or below 0).
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name.startswith("postgres"):
            fields = text[text.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


MEASURE_DB = False
"""PostgreSQL runs in its own processes; SQLite's CPU is the tool's."""


@dataclasses.dataclass
class Cpu:
    """CPU seconds per process between two points: this process (tool), LMS, PostgreSQL."""

    tool: float
    lms: float
    db: float

    @classmethod
    def now(cls, lms: RemoteLms) -> Cpu:
        return cls(own_cpu(), float(lms.counters()["cpu"]), postgres_cpu() if MEASURE_DB else 0)

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.tool - other.tool, self.lms - other.lms, self.db - other.db)

    def per_score(self, n: int) -> str:
        ms = [1000 * v / n for v in (self.tool, self.lms, self.db)]
        return f"CPU/score {sum(ms):.2f} ms (tool {ms[0]:.2f}, LMS {ms[1]:.2f}, db {ms[2]:.2f})"


class SendProfiler:
    """cProfile of every sending thread and of the claiming thread, merged into one file."""

    def __init__(self, worker: GradeWorker) -> None:
        self.profiles: list[cProfile.Profile] = []
        self.local = threading.local()
        self.guard = threading.Lock()
        send = worker._send

        def profiled_send(job: Any) -> Any:
            profile = getattr(self.local, "profile", None)
            if profile is None:
                profile = self.local.profile = cProfile.Profile()
                with self.guard:
                    self.profiles.append(profile)
            profile.enable()
            try:
                return send(job)
            finally:
                profile.disable()

        worker._send = profiled_send  # type: ignore[method-assign]

    def save(self, path: str) -> None:
        stats = pstats.Stats(*self.profiles)
        stats.dump_stats(path)


OFFERED = (SCOPE_LINEITEM, SCOPE_SCORE)
"""The AGS scopes of the courses' launch claim: what the gradebook token asks for."""
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_course(
    db: Database, lms: RemoteLms, platform_id: int, students: int, competencies: int
) -> tuple[int, str, list[MasteryChange]]:
    name = f"bench-grades-{uuid.uuid4().hex[:6]}"
    subs = [f"{name}-s{i:04d}" for i in range(students)]
    lms.add_course(name, subs)
    with db.begin() as session:
        ctx = Context(platform_id=platform_id, context_id=name)
        session.add(ctx)
        session.flush()
        people = [Person(platform_id=platform_id, sub=s) for s in subs]
        session.add_all(people)
        session.flush()
        session.add_all(
            Membership(
                context_id=ctx.id,
                person_id=p.id,
                is_learner=True,
                status=MembershipStatus.ACTIVE,
                roles=[str(Role.LEARNER)],
            )
            for p in people
        )
        comps = [
            Competency(context_id=ctx.id, code=f"C{i}", title=f"Competency {i}", position=i)
            for i in range(competencies)
        ]
        session.add_all(comps)
        session.flush()
        remember_ags_claim(
            session,
            context_id=ctx.id,
            resource_link_id=None,
            claim={"lineitems": lms.line_items_url(name), "scope": list(OFFERED)},
        )
        set_gradebook_competencies(session, context_id=ctx.id, competency_ids=[c.id for c in comps])
        changes = [
            MasteryChange(ctx.id, p.id, c.id, None, Decimal(3), None, "Proficient", True)
            for p in people
            for c in comps
        ]
        return ctx.id, name, changes


@dataclasses.dataclass
class Run:
    elapsed: float
    sent: int
    token_requests: int
    cpu: Cpu


def run_worker(
    db: Database,
    worker: GradeWorker,
    lms: RemoteLms,
    course: tuple[int, str, list[MasteryChange]],
) -> Run:
    """Columns first (untimed), then queue the scores, then time the drain."""
    context_id, lms_context, changes = course
    worker.config = dataclasses.replace(worker.config, context_ids=frozenset({context_id}))
    before = lms.counters()
    worker.sync_line_items()
    with db.begin() as session:
        services.queue_scores(session, changes)
    if db.engine.dialect.name == "postgresql":
        # The test server runs with autovacuum off: without it the planner would see the
        # outbox as empty forever and sort every pending row on each claim. A production
        # server's autovacuum analyzes after a burst like this one.
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE score_outbox, line_item, person, membership"))
    cpu_before = Cpu.now(lms)
    start = time.perf_counter()
    stats = worker.drain()
    elapsed = time.perf_counter() - start
    cpu = Cpu.now(lms) - cpu_before
    after = lms.counters()
    with db.session_factory() as session:
        counts = outbox_counts(session, context_id=context_id)
    assert counts[OutboxStatus.SENT] == len(changes) == stats.sent, counts
    assert after["accepted"] - before["accepted"] == len(changes)
    check_lms_holds_the_queued_scores(db, lms, context_id, lms_context)
    return Run(elapsed, stats.sent, after["token_requests"] - before["token_requests"], cpu)


def check_lms_holds_the_queued_scores(
    db: Database, lms: RemoteLms, context_id: int, lms_context: str
) -> None:
    """Every student's score in the LMS equals the newest one queued for them."""
    with db.session_factory() as session:
        rows = session.execute(
            select(LineItem.url, Person.sub, ScoreOutbox.score_given)
            .join(LineItem, LineItem.id == ScoreOutbox.line_item_id)
            .join(Person, Person.id == ScoreOutbox.person_id)
            .where(ScoreOutbox.context_id == context_id)
            .order_by(ScoreOutbox.id)
        )
        queued = {(url, sub): None if g is None else float(g) for url, sub, g in rows}
    held = lms.scores(lms_context)
    assert held == queued, (len(held), len(queued))


def naive(
    db: Database,
    keyring: KeyRing,
    registration: Platform,
    context_id: int,
    user_agent: str,
) -> tuple[float, int]:
    """One score at a time, a fresh client and a fresh token for each (pylti1p3's defaults)."""
    with db.session_factory() as session:
        rows = list(
            session.execute(
                select(LineItem.url, Person.sub)
                .join(Membership, Membership.context_id == LineItem.context_id)
                .join(Person, Person.id == Membership.person_id)
                .where(LineItem.context_id == context_id)
            )
        )
    signing = keyring.snapshot_without_session(db).signing
    start = time.perf_counter()
    for url, sub in rows:
        assert url is not None  # the bench's columns were made before it starts
        with httpx.Client(timeout=30, headers={"User-Agent": user_agent}) as http:
            now = int(time.time())
            assertion = jwt.encode(
                {
                    "iss": registration.client_id,
                    "sub": registration.client_id,
                    "aud": registration.token_url,
                    "iat": now,
                    "exp": now + 300,
                    "jti": uuid.uuid4().hex,
                },
                signing.private_key,
                algorithm="RS256",
                headers={"kid": signing.kid},
            )
            token = http.post(
                registration.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": JWT_BEARER,
                    "client_assertion": assertion,
                    "scope": f"{SCOPE_LINEITEM} {SCOPE_SCORE}",
                },
            ).json()["access_token"]
            http.post(
                score_url(url),
                headers={"Authorization": f"Bearer {token}", "Content-Type": SCORE_TYPE},
                json={
                    "userId": sub,
                    "scoreGiven": 3,
                    "scoreMaximum": 4,
                    "activityProgress": "Completed",
                    "gradingProgress": "FullyGraded",
                    "timestamp": datetime.now(UTC).isoformat(),
                },
            ).raise_for_status()
    return time.perf_counter() - start, len(rows)


def floor(
    db: Database,
    ags: AgsClient,
    lms: RemoteLms,
    registration: Platform,
    context_id: int,
    concurrency: int,
) -> Run:
    """The same score POSTs from a bare thread pool: no outbox, no database, one token."""
    with db.session_factory() as session:
        rows = list(
            session.execute(
                select(LineItem.url, Person.sub)
                .join(Membership, Membership.context_id == LineItem.context_id)
                .join(Person, Person.id == Membership.person_id)
                .where(LineItem.context_id == context_id)
            )
        )

    def post(row: Any) -> None:
        url, sub = row
        ags.post_score(
            registration,
            url,
            {
                "userId": sub,
                "scoreGiven": 3,
                "scoreMaximum": 4,
                "activityProgress": "Completed",
                "gradingProgress": "FullyGraded",
                "timestamp": datetime.now(UTC).isoformat(),
            },
            offered=OFFERED,  # the worker's token: one per registration and scope set
        )

    before = lms.counters()
    cpu_before = Cpu.now(lms)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, rows))
    elapsed = time.perf_counter() - start
    cpu = Cpu.now(lms) - cpu_before
    after = lms.counters()
    assert after["accepted"] - before["accepted"] == len(rows)
    return Run(elapsed, len(rows), after["token_requests"] - before["token_requests"], cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--lms-server",
        choices=("asyncio", "gunicorn", "werkzeug"),
        default="asyncio",
        help="the test LMS's HTTP server (werkzeug: as this bench ran before); see "
        "bench/grades_platform.py",
    )
    parser.add_argument("--profile", default="", help="write a cProfile of the last drain here")
    parser.add_argument("--batch-size", type=int, default=WorkerConfig.batch_size)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-grades-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    settings = load_settings(
        {},
        env="test",
        secret_key="bench-" + "x" * 40,
        database_url=url,
        instance_path=str(tmp),
        secure_cookies=False,
    )
    db = Database(url)
    global MEASURE_DB
    MEASURE_DB = db.engine.dialect.name == "postgresql"
    Base.metadata.create_all(db.engine)
    app = create_app(settings)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    tool_url, stop_tool = serve_in_thread(app)
    lms = RemoteLms(tool_url, args.delay_ms, args.lms_server)
    try:
        with db.begin() as session:
            registration = Platform(
                issuer=lms.base_url,
                client_id="pathways-demo",
                auth_login_url=lms.base_url + "/auth",
                token_url=lms.base_url + "/token",
                jwks_url=lms.base_url + "/jwks",
            )
            session.add(registration)
            session.flush()
            platform_id = registration.id
        httpx.get(tool_url + "/.well-known/jwks.json").raise_for_status()
        with db.session_factory() as session:
            stored = session.get(Platform, platform_id)
            assert stored is not None
            registration = stored
        http = make_http_client(settings)
        keyring = KeyRing(secret=settings.effective_key_secret)
        tokens = TokenClient(db, http, keyring)
        pool = make_score_pool(settings, args.concurrency)
        worker = GradeWorker(
            db,
            AgsClient(pool, tokens),
            WorkerConfig(concurrency=args.concurrency, batch_size=args.batch_size),
        )
        print(
            f"grades: LMS +{args.delay_ms} ms ({args.lms_server}), "
            f"concurrency {args.concurrency}, db={db.engine.dialect.name}"
        )
        rss = [maxrss_mb()]
        small = None
        sizes = ((30, 10), (30, 10), (100, 100), (100, 100))
        for round_no, (students, comps) in enumerate(sizes):
            course = make_course(db, lms, platform_id, students, comps)
            profiler = None
            if args.profile and round_no == len(sizes) - 1:
                profiler = SendProfiler(worker)
                profiler.profiles.append(cProfile.Profile())
                profiler.profiles[-1].enable()
            run = run_worker(db, worker, lms, course)
            if profiler is not None:
                profiler.profiles[-1].disable()
                profiler.save(args.profile)
            rss.append(maxrss_mb())
            context_id = course[0]
            if small is None:
                small = context_id
            print(
                f"  worker  {run.sent:6d} scores: {run.elapsed:6.2f} s "
                f"({run.sent / run.elapsed:6.0f}/s), {run.cpu.per_score(run.sent)}, "
                f"tokens {run.token_requests}, max RSS {rss[-1]:.0f} MB "
                f"(+{rss[-1] - rss[-2]:.0f})"
            )
        run = floor(db, worker.ags, lms, registration, context_id, args.concurrency)
        print(
            f"  floor   {run.sent:6d} scores: {run.elapsed:6.2f} s "
            f"({run.sent / run.elapsed:6.0f}/s), {run.cpu.per_score(run.sent)}: "
            "bare thread pool, same client, no database"
        )
        if not args.skip_naive and small is not None:
            seconds, n = naive(db, keyring, registration, small, settings.user_agent)
            print(
                f"  naive   {n:6d} scores: {seconds:6.2f} s (one by one, new token each); "
                f"10,000 extrapolated: {seconds / n * 10_000:6.0f} s"
            )
        worker.close()
        http.close()
    finally:
        lms.stop()
        stop_tool()
        db.dispose()


if __name__ == "__main__":
    main()
