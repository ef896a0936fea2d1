"""The login's target_link_uri names Pathways' own origin however an admin spelled it: host
case and a spelled-out default port do not change an origin (RFC 3986 §6.2.2). Anything that
is not that origin, or carries a user name, is still refused."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from lti_app.errors import LaunchError
from lti_app.tool.login import start_login
from lti_app.tool.models import Platform

TOOL = "https://pathways.school.org"


def login(session: Session, target: str) -> object:
    platform = Platform(
        issuer="https://lms.spellings.example",
        client_id="c1",
        name="LMS",
        auth_login_url="https://lms.spellings.example/auth",
        token_url="https://lms.spellings.example/token",
        jwks_url="https://lms.spellings.example/jwks",
        is_active=True,
    )
    session.add(platform)
    session.flush()
    params = {
        "iss": platform.issuer,
        "client_id": "c1",
        "login_hint": "u",
        "target_link_uri": target,
    }
    return start_login(
        session,
        params,
        secret_key="k" * 40,
        tool_origin=TOOL,
        redirect_uri=TOOL + "/lti/launch",
        state_ttl=600,
    )


@pytest.mark.parametrize(
    "target",
    [
        "https://Pathways.School.org/lti/launch",
        "https://PATHWAYS.SCHOOL.ORG/lti/launch?course=1",
        "https://pathways.school.org:443/lti/launch",
        "HTTPS://pathways.school.org/lti/launch",
    ],
)
def test_own_origin_in_another_spelling_is_accepted(session: Session, target: str) -> None:
    assert login(session, target) is not None


@pytest.mark.parametrize(
    "target",
    [
        "https://pathways.school.org.evil.example/lti/launch",
        "https://pathways.school.org:8443/lti/launch",
        "http://pathways.school.org/lti/launch",
        "https://user@pathways.school.org/lti/launch",
        "https://evil.example@pathways.school.org/lti/launch",
        "https://[pathways/lti/launch",
        "/lti/launch",
    ],
)
def test_another_origin_is_refused(session: Session, target: str) -> None:
    with pytest.raises(LaunchError, match="another site"):
        login(session, target)
