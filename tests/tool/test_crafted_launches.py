"""Crafted launches, written to the LTI 1.3 spec (Core, Security Framework, Deep Linking 2.0):
odd claim types, long values, time claims, JWT headers, deep linking, escaping, and broken
forms. Every bad input must get a clear 4xx page in plain words (no stack trace, no token,
no secret), never a 500.

Launches go through the demo LMS over loopback HTTP. `tweaks` bends claims before the LMS
signs; `crafted` stops at the LMS's auto-post form and re-signs a hand-made token with the
LMS's own key (for what PyJWT will not even encode, such as a non-string `iss`).

"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from lti_app.demo.browser import AUTO_POST_FORM_ID, HtmlForm, parse_forms, submit_form
from lti_app.demo.keys import SigningKey
from lti_app.demo.launches import DELETE, DL_SETTINGS, LaunchTweaks, MessageType
from tests.conftest import Launched, LtiActions
from tests.tool.test_launch import CLAIM, STUDENT, TEACHER, assert_refused, tweaks

CONTEXT = CLAIM + "context"
RESOURCE_LINK = CLAIM + "resource_link"
CUSTOM = CLAIM + "custom"
ROLES = CLAIM + "roles"
DEPLOYMENT_ID = CLAIM + "deployment_id"
MESSAGE_TYPE = CLAIM + "message_type"
PRESENTATION = CLAIM + "launch_presentation"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DL_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
COURSE_OFFERING = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"
XSS = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
XSS_ESCAPED = "&lt;script&gt;alert(2)&lt;/script&gt;"
LONG = 10_000
EMOJI = "\U0001f469\u200d\U0001f52c"  # woman scientist: three code points, one glyph


def context(context_id: Any = "crafted-course", **fields: Any) -> dict[str, Any]:
    """A context claim for a course of its own, so odd titles never touch the seeded course."""
    claim: dict[str, Any] = {
        "id": context_id,
        "label": "CRAFT",
        "title": "Crafted Course",
        "type": [COURSE_OFFERING],
    }
    for name, value in {"id": context_id, **fields}.items():
        if value is DELETE:
            claim.pop(name, None)
        else:
            claim[name] = value
    return claim


def link(link_id: Any = "crafted-link", **fields: Any) -> dict[str, Any]:
    return {"id": link_id, "title": "Crafted link", **fields}


def isolated(**claims: Any) -> LaunchTweaks:
    """Tweaks for a person of its own (odd names never touch seeded people)."""
    return tweaks(**{"sub": f"crafted-{time.monotonic_ns()}", **claims})


def launch(lti: LtiActions, user: str = STUDENT, **claims: Any) -> Launched:
    return lti.launch(user, tweaks=isolated(**claims))


def assert_accepted(launched: Launched, *phrases: str) -> None:
    response = launched.response
    assert response.status_code == 200, response.text[:2000]
    assert "Traceback" not in response.text
    for phrase in phrases:
        assert phrase in response.text, response.text[:2000]


def error_message(launched: Launched) -> str:
    found = re.search(r'class="error-message">(.*?)</p>', launched.text, re.S)
    return found.group(1) if found else ""


# --- hand-made tokens, signed with the LMS's key -----------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: Any) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def sign_rs256(key: rsa.RSAPrivateKey, header: dict[str, Any], payload: Any) -> str:
    """An RS256 signature over whatever header and payload (PyJWT refuses some on purpose)."""
    signing_input = f"{_segment(header)}.{_segment(payload)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def auth_form(lti: LtiActions, client: httpx.Client, user: str = TEACHER, **spec: Any) -> HtmlForm:
    """Start a login in `client` and stop at the LMS's auto-post form (a valid id_token)."""
    launch_spec = lti.spec(user, **spec)
    response = client.get(lti.platform.login_url(launch_spec))
    assert response.status_code == 302, response.text[:1000]
    page = client.get(response.headers["location"])
    return next(f for f in parse_forms(page.text, str(page.url)) if f.id == AUTO_POST_FORM_ID)


def post_token(lti: LtiActions, token: str | Callable[[str], str], user: str = STUDENT) -> Launched:
    """Post `token` (or `token(original)`) with a state and cookie the tool really issued."""
    client = lti.browser()
    form = auth_form(lti, client, user)
    form.fields["id_token"] = token(form.fields["id_token"]) if callable(token) else token
    return Launched(submit_form(client, form), client)


def crafted(
    lti: LtiActions,
    user: str = STUDENT,
    *,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
    key: rsa.RSAPrivateKey | None = None,
) -> Launched:
    """The LMS's own id_token, with claims and header fields replaced (DELETE removes one),
    signed RS256 again by the LMS's key (or `key`)."""

    def rewrite(original: str) -> str:
        head = jwt.get_unverified_header(original)
        body = jwt.decode(original, options={"verify_signature": False})
        for target, changes in ((head, header or {}), (body, claims or {})):
            for name, value in changes.items():
                if value is DELETE:
                    target.pop(name, None)
                else:
                    target[name] = value
        return sign_rs256(key or lti.platform.current_key.private_key, head, body)

    return post_token(lti, rewrite, user)


