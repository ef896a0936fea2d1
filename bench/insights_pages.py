"""The teacher's heavy insight pages on a wide course, in process (server time, no network).

Builds a scratch SQLite course of 40 students x 150 competencies with 6 class-wide
assessments per competency (36,000 evidence rows, recorded through mastery.services), then
times the class dashboard (/insights/), the dashboard CSV and the evidence log CSV, and prints
each one's wall time, CPU time and size. Numbers are for people: nothing here asserts on time.

    .venv/bin/python bench/insights_pages.py [--students 40] [--competencies 150]
        [--assessments 6] [--requests 5] [--profile dashboard|dashboard.csv|evidence.csv]
        [--database FILE]   # an SQLite file: seeded if missing, else reused (before/after runs)
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import create_engine, func, select

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dashboard import build_course

from lti_app import create_app
from lti_app.competencies.models import Competency
from lti_app.db import Database
from lti_app.launch_tokens import make_launch_token
from lti_app.mastery.models import Evidence, EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.models import Base
from lti_app.settings import load_settings
from lti_app.tool.models import Context, LaunchSession, Membership

PAGES = {
    "dashboard": "/insights/",
    "dashboard.csv": "/insights/dashboard.csv",
    "evidence.csv": "/insights/evidence.csv",
}


def seed(db: Database, *, students: int, competencies: int, assessments: int) -> str:
    """The course and its evidence; returns the teacher's launch session id."""
    launch = build_course(db, label="insights", students=students, competencies=competencies)
    rng, now = random.Random(2), datetime.now(UTC)
    with db.begin() as s:
        context_id = s.scalars(select(Context.id)).one()
        competency_ids = s.scalars(
            select(Competency.id).where(Competency.context_id == context_id)
        ).all()
        members = s.execute(
            select(Membership.person_id, Membership.is_teacher).where(
                Membership.context_id == context_id
            )
        ).all()
        learners = [pid for pid, teacher in members if not teacher]
        teacher_id = next(pid for pid, teacher in members if teacher)
        # build_course gave most students one result per competency: top up to `assessments`.
        for competency_id in competency_ids:
            for _ in range(assessments - 1):
                by_points: dict[int, list[int]] = {}
                for pid in learners:
                    by_points.setdefault(rng.randint(1, 4), []).append(pid)
                for points, ids in by_points.items():
                    record_evidence(
                        s,
                        context_id=context_id,
                        competency_id=competency_id,
                        student_ids=ids,
                        points=Decimal(points),
                        source=EvidenceSource.TEACHER,
                        note="Lab write-up, second draft",
                        recorded_by_id=teacher_id,
                        observed_at=now - timedelta(days=rng.randint(1, 120)),
                    )
        rows = s.scalar(select(func.count()).select_from(Evidence))
    print(f"{students} students x {competencies} competencies, {rows:,} evidence rows")
    return launch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--competencies", type=int, default=150)
    parser.add_argument("--assessments", type=int, default=6, help="per competency, class-wide")
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--profile", choices=sorted(PAGES), help="cProfile one request")
    parser.add_argument("--database", help="SQLite file to seed, or to reuse if it exists")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-insights-")
    path = args.database or f"{tmp}/bench.sqlite3"
    url = f"sqlite:///{path}"
    if os.path.exists(path):
        db = Database(url)
        with db.begin() as s:
            launch = s.scalars(select(LaunchSession.id)).one()
        db.dispose()
        print(f"reusing {path}")
    else:
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        db = Database(url)
        started = time.perf_counter()
        launch = seed(
            db,
            students=args.students,
            competencies=args.competencies,
            assessments=args.assessments,
        )
        print(f"seeded in {time.perf_counter() - started:.0f} s")
        db.dispose()
    settings = load_settings(
        {}, env="test", secret_key="bench-" + "z" * 40, database_url=url, instance_path=tmp
    )
    app = create_app(settings)
    client = app.test_client()
    client.get("/.well-known/jwks.json")
    with app.test_request_context():
        token = make_launch_token(launch)
    for name, path in PAGES.items():
        full = f"{path}?lt={token}"
        client.get(full)  # warm-up
        wall: list[float] = []
        cpu: list[float] = []
        size = 0
        for _ in range(args.requests):
            start, cpu_start = time.perf_counter(), time.process_time()
            response = client.get(full)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
            assert response.status_code == 200, (name, response.status_code)
            size = len(response.data)
        print(
            f"{name:<14} p50 {statistics.median(wall) * 1000:7.0f} ms "
            f"(CPU {statistics.median(cpu) * 1000:5.0f} ms), {size / 1024:6.0f} KiB"
        )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(client.get, f"{PAGES[args.profile]}?lt={token}")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    app.extensions["lti_app.db"].dispose()


if __name__ == "__main__":
    main()
