"""The class "Progress over time" page on a large course, in process (server time only).

Each week's point scores every student with the course's own calculation method from their
evidence up to that week (insights.charts.class_series), so the page's cost grows with the
evidence: this measures it on a course of 300 students x 32 competencies with 9 assessments
each (86,400 evidence rows over four months).

    .venv/bin/python bench/progress_chart.py [--students 300] [--competencies 32]
        [--assessments 9] [--profile]
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

from sqlalchemy import create_engine, select

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dashboard import build_course

from lti_app import create_app
from lti_app.competencies.models import Competency
from lti_app.db import Database
from lti_app.launch_tokens import make_launch_token
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.models import Base
from lti_app.settings import load_settings
from lti_app.tool.models import Context, Membership


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--competencies", type=int, default=32)
    parser.add_argument("--assessments", type=int, default=9, help="per competency, class-wide")
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-progress-")
    url = f"sqlite:///{tmp}/bench.sqlite3"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    db = Database(url)
    started = time.perf_counter()
    launch = build_course(
        db, label="progress", students=args.students, competencies=args.competencies
    )
    rng, now = random.Random(1), datetime.now(UTC)
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
        students = [pid for pid, teacher in members if not teacher]
        teacher_id = next(pid for pid, teacher in members if teacher)
        for competency_id in competency_ids:
            for _ in range(args.assessments):
                by_points: dict[int, list[int]] = {}
                for pid in students:
                    by_points.setdefault(rng.randint(1, 4), []).append(pid)
                observed_at = now - timedelta(days=rng.randint(1, 120))
                for points, ids in by_points.items():
                    record_evidence(
                        s,
                        context_id=context_id,
                        competency_id=competency_id,
                        student_ids=ids,
                        points=Decimal(points),
                        source=EvidenceSource.TEACHER,
                        note="",
                        recorded_by_id=teacher_id,
                        observed_at=observed_at,
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
    path = f"/insights/progress?lt={token}"
    client.get(path)
    wall: list[float] = []
    cpu: list[float] = []
    size = 0
    for _ in range(args.requests):
        start, cpu_start = time.perf_counter(), time.process_time()
        response = client.get(path)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
        assert response.status_code == 200, response.status_code
        size = len(response.data)
    print(
        f"class progress, {args.students} students x {args.competencies} competencies x "
        f"{args.assessments} assessments: p50 {statistics.median(wall) * 1000:.0f} ms "
        f"(CPU {statistics.median(cpu) * 1000:.0f} ms), {size / 1024:.0f} KiB"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(client.get, path)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    app.extensions["lti_app.db"].dispose()


if __name__ == "__main__":
    main()