# === 1. claim types ============================================================================


@pytest.mark.parametrize(
    "claims",
    [
        {"name": 42},
        {"name": None},
        {"name": ["Ada", "Lovelace"]},
        {"name": {"first": "Ada"}},
        {"given_name": 1, "family_name": None},
        {"given_name": ["Ada"], "family_name": {"x": 1}},
        {"email": ["a@example.org"]},
        {"email": 7},
        {"email": None, "name": None, "given_name": None, "family_name": None},
        {"picture": "javascript:alert(1)"},
        {"picture": 5},
        {"picture": "not a url"},
        {CLAIM + "lis": "x"},
        {CLAIM + "lis": {"person_sourcedid": 5, "course_section_sourcedid": ["a"]}},
        {CLAIM + "lis": None},
        {PRESENTATION: "iframe"},
        {PRESENTATION: None},
        {PRESENTATION: {"document_target": ["iframe"], "width": "wide", "height": None}},
        {CUSTOM: "a=1"},
        {CUSTOM: ["a", "b"]},
        {CUSTOM: None},
        {CUSTOM: {"nested": {"a": [1, 2]}, "number": 5, "null": None, "bool": True}},
        {CUSTOM: {"pathway_id": ["1"]}},
        {CUSTOM: {"pathway_id": 3}},
        {AGS: "https://lms.example/lineitems"},
        {AGS: {"lineitems": 5, "scope": []}},
        {AGS: {"lineitems": "https://lms.example/li", "scope": "a b"}},
        {AGS: {"lineitem": ["x"], "scope": [1, None]}},
        {NRPS: "https://lms.example/members"},
        {NRPS: {"service_versions": "2.0"}},
        {CLAIM + "tool_platform": "Moodle"},
        {CLAIM + "role_scope_mentor": "user-s01"},
    ],
    ids=lambda c: re.sub(r"[^a-z0-9]+", "-", json.dumps(c)[-60:].lower()).strip("-"),
)
def test_odd_optional_claims_are_tolerated(lti: LtiActions, claims: dict[str, Any]) -> None:
    """Optional claims of a wrong type are ignored: the launch works."""
    launched = launch(lti, STUDENT, **{CONTEXT: context(), RESOURCE_LINK: link(), **claims})
    assert_accepted(launched, "Crafted Course")


@pytest.mark.parametrize(
    "claims",
    [
        {"name": ["Ada"], "email": {"x": 1}},
        {CONTEXT: context(title=None)},
        {CONTEXT: context(title=5, label=["x"])},
        {CONTEXT: context(title=["x"], label=None)},
        {CONTEXT: context(type="CourseOffering")},
        {RESOURCE_LINK: link(title=["x"], description={"a": 1})},
        {ROLES: [1, None, {"a": 1}, ["x"], INSTRUCTOR]},
        {AGS: {"lineitems": 5, "scope": "x"}},
        {NRPS: {"context_memberships_url": None}},
    ],
    ids=[
        "person",
        "title-null",
        "title-num",
        "title-list",
        "type-str",
        "link",
        "roles",
        "ags",
        "nrps-null",
    ],
)
def test_odd_claims_on_a_teacher_launch_are_tolerated(
    lti: LtiActions, claims: dict[str, Any]
) -> None:
    launched = launch(lti, TEACHER, **{CONTEXT: context(), RESOURCE_LINK: link(), **claims})
    assert launched.response.status_code == 200, launched.text[:2000]
    assert 'role-badge">Teacher<' in launched.text


def test_numeric_context_and_link_ids_are_taken_as_text(lti: LtiActions) -> None:
    launched = launch(lti, STUDENT, **{CONTEXT: context(12345), RESOURCE_LINK: link(678)})
    assert_accepted(launched, "Crafted Course")


@pytest.mark.parametrize(
    ("claims", "phrase"),
    [
        ({CONTEXT: "course-bio9"}, "context"),
        ({CONTEXT: ["course-bio9"]}, "context"),
        ({CONTEXT: context(DELETE)}, "context"),
        ({CONTEXT: context("")}, "context"),
        ({ROLES: INSTRUCTOR}, "roles"),
        ({ROLES: {"a": 1}}, "roles"),
        ({RESOURCE_LINK: {"title": "no id"}}, "resource link"),
        ({RESOURCE_LINK: {"id": ""}}, "resource link"),
        ({CLAIM + "version": 1.3}, "LTI 1.3.0"),
        ({MESSAGE_TYPE: 5}, "message_type"),
        ({MESSAGE_TYPE: "LtiStartProctoring"}, "Pathways does not handle"),
        ({MESSAGE_TYPE: "<script>alert(1)</script>"}, "&lt;script&gt;"),
        ({CLAIM + "target_link_uri": 5}, "target_link_uri"),
        ({DEPLOYMENT_ID: ""}, "deployment_id"),
        ({"sub": 12345}, "sub"),
        ({"sub": ""}, "sub"),
        ({"sub": None}, "sub"),
        ({"sub": ["user-s02"]}, "sub"),
        ({"sub": {"id": "user-s02"}}, "sub"),
        ({"sub": DELETE}, "sub"),  # anonymous launch: Pathways needs to know who you are
    ],
    ids=[
        "context-str",
        "context-list",
        "context-no-id",
        "context-empty-id",
        "roles-str",
        "roles-obj",
        "link-no-id",
        "link-empty-id",
        "version-num",
        "message-type-num",
        "message-type-unsupported",
        "message-type-html",
        "target-link-uri-num",
        "deployment-empty",
        "sub-num",
        "sub-empty",
        "sub-null",
        "sub-list",
        "sub-obj",
        "sub-missing",
    ],
)
def test_wrong_required_claims_are_refused_clearly(
    lti: LtiActions, claims: dict[str, Any], phrase: str
) -> None:
    assert_refused(lti.launch(STUDENT, tweaks=tweaks(**claims)), 400, phrase)


