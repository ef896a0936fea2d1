"""The admin console: who may open it, and that nobody reads another registration's data."""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from lti_app import create_app
from lti_app.admin.services import record_service_failure
from lti_app.db import utcnow
from lti_app.launch_tokens import make_launch_token
from lti_app.registration.models import PlatformRegistration, RegistrationMethod
from lti_app.settings import load_settings
from lti_app.tool.models import (
    Context,
    Deployment,
    DeploymentStatus,
    KeyStatus,
    LaunchFailure,
    LaunchSession,
    Person,
    Platform,
    ToolKey,
)

ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[Flask]:
    settings = load_settings(
        secret_key="admin-test-secret",
        key_encryption_secret="pathways-test-keys",
        database_url=database_url,
        env="test",
        secure_cookies=False,
        instance_path=str(tmp_path),
        admin_secret="operator-secret",
    )
    app = create_app(settings)
    yield app
    app.extensions["lti_app.http"].close()
    app.extensions["lti_app.db"].dispose()


@dataclass
class World:
    """Two registrations of one issuer (Canvas Cloud: every school shares it), and their data."""

    issuer: str
    a: Platform
    b: Platform
    a_pending: Deployment
    b_pending: Deployment
    admin_a: str
    """Launch session id of an LMS administrator of registration A."""
    teacher_a: str
    expired_admin_a: str


def _session(
    platform: Platform,
    person: Person,
    role: str,
    roles: list[str],
    *,
    context_id: int | None = None,
    expires_in: timedelta = timedelta(hours=1),
) -> LaunchSession:
    return LaunchSession(
        id=uuid.uuid4().hex,
        platform_id=platform.id,
        deployment_id=platform.deployments[0].id,
        person_id=person.id,
        context_id=context_id,
        roles=roles,
        role=role,
        message_type="LtiResourceLinkRequest",
        expires_at=utcnow() + expires_in,
    )


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    issuer = f"https://canvas-{uuid.uuid4().hex[:8]}.example"
    with Session(engine, expire_on_commit=False) as db:
        a = Platform(
            issuer=issuer,
            client_id="A-client",
            name="School A",
            auth_login_url=issuer,
            token_url=issuer + "/token",
            jwks_url=issuer + "/jwks",
        )
        b = Platform(
            issuer=issuer,
            client_id="B-client",
            name="School B",
            auth_login_url=issuer,
            token_url=issuer + "/token",
            jwks_url=issuer + "/jwks",
        )
        a.deployments = [
            Deployment(deployment_id="A-dep-active", status=DeploymentStatus.ACTIVE),
            Deployment(deployment_id="A-dep-pending", status=DeploymentStatus.PENDING),
        ]
        b.deployments = [Deployment(deployment_id="B-dep-pending", status=DeploymentStatus.PENDING)]
        db.add_all([a, b])
        db.flush()
        db.add(
            PlatformRegistration(
                platform_id=a.id,
                method=RegistrationMethod.DYNAMIC,
                product_family_code="canvas",
                granted_scopes="https://purl.imsglobal.org/spec/lti-ags/scope/score",
            )
        )
        db.add_all(
            [
                LaunchFailure(platform_id=a.id, issuer=issuer, reason="A-failure-by-id"),
                LaunchFailure(issuer=issuer, client_id="A-client", reason="A-failure-by-client"),
                LaunchFailure(issuer=issuer, client_id="B-client", reason="B-failure"),
                LaunchFailure(issuer=issuer, client_id="", reason="issuer-only-failure"),
                LaunchFailure(
                    platform_id=a.id, issuer=issuer, reason="<script>alert('A')</script>"
                ),
            ]
        )
        record_service_failure(
            db, platform_id=a.id, service="roster", reason="A-roster-broken", status=401
        )
        record_service_failure(db, platform_id=b.id, service="grades", reason="B-grades-broken")
        course = Context(platform_id=a.id, context_id="account-1", title="Account A")
        person = Person(platform_id=a.id, sub="admin-a", name="Ada Admin")
        db.add_all([course, person])
        db.flush()
        admin = _session(a, person, "admin", [ADMIN], context_id=course.id)
        teacher = _session(a, person, "teacher", [INSTRUCTOR], context_id=course.id)
        expired = _session(a, person, "admin", [ADMIN], expires_in=timedelta(minutes=-1))
        db.add_all([admin, teacher, expired])
        db.commit()
        yield World(
            issuer, a, b, a.deployments[1], b.deployments[0], admin.id, teacher.id, expired.id
        )
        db.execute(delete(LaunchFailure).where(LaunchFailure.issuer == issuer))
        db.execute(delete(Platform).where(Platform.issuer == issuer))
        db.commit()


