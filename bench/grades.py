"""Grades benchmark: scores from the outbox to the test LMS, 20 ms away.

Times `GradeWorker.drain()` from the moment the outbox holds the rows (line items exist, as
they do once a teacher picked the columns) until every score is recorded as sent. Then the
same for what pylti1p3's defaults amount to: one score at a time, a new token each time
(measured on 300 scores; the 10,000 figure is extrapolated).

    .venv/bin/python bench/grades.py [--delay-ms 20] [--concurrency 16] [--database-url URL]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import multiprocessing
import resource
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import jwt
from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler

from lti_app import create_app
from lti_app.competencies.models import Competency
from lti_app.db import Database
from lti_app.demo import seed
from lti_app.demo.seed import Course, Enrollment, Role
from lti_app.demo.server import serve_in_thread, start_demo_platform
from lti_app.demo.state import PlatformState, ScoreRecord, ScoreRejectedError, parse_timestamp
from lti_app.grades import services
from lti_app.grades.client import SCORE_TYPE, AgsClient, score_url
from lti_app.grades.models import LineItem, OutboxStatus
from lti_app.grades.worker import GradeWorker, WorkerConfig
from lti_app.mastery.services import MasteryChange
from lti_app.models import Base
from lti_app.settings import load_settings
from lti_app.tool.client import SCOPE_LINEITEM, SCOPE_SCORE, TokenClient
from lti_app.tool.keys import KeyRing
from lti_app.tool.models import Context, Membership, MembershipStatus, Person, Platform


def _indexed_record_score(self: Any, item: Any, user_id: str, body: dict[str, Any]) -> None:
    """The demo platform's record_score with the latest score per pair indexed.

    The demo scans its whole score log for each score (O(n) per score, quadratic in a
    benchmark); a real LMS looks the result up by key. Bench-only, same answers.
    """
    now = datetime.now(UTC)
    latest_by_pair = self.__dict__.setdefault("_bench_latest", {})
    with self.lock:
        self.counters.scores_received += 1
        latest = latest_by_pair.get((item.id, user_id))
        try:
            stamp = parse_timestamp(body.get("timestamp"))
            if latest is not None and stamp < parse_timestamp(latest.body["timestamp"]):
                raise ScoreRejectedError(400, "score timestamp is older than the stored one")
        except ScoreRejectedError as err:
            self.scores.append(ScoreRecord(item.id, user_id, body, err.status, now))
            raise
        except ValueError as err:
            self.scores.append(ScoreRecord(item.id, user_id, body, 400, now))
            raise ScoreRejectedError(400, f"bad timestamp: {err}") from err
        record = ScoreRecord(item.id, user_id, body, 200, now)
        self.scores.append(record)
        latest_by_pair[(item.id, user_id)] = record


def platform_process(conn: Connection, tool_url: str, delay_ms: int) -> None:
    """The test LMS in its own process (as an LMS is on its own machine); obeys commands."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Real LMSs keep connections alive; werkzeug's server speaks HTTP/1.0 unless told.
    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    PlatformState.record_score = _indexed_record_score  # type: ignore[method-assign]
    lms = start_demo_platform(tool_url, delay_ms=delay_ms)
    conn.send(lms.base_url)
    while True:
        command, *args = conn.recv()
        if command == "course":
            name, subs = args
            seed.COURSES[name] = Course(
                name, name, name, tuple(Enrollment(s, Role.LEARNER) for s in subs)
            )
            conn.send(None)
        elif command == "counters":
            state = lms.platform.state
            with state.lock:
                accepted = sum(1 for r in state.scores if r.status == 200)
            conn.send((lms.platform.counters.token_requests, accepted))
        else:
            lms.stop()
            conn.send(None)
            return