@pytest.mark.parametrize(
    "value", ["rl-pathways", ["rl-pathways"], None], ids=["str", "list", "null"]
)
def test_resource_link_claim_that_is_not_an_object_is_refused(lti: LtiActions, value: Any) -> None:
    assert_refused(
        lti.launch(STUDENT, tweaks=tweaks(**{RESOURCE_LINK: value})), 400, "resource link"
    )


@pytest.mark.parametrize("value", [["LtiResourceLinkRequest"], {"a": 1}], ids=["list", "obj"])
def test_message_type_that_is_not_a_string_is_refused(lti: LtiActions, value: Any) -> None:
    assert_refused(lti.launch(STUDENT, tweaks=tweaks(**{MESSAGE_TYPE: value})), 400, "message_type")


@pytest.mark.parametrize(
    ("return_url", "nrps_url"),
    [
        (5, 7),
        (["https://lms.example/r"], ["https://lms.example/m"]),
        ({"u": "x"}, None),
        (None, {"u": "x"}),
    ],
    ids=["number", "list", "object-return-url", "object-nrps-url"],
)
def test_service_urls_that_are_not_strings_are_ignored(
    lti: LtiActions, database_url: str, return_url: Any, nrps_url: Any
) -> None:
    from sqlalchemy import select

    from lti_app.db import Database
    from lti_app.tool.models import LaunchSession, Person

    sub = f"crafted-urls-{time.monotonic_ns()}"
    claims = {
        CONTEXT: context(),
        PRESENTATION: {"document_target": "iframe", "return_url": return_url},
        NRPS: {"context_memberships_url": nrps_url, "service_versions": ["2.0"]},
    }
    launched = lti.launch(STUDENT, tweaks=tweaks(sub=sub, **claims))
    assert_accepted(launched, "Crafted Course")
    db = Database(database_url)
    with db.begin() as s:
        row = s.scalars(
            select(LaunchSession)
            .join(Person, Person.id == LaunchSession.person_id)
            .where(Person.sub == sub)
        ).one()
        stored = (row.return_url, row.nrps_url)
    db.dispose()
    assert stored == (None, None)


@pytest.mark.parametrize(
    ("claims", "phrase"),
    [
        ({DEPLOYMENT_ID: ["demo-deployment-1"]}, "deployment"),
        ({DEPLOYMENT_ID: {"id": "demo-deployment-1"}}, "deployment"),
        ({CONTEXT: context(["a"])}, "context"),
        ({CONTEXT: context({"a": 1})}, "context"),
        ({RESOURCE_LINK: link(["a"])}, "resource link"),
    ],
    ids=["deployment-list", "deployment-obj", "context-id-list", "context-id-obj", "link-id-list"],
)
def test_ids_that_are_not_strings_are_refused(
    lti: LtiActions, claims: dict[str, Any], phrase: str
) -> None:
    assert_refused(launch(lti, STUDENT, **claims), 400, phrase)


@pytest.mark.parametrize("value", ["²", "9" * 30], ids=["superscript", "huge"])
def test_odd_pathway_id_custom_parameter_shows_the_home(lti: LtiActions, value: str) -> None:
    launched = launch(
        lti, STUDENT, **{CONTEXT: context(), RESOURCE_LINK: link(), CUSTOM: {"pathway_id": value}}
    )
    assert_accepted(launched, "My pathways")


def test_crafted_non_string_issuer_is_refused(lti: LtiActions) -> None:
    for iss in (5, ["x"], None):
        assert_refused(crafted(lti, claims={"iss": iss}), 400, "issuer")


def test_crafted_non_string_audience_is_refused(lti: LtiActions) -> None:
    for aud in (5, [], [5], None):
        assert_refused(crafted(lti, claims={"aud": aud, "azp": DELETE}), 400, "aud")


# === 2. lengths ================================================================================


