"""Pages benchmark: server time and SQL statements of the student and teacher pages.

Builds a course of 300 students, 40 competencies, 20 evidence rows per student per competency
(240,000 rows) and 2 pathways of 15 steps x 4 options, plus a small course (30 students, 5 steps)
in the same scratch database, then GETs each page in-process with Flask's test client:

- student pathway page  GET /pathways/<id>   (pathways.student_pathway)
- learner home          GET /pathways/       (pathways.my_pathways)
- teacher overview      GET /course/         (courses.overview)

Each request is timed with perf_counter around client.get(); a before_cursor_execute listener on
the app's engine counts its SQL statements. Targets (issue): p95 <= 50 ms per page on the 2-core
machine, and statements per page equal at both sizes. Also times `record_evidence` for one
student (its stored level is updated in the same flush) at both sizes.

    .venv/bin/python bench/pages.py                 # PostgreSQL scratch db on 127.0.0.1:5432
    .venv/bin/python bench/pages.py --quick         # fewer requests
    .venv/bin/python bench/pages.py --db sqlite     # SQLite file in a temp folder
    .venv/bin/python bench/pages.py --show-sql      # every statement of one request per page
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pages_data import BuiltCourse, Size, build_course
from pages_report import machine_info, write_results

from lti_app import create_app
from lti_app.competencies.models import Competency
from lti_app.db import Database
from lti_app.launch_tokens import make_launch_token
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.migrate import upgrade
from lti_app.settings import load_settings
from lti_app.tool.models import LaunchSession, Membership

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BASE_URL = "http://pathways.bench.test"
TARGET_P95_MS = 50.0

FULL = Size(students=300, competencies=40, evidence_per_pair=20, pathways=2, steps=15, options=4)
SMALL = Size(students=30, competencies=40, evidence_per_pair=20, pathways=2, steps=5, options=4)


# --- SQL statement counting ---------------------------------------------------------------


@dataclass
class Statement:
    sql: str
    ms: float
    rows: int


class StatementLog:
    """Counts (and optionally keeps) the statements the app's engine sends, per request."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        self.execute_s = 0.0
        self.keep = False
        self.statements: list[Statement] = []
        self._started = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def reset(self, *, keep: bool = False) -> None:
        self.count, self.execute_s, self.keep, self.statements = 0, 0.0, keep, []

    def _before(self, *_args: Any) -> None:
        self.count += 1
        self._started = time.perf_counter()

    def _after(self, _conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        elapsed = time.perf_counter() - self._started
        self.execute_s += elapsed
        if self.keep:
            rows = getattr(cursor, "rowcount", -1)
            self.statements.append(Statement(" ".join(statement.split()), elapsed * 1000, rows))


# --- the measurement ----------------------------------------------------------------------


@dataclass
class PageResult:
    page: str
    size: str
    times_ms: list[float]
    cpu_ms: list[float]
    execute_ms: list[float]
    queries: list[int]
    body_bytes: int

    def pct(self, q: float) -> float:
        ordered = sorted(self.times_ms)
        index = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
        return ordered[index]

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        return self.pct(0.95)

    @property
    def query_label(self) -> str:
        low, high = min(self.queries), max(self.queries)
        return str(low) if low == high else f"{low}-{high}"


@dataclass
class WriteResult:
    size: str
    times_ms: list[float]
    queries: list[int]


def _tokens(app: Any, launch_ids: list[str]) -> list[str]:
    with app.test_request_context(base_url=BASE_URL):
        return [make_launch_token(launch_id) for launch_id in launch_ids]


def page_urls(app: Any, course: BuiltCourse) -> dict[str, list[str]]:
    """The URLs each page is requested at, rotating over sample students and pathways."""
    students = _tokens(app, course.student_launch_ids)
    (teacher,) = _tokens(app, [course.teacher_launch_id])
    return {
        "student pathway": [
            f"/pathways/{pathway_id}?lt={token}"
            for token in students
            for pathway_id in course.pathway_ids
        ],
        "learner home": [f"/pathways/?lt={token}" for token in students],
        "teacher overview": [f"/course/?lt={teacher}"],
    }


def measure_page(
    client: Any,
    log: StatementLog,
    page: str,
    size: str,
    urls: list[str],
    *,
    requests: int,
    warmup: int,
) -> PageResult:
    body_bytes = 0
    for i in range(warmup):
        response = client.get(urls[i % len(urls)], base_url=BASE_URL)
        if response.status_code != 200:
            raise RuntimeError(f"{page}: {urls[i % len(urls)]} answered {response.status}")
        body_bytes = len(response.data)
    times, cpu, executes, queries = [], [], [], []
    for i in range(requests):
        url = urls[i % len(urls)]
        log.reset()
        cpu_started = time.process_time()
        started = time.perf_counter()
        response = client.get(url, base_url=BASE_URL)
        elapsed = time.perf_counter() - started
        cpu_used = time.process_time() - cpu_started
        if response.status_code != 200:
            raise RuntimeError(f"{page}: {url} answered {response.status}")
        times.append(elapsed * 1000)
        cpu.append(cpu_used * 1000)
        executes.append(log.execute_s * 1000)
        queries.append(log.count)
    return PageResult(page, size, times, cpu, executes, queries, body_bytes)


def show_sql(client: Any, log: StatementLog, page: str, url: str) -> None:
    log.reset(keep=True)
    client.get(url, base_url=BASE_URL)
    print(f"\n-- {page}: {log.count} statements")
    for i, stmt in enumerate(log.statements, 1):
        rows = "" if stmt.rows < 0 else f"{stmt.rows:>6} rows"
        print(f"  {i:>2}. {stmt.ms:6.2f} ms {rows:>11}  {stmt.sql[:150]}")
    log.reset()


def profile_page(client: Any, page: str, url: str, requests: int = 20) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        client.get(url, base_url=BASE_URL)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    print(f"\n-- profile of {requests} x {page} (cumulative)")
    print(out.getvalue())


def measure_record_evidence(db: Database, log: StatementLog, course: BuiltCourse, n: int) -> Any:
    """record_evidence for one student (rolled back each time): its queries and time."""
    with db.begin() as session:
        launch = session.get(LaunchSession, course.student_launch_ids[0])
        assert launch is not None
        student_id = launch.person_id
        teacher_id = session.scalar(
            select(Membership.person_id).where(
                Membership.context_id == course.context_id, Membership.is_teacher.is_(True)
            )
        )
        competency_id = session.scalar(
            select(Competency.id).where(Competency.context_id == course.context_id).limit(1)
        )
    times, queries = [], []
    for _ in range(n):
        session = db.session_factory()
        try:
            log.reset()
            started = time.perf_counter()
            changes = record_evidence(
                session,
                context_id=course.context_id,
                competency_id=competency_id,  # type: ignore[arg-type]
                student_ids=[student_id],
                points=Decimal(4),
                source=EvidenceSource.TEACHER,
                note="bench",
                recorded_by_id=teacher_id,  # type: ignore[arg-type]
            )
            session.flush()
            times.append((time.perf_counter() - started) * 1000)
            queries.append(log.count)
            del changes
        finally:
            session.rollback()
            session.close()
    return WriteResult(course.size.label, times, queries)


# --- databases ----------------------------------------------------------------------------


@contextmanager
def scratch_database(kind: str, url: str | None, keep: bool) -> Iterator[str]:
    """A fresh, migrated database: a new PostgreSQL database (dropped after) or a SQLite file."""
    if url:
        upgrade(url)
        yield url
        return
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="bench-pages-"))
        url = f"sqlite:///{folder / 'pages.sqlite3'}"
        upgrade(url)
        try:
            yield url
        finally:
            if not keep:
                shutil.rmtree(folder, ignore_errors=True)
        return
    name = f"pathways_bench_pages_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        yield url
    finally:
        if keep:
            print(f"kept database {url}")
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _analyze(db: Database) -> None:
    """Fresh planner statistics, as autovacuum would have them after a bulk load."""
    if db.url.startswith("postgresql"):
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")