def token(app: Flask, launch_session_id: str) -> str:
    with app.app_context():
        return make_launch_token(launch_session_id)


def csrf(page: str) -> str:
    match = CSRF.search(page)
    assert match, "no csrf token on the page"
    return html.unescape(match.group(1))


def status_of(engine: Engine, deployment: Deployment) -> DeploymentStatus:
    with Session(engine) as db:
        row = db.get(Deployment, deployment.id)
        assert row is not None
        return row.status


def operator(client: FlaskClient) -> None:
    page = client.get("/admin/login").get_data(as_text=True)
    response = client.post(
        "/admin/login", data={"csrf_token": csrf(page), "admin_secret": "operator-secret"}
    )
    assert response.status_code == 302


def test_lms_admin_sees_only_their_registration(app: Flask, world: World) -> None:
    page = app.test_client().get(f"/admin/?lt={token(app, world.admin_a)}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for visible in (
        "A-client",
        "A-dep-active",
        "A-dep-pending",
        "A-failure-by-id",
        "A-failure-by-client",
        "A-roster-broken",
        "sending scores",
    ):
        assert visible in text, visible
    for hidden in (
        "B-client",
        "B-dep-pending",
        "B-failure",
        "B-grades-broken",
        "issuer-only-failure",
        "School B",
    ):
        assert hidden not in text, hidden
    assert "Rotate keys" not in text
    assert "<script>alert" not in text  # text from the LMS is escaped
    assert "&lt;script&gt;alert" in text


def test_lms_admin_cannot_widen_the_view_with_a_platform_parameter(
    app: Flask, world: World
) -> None:
    page = app.test_client().get(f"/admin/?platform={world.b.id}&lt={token(app, world.admin_a)}")
    text = page.get_data(as_text=True)
    assert "A-client" in text
    assert "B-client" not in text


def test_lms_admin_approves_own_pending_deployment(
    app: Flask, world: World, engine: Engine
) -> None:
    client = app.test_client()
    lt = token(app, world.admin_a)
    page = client.get(f"/admin/?lt={lt}").get_data(as_text=True)
    response = client.post(
        f"/admin/deployments/{world.a_pending.id}/approve",
        data={"csrf_token": csrf(page), "lt": lt},
    )
    assert response.status_code == 302
    assert "notice=approve" in response.headers["Location"]
    assert "lt=" in response.headers["Location"]  # stays in the launch, no cookie needed
    assert status_of(engine, world.a_pending) is DeploymentStatus.ACTIVE
    response = client.post(
        f"/admin/deployments/{world.a_pending.id}/disable",
        data={"csrf_token": csrf(page), "lt": lt},
    )
    assert status_of(engine, world.a_pending) is DeploymentStatus.DISABLED


def test_lms_admin_cannot_approve_another_registrations_deployment(
    app: Flask, world: World, engine: Engine
) -> None:
    client = app.test_client()
    lt = token(app, world.admin_a)
    page = client.get(f"/admin/?lt={lt}").get_data(as_text=True)
    response = client.post(
        f"/admin/deployments/{world.b_pending.id}/approve",
        data={"csrf_token": csrf(page), "lt": lt},
    )
    assert response.status_code == 404
    assert "B-dep-pending" not in response.get_data(as_text=True)
    assert status_of(engine, world.b_pending) is DeploymentStatus.PENDING