@pytest.mark.parametrize(
    "claims",
    [
        {"name": "N" * 1_000},
        {"name": "N" * LONG, "given_name": "G" * LONG, "family_name": "F" * LONG},
        {"name": EMOJI * 3_000},
        {"email": "e" * LONG + "@example.org"},
        {"picture": "https://img.example/" + "p" * LONG},
        {CONTEXT: context(title="T" * LONG, label="L" * LONG)},
        {CONTEXT: context(title=EMOJI * 1_000, label="\U0001f600" * 1_000)},
        {RESOURCE_LINK: link(title="T" * LONG, description="D" * LONG)},
        {CUSTOM: {"k": "v" * LONG, "k" * 1_000: EMOJI * 1_000}},
        {AGS: {"lineitems": "https://lms.example/" + "a" * LONG, "scope": ["s" * LONG]}},
        {"sub": "\U0001f600" * 255},  # 255 characters (more than 255 bytes): fits
        {"sub": "s" * 255, CONTEXT: context("c" * 255), RESOURCE_LINK: link("r" * 255)},
    ],
    ids=[
        "name-1k",
        "names-10k",
        "name-emoji",
        "email-10k",
        "picture-10k",
        "context-title-label-10k",
        "context-emoji",
        "link-title-description-10k",
        "custom-10k",
        "ags-10k",
        "sub-255-emoji",
        "ids-255",
    ],
)
def test_long_values_are_accepted(lti: LtiActions, claims: dict[str, Any]) -> None:
    claims = {CONTEXT: context(), RESOURCE_LINK: link(), **claims}
    launched = lti.launch(STUDENT, tweaks=isolated(**claims))
    assert launched.response.status_code == 200, launched.text[:2000]
    assert "Traceback" not in launched.text


@pytest.mark.parametrize(
    ("claims", "phrase"),
    [
        ({"sub": "s" * 256}, "sub"),
        ({"sub": "s" * LONG}, "sub"),
        ({CONTEXT: context("c" * 256)}, "context"),
        ({RESOURCE_LINK: link("r" * 256)}, "resource link"),
        ({DEPLOYMENT_ID: "d" * 256}, "deployment"),
        ({DEPLOYMENT_ID: "d" * LONG}, "deployment"),
    ],
    ids=["sub-256", "sub-10k", "context-id-256", "link-id-256", "deployment-256", "deployment-10k"],
)
def test_ids_longer_than_255_are_refused_clearly(
    lti: LtiActions, claims: dict[str, Any], phrase: str
) -> None:
    assert_refused(lti.launch(STUDENT, tweaks=tweaks(**claims)), 400, phrase, "255")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(
            {PRESENTATION: {"return_url": "https://lms.example/" + "a" * 3_000}},
            id="return-url-3000",
        ),
        pytest.param(
            {NRPS: {"context_memberships_url": "https://lms.example/" + "a" * 3_000}},
            id="nrps-url-3000",
        ),
    ],
)
def test_long_service_urls_do_not_break_the_launch(lti: LtiActions, claims: dict[str, Any]) -> None:
    launched = lti.launch(STUDENT, tweaks=isolated(**{CONTEXT: context(), **claims}))
    assert_accepted(launched, "Crafted Course")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"name": "Ada\x00Lovelace"}, id="name"),
        pytest.param({CONTEXT: context(title="Bio\x00logy")}, id="context-title"),
        pytest.param({RESOURCE_LINK: link(title="Li\x00nk")}, id="link-title"),
        pytest.param({CUSTOM: {"k": "v\x00"}}, id="custom"),  # a JSON column: fine
    ],
)
def test_nul_characters_in_text_claims_do_not_break_the_launch(
    lti: LtiActions, claims: dict[str, Any]
) -> None:
    launched = launch(lti, STUDENT, **{CONTEXT: context(), RESOURCE_LINK: link(), **claims})
    assert launched.response.status_code == 200, launched.text[:2000]


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"sub": "user\x00s02"}, id="sub"),
        pytest.param({CONTEXT: context("course\x00x")}, id="context-id"),
        pytest.param({DEPLOYMENT_ID: "demo-deployment-1\x00"}, id="deployment-id"),
    ],
)
def test_nul_characters_in_ids_are_not_a_500(lti: LtiActions, claims: dict[str, Any]) -> None:
    launched = lti.launch(STUDENT, tweaks=tweaks(**claims))
    assert launched.response.status_code < 500, launched.text[:2000]
    assert "Traceback" not in launched.text


def test_a_refusal_with_control_characters_is_still_kept_for_the_admin(
    lti: LtiActions, database_url: str
) -> None:
    marker = f"dep-{time.monotonic_ns()}"
    launched = lti.launch(STUDENT, tweaks=tweaks(**{DEPLOYMENT_ID: marker + "\x00\nforged"}))
    assert_refused(launched, 400, "NUL")
    assert refusals_kept_for(database_url, marker) == [marker + "??forged"]


def refusals_kept_for(database_url: str, marker: str) -> list[str]:
    """The deployment ids of the refused launches recorded for the admin, starting `marker`."""
    from sqlalchemy import select

    from lti_app.db import Database
    from lti_app.tool.models import LaunchFailure

    db = Database(database_url)
    try:
        with db.begin() as s:
            return list(
                s.scalars(
                    select(LaunchFailure.deployment_id).where(
                        LaunchFailure.deployment_id.startswith(marker)
                    )
                )
            )
    finally:
        db.dispose()