# --- output -------------------------------------------------------------------------------


def table(results: list[PageResult]) -> str:
    header = (
        "| page | course | requests | p50 ms | p95 ms | max ms | app CPU p50 ms "
        "| SQL execute p50 ms | statements/request | HTML KB |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in results:
        lines.append(
            f"| {r.page} | {r.size} | {len(r.times_ms)} | {r.p50:.1f} | {r.p95:.1f} "
            f"| {max(r.times_ms):.1f} | {statistics.median(r.cpu_ms):.1f} "
            f"| {statistics.median(r.execute_ms):.1f} | {r.query_label} "
            f"| {r.body_bytes / 1024:.0f} |"
        )
    return "\n".join(lines)


def verdicts(results: list[PageResult], big: str, small: str) -> list[str]:
    lines = []
    for page in dict.fromkeys(r.page for r in results if r.size != "-"):
        full = next(r for r in results if r.page == page and r.size == big)
        little = next(r for r in results if r.page == page and r.size == small)
        fast = full.p95 <= TARGET_P95_MS
        flat = set(full.queries) == set(little.queries)
        lines.append(
            f"- {page}: p95 {full.p95:.1f} ms {'<=' if fast else '>'} {TARGET_P95_MS:.0f} ms "
            f"({'met' if fast else 'NOT met'}); statements {full.query_label} at {big} "
            f"vs {little.query_label} at {small} "
            f"({'independent: met' if flat else 'GROW: NOT met'})"
        )
    return lines


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--database-url", default="", help="an existing empty database")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="60 requests per page, 5 warm-up")
    parser.add_argument("--students", type=int, default=FULL.students)
    parser.add_argument("--steps", type=int, default=FULL.steps)
    parser.add_argument("--evidence", type=int, default=FULL.evidence_per_pair)
    parser.add_argument("--show-sql", action="store_true", help="list one request's statements")
    parser.add_argument("--profile", action="store_true", help="cProfile each page (big course)")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.warmup = 60, 5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    full = Size(
        args.students, FULL.competencies, args.evidence, FULL.pathways, args.steps, FULL.options
    )
    small = Size(
        SMALL.students,
        SMALL.competencies,
        args.evidence,
        SMALL.pathways,
        SMALL.steps,
        SMALL.options,
    )
    command = "bench/pages.py " + " ".join(sys.argv[1:] if argv is None else argv)
    with scratch_database(args.db, args.database_url or None, args.keep_db) as url:
        db = Database(url)
        courses: list[BuiltCourse] = []
        for key, size in (("small", small), ("full", full)):
            started = time.perf_counter()
            course = build_course(db, size, key=key)
            steps = ", ".join(f"{k} {v:.1f} s" for k, v in course.timings.items())
            print(
                f"built {size.label}: {course.evidence_rows} evidence rows, "
                f"{course.level_rows} stored levels in {time.perf_counter() - started:.1f} s "
                f"({steps})",
                flush=True,
            )
            courses.append(course)
        _analyze(db)
        db.dispose()

        settings = load_settings(
            {},
            env="test",
            secret_key="bench-pages-" + "x" * 40,
            database_url=url,
            instance_path=tempfile.mkdtemp(prefix="bench-pages-instance-"),
            secure_cookies=False,
            log_level="WARNING",
        )
        app = create_app(settings)
        # The floor: the same app, middleware and test client, a view with no work at all.
        app.add_url_rule("/bench-floor", "bench_floor", lambda: "ok")
        engine = app.extensions["lti_app.db"].engine
        log = StatementLog(engine)
        client = app.test_client(use_cookies=False)
        results: list[PageResult] = []
        load_before = os.getloadavg()[0]
        writes: list[WriteResult] = []
        floor = measure_page(
            client,
            log,
            "floor (empty view)",
            "-",
            ["/bench-floor"],
            requests=args.requests,
            warmup=args.warmup,
        )
        results.append(floor)
        for course in courses:
            label = f"{course.size.students} students, {course.size.steps} steps"
            for page, urls in page_urls(app, course).items():
                result = measure_page(
                    client,
                    log,
                    page,
                    label,
                    urls,
                    requests=args.requests,
                    warmup=args.warmup,
                )
                results.append(result)
                print(
                    f"  {page:<17} {label:<26} p50 {result.p50:6.1f} ms  p95 "
                    f"{result.p95:6.1f} ms  statements {result.query_label}",
                    flush=True,
                )
            writes.append(measure_record_evidence(app.extensions["lti_app.db"], log, course, 20))
        if args.show_sql or args.profile:
            for page, urls in page_urls(app, courses[-1]).items():
                if args.show_sql:
                    show_sql(client, log, page, urls[0])
                if args.profile:
                    profile_page(client, page, urls[0])
        with engine.connect() as conn:
            server = conn.exec_driver_sql(
                "select version()" if url.startswith("postgresql") else "select sqlite_version()"
            ).scalar()
        app.extensions["lti_app.db"].dispose()

    big = f"{full.students} students, {full.steps} steps"
    little = f"{small.students} students, {small.steps} steps"
    report_table = table(results)
    verdict_lines = verdicts(results, big, little)
    write_lines = [
        f"- record_evidence, 1 student, 1 competency ({w.size.split(',')[0]}): p50 "
        f"{statistics.median(w.times_ms):.1f} ms, statements "
        f"{min(w.queries)}{'' if min(w.queries) == max(w.queries) else '-' + str(max(w.queries))}"
        for w in writes
    ]
    print()
    print(report_table)
    print()
    print("\n".join(verdict_lines + write_lines))
    if not args.no_write:
        build = courses[-1]
        write_results(
            Path(__file__).resolve().parent / "RESULTS.md",
            command=".venv/bin/python " + command.strip(),
            machine=(
                f"{machine_info()}; 1-min load average {load_before:.1f} before the "
                f"measurement, {os.getloadavg()[0]:.1f} after (the 2 cores are shared)"
            ),
            database=f"{args.db if not args.database_url else 'given URL'}: {server}",
            dataset=full.label + "; small: " + small.label,
            build=(
                f"{build.evidence_rows:,} evidence rows, {build.level_rows:,} stored levels; "
                + ", ".join(f"{k} {v:.1f} s" for k, v in build.timings.items())
            ),
            table=report_table,
            verdicts=verdict_lines + write_lines,
        )
        print("\nwrote the Pages section of bench/RESULTS.md")
    met = all("NOT met" not in line for line in verdict_lines)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
