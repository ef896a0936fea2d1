"""The admin console as LMS administrators and the operator really use it: odd addresses,
a leaked admin secret, the one deployment an administrator must not switch off from inside,
and registration data that came from the LMS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lti_app import create_app
from lti_app.admin.services import record_service_failure
from lti_app.settings import load_settings
from lti_app.tool.models import Deployment, DeploymentStatus, Platform
from tests.admin.test_console import (  # the console's own world: two schools, one issuer
    World,
    app,  # noqa: F401
    csrf,
    operator,
    status_of,
    token,
    world,  # noqa: F401
)

HUGE = "99999999999999999999999"


def _app_with_admin_secret(database_url: str, tmp_path: Path, admin_secret: str) -> Iterator[Flask]:
    settings = load_settings(
        secret_key="admin-test-secret",  # the same key as the `app` fixture's
        key_encryption_secret="pathways-test-keys",
        database_url=database_url,
        env="test",
        secure_cookies=False,
        instance_path=str(tmp_path),
        admin_secret=admin_secret,
    )
    other = create_app(settings)
    yield other
    other.extensions["lti_app.http"].close()
    other.extensions["lti_app.db"].dispose()


@pytest.fixture
def app_after_new_secret(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[Flask]:
    """The same Pathways after the operator changed LTI_APP_ADMIN_SECRET and restarted."""
    yield from _app_with_admin_secret(database_url, tmp_path, "the-new-operator-secret")


def test_operator_filter_with_impossible_numbers_shows_no_registration_not_an_error(
    app: Flask,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    """An operator edits ?platform= by hand (or follows a mangled link): a number no
    registration has shows "No registrations match", never an error page."""
    client = app.test_client()
    operator(client)
    for number in (HUGE, str(2**63), str(2**31), "0", "-1"):
        page = client.get(f"/admin/?platform={number}")
        assert page.status_code == 200, number
        text = page.get_data(as_text=True)
        assert "No registrations match" in text, number
        assert "A-client" not in text
        assert "Show all registrations" in text
    page = client.get(f"/admin/?platform={world.a.id}")
    assert "A-client" in page.get_data(as_text=True)


def test_changing_the_admin_secret_signs_out_every_operator(
    app: Flask,  # noqa: F811
    world: World,  # noqa: F811
    app_after_new_secret: Flask,
    engine: Engine,
) -> None:
    """The operator changes the admin secret because it leaked. Whoever signed in with the old
    one must be signed out, not keep approving deployments and rotating keys for 8 hours."""
    old = app.test_client()
    operator(old)
    assert old.get("/admin/").status_code == 200  # signed in while the secret was the old one
    cookie = old.get_cookie("pathways_session")
    assert cookie is not None

    stolen = app_after_new_secret.test_client()
    stolen.set_cookie("pathways_session", cookie.value, domain=cookie.domain)
    answer = stolen.get("/admin/")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/admin/login")
    page = stolen.get("/admin/login").get_data(as_text=True)
    refused = stolen.post(
        f"/admin/deployments/{world.b_pending.id}/approve", data={"csrf_token": csrf(page)}
    )
    assert refused.status_code == 401
    assert status_of(engine, world.b_pending) is DeploymentStatus.PENDING

    # The new secret works; the old one does not.
    fresh = app_after_new_secret.test_client()
    page = fresh.get("/admin/login").get_data(as_text=True)
    wrong = fresh.post(
        "/admin/login", data={"csrf_token": csrf(page), "admin_secret": "operator-secret"}
    )
    assert wrong.status_code == 403
    right = fresh.post(
        "/admin/login",
        data={"csrf_token": csrf(page), "admin_secret": "the-new-operator-secret"},
    )
    assert right.status_code == 302
    assert fresh.get("/admin/").status_code == 200


def test_signing_out_ends_the_operator_session(app: Flask, world: World) -> None:  # noqa: F811
    """After "Sign out", the console asks for the secret again."""
    client = app.test_client()
    operator(client)
    page = client.get("/admin/").get_data(as_text=True)
    assert client.post("/admin/logout", data={"csrf_token": csrf(page)}).status_code == 302
    assert client.get("/admin/").status_code == 302


def test_lms_admin_cannot_lock_themselves_out_by_disabling_their_own_deployment(
    app: Flask,  # noqa: F811
    world: World,  # noqa: F811
    engine: Engine,
) -> None:
    """An LMS administrator clicks "Disable" on the deployment they opened Pathways through.
    That would end their session at once, and no launch from it could switch it back on: the
    console does not offer it and refuses it in words; the operator still can."""
    own = world.a.deployments[0]
    client = app.test_client()
    lt = token(app, world.admin_a)
    page = client.get(f"/admin/?lt={lt}").get_data(as_text=True)
    row = page.split("A-dep-active", 1)[1].split("</tr>", 1)[0]
    assert f"/admin/deployments/{own.id}/disable" not in row
    assert "You opened Pathways through this one" in row
    assert f"/admin/deployments/{world.a_pending.id}/disable" in page  # others: still offered
    answer = client.post(
        f"/admin/deployments/{own.id}/disable", data={"csrf_token": csrf(page), "lt": lt}
    )
    assert answer.status_code == 400
    assert "lock you out" in answer.get_data(as_text=True)
    assert status_of(engine, own) is DeploymentStatus.ACTIVE
    assert client.get(f"/admin/?lt={lt}").status_code == 200

    operator_client = app.test_client()
    operator(operator_client)
    page = operator_client.get("/admin/").get_data(as_text=True)
    done = operator_client.post(
        f"/admin/deployments/{own.id}/disable", data={"csrf_token": csrf(page)}
    )
    assert done.status_code == 302
    assert status_of(engine, own) is DeploymentStatus.DISABLED


def test_odd_addresses_for_deployment_actions_are_answered_in_words(
    app: Flask,  # noqa: F811
    world: World,  # noqa: F811
    engine: Engine,
) -> None:
    """Hand-edited action addresses: huge or negative ids are "not found", an unknown action
    is refused, and nothing changes."""
    client = app.test_client()
    lt = token(app, world.admin_a)
    page = client.get(f"/admin/?lt={lt}").get_data(as_text=True)
    data = {"csrf_token": csrf(page), "lt": lt}
    for target in (f"{HUGE}/approve", "-1/approve", f"{world.a_pending.id}x/approve"):
        assert client.post(f"/admin/deployments/{target}", data=data).status_code == 404, target
    odd = client.post(f"/admin/deployments/{world.a_pending.id}/delete", data=data)
    assert odd.status_code == 400
    assert "Unknown action" in odd.get_data(as_text=True)
    assert status_of(engine, world.a_pending) is DeploymentStatus.PENDING
    # A second click on Approve leaves it approved, with no error.
    for _ in range(2):
        again = client.post(f"/admin/deployments/{world.a_pending.id}/approve", data=data)
        assert again.status_code == 302
    assert status_of(engine, world.a_pending) is DeploymentStatus.ACTIVE


def test_registration_details_from_the_lms_are_shown_as_text(
    app: Flask,  # noqa: F811
    world: World,  # noqa: F811
    engine: Engine,
) -> None:
    """Dynamic Registration lets the LMS (or whoever posts to the public registration page)
    choose the registration's name and endpoints, and launches bring deployment ids: none of it
    may become markup in an administrator's console."""
    with Session(engine) as db:
        db.execute(
            update(Platform)
            .where(Platform.id == world.a.id)
            .values(
                name="<img src=x onerror=alert('name')>",
                token_audience="<script>alert('aud')</script>",
            )
        )
        db.execute(
            update(Deployment)
            .where(Deployment.id == world.a_pending.id)
            .values(deployment_id="<b onmouseover=alert('dep')>x</b>")
        )
        record_service_failure(
            db,
            platform_id=world.a.id,
            service="<i>roster</i>",
            reason="<a href='javascript:alert(1)'>LMS said</a>",
            status=500,
        )
        db.commit()
    text = app.test_client().get(f"/admin/?lt={token(app, world.admin_a)}").get_data(as_text=True)
    for raw in ("<img src=x", "<script>alert('aud')", "<b onmouseover", "<i>roster", "<a href='j"):
        assert raw not in text, raw
    for shown in (
        "&lt;img src=x onerror=alert(&#39;name&#39;)&gt;",
        "&lt;script&gt;alert(&#39;aud&#39;)&lt;/script&gt;",
        "&lt;b onmouseover=alert(&#39;dep&#39;)&gt;x&lt;/b&gt;",
        "&lt;i&gt;roster&lt;/i&gt;",
    ):
        assert shown in text, shown