# === 3. time claims ============================================================================


@pytest.mark.parametrize(
    ("claims", "phrases"),
    [
        ({"nbf": int(time.time()) + 3_600}, ("in the future",)),
        ({"exp": "tomorrow"}, ("exp",)),
        ({"exp": None}, ("exp",)),
        ({"exp": DELETE}, ("exp",)),
        ({"iat": DELETE}, ("iat",)),
        ({"iat": None}, ("iat",)),
        ({"iat": "yesterday"}, ("iat",)),
        ({"nonce": DELETE}, ("nonce",)),
        ({"nonce": 12345}, ("nonce",)),
        ({"nonce": None}, ("nonce",)),
        ({"nonce": ["x"]}, ("nonce",)),
        # hmac.compare_digest refuses str with non-ASCII characters: this was a 500.
        ({"nonce": "nonce-\u00e9"}, ("nonce",)),
    ],
    ids=[
        "nbf-future",
        "exp-word",
        "exp-null",
        "exp-missing",
        "iat-missing",
        "iat-null",
        "iat-word",
        "nonce-missing",
        "nonce-num",
        "nonce-null",
        "nonce-list",
        "nonce-non-ascii",
    ],
)
def test_bad_time_and_nonce_claims_are_refused(
    lti: LtiActions, claims: dict[str, Any], phrases: tuple[str, ...]
) -> None:
    assert_refused(lti.launch(STUDENT, tweaks=tweaks(**claims)), 400, *phrases)


@pytest.mark.parametrize(
    "claims",
    [{"exp": str(int(time.time()) + 300)}, {"iat": str(int(time.time()))}],
    ids=["exp-numeric-string", "iat-numeric-string"],
)
def test_numeric_strings_as_exp_or_iat_are_refused_in_plain_words(
    lti: LtiActions, claims: dict[str, Any]
) -> None:
    launched = lti.launch(STUDENT, tweaks=tweaks(**claims))
    assert_refused(launched, 400, next(iter(claims)))
    assert "in the future" not in error_message(launched)


def test_future_nbf_is_named_in_the_refusal(lti: LtiActions) -> None:
    launched = lti.launch(STUDENT, tweaks=tweaks(nbf=int(time.time()) + 3_600))
    assert_refused(launched, 400, "nbf")


def test_iat_within_the_clock_skew_leeway_is_accepted(lti: LtiActions) -> None:
    leeway = lti.tool.settings.clock_skew_seconds
    launched = lti.launch(STUDENT, tweaks=LaunchTweaks(iat_shift=leeway - 20))
    assert_accepted(launched)


def test_iat_beyond_the_clock_skew_leeway_is_refused(lti: LtiActions) -> None:
    leeway = lti.tool.settings.clock_skew_seconds
    launched = lti.launch(STUDENT, tweaks=LaunchTweaks(iat_shift=leeway + 30))
    assert_refused(launched, 400, "in the future")


def test_exp_just_past_within_the_leeway_is_accepted(lti: LtiActions) -> None:
    leeway = lti.tool.settings.clock_skew_seconds
    launched = lti.launch(STUDENT, tweaks=LaunchTweaks(lifetime=0, exp_shift=-(leeway - 20)))
    assert_accepted(launched)


def test_exp_beyond_the_leeway_is_refused(lti: LtiActions) -> None:
    leeway = lti.tool.settings.clock_skew_seconds
    launched = lti.launch(STUDENT, tweaks=LaunchTweaks(lifetime=0, exp_shift=-(leeway + 30)))
    assert_refused(launched, 400, "expired")


def test_nbf_in_the_past_is_accepted(lti: LtiActions) -> None:
    assert_accepted(lti.launch(STUDENT, tweaks=tweaks(nbf=int(time.time()) - 10)))


# === 4. JWT header =============================================================================


@pytest.mark.parametrize(
    ("header", "phrase"),
    [
        ({"kid": DELETE}, "no key id"),
        ({"kid": ""}, "no key id"),
        ({"kid": 5}, "no key id"),
        ({"kid": ["x"]}, "no key id"),
        ({"kid": "unknown-kid-123"}, "does not publish"),
        ({"alg": "RS384"}, "accepts only RS256"),
        ({"alg": "RS512"}, "accepts only RS256"),
        ({"alg": "ES256"}, "accepts only RS256"),
        ({"alg": "PS256"}, "accepts only RS256"),
        ({"alg": "HS256"}, "accepts only RS256"),
        ({"alg": "none"}, "accepts only RS256"),
        ({"alg": "rs256"}, "accepts only RS256"),
        ({"alg": DELETE}, "accepts only RS256"),
        ({"alg": ["RS256"]}, "accepts only RS256"),
        ({"alg": XSS}, "accepts only RS256"),
        ({"kid": XSS}, "does not publish"),
        ({"kid": "k" * LONG}, "does not publish"),
    ],
    ids=lambda v: re.sub(r"[^a-z0-9]+", "-", repr(v).lower()).strip("-") or "x",
)
def test_bad_jwt_headers_are_refused_clearly(
    lti: LtiActions, header: dict[str, Any], phrase: str
) -> None:
    launched = crafted(lti, header=header)
    assert_refused(launched, 400, phrase)
    assert "<script>alert(2)" not in launched.text


