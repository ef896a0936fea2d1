"""Roster benchmark: 10,000 members at 50 per page, the test LMS 20 ms away.

Compares fetching every page alone (no database) with a full sync into the database (first
sync: inserts; second: updates), in the same run.

    .venv/bin/python bench/roster.py [--members 10000] [--delay-ms 20] [--database-url URL]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from lti_app import create_app
from lti_app.db import Database
from lti_app.demo import seed
from lti_app.demo.run import register_demo_platform
from lti_app.demo.seed import Course, Enrollment, Person, Role
from lti_app.demo.server import serve_in_thread, start_demo_platform
from lti_app.models import Base
from lti_app.roster import sync_lease
from lti_app.roster.client import NrpsClient
from lti_app.roster.jobs import sync_roster
from lti_app.settings import load_settings
from lti_app.tool.client import TokenClient
from lti_app.tool.keys import KeyRing
from lti_app.tool.models import Context, Platform


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-roster-"))
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
    lms = start_demo_platform(tool_url, delay_ms=args.delay_ms, nrps_page_size=args.page_size)
    try:
        people = [
            Person(f"bench-{i:05d}", f"Given{i}", f"Family{i}", f"b{i}@bench.test")
            for i in range(args.members)
        ]
        seed.PEOPLE.update({p.user_id: p for p in people})
        context_ids = []
        with db.begin() as session:
            platform = register_demo_platform(session, lms.platform)
        httpx.get(tool_url + "/.well-known/jwks.json").raise_for_status()
        for run in ("a", "b"):
            lms_context = f"bench-roster-{run}"
            seed.COURSES[lms_context] = Course(
                lms_context,
                lms_context,
                lms_context,
                tuple(Enrollment(p.user_id, Role.LEARNER) for p in people),
            )
            with db.begin() as session:
                ctx = Context(platform_id=platform.id, context_id=lms_context)
                session.add(ctx)
                session.flush()
                sync_lease.remember_nrps_url(
                    session, context_id=ctx.id, nrps_url=lms.platform.memberships_url(lms_context)
                )
                context_ids.append(ctx.id)
        http = httpx.Client(timeout=30, headers={"User-Agent": settings.user_agent})
        tokens = TokenClient(db, http, KeyRing(secret=settings.effective_key_secret))
        nrps = NrpsClient(http, tokens)
        with db.session_factory() as session:
            registration = session.scalar(select(Platform).where(Platform.id == platform.id))
            assert registration is not None
        tokens.token(
            registration,
            frozenset(
                {"https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"}
            ),
        )

        results = []
        for i, context_id in enumerate(context_ids):
            lms_context = f"bench-roster-{'ab'[i]}"
            start = time.perf_counter()
            count = sum(
                len(page.members)
                # The whole membership, as a sync asks for it (teachers included).
                for page in nrps.pages(registration, lms.platform.memberships_url(lms_context))
            )
            fetch = time.perf_counter() - start
            start = time.perf_counter()
            first = sync_roster(db, nrps, context_id=context_id)
            sync_insert = time.perf_counter() - start
            start = time.perf_counter()
            second = sync_roster(db, nrps, context_id=context_id)
            sync_update = time.perf_counter() - start
            assert first.ok
            assert second.ok
            assert first.members == count == args.members
            results.append((fetch, sync_insert, sync_update))
        print(
            f"roster: {args.members} members, {args.page_size}/page, LMS +{args.delay_ms} ms, "
            f"db={db.engine.dialect.name}"
        )
        for fetch, insert, upd in results:
            print(
                f"  fetch pages only {fetch:6.2f} s | sync (insert) {insert:6.2f} s "
                f"= {insert / fetch:4.2f}x | sync (update) {upd:6.2f} s = {upd / fetch:4.2f}x"
            )
        http.close()
    finally:
        lms.stop()
        stop_tool()
        db.dispose()


if __name__ == "__main__":
    main()
