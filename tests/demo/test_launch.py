"""OIDC launches against the demo platform, over HTTP, through a fake tool."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from lti_app.demo import app as demo_app
from lti_app.demo.keys import HeaderTweak
from lti_app.demo.launches import (
    AGS_ENDPOINT,
    CONTEXT,
    DELETE,
    DL_SETTINGS,
    MESSAGE_TYPE,
    NRPS_CLAIM,
    RESOURCE_LINK,
    ROLES,
    LaunchTweaks,
    MessageType,
)
from lti_app.demo.platform import DemoPlatform
from lti_app.demo.seed import STUDENTS, TEACHER, Role
from lti_app.demo.server import RunningPlatform
from lti_app.demo.state import Fault

from .conftest import FakeTool, launch


def verify(http: httpx.Client, lms: DemoPlatform, token: str) -> dict[str, object]:
    """Verify an id_token as a tool would, with keys fetched from the platform's JWKS."""
    keys = jwt.PyJWKSet.from_dict(http.get(lms.url("/jwks")).json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    claims: dict[str, object] = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=lms.config.client_id
    )
    return claims


def test_launch_sends_a_signed_id_token_with_advantage_claims(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    spec = lms.make_launch(STUDENTS[0].user_id, custom={"unit": "cells"})
    token, _ = launch(http, lms, tool, spec)
    claims = verify(http, lms, token)
    state = tool.launches[-1]["state"]
    assert claims["nonce"] == tool.nonces[state]
    assert claims["sub"] == STUDENTS[0].user_id
    assert claims["name"] == "José Núñez"
    assert claims[ROLES] == [Role.LEARNER, Role.STUDENT]
    assert claims[MESSAGE_TYPE] == "LtiResourceLinkRequest"
    assert claims[CONTEXT]["title"] == "Biology 9 — Living Systems"  # type: ignore[index]
    assert claims[RESOURCE_LINK]["id"] == "rl-pathways-bio9"  # type: ignore[index]
    assert claims[NRPS_CLAIM]["context_memberships_url"] == lms.memberships_url("course-bio9")  # type: ignore[index]
    assert claims[AGS_ENDPOINT]["lineitems"] == lms.line_items_url("course-bio9")  # type: ignore[index]
    assert claims["https://purl.imsglobal.org/spec/lti/claim/custom"] == {"unit": "cells"}
    assert lms.counters.id_tokens_issued == 1


def test_login_initiation_carries_storage_target_and_deployment(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    spec = lms.make_launch(TEACHER.user_id, storage_target="_parent", deployment_id="dep-9")
    query = parse_qs(urlsplit(lms.login_url(spec)).query)
    assert query["lti_storage_target"] == ["_parent"]
    assert query["lti_deployment_id"] == ["dep-9"]
    assert query["iss"] == [lms.config.issuer]
    assert query["lti_message_hint"] == [spec.hint]
    _, claims = launch(http, lms, tool, spec)
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == "dep-9"


def test_auth_rejects_an_unregistered_redirect_uri(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    tool.redirect_uri = f"{tool.base_url}/lti/launch/"  # a trailing slash is not the same URI
    resp = http.get(lms.login_url(lms.make_launch(TEACHER.user_id)), follow_redirects=True)
    assert resp.status_code == 400
    assert "redirect_uri" in resp.text
    assert tool.launches == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("response_type", "code"),
        ("prompt", "login"),
        ("scope", "email"),
        ("client_id", "x"),
        ("nonce", ""),
        ("login_hint", "user-s02"),
        ("lti_message_hint", "nope"),
    ],
)
def test_auth_rejects_a_bad_parameter(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool, name: str, value: str
) -> None:
    spec = lms.make_launch(TEACHER.user_id)
    params = {
        "response_type": "id_token",
        "scope": "openid",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": lms.config.client_id,
        "redirect_uri": lms.config.tool_launch_url,
        "login_hint": spec.user_id,
        "lti_message_hint": spec.hint,
        "state": "s",
        "nonce": "n",
    }
    ok = http.post(lms.url("/auth"), data=params)
    assert ok.status_code == 200
    assert 'id="lti-auto-post"' in ok.text
    assert "Continue to Pathways" in ok.text  # usable without JavaScript
    bad = http.get(lms.url("/auth") + "?" + urlencode(params | {name: value}))
    assert bad.status_code == 400


def test_claim_overrides_appear_in_the_id_token(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    tweaks = LaunchTweaks(
        claims={
            "sub": DELETE,
            ROLES: [],
            CONTEXT: DELETE,
            "aud": [lms.config.client_id, "someone-else"],
        }
    )
    _, claims = launch(http, lms, tool, lms.make_launch(TEACHER.user_id, tweaks=tweaks))
    assert "sub" not in claims
    assert CONTEXT not in claims
    assert claims[ROLES] == []
    assert claims["aud"] == [lms.config.client_id, "someone-else"]


def test_launch_without_context_has_no_context_or_service_claims(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    _, claims = launch(http, lms, tool, lms.make_launch(STUDENTS[3].user_id, None))
    assert CONTEXT not in claims
    assert NRPS_CLAIM not in claims
    assert AGS_ENDPOINT not in claims
    assert claims[ROLES] == [Role.STUDENT]


def test_deep_linking_request_has_settings_and_no_resource_link(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    spec = lms.make_launch(TEACHER.user_id, message_type=MessageType.DEEP_LINKING)
    _, claims = launch(http, lms, tool, spec)
    assert claims[MESSAGE_TYPE] == "LtiDeepLinkingRequest"
    assert RESOURCE_LINK not in claims
    settings = claims[DL_SETTINGS]
    assert settings["deep_link_return_url"] == lms.url("/deep_link_return")
    assert settings["data"] == spec.hint


@pytest.mark.parametrize(
    ("tweak", "check"),
    [
        (HeaderTweak.NO_KID, lambda h, lms: "kid" not in h),
        (HeaderTweak.UNKNOWN_KID, lambda h, lms: h["kid"] != lms.current_key.kid),
        (HeaderTweak.ALG_NONE, lambda h, lms: h["alg"] == "none"),
        (HeaderTweak.HS256_PUBLIC_KEY, lambda h, lms: h["alg"] == "HS256"),
    ],
)
def test_header_tweaks_produce_tokens_a_tool_must_reject(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool, tweak: HeaderTweak, check: object
) -> None:
    token, _ = launch(
        http, lms, tool, lms.make_launch(TEACHER.user_id, tweaks=LaunchTweaks(header=tweak))
    )
    assert check(jwt.get_unverified_header(token), lms)  # type: ignore[operator]
    with pytest.raises((jwt.PyJWTError, StopIteration, KeyError)):
        verify(http, lms, token)


def test_foreign_key_keeps_kid_but_fails_signature(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    spec = lms.make_launch(TEACHER.user_id, tweaks=LaunchTweaks(foreign_key=True))
    token, _ = launch(http, lms, tool, spec)
    assert jwt.get_unverified_header(token)["kid"] == lms.current_key.kid
    with pytest.raises(jwt.InvalidSignatureError):
        verify(http, lms, token)


def test_time_shifts_make_iat_future_and_exp_past(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    _, future = launch(
        http,
        lms,
        tool,
        lms.make_launch(TEACHER.user_id, tweaks=LaunchTweaks(iat_shift=3600, exp_shift=3600)),
    )
    _, expired = launch(
        http, lms, tool, lms.make_launch(TEACHER.user_id, tweaks=LaunchTweaks(exp_shift=-900))
    )
    assert future["iat"] > future["exp"] - 3600 > 0
    token = tool.launches[-1]["id_token"]
    assert expired["exp"] < expired["iat"]
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(http, lms, token)


def test_key_rotation_publishes_new_key_beside_old(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    old = lms.current_key.kid
    new = lms.rotate_key().kid
    resp = http.get(lms.url("/jwks"))
    assert resp.headers["Cache-Control"] == "max-age=300"
    assert [k["kid"] for k in resp.json()["keys"]] == [new, old]
    assert all(k["alg"] == "RS256" and k["use"] == "sig" for k in resp.json()["keys"])
    token, _ = launch(http, lms, tool, lms.make_launch(TEACHER.user_id))
    assert jwt.get_unverified_header(token)["kid"] == new
    verify(http, lms, token)
    lms.retire_old_keys()
    assert [k["kid"] for k in http.get(lms.url("/jwks")).json()["keys"]] == [new]
    assert lms.counters.jwks_fetches == 3


def test_jwks_outage_answers_500_then_drops_connections(
    http: httpx.Client, lms: DemoPlatform
) -> None:
    lms.set_outage("jwks", Fault(500))
    assert http.get(lms.url("/jwks")).status_code == 500
    lms.set_outage("jwks", Fault.drop())
    with pytest.raises(httpx.TransportError):
        http.get(lms.url("/jwks"))
    lms.set_outage("jwks", None)
    assert http.get(lms.url("/jwks")).status_code == 200
    assert lms.counters.jwks_fetches == 3


class PauseRecorder:
    """Stands in for the platform's `time` module: records each pause it is asked for and
    holds it until `resume` is set, so a test sees an answer held by the delay."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.paused = threading.Event()
        self.resume = threading.Event()

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.paused.set()
        self.resume.wait(30)  # only keeps a failing test from holding the platform forever

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_delay_holds_every_answer(
    http: httpx.Client, running: RunningPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = PauseRecorder()
    monkeypatch.setattr(demo_app, "time", clock)
    assert http.get(running.platform.url("/jwks")).status_code == 200
    assert clock.pauses == []  # no delay set: no pause
    running.platform.delay_ms = 150
    for path in ("/jwks", "/no-such-page"):
        clock.paused.clear()
        clock.resume.clear()
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(http.get, running.platform.url(path))
            try:
                assert clock.paused.wait(10), f"{path} was answered without the delay"
                assert not answer.done(), f"{path} was answered before its delay was over"
            finally:
                clock.resume.set()
            assert answer.result().status_code in (200, 404)
    assert clock.pauses == [0.15, 0.15]