@pytest.mark.parametrize(
    "header",
    [{"typ": DELETE}, {"typ": "at+jwt"}, {"typ": 5}, {"cty": "JWT"}, {"x-vendor": {"a": 1}}],
    ids=["no-typ", "typ-at-jwt", "typ-num", "cty", "extra"],
)
def test_other_header_fields_do_not_matter(lti: LtiActions, header: dict[str, Any]) -> None:
    assert_accepted(crafted(lti, header=header))


@pytest.fixture
def attacker_site() -> Iterator[tuple[str, list[str], SigningKey]]:
    """A web server the tool must never contact; it serves a JWKS with the attacker's key."""
    key = SigningKey.generate("attacker-key")
    hits: list[str] = []
    body = json.dumps({"keys": [key.public_jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits, key
    server.shutdown()
    server.server_close()


def test_jku_x5u_and_jwk_headers_are_never_fetched_nor_trusted(
    lti: LtiActions, attacker_site: tuple[str, list[str], SigningKey]
) -> None:
    url, hits, attacker = attacker_site
    pointers = {"jku": url + "/jwks", "x5u": url + "/cert.pem", "jwk": attacker.public_jwk}
    # Signed by the LMS: the pointers are ignored and the launch works.
    assert_accepted(crafted(lti, header=pointers))
    # Signed by the attacker, under the attacker's kid: an unknown key.
    launched = crafted(lti, header={**pointers, "kid": attacker.kid}, key=attacker.private_key)
    assert_refused(launched, 400, "does not publish")
    # Signed by the attacker, under the LMS's kid: the signature fails.
    launched = crafted(lti, header=pointers, key=attacker.private_key)
    assert_refused(launched, 400, "signature does not verify")
    assert hits == []


def test_unknown_critical_header_is_not_a_500(lti: LtiActions) -> None:
    launched = crafted(lti, header={"crit": ["x-must-understand"], "x-must-understand": True})
    assert launched.response.status_code in {200, 400}, launched.text[:2000]
    assert "Traceback" not in launched.text


# === 5. deep linking ===========================================================================


def dl_settings(lti: LtiActions, **fields: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "deep_link_return_url": lti.platform.url("/deep_link_return"),
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe", "window"],
        "accept_multiple": True,
        "data": "opaque",
    }
    for name, value in fields.items():
        if value is DELETE:
            settings.pop(name, None)
        else:
            settings[name] = value
    return settings


_DEFAULT = object()


def deep_link(lti: LtiActions, user: str = TEACHER, settings: Any = _DEFAULT) -> Launched:
    claims = {} if settings is _DEFAULT else {DL_SETTINGS: settings}
    return lti.launch(user, message_type=MessageType.DEEP_LINKING, tweaks=tweaks(**claims))


def pick_home(launched: Launched) -> httpx.Response:
    """Submit the picker with the Pathways home chosen; the answer is the auto-post page."""
    form = next(
        f
        for f in parse_forms(launched.text, str(launched.response.url))
        if f.action.endswith("/lti/deep-link")
    )
    form.fields["item"] = "home"
    return launched.client.post(form.action, data=form.fields)


@pytest.mark.parametrize(
    ("settings", "phrase"),
    [
        (DELETE, "deep linking settings"),
        (None, "deep linking settings"),
        ({}, "deep linking settings"),
        ("accept_types", "resource link"),  # replaced below: no ltiResourceLink
        ("no-targets", "presentation"),
        ("types-str", "resource link"),
    ],
    ids=["missing", "null", "empty", "no-resource-link-type", "no-targets", "types-str"],
)
def test_bad_deep_linking_settings_are_refused(lti: LtiActions, settings: Any, phrase: str) -> None:
    if settings == "accept_types":
        settings = dl_settings(lti, accept_types=["link", "html"])
    elif settings == "no-targets":
        settings = dl_settings(lti, accept_presentation_document_targets=DELETE)
    elif settings == "types-str":
        settings = dl_settings(lti, accept_types="ltiResourceLink")
    assert_refused(deep_link(lti, settings=settings), 400, phrase)


@pytest.mark.parametrize("value", ["settings", ["x"]], ids=["str", "list"])
def test_deep_linking_settings_that_are_not_an_object_are_refused(
    lti: LtiActions, value: Any
) -> None:
    assert_refused(deep_link(lti, settings=value), 400, "deep linking settings")


@pytest.mark.parametrize(
    "return_url",
    [
        DELETE,
        None,
        5,
        "",
        "not a url",
        "/lti/launch",
        "javascript:alert(document.domain)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://lms.example/return",
    ],
    ids=["missing", "null", "num", "empty", "words", "relative", "javascript", "data", "ftp"],
)
def test_deep_link_return_url_must_be_an_http_url(lti: LtiActions, return_url: Any) -> None:
    launched = deep_link(lti, settings=dl_settings(lti, deep_link_return_url=return_url))
    assert_refused(launched, 400, "deep_link_return_url")


def test_deep_link_data_with_markup_is_escaped_and_returned_verbatim(lti: LtiActions) -> None:
    data = "a\"b'c<d>&e</form><script>alert(1)</script>\u00e9\U0001f600"
    launched = deep_link(lti, settings=dl_settings(lti, data=data))
    assert_accepted(launched, "Add Pathways to your course")
    autopost = pick_home(launched)
    assert autopost.status_code == 200, autopost.text[:2000]
    assert "<script>alert(1)" not in autopost.text
    (form,) = parse_forms(autopost.text, str(autopost.url))
    assert form.action == lti.platform.url("/deep_link_return")
    returned = jwt.decode(form.fields["JWT"], options={"verify_signature": False})
    assert returned[DL_DATA] == data


def test_deep_link_without_data_returns_none(lti: LtiActions) -> None:
    launched = deep_link(lti, settings=dl_settings(lti, data=DELETE))
    autopost = pick_home(launched)
    (form,) = parse_forms(autopost.text, str(autopost.url))
    returned = jwt.decode(form.fields["JWT"], options={"verify_signature": False})
    assert DL_DATA not in returned


def test_deep_linking_as_a_student_is_refused_clearly(lti: LtiActions) -> None:
    assert_refused(deep_link(lti, STUDENT), 403, "Only a teacher")


@pytest.mark.parametrize(
    "fields",
    [
        {"accept_multiple": "false"},
        {"accept_multiple": None},
        {"accept_lineitem": 0},
        {"auto_create": "yes", "title": ["x"], "text": {"a": 1}},
    ],
    ids=["multiple-str", "multiple-null", "lineitem-num", "odd-extras"],
)
def test_odd_optional_deep_linking_settings_are_tolerated(
    lti: LtiActions, fields: dict[str, Any]
) -> None:
    launched = deep_link(lti, settings=dl_settings(lti, **fields))
    assert_accepted(launched, "Add Pathways to your course")
    assert pick_home(launched).status_code == 200


# === 6. escaping ===============================================================================


@pytest.mark.parametrize("user", [TEACHER, STUDENT])
def test_markup_in_every_displayed_field_is_escaped(lti: LtiActions, user: str) -> None:
    launched = launch(
        lti,
        user,
        name=XSS,
        given_name=XSS,
        family_name=XSS,
        email=XSS,
        **{
            CONTEXT: context(title="Course " + XSS, label=XSS),
            RESOURCE_LINK: link(title="Link " + XSS, description=XSS),
            CUSTOM: {"pathway_id": XSS, "note": XSS},
        },
    )
    assert launched.response.status_code == 200, launched.text[:2000]
    assert "<script>alert(2)" not in launched.text
    assert "<img src=x" not in launched.text
    assert XSS_ESCAPED in launched.text  # the name or course title is shown, as text


def test_markup_in_refusals_is_escaped(lti: LtiActions) -> None:
    launched = lti.launch(STUDENT, deployment_id="dep-" + XSS + str(time.monotonic_ns()))
    assert_refused(launched, 403, "waiting for approval")
    assert "<script>alert(2)" not in launched.text
    client = lti.browser()
    response = client.post(
        lti.tool.url + "/lti/launch", data={"error": "invalid_request", "error_description": XSS}
    )
    assert_refused(Launched(response, client), 400, "refused the login", XSS_ESCAPED)
    assert "<script>alert(2)" not in response.text


# === 7. forms ==================================================================================


def _nested(depth: int) -> str:
    return _b64(("[" * depth + "]" * depth).encode())


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        "....",
        "!!!.@@@.###",
        _segment({"alg": "RS256"}) + "." + _b64(b"\xff\xfe\x00") + ".sig",
        _segment({"alg": "RS256", "kid": "k"}) + "." + _segment(["a", "list"]) + ".sig",
        _segment(["header", "list"]) + "." + _segment({"iss": "x"}) + ".sig",
        _segment(7) + "." + _segment("body") + ".sig",
        _b64(b"{not json") + "." + _segment({}) + ".sig",
        "\u00e9\u00e9.\u00e9\u00e9.\u00e9\u00e9",
    ],
    ids=[
        "words",
        "two-segments",
        "four-segments",
        "dots",
        "bad-base64",
        "bad-utf8",
        "payload-list",
        "header-list",
        "header-number",
        "header-not-json",
        "non-ascii",
    ],
)
def test_id_token_that_is_not_a_jwt_is_refused(lti: LtiActions, token: str) -> None:
    assert_refused(post_token(lti, token), 400, "not a valid JWT")


def test_deeply_nested_json_payload_is_refused(lti: LtiActions) -> None:
    token = _segment({"alg": "RS256", "kid": "k"}) + "." + _nested(100_000) + ".sig"
    assert_refused(post_token(lti, token), 400, "not a valid JWT")


def test_huge_id_token_is_refused_clearly(lti: LtiActions) -> None:
    token = _segment({"alg": "RS256"}) + "." + "A" * 2_000_000 + ".sig"
    launched = post_token(lti, token)
    assert 400 <= launched.response.status_code < 500, launched.text[:1000]
    assert "Traceback" not in launched.text
    assert "Request id" in launched.text


def test_get_on_the_launch_url_is_405(lti: LtiActions) -> None:
    client = lti.browser()
    response = client.get(lti.tool.url + "/lti/launch")
    assert response.status_code == 405
    assert "Traceback" not in response.text
    assert "Request id" in response.text


def _login(lti: LtiActions, change: dict[str, Any], method: str = "GET") -> Launched:
    spec = lti.spec(TEACHER)
    url = httpx.URL(lti.platform.login_url(spec))
    params = dict(url.params)
    for name, value in change.items():
        if value is DELETE:
            params.pop(name, None)
        else:
            params[name] = value
    client = lti.browser()
    base = str(url.copy_with(query=None))
    if method == "POST":
        return Launched(client.post(base, data=params), client)
    return Launched(client.get(base, params=params), client)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"iss": DELETE}, "did not say who it is"),
        ({"iss": ""}, "did not say who it is"),
        ({"iss": "https://unknown-lms.example"}, "not registered"),
        ({"iss": "https://lms.example/" + "i" * LONG}, "not registered"),
        ({"login_hint": DELETE}, "login_hint"),
        ({"target_link_uri": DELETE}, "target_link_uri"),
        ({"target_link_uri": "https://evil.example/lti/launch"}, "another site"),
        ({"target_link_uri": "javascript:alert(1)"}, "another site"),
        ({"target_link_uri": "not a url"}, "another site"),
        ({"client_id": "nobody" + XSS}, "not registered"),
    ],
    ids=[
        "no-iss",
        "empty-iss",
        "unknown-iss",
        "long-iss",
        "no-login-hint",
        "no-target",
        "other-host",
        "javascript-target",
        "words-target",
        "unknown-client-html",
    ],
)
def test_bad_login_initiations_are_refused(
    lti: LtiActions, change: dict[str, Any], phrase: str, method: str
) -> None:
    launched = _login(lti, change, method)
    assert_refused(launched, 400, phrase)
    assert "<script>alert(2)" not in launched.text