class RemoteLms:
    """The main process's handle on the platform process."""

    def __init__(self, tool_url: str, delay_ms: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=platform_process, args=(child, tool_url, delay_ms), daemon=True
        )
        self.process.start()
        self.base_url: str = self.conn.recv()

    def call(self, *command: Any) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def line_items_url(self, context_id: str) -> str:
        return f"{self.base_url}/api/contexts/{context_id}/lineitems"

    def stop(self) -> None:
        self.call("stop")
        self.process.join(10)


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_course(
    db: Database, lms: RemoteLms, platform_id: int, students: int, competencies: int
) -> tuple[int, list[MasteryChange]]:
    name = f"bench-grades-{uuid.uuid4().hex[:6]}"
    subs = [f"{name}-s{i:04d}" for i in range(students)]
    lms.call("course", name, subs)
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
        services.remember_ags_claim(
            session,
            context_id=ctx.id,
            resource_link_id=None,
            claim={"lineitems": lms.line_items_url(name), "scope": [SCOPE_SCORE]},
        )
        services.set_gradebook_competencies(
            session, context_id=ctx.id, competency_ids=[c.id for c in comps]
        )
        changes = [
            MasteryChange(ctx.id, p.id, c.id, None, Decimal(3), None, "Proficient", True)
            for p in people
            for c in comps
        ]
        return ctx.id, changes


def run_worker(
    db: Database,
    worker: GradeWorker,
    lms: RemoteLms,
    context_id: int,
    changes: list[MasteryChange],
) -> tuple[float, int, int]:
    """Columns first (untimed), then queue the scores, then time the drain."""
    worker.config = dataclasses.replace(worker.config, context_ids=frozenset({context_id}))
    tokens_before, accepted_before = lms.call("counters")
    worker.sync_line_items()
    with db.begin() as session:
        services.queue_scores(session, changes)
    start = time.perf_counter()
    stats = worker.drain()
    elapsed = time.perf_counter() - start
    with db.session_factory() as session:
        counts = services.outbox_counts(session, context_id=context_id)
    tokens_after, accepted_after = lms.call("counters")
    assert counts[OutboxStatus.SENT] == len(changes) == stats.sent, counts
    assert accepted_after - accepted_before == len(changes)
    return elapsed, stats.sent, tokens_after - tokens_before


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
    db: Database, ags: AgsClient, registration: Platform, context_id: int, concurrency: int
) -> tuple[float, int]:
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
        )

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, rows))
    return time.perf_counter() - start, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--skip-naive", action="store_true")
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
    Base.metadata.create_all(db.engine)
    app = create_app(settings)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    tool_url, stop_tool = serve_in_thread(app)
    lms = RemoteLms(tool_url, args.delay_ms)
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
            registration = session.get(Platform, platform_id)
            assert registration is not None
        http = httpx.Client(
            timeout=httpx.Timeout(15, connect=5),
            headers={"User-Agent": settings.user_agent},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )
        keyring = KeyRing(secret=settings.effective_key_secret)
        tokens = TokenClient(db, http, keyring)
        worker = GradeWorker(
            db, AgsClient(http, tokens), WorkerConfig(concurrency=args.concurrency)
        )
        print(
            f"grades: LMS +{args.delay_ms} ms, concurrency {args.concurrency}, "
            f"db={db.engine.dialect.name}"
        )
        rss = [maxrss_mb()]
        small = None
        for students, comps in ((30, 10), (30, 10), (100, 100), (100, 100)):
            context_id, changes = make_course(db, lms, platform_id, students, comps)
            elapsed, sent, token_requests = run_worker(db, worker, lms, context_id, changes)
            rss.append(maxrss_mb())
            if small is None:
                small = context_id
            print(
                f"  worker  {len(changes):6d} scores: {elapsed:6.2f} s "
                f"({sent / elapsed:7.0f}/s), token requests {token_requests}, "
                f"max RSS {rss[-1]:.0f} MB (+{rss[-1] - rss[-2]:.0f})"
            )
        seconds, n = floor(db, worker.ags, registration, context_id, args.concurrency)
        print(
            f"  floor   {n:6d} scores: {seconds:6.2f} s ({n / seconds:7.0f}/s) "
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
