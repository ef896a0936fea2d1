"""Dynamic Registration probes from an independent review of the specs, covering rules the other
registration tests leave open.

Sources: LTI Dynamic Registration 1.0 (https://www.imsglobal.org/spec/lti-dr/v1p0) §3.5 (the
platform's configuration: issuer, authorization_server) and §3.6 (the platform's answer is the
registration as stored, so its `scope` is what was granted); RFC 7591 §3.2.1 (the server returns
the registered metadata and may narrow what was asked for); RFC 6749 §3.3 (scope-token is
printable ASCII). The platform and Pathways run as real servers on loopback (conftest), and every
rule is checked on SQLite and PostgreSQL, whose column limits and refusal of NUL matter here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from flask import Response
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lti_app.registration.models import PlatformRegistration
from tests.registration.lms import TOOL_CONFIG
from tests.registration.test_dynamic_registration import confirm, open_registration, platforms_for
from tests.registration.test_registration_crafted import (  # noqa: F401 (a fixture)
    MakeCrafted,
    assert_plain_refusal,
    crafted,
    registration_posts,
)

AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


def _answer(**fields: Any) -> Callable[[], Response]:
    """The platform's answer to the registration POST: a client_id and `fields`."""

    def answer() -> Response:
        body = {"client_id": "review-client", TOOL_CONFIG: {"deployment_id": "1"}, **fields}
        return Response(json.dumps(body), status=200, content_type="application/json")

    return answer


def _granted(engine: Engine, issuer: str) -> str:
    [platform] = platforms_for(engine, issuer)
    with Session(engine) as session:
        record = session.scalars(
            select(PlatformRegistration).where(PlatformRegistration.platform_id == platform.id)
        ).one()
    return record.granted_scopes


@pytest.mark.parametrize(
    ("scope", "granted"),
    [
        ("", ""),
        (AGS + "score", AGS + "score"),
        (f"{AGS}score {NRPS}\x00 bad\x07scope", AGS + "score"),
    ],
    ids=["nothing-granted", "narrowed", "control-characters"],
)
def test_the_scopes_the_lms_answers_are_recorded_as_granted_even_when_none(
    browser: httpx.Client,
    tool_url: str,
    crafted: MakeCrafted,  # noqa: F811
    engine: Engine,
    scope: str,
    granted: str,
) -> None:
    # Moodle answers `"scope": ""` when its admin turned every service off: that is "nothing
    # granted", not "no answer"; recording all requested scopes would tell the operator's
    # console that grades and rosters are on. A scope with control characters is no RFC 6749
    # scope-token (and PostgreSQL cannot store NUL, which turned this into a 500).
    lms = crafted(on_register=_answer(scope=scope))
    page = open_registration(browser, tool_url, lms)
    done = confirm(browser, tool_url, page.text)
    assert done.status_code == 200, done.text[-2000:]
    assert _granted(engine, lms.base_url) == granted


def test_an_answer_without_scope_records_what_was_requested(
    browser: httpx.Client,
    tool_url: str,
    crafted: MakeCrafted,  # noqa: F811
    engine: Engine,
) -> None:
    """The control for the test above: a platform that echoes nothing granted what was asked."""
    lms = crafted(on_register=_answer())
    page = open_registration(browser, tool_url, lms)
    done = confirm(browser, tool_url, page.text)
    assert done.status_code == 200, done.text[-2000:]
    requested = json.loads(registration_posts(lms)[-1].body)["scope"]
    assert requested
    assert _granted(engine, lms.base_url) == requested


def test_an_issuer_too_long_to_store_is_refused_before_the_lms_creates_the_tool(
    browser: httpx.Client,
    tool_url: str,
    crafted: MakeCrafted,  # noqa: F811
    engine: Engine,
) -> None:
    # Any URL may be an issuer, but Pathways keeps issuers in 255 characters (every launch looks
    # them up there). Refused only when stored (PostgreSQL), the LMS had already created the tool
    # and the admin was told "could not save" (500): say so before anything is registered.
    lms = crafted()
    lms.config_query = "?tenant=" + "t" * 300
    lms.config_overrides = {"issuer": lms.config_url}  # the configuration URL starts with it
    response = open_registration(browser, tool_url, lms)
    assert_plain_refusal(response, 502, "issuer", "255")
    assert registration_posts(lms) == []
    assert platforms_for(engine, lms.config_url) == []


@pytest.mark.parametrize(
    "server",
    [
        "https://lms.example/token\x00",
        "https://lms.example/to\nken",
        "https://lms.example/" + "a" * 1100,
    ],
    ids=["nul", "newline", "too-long"],
)
def test_an_unusable_authorization_server_is_refused_before_registering(
    browser: httpx.Client,
    tool_url: str,
    crafted: MakeCrafted,  # noqa: F811
    engine: Engine,
    server: str,
) -> None:
    # authorization_server becomes the `aud` of every client assertion Pathways signs for this
    # LMS: with a control character no token request could work, and stored (PostgreSQL refuses
    # NUL and more than 1024 characters) it failed only after the LMS had created the tool.
    lms = crafted("canvas", config_overrides={"authorization_server": server})
    response = open_registration(browser, tool_url, lms)
    assert_plain_refusal(response, 502, "authorization_server")
    assert registration_posts(lms) == []
    assert platforms_for(engine, lms.base_url) == []