def test_target_link_uri_on_our_host_with_another_scheme_or_port_is_refused(
    lti: LtiActions,
) -> None:
    tool = httpx.URL(lti.tool.url)
    for target in (
        str(tool.copy_with(scheme="https")) + "/lti/launch",
        str(tool.copy_with(port=(tool.port or 80) + 1)) + "/lti/launch",
        f"{tool.scheme}://{tool.host}:{tool.port}@evil.example/lti/launch",
    ):
        assert_refused(_login(lti, {"target_link_uri": target}), 400, "another site")


def test_nul_in_login_issuer_is_refused(lti: LtiActions) -> None:
    assert_refused(_login(lti, {"iss": "https://lms.example/\x00"}), 400, "not registered")


def test_login_with_the_same_parameter_twice_uses_the_first(lti: LtiActions) -> None:
    spec = lti.spec(TEACHER)
    url = lti.platform.login_url(spec) + "&iss=https%3A%2F%2Fevil.example"
    client = lti.browser()
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["location"].startswith(lti.platform.url("/auth"))


# === after the launch: the gradebook page reads the AGS claim the launch carried ==============


LAUNCH_TOKEN = re.compile(r"[?&]lt=([^\"&]+)")


@pytest.mark.parametrize(
    "ags",
    [
        "https://lms.example/lineitems",
        {"lineitems": 5, "scope": "x"},
        {"lineitems": ["x"], "scope": [1, None, {"a": 1}]},
        {"lineitems": "https://lms.example/li", "lineitem": 5, "scope": ["s" * LONG]},
        pytest.param(
            {"lineitems": "https://lms.example/" + "a" * 3_000, "scope": []},
            id="lineitems-3000",
        ),
    ],
    ids=["str", "lineitems-num", "lineitems-list", "scope-10k", "lineitems-3000"],
)
def test_odd_ags_claims_do_not_break_the_gradebook_page(lti: LtiActions, ags: Any) -> None:
    course = f"crafted-ags-{time.monotonic_ns()}"
    launched = launch(lti, TEACHER, **{CONTEXT: context(course), RESOURCE_LINK: link(), AGS: ags})
    assert launched.response.status_code == 200, launched.text[:2000]
    token = LAUNCH_TOKEN.search(launched.text)
    assert token is not None
    page = launched.client.get(f"{lti.tool.url}/grades/", params={"lt": token.group(1)})
    assert page.status_code == 200, page.text[:2000]
    assert "Traceback" not in page.text