def test_actions_need_the_csrf_token(app: Flask, world: World, engine: Engine) -> None:
    lt = token(app, world.admin_a)
    response = app.test_client().post(
        f"/admin/deployments/{world.a_pending.id}/approve", data={"lt": lt}
    )
    assert response.status_code == 400
    assert status_of(engine, world.a_pending) is DeploymentStatus.PENDING


def test_teacher_launch_is_refused(app: Flask, world: World) -> None:
    response = app.test_client().get(f"/admin/?lt={token(app, world.teacher_a)}")
    assert response.status_code == 403
    assert "A-client" not in response.get_data(as_text=True)


def test_expired_launch_is_asked_to_open_again(app: Flask, world: World) -> None:
    response = app.test_client().get(f"/admin/?lt={token(app, world.expired_admin_a)}")
    assert response.status_code == 401
    assert "A-client" not in response.get_data(as_text=True)


def test_forged_token_is_not_a_launch(app: Flask, world: World) -> None:
    response = app.test_client().get(f"/admin/?lt={world.admin_a}")  # an id, not a signed token
    assert response.status_code == 401


def test_without_launch_or_operator_sign_in_the_console_asks_to_sign_in(
    app: Flask, world: World
) -> None:
    client = app.test_client()
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/login")
    response = client.post(f"/admin/deployments/{world.a_pending.id}/approve")
    assert response.status_code in (400, 401)  # CSRF first, then no viewer


