"""Dashboard and family-report benchmark, in process (server time, no network).

    .venv/bin/python bench/dashboard.py                 # SQLite in a temp folder
    .venv/bin/python bench/dashboard.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test

Builds a course of 300 students x 40 competencies (evidence recorded through
mastery.services, so the stored levels are real) and a class of 30, opens a teacher launch
session for each, then:

  - requests the class dashboard (/insights/) N times through the Flask app and reports
    p50/p95/max server time and the number of SQL statements per request (target: p95 <= 150
    ms, and the same count for 30 and 300 students);
  - requests /reports/class.zip for the class of 30 (30 WeasyPrint PDFs) and reports the time
    (target: <= 30 s on the 2-core machine).
Numbers are for people: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import create_engine, event, text

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lti_app import create_app
from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.launch_tokens import make_launch_token
from lti_app.learners.goals_and_check_ins import add_goal
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.models import Base
from lti_app.settings import load_settings
from lti_app.tool.models import (
    Context,
    Deployment,
    LaunchSession,
    Membership,
    MembershipStatus,
    Person,
    Platform,
)


def build_course(db: Database, *, label: str, students: int, competencies: int) -> str:
    """A course with a teacher launch session; returns the launch session id."""
    rng = random.Random(students)
    with db.begin() as s:
        platform = Platform(
            issuer=f"https://bench.example/{uuid.uuid4().hex[:6]}",
            client_id="bench",
            auth_login_url="https://bench.example/auth",
            token_url="https://bench.example/token",  # noqa: S106 - a URL
            jwks_url="https://bench.example/jwks",
        )
        s.add(platform)
        s.flush()
        deployment = Deployment(platform_id=platform.id, deployment_id="d1")
        context = Context(platform_id=platform.id, context_id=label, title=label)
        s.add_all([deployment, context])
        s.flush()
        teacher = Person(platform_id=platform.id, sub="teacher", name="Bench Teacher")
        people = [
            Person(
                platform_id=platform.id,
                sub=f"s{i:04d}",
                given_name=f"Student{i:04d}",
                family_name=f"Family{rng.randint(0, 999):03d}",
            )
            for i in range(students)
        ]
        s.add_all([teacher, *people])
        s.flush()
        now = datetime.now(UTC)
        s.add(Membership(context_id=context.id, person_id=teacher.id, is_teacher=True))
        s.add_all(
            Membership(
                context_id=context.id,
                person_id=p.id,
                is_learner=True,
                status=MembershipStatus.ACTIVE,
                last_launch_at=now - timedelta(days=rng.randint(0, 30)),
            )
            for p in people
        )
        comps = [
            create_competency(
                s, context_id=context.id, code=f"C{i + 1}", title=f"Competency {i + 1}"
            )
            for i in range(competencies)
        ]
        for comp in comps:
            by_points: dict[int, list[int]] = {}
            for p in people:
                if rng.random() < 0.9:
                    by_points.setdefault(rng.randint(1, 4), []).append(p.id)
            for points, ids in by_points.items():
                record_evidence(
                    s,
                    context_id=context.id,
                    competency_id=comp.id,
                    student_ids=ids,
                    points=Decimal(points),
                    source=EvidenceSource.TEACHER,
                    note="Observed in class",
                    recorded_by_id=teacher.id,
                    observed_at=now - timedelta(days=rng.randint(1, 60)),
                )
        for p in people[:30]:
            add_goal(
                s,
                context_id=context.id,
                person_id=p.id,
                text="Explain my lab results clearly",
                created_by_id=teacher.id,
                editor_is_teacher=True,
            )
        launch_id = secrets.token_hex(16)
        s.add(
            LaunchSession(
                id=launch_id,
                platform_id=platform.id,
                deployment_id=deployment.id,
                context_id=context.id,
                person_id=teacher.id,
                roles=[],
                role="teacher",
                message_type="LtiResourceLinkRequest",
                expires_at=now + timedelta(hours=4),
            )
        )
    return launch_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", help="database URL (default: SQLite in a temp folder)")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--profile", action="store_true", help="cProfile one 300-student page")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-dash-")
    url = args.db or f"sqlite:///{tmp}/bench.sqlite3"
    if args.db and args.db.startswith("postgresql"):
        admin = create_engine(args.db, isolation_level="AUTOCOMMIT")
        name = f"bench_dash_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = args.db.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    db = Database(url)
    t0 = time.perf_counter()
    big = build_course(db, label="bench-300", students=300, competencies=40)
    small = build_course(db, label="bench-30", students=30, competencies=40)
    print(f"seeded 300x40 and 30x40 in {time.perf_counter() - t0:.1f} s ({url.split(':')[0]})")
    db.dispose()

    settings = load_settings(
        {}, env="test", secret_key="bench-" + "z" * 40, database_url=url, instance_path=tmp
    )
    app = create_app(settings)
    statements: list[str] = []
    app_engine = app.extensions["lti_app.db"].engine

    @event.listens_for(app_engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        statements.append("q")

    client = app.test_client()
    client.get("/.well-known/jwks.json")  # first use: the tool key
    gc.freeze()  # as each gunicorn worker does after start-up (config/gunicorn.conf.py)
    with app.test_request_context():
        tokens = {"300": make_launch_token(big), "30": make_launch_token(small)}
    if args.profile:
        import cProfile
        import pstats

        client.get(f"/insights/?lt={tokens['300']}")
        profiler = cProfile.Profile()
        profiler.runcall(client.get, f"/insights/?lt={tokens['300']}")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    results: dict[str, Any] = {}
    for label, token in tokens.items():
        times: list[float] = []
        cpu: list[float] = []
        counts: list[int] = []
        size = 0
        for _ in range(args.requests):
            statements.clear()
            start, cpu_start = time.perf_counter(), time.process_time()
            response = client.get(f"/insights/?lt={token}")
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - cpu_start) * 1000)
            counts.append(len(statements))
            size = len(response.data)
            assert response.status_code == 200, response.status_code
        times.sort()
        p95 = times[int(len(times) * 0.95) - 1]
        results[label] = (statistics.median(times), p95, times[-1], counts[-1], size)
        print(
            f"dashboard {label:>3} students x 40: p50 {statistics.median(times):.1f} ms, "
            f"p95 {p95:.1f} ms, max {times[-1]:.1f} ms (CPU p50 {statistics.median(cpu):.1f} ms), "
            f"{counts[-1]} queries, "
            f"{size / 1024:.0f} KiB HTML"
        )
    start, cpu_start = time.perf_counter(), time.process_time()
    response = client.get(f"/reports/class.zip?lt={tokens['30']}&lang=es")
    elapsed = time.perf_counter() - start
    cpu_used = time.process_time() - cpu_start
    assert response.status_code == 200
    print(
        f"class set of 30 PDF reports (ZIP, Spanish): {elapsed:.1f} s wall, "
        f"{cpu_used:.1f} s CPU, {len(response.data) / 1024:.0f} KiB"
    )
    print(f"load average during the run: {os.getloadavg()}")
    app.extensions["lti_app.db"].dispose()
    if args.db and args.db.startswith("postgresql"):
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
