"""`lti-app demo`: Pathways on one origin, a demo LMS on another, both on this machine."""

from __future__ import annotations

import logging
import signal
import threading

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.demo.platform import DemoPlatform
from lti_app.roster.models import RosterSync, SyncStatus
from lti_app.tool.models import Deployment, DeploymentStatus, Platform

LOG = logging.getLogger(__name__)


def register_demo_platform(session: Session, platform: DemoPlatform) -> Platform:
    """Register (or update) the demo LMS in Pathways, as an admin would with `platform add`."""
    config = platform.config
    row = session.scalar(
        select(Platform).where(
            Platform.issuer == config.issuer, Platform.client_id == config.client_id
        )
    )
    if row is None:
        row = Platform(issuer=config.issuer, client_id=config.client_id)
        session.add(row)
    row.name = "Demo LMS"
    row.auth_login_url = platform.url("/auth")
    row.token_url = platform.token_url
    row.jwks_url = platform.url("/jwks")
    row.is_active = True
    session.flush()
    deployment = session.scalar(
        select(Deployment).where(
            Deployment.platform_id == row.id, Deployment.deployment_id == config.deployment_id
        )
    )
    if deployment is None:
        session.add(
            Deployment(
                platform_id=row.id,
                deployment_id=config.deployment_id,
                status=DeploymentStatus.ACTIVE,
                approved_at=utcnow(),
            )
        )
    session.flush()
    return row


def end_syncs_the_demo_was_running(session: Session, platform: Platform) -> None:
    """The demo's roster syncs run in its own process: one it was running when stopped died
    with it, and its lease (a quarter of an hour) must not keep the next one waiting."""
    session.execute(
        update(RosterSync)
        .where(
            RosterSync.platform_id == platform.id,
            RosterSync.status == SyncStatus.RUNNING,
            RosterSync.lease_until > utcnow(),
        )
        .values(lease_until=utcnow())
    )


def run_demo(*, tool_port: int = 8000, lms_port: int = 8001) -> None:
    """Migrate the SQLite database, start both servers, and wait for Ctrl-C."""
    from lti_app import create_app, migrate
    from lti_app.db import Database
    from lti_app.demo.content import seed_demo_course
    from lti_app.demo.server import serve_in_thread, start_demo_platform
    from lti_app.settings import load_settings

    settings = load_settings()
    if not settings.demo_enabled:
        raise SystemExit("the demo is off in this environment (set LTI_APP_DEMO_ENABLED=true)")
    migrate.upgrade(settings.effective_database_url)
    # Two different sites, as in a real LMS: the browser treats Pathways as a third party.
    tool_url = f"http://127.0.0.1:{tool_port}"
    lms = start_demo_platform(tool_url, host="localhost", port=lms_port)
    db = Database(settings.effective_database_url)
    with db.begin() as session:
        platform = register_demo_platform(session, lms.platform)
        end_syncs_the_demo_was_running(session, platform)
        # Roster, framework, pathways, profiles and some history: the whole experience at once.
        seed_demo_course(session, platform)
    db.dispose()
    app = create_app(settings)
    _url, stop_tool = serve_in_thread(app, "127.0.0.1", tool_port)
    from lti_app.grades.jobs import start_in_process_worker

    grade_worker = start_in_process_worker(app)  # scores reach the demo gradebook at once
    print(f"Pathways:  {tool_url}/")  # noqa: T201 - the command's output for a person
    print(f"Demo LMS:  {lms.base_url}/   <- open this and launch Pathways")  # noqa: T201
    print("Press Ctrl-C to stop.")  # noqa: T201
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    grade_worker.stop()
    stop_tool()
    lms.stop()
