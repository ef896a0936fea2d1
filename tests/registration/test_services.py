"""Registration rules that need no server: issuer check, placements, answers, sealing,
and the approval of a first deployment the LMS did not name."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from lti_app.db import make_engine
from lti_app.registration.configuration import (
    TOOL_CONFIG,
    ToolUrls,
    client_registration,
    summarize,
)
from lti_app.registration.errors import PlatformRefusedError, RegistrationError
from lti_app.registration.models import PlatformRegistration
from lti_app.registration.platform_configuration import (
    PLATFORM_CONFIG,
    check_configuration_url,
    issuer_matches,
    parse_platform_configuration,
)
from lti_app.registration.services import (
    Issued,
    open_pending,
    parse_registration_response,
    seal_pending,
    store_registration,
)
from lti_app.tool.models import Deployment, DeploymentStatus, Platform
from lti_app.tool.registrations import (
    PendingDeploymentError,
    record_new_deployment,
    resolve_deployment,
)

URLS = ToolUrls(
    login="https://tool.example/lti/login",
    launch="https://tool.example/lti/launch",
    jwks="https://tool.example/lti/jwks",
)


def config(**lti: Any) -> dict[str, Any]:
    return {
        "issuer": "https://lms.example",
        "authorization_endpoint": "https://lms.example/auth",
        "token_endpoint": "https://lms.example/token",
        "jwks_uri": "https://lms.example/jwks",
        "registration_endpoint": "https://lms.example/register",
        PLATFORM_CONFIG: {
            "messages_supported": [{"type": "LtiResourceLinkRequest"}],
            **lti,
        },
    }


def parse(body: dict[str, Any], url: str = "https://lms.example/openid-configuration") -> Any:
    return parse_platform_configuration(url, body, allow_loopback_http=False)


@pytest.mark.parametrize(
    ("url", "issuer", "ok"),
    [
        ("https://lms.example/openid", "https://lms.example", True),
        ("https://lms.example", "https://lms.example", True),
        ("https://lms.example/moodle/x", "https://lms.example/moodle", True),
        ("https://lms.example/x", "https://lms.example/", True),
        ("https://lms.example.evil.test/openid", "https://lms.example", False),
        ("https://lms.example:8443/openid", "https://lms.example", False),
        ("https://lms.example/moodle2/x", "https://lms.example/moodle", False),
        ("https://other.example/openid", "https://lms.example", False),
        ("https://lms.example/openid", "", False),
    ],
)
def test_issuer_must_prefix_the_configuration_url_at_a_boundary(
    url: str, issuer: str, ok: bool
) -> None:
    assert issuer_matches(url, issuer) is ok


@pytest.mark.parametrize(
    "url",
    ["http://lms.example/openid", "ftp://lms.example/x", "javascript:alert(1)", "/relative"],
)
def test_only_https_configuration_urls_are_fetched(url: str) -> None:
    with pytest.raises(RegistrationError):
        check_configuration_url(url, allow_loopback_http=True)


def test_plain_http_on_loopback_only_when_allowed() -> None:
    check_configuration_url("http://127.0.0.1:9/openid", allow_loopback_http=True)
    with pytest.raises(RegistrationError):
        check_configuration_url("http://127.0.0.1:9/openid", allow_loopback_http=False)


def test_platform_that_cannot_launch_is_refused() -> None:
    body = config()
    body[PLATFORM_CONFIG]["messages_supported"] = [{"type": "LtiDeepLinkingRequest"}]
    with pytest.raises(PlatformRefusedError, match="LtiResourceLinkRequest"):
        parse(body)


def test_missing_deep_linking_is_a_warning_and_is_left_out() -> None:
    platform = parse(config())
    assert any("LtiDeepLinkingRequest" in w for w in summarize(platform).warnings)
    messages = client_registration(URLS, platform)[TOOL_CONFIG]["messages"]
    assert {m["type"] for m in messages} == {"LtiResourceLinkRequest"}


def test_only_offered_scopes_are_requested() -> None:
    body = config()
    body["scopes_supported"] = [
        "openid",
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    ]
    registration = client_registration(URLS, parse(body))
    assert registration["scope"] == "https://purl.imsglobal.org/spec/lti-ags/scope/score"


def test_placements_listed_by_the_platform_filter_ours() -> None:
    body = config(
        messages_supported=[
            {"type": "LtiResourceLinkRequest", "placements": ["course_navigation"]},
            {
                "type": "LtiDeepLinkingRequest",
                "placements": ["https://canvas.instructure.com/lti/link_selection"],
            },
        ]
    )
    messages = client_registration(URLS, parse(body))[TOOL_CONFIG]["messages"]
    placements = [(m["type"], m.get("placements")) for m in messages]
    assert placements == [
        ("LtiDeepLinkingRequest", ["link_selection"]),
        ("LtiResourceLinkRequest", ["course_navigation"]),
        ("LtiResourceLinkRequest", None),  # account_navigation not offered: LMS decides
    ]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (None, "not a JSON object"),
        ({}, "no client ID"),
        ({"client_id": ""}, "no client ID"),
        ({"client_id": True}, "no client ID"),
        ({"client_id": "x" * 256}, "longer than 255"),
        ({"client_id": "abc", TOOL_CONFIG: {"deployment_id": "d" * 300}}, "too long"),
    ],
)
def test_malformed_registration_answers_are_refused(body: Any, words: str) -> None:
    with pytest.raises(PlatformRefusedError, match=words):
        parse_registration_response(body)


def test_registration_answer_with_numbers_and_scope() -> None:
    issued = parse_registration_response(
        {"client_id": 10000000000042, TOOL_CONFIG: {"deployment_id": 7}, "scope": "a b"}
    )
    assert issued == Issued("10000000000042", "7", ("a", "b"))


def test_pending_registration_is_sealed_and_expires() -> None:
    sealed = seal_pending("k", config_url="https://lms.example/c", token="tok-123", config={})
    assert "tok-123" not in sealed
    assert open_pending("k", sealed, max_age=60) == ("https://lms.example/c", "tok-123", {})
    with pytest.raises(RegistrationError, match="expired"):
        open_pending("other key", sealed, max_age=60)
    with pytest.raises(RegistrationError, match="expired"):
        open_pending("k", sealed[:-3] + "abc", max_age=60)


def test_store_registration_approves_the_issued_deployment(session: Session) -> None:
    platform = parse(config())
    row = store_registration(
        session,
        platform=platform,
        issued=Issued("client-1", "dep-1", ()),
        config_url="https://lms.example/openid-configuration",
        requested=("s1", "s2"),
        auto_approve_deployments=False,
    )
    deployment = session.scalars(select(Deployment).where(Deployment.platform_id == row.id)).one()
    assert deployment.status is DeploymentStatus.ACTIVE
    assert deployment.approved_at is not None
    record = session.scalars(
        select(PlatformRegistration).where(PlatformRegistration.platform_id == row.id)
    ).one()
    assert record.granted_scopes == "s1 s2"  # the LMS echoed nothing: what we asked for

    # A pending deployment recorded by an earlier launch gets approved, not duplicated.
    session.add(
        Deployment(platform_id=row.id, deployment_id="dep-2", status=DeploymentStatus.PENDING)
    )
    session.flush()
    again = store_registration(
        session,
        platform=platform,
        issued=Issued("client-1", "dep-2", ("s1",)),
        config_url="https://lms.example/openid-configuration",
        requested=("s1", "s2"),
        auto_approve_deployments=True,
    )
    assert again.id == row.id
    assert again.auto_approve_deployments
    assert record.granted_scopes == "s1"
    deployments = session.scalars(select(Deployment).where(Deployment.platform_id == row.id))
    assert {(d.deployment_id, d.status) for d in deployments} == {
        ("dep-1", DeploymentStatus.ACTIVE),
        ("dep-2", DeploymentStatus.ACTIVE),
    }


def store_without_deployment(
    session: Session, *, client_id: str = "client-1", auto_approve: bool = False
) -> Platform:
    """Store a registration the way Canvas answers it: a client ID and no deployment."""
    return store_registration(
        session,
        platform=parse(config()),
        issued=Issued(client_id, None, ()),
        config_url="https://lms.example/openid-configuration",
        requested=(),
        auto_approve_deployments=auto_approve,
    )


def test_registration_without_a_deployment_approves_only_the_first_to_launch(
    session: Session,
) -> None:
    row = store_without_deployment(session)
    assert row.approve_first_deployment
    first = resolve_deployment(session, row, None, "1:first")
    assert first.status is DeploymentStatus.ACTIVE
    assert first.approved_at is not None
    with pytest.raises(PendingDeploymentError) as refused:
        resolve_deployment(session, row, None, "2:second")
    assert "An LMS administrator can approve it in the Pathways admin console" in (
        refused.value.hint
    )
    assert "--deployment-id 2:second" in refused.value.hint
    session.refresh(row)
    assert not row.approve_first_deployment


def test_registration_that_has_deployments_or_approves_all_keeps_no_first_approval(
    session: Session,
) -> None:
    assert not store_without_deployment(
        session, client_id="auto", auto_approve=True
    ).approve_first_deployment
    row = store_without_deployment(session, client_id="again")
    record_new_deployment(session, row, "1:first")
    # Registered again and still no deployment named: launches already showed the way in.
    assert not store_without_deployment(session, client_id="again").approve_first_deployment


def test_pending_launch_with_no_approved_install_names_only_the_operator(
    session: Session,
) -> None:
    platform = Platform(
        issuer="https://lms.example",
        client_id="by-hand",
        auth_login_url="https://lms.example/auth",
        token_url="https://lms.example/token",
        jwks_url="https://lms.example/jwks",
    )
    session.add(platform)
    session.flush()
    with pytest.raises(PendingDeploymentError) as refused:
        resolve_deployment(session, platform, None, "1:first")
    hint = refused.value.hint
    assert "only the Pathways operator can approve it" in hint
    assert "/admin/ on the Pathways server" in hint
    assert "lti-app platform approve-deployment" in hint
    assert "An LMS administrator" not in hint


@pytest.fixture
def canvas_registration(database_url: str) -> Iterator[tuple[Engine, Platform]]:
    """A committed registration that approves its first deployment, and an engine whose
    transactions behave as the servers' do."""
    engine = make_engine(database_url)
    client_id = f"race-{secrets.token_hex(4)}"
    with Session(engine, expire_on_commit=False) as session, session.begin():
        platform = store_without_deployment(session, client_id=client_id)
    try:
        yield engine, platform
    finally:
        with Session(engine) as session, session.begin():
            session.execute(delete(Platform).where(Platform.id == platform.id))
        engine.dispose()


def test_two_first_launches_of_two_deployments_at_once_approve_only_one(
    canvas_registration: tuple[Engine, Platform],
) -> None:
    engine, platform = canvas_registration
    assert platform.approve_first_deployment  # as both launches read it
    recorded = threading.Event()
    release = threading.Event()
    statuses: dict[str, DeploymentStatus] = {}

    def first_launch(deployment_id: str, hold: bool) -> None:
        with Session(engine) as session, session.begin():
            statuses[deployment_id] = record_new_deployment(session, platform, deployment_id).status
            if hold:
                recorded.set()
                release.wait(10)

    first = threading.Thread(target=first_launch, args=("1:a", True))
    first.start()
    assert recorded.wait(10)
    second = threading.Thread(target=first_launch, args=("2:b", False))
    second.start()
    time.sleep(0.3)  # the second launch is now waiting on the first's transaction
    release.set()
    first.join(10)
    second.join(20)
    assert statuses == {"1:a": DeploymentStatus.ACTIVE, "2:b": DeploymentStatus.PENDING}
    with Session(engine) as session:
        stored = session.scalars(select(Deployment).where(Deployment.platform_id == platform.id))
        assert {d.deployment_id: d.status for d in stored} == statuses
