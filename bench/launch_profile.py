"""Where a launch's CPU goes inside Pathways: cProfile around the tool's two requests.

    .venv/bin/python bench/launch_profile.py [--db sqlite|postgres] [-n 300] [--top 40]

Pathways runs in this process (Flask test client, same settings as bench/launch.py); the demo
platform runs beside it (werkzeug thread) and its /auth is called through its own test client,
outside the profile. Prints the tool's CPU per launch (login + launch POST, measured with
thread_time), the SQL statements per launch, and the top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import create_engine, event, text

from lti_app import create_app
from lti_app.db import Database
from lti_app.demo.browser import AUTO_POST_FORM_ID, parse_forms
from lti_app.demo.run import register_demo_platform
from lti_app.demo.seed import COURSES, Role
from lti_app.demo.server import start_demo_platform
from lti_app.migrate import upgrade
from lti_app.settings import load_settings

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("-n", type=int, default=300, help="profiled launches")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--show-sql", action="store_true", help="print one launch's SQL")
    parser.add_argument("--save", help="also write the raw profile here (for pstats callers)")
    parser.add_argument(
        "--no-cprofile", action="store_true", help="time only (e.g. to sample with py-spy)"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="pathways-prof-"))
    admin = None
    if args.db == "postgres":
        name = f"pathways_prof_{uuid.uuid4().hex[:10]}"
        admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        db_url = args.pg_url.rsplit("/", 1)[0] + "/" + name
    else:
        db_url = f"sqlite:///{workdir / 'prof.sqlite3'}"
    try:
        upgrade(db_url)
        profile(db_url, workdir, args)
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def profile(db_url: str, workdir: Path, args: argparse.Namespace) -> None:
    settings = load_settings(
        {},
        env="development",
        secret_key=secrets.token_urlsafe(32),
        database_url=db_url,
        instance_path=str(workdir / "instance"),
        secure_cookies=False,
        log_level=args.log_level,
        demo_enabled=False,
    )
    app = create_app(settings)
    tool_base = "http://127.0.0.1:5999"  # the test client's origin; nothing listens there
    lms = start_demo_platform(tool_base)
    db = Database(db_url)
    with db.begin() as session:
        register_demo_platform(session, lms.platform)
    db.dispose()
    platform_client = lms.app.test_client()
    statements = [0]
    shown: list[str] = []
    show = [False]

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements[0] += 1
        if show[0]:
            shown.append(" ".join(statement.split())[:160])

    engine = app.extensions["lti_app.db"].engine
    event.listen(engine, "before_cursor_execute", count)

    learners = [e.user_id for e in COURSES["course-bio9"].enrollments if e.role is Role.LEARNER]
    specs = [lms.platform.make_launch(user, "course-bio9") for user in learners]
    urls = [lms.platform.login_url(s) for s in specs]
    # CPU of this thread only: waiting for PostgreSQL or for a core is not counted.
    prof = cProfile.Profile(time.thread_time)

    def launch(i: int, profiled: bool) -> float:
        client = app.test_client()
        login = urlsplit(urls[i % len(urls)])
        cpu = 0.0
        t0 = time.thread_time()
        if profiled:
            prof.enable()
        resp = client.get(login.path + "?" + login.query, base_url=tool_base)
        if profiled:
            prof.disable()
        cpu += time.thread_time() - t0
        assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
        auth = urlsplit(resp.headers["Location"])
        page = platform_client.get(auth.path + "?" + auth.query)
        form = next(
            f for f in parse_forms(page.get_data(as_text=True)) if f.id == AUTO_POST_FORM_ID
        )
        t0 = time.thread_time()
        if profiled:
            prof.enable()
        resp = client.post(urlsplit(form.action).path, data=form.fields, base_url=tool_base)
        if profiled:
            prof.disable()
        cpu += time.thread_time() - t0
        assert resp.status_code == 200, resp.get_data(as_text=True)[:800]
        return cpu

    for i in range(40):  # the JWKS fetch, caches, templates, every person once
        launch(i, profiled=False)
    if args.show_sql:
        show[0] = True
        launch(0, profiled=False)
        show[0] = False
        print("SQL of one launch (login, then launch POST):")
        for line in shown:
            print("  ", line)
    statements[0] = 0
    plain = [launch(i, profiled=False) for i in range(args.n)]
    per_launch_sql = statements[0] / args.n
    profiled = [launch(i, profiled=not args.no_cprofile) for i in range(args.n)]
    lms.stop()
    plain.sort()
    median, mean = plain[len(plain) // 2] * 1000, sum(plain) / len(plain) * 1000
    print(
        f"tool CPU per launch (login + launch POST, in-process, no profiler): "
        f"median {median:.2f} ms, mean {mean:.2f} ms; "
        f"SQL statements per launch: {per_launch_sql:.1f}; with profiler: "
        f"{sum(profiled) / len(profiled) * 1000:.2f} ms"
    )
    if args.no_cprofile:
        return
    if args.save:
        prof.dump_stats(args.save)
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    print(out.getvalue())


if __name__ == "__main__":
    main()