def test_wrong_admin_secret_is_refused(app: Flask, world: World) -> None:
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    guess = "my-guess-at-the-secret"
    response = client.post("/admin/login", data={"csrf_token": csrf(page), "admin_secret": guess})
    assert response.status_code == 403
    # A refused form shows what was typed only in the LMS frame, and never a secret.
    assert guess not in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_operator_login_is_off_without_an_admin_secret(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    settings = load_settings(
        secret_key="s",
        key_encryption_secret="pathways-test-keys",
        database_url=database_url,
        env="test",
        secure_cookies=False,
        instance_path=str(tmp_path),
        admin_secret="",
    )
    app = create_app(settings)
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    assert "turned off" in page
    with client.session_transaction() as sess:
        sess["pathways_operator_at"] = 10**10  # even a forged flag does not help
    assert client.get("/admin/").status_code == 302
    app.extensions["lti_app.db"].dispose()
    app.extensions["lti_app.http"].close()


def test_operator_sees_every_registration_and_can_filter(app: Flask, world: World) -> None:
    client = app.test_client()
    operator(client)
    text = client.get("/admin/").get_data(as_text=True)
    for visible in ("A-client", "B-client", "B-failure", "issuer-only-failure", "B-grades-broken"):
        assert visible in text, visible
    text = client.get(f"/admin/?platform={world.b.id}").get_data(as_text=True)
    assert "B-client" in text
    assert "A-dep-pending" not in text
    assert "A-failure-by-id" not in text


def test_operator_sees_a_registration_that_approves_its_first_deployment_at_launch(
    app: Flask, world: World, engine: Engine
) -> None:
    with Session(engine) as db, db.begin():
        platform = db.get(Platform, world.b.id)
        assert platform is not None
        platform.approve_first_deployment = True  # registered; the LMS named no deployment
    client = app.test_client()
    operator(client)
    text = " ".join(client.get(f"/admin/?platform={world.b.id}").get_data(as_text=True).split())
    assert "the first to launch is approved then" in text
    text = " ".join(client.get(f"/admin/?platform={world.a.id}").get_data(as_text=True).split())
    assert "New deployments</dt><dd>wait for approval" in text


def test_operator_rotates_keys_and_lms_admin_cannot(
    app: Flask, world: World, engine: Engine
) -> None:
    admin = app.test_client()
    lt = token(app, world.admin_a)
    page = admin.get(f"/admin/?lt={lt}").get_data(as_text=True)
    refused = admin.post("/admin/keys/rotate", data={"csrf_token": csrf(page), "lt": lt})
    assert refused.status_code == 403

    client = app.test_client()
    operator(client)
    app.test_client().get("/lti/jwks")  # make sure a key exists
    with Session(engine) as db:
        before = {
            k.kid for k in db.scalars(select(ToolKey).where(ToolKey.status == KeyStatus.ACTIVE))
        }
    page = client.get("/admin/").get_data(as_text=True)
    assert "Rotate keys" in page
    response = client.post("/admin/keys/rotate", data={"csrf_token": csrf(page)})
    assert response.status_code == 302
    with Session(engine) as db:
        active = {
            k.kid for k in db.scalars(select(ToolKey).where(ToolKey.status == KeyStatus.ACTIVE))
        }
    assert active
    assert active.isdisjoint(before)
    published = {k["kid"] for k in app.test_client().get("/lti/jwks").get_json()["keys"]}
    assert active <= published
    assert before <= published
    text = client.get("/admin/?notice=rotated").get_data(as_text=True)
    assert "A new key is published" in text


def test_admin_launch_lands_on_the_console(app: Flask, world: World) -> None:
    assert "admin" in app.extensions["lti_app.home_renderers"]
    response = app.test_client().get(f"/home?lt={token(app, world.admin_a)}")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Pathways admin console" in text
    assert "B-client" not in text
    assert 'href="/admin/?lt=' in text  # the in-frame navigation links to the console


def test_approving_an_approved_deployment_again_keeps_its_date(
    app: Flask, world: World, engine: Engine
) -> None:
    """The console shows since when a deployment is approved; a second click on Approve (or a
    second admin approving it) does not move that date."""
    client = app.test_client()
    lt = token(app, world.admin_a)
    page = client.get(f"/admin/?lt={lt}").get_data(as_text=True)
    url = f"/admin/deployments/{world.a_pending.id}/approve"
    client.post(url, data={"csrf_token": csrf(page), "lt": lt})
    with Session(engine) as session:
        first = session.get(Deployment, world.a_pending.id).approved_at  # type: ignore[union-attr]
    assert first is not None
    client.post(url, data={"csrf_token": csrf(page), "lt": lt})
    with Session(engine) as session:
        again = session.get(Deployment, world.a_pending.id).approved_at  # type: ignore[union-attr]
    assert again == first


def framing_refused(response: TestResponse) -> bool:
    policy = response.headers.get("Content-Security-Policy", "")
    return response.headers.get("X-Frame-Options") == "DENY" or "frame-ancestors 'none'" in policy


def test_an_ended_launch_in_the_lms_frame_is_asked_to_open_again_inside_the_frame(
    app: Flask, world: World, engine: Engine
) -> None:
    """The console lives in the LMS frame: a click after its launch ended (a laptop asleep, a
    tab left open) must show Pathways' own page there, not the browser's "refused to
    connect"."""
    client = app.test_client()
    page = client.get(f"/admin/?lt={token(app, world.admin_a)}").get_data(as_text=True)
    with mock.patch("time.time", return_value=time.time() - 10 * 3600):
        too_old = token(app, world.admin_a)
    refresh = client.get(f"/admin/?lt={too_old}")
    approve = client.post(
        f"/admin/deployments/{world.a_pending.id}/approve",
        data={"lt": too_old, "csrf_token": csrf(page)},
    )
    ended = client.get(f"/admin/?lt={token(app, world.expired_admin_a)}")
    for response in (refresh, approve, ended):
        assert response.status_code == 401
        assert "Please open Pathways again" in response.get_data(as_text=True)
        assert not framing_refused(response), response.headers
    assert status_of(engine, world.a_pending) is DeploymentStatus.PENDING
    # The operator's pages stay out of every frame, a launch token or not.
    assert framing_refused(client.get("/admin/login"))
    assert framing_refused(client.get(f"/admin/login?lt={too_old}"))
    assert framing_refused(client.get("/admin/"))
