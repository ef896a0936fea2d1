"""A spec review of the launch path: crafted launches written from IMS LTI 1.3 Core, the IMS
Security Framework 1.0, Deep Linking 2.0 and RFC 8259/7493 (JSON), for rules the other launch
tests do not reach. Each probe below either showed a defect (fixed in lti_app/tool/, named in
the test's docstring) or covers a rule no other test covers.

Launches go through the demo LMS over loopback HTTP; `signed_text` re-signs the LMS's own
id_token with its key after editing the JSON text itself (for what `json.dumps` will not write,
such as a number that overflows a double).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from lti_app.demo.browser import parse_forms
from lti_app.demo.launches import DELETE, MessageType
from tests.conftest import Launched, LtiActions
from tests.tool.test_crafted_launches import (
    CONTEXT,
    CUSTOM,
    DEPLOYMENT_ID,
    RESOURCE_LINK,
    ROLES,
    XSS,
    XSS_ESCAPED,
    assert_accepted,
    context,
    launch,
    link,
    pick_home,
    post_token,
    refusals_kept_for,
)
from tests.tool.test_launch import CLAIM, STUDENT, TEACHER, assert_refused, tweaks

AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
MEMBERSHIP_SUB = "http://purl.imsglobal.org/vocab/lis/v2/membership/"
INSTITUTION_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
NOT_JSON = "not a valid JWT"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_text(
    lti: LtiActions,
    user: str = STUDENT,
    *,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
    replace: dict[str, str] | None = None,
) -> Launched:
    """The LMS's own id_token with `claims`/`header` set, then `replace` applied to the JSON
    text of the header and the payload, signed RS256 again with the LMS's key."""

    def rewrite(original: str) -> str:
        head = jwt.get_unverified_header(original)
        body = jwt.decode(original, options={"verify_signature": False})
        head.update(header or {})
        for name, value in (claims or {}).items():
            if value is DELETE:
                body.pop(name, None)
            else:
                body[name] = value
        texts = [json.dumps(head), json.dumps(body)]
        for old, new in (replace or {}).items():
            texts = [text.replace(old, new) for text in texts]
        signing_input = ".".join(_b64(text.encode()) for text in texts)
        key = lti.platform.current_key.private_key
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    return post_token(lti, rewrite, user)


def _course(**claims: Any) -> dict[str, Any]:
    """A course and link of their own and a person of their own: odd values touch no seed."""
    return {
        "sub": f"review-{time.monotonic_ns()}",
        CONTEXT: context(f"review-{time.monotonic_ns()}"),
        RESOURCE_LINK: link(),
        **claims,
    }


# === aud / azp (Security Framework 1.0 §5.1.3 steps 3-6) ====================================


@pytest.mark.parametrize("as_list", [False, True], ids=["aud-str", "aud-list-of-one"])
def test_azp_naming_another_tool_is_refused_when_aud_is_our_client_id_alone(
    lti: LtiActions, as_list: bool
) -> None:
    """Defect: with a single audience, `azp` was never looked at, so a token the platform
    issued to another tool (azp) was taken. §5.1.3 step 6: if azp is present, the Tool
    SHOULD verify that its client_id is the claim's value. Fix: tool/launch.py
    _client_id_from_aud."""
    client_id = lti.platform.config.client_id
    aud: str | list[str] = [client_id] if as_list else client_id
    launched = lti.launch(TEACHER, tweaks=tweaks(aud=aud, azp="another-tool"))
    assert_refused(launched, 400, "authorized party")


# === context sub-roles (LTI 1.3 Core §5.3.7, §A.2.3.1) ======================================


@pytest.mark.parametrize(
    ("role", "badge"),
    [
        (MEMBERSHIP_SUB + "Learner#Instructor", "Student"),
        (MEMBERSHIP_SUB + "Instructor#PrimaryInstructor", "Teacher"),
        (MEMBERSHIP_SUB + "Instructor#Grader", "Teacher"),
        (MEMBERSHIP_SUB + "Learner#NonCreditLearner", "Student"),
    ],
    ids=["learner-instructor", "primary-instructor", "grader", "non-credit-learner"],
)
def test_a_context_sub_role_counts_as_its_principal_role(
    lti: LtiActions, role: str, badge: str
) -> None:
    """Defect: a sub-role URI `…/membership/<Principal>#<Sub>` counted as <Sub>, so
    `Learner#Instructor` (a learner, §A.2.3.1) got the teacher's home and gradebook, and a
    platform sending `Instructor#Grader` or `Learner#NonCreditLearner` without the principal
    role (allowed: including it is only best practice, §5.3.7) gave no role at all. Fix:
    tool/roles.py context_role_names takes the principal."""
    launched = launch(lti, TEACHER, **{ROLES: [role], CONTEXT: context(), RESOURCE_LINK: link()})
    assert_accepted(launched, f'role-badge">{badge}<')


# === strict JSON in the id_token (RFC 7519 §7.2, RFC 8259 §6-8, I-JSON RFC 7493 §2) ==========


@pytest.mark.parametrize(
    ("claims", "header"),
    [
        pytest.param({"iss": "\ud800"}, {}, id="iss"),
        pytest.param({DEPLOYMENT_ID: "dep-\ud800"}, {}, id="deployment-id"),
        pytest.param({}, {"kid": "\udc00"}, id="header-kid"),
        pytest.param({"sub": "user-\ud800"}, {}, id="sub"),
        pytest.param({"name": "Ada \udc00"}, {}, id="name"),
        pytest.param({CONTEXT: context("course-\ud800")}, {}, id="context-id"),
        pytest.param({CONTEXT: context(title="Bio \ud800")}, {}, id="context-title"),
    ],
)
def test_a_lone_surrogate_in_the_id_token_is_refused_not_a_500(
    lti: LtiActions, claims: dict[str, Any], header: dict[str, Any]
) -> None:
    """Defect: `"\\ud800"` is a legal JSON escape that Python decodes to a lone surrogate no
    database driver can encode: a 500 from the registration lookup (iss, deployment_id:
    before the signature is even checked, for anyone holding a login state), from the insert
    (sub, names, course), or from the error page (kid). Fix: tool/launch.py _json_segment
    refuses text that is not Unicode (I-JSON §2.1)."""
    launched = signed_text(lti, claims={**_course(), **claims}, header=header)
    assert_refused(launched, 400, NOT_JSON)


def test_a_refusal_with_a_lone_surrogate_is_still_kept_for_the_admin(
    lti: LtiActions, database_url: str
) -> None:
    """Defect: the refusal's record (LaunchFailure) and log line carried the surrogate as
    received, so storing it failed and the administrator never saw the refused launch. Fix:
    tool/refusals.py printable turns lone surrogates into '?', as it does control characters."""
    marker = f"dep-{time.monotonic_ns()}"
    assert_refused(signed_text(lti, claims={DEPLOYMENT_ID: marker + "\ud800"}), 400, NOT_JSON)
    assert refusals_kept_for(database_url, marker) == [marker + "?"]


@pytest.mark.parametrize(
    ("claims", "replace"),
    [
        pytest.param({CUSTOM: {"weight": float("nan")}}, {}, id="custom-nan"),
        pytest.param({CUSTOM: {"weight": float("inf")}}, {}, id="custom-infinity"),
        pytest.param({CUSTOM: {"weight": float("-inf")}}, {}, id="custom-minus-infinity"),
        pytest.param({CUSTOM: {"weight": "@BIG@"}}, {'"@BIG@"': "1e400"}, id="custom-1e400"),
        pytest.param(
            {AGS: {"lineitems": "https://lms.example/li", "scope": [], "x": float("nan")}},
            {},
            id="ags-nan",
        ),
    ],
)
def test_numbers_json_does_not_have_are_refused_not_a_500(
    lti: LtiActions, claims: dict[str, Any], replace: dict[str, str]
) -> None:
    """Defect: NaN and Infinity are not JSON (RFC 8259 §6) and 1e400 overflows a double
    (I-JSON §2.2), but Python's json takes them; stored in a JSON column (custom parameters,
    the AGS claim) PostgreSQL refused them: a 500 there, and on SQLite a value no other JSON
    reader takes. Fix: tool/launch.py _json_segment parses strictly."""
    launched = signed_text(lti, claims=_course(**claims), replace=replace)
    assert_refused(launched, 400, NOT_JSON)


def test_emoji_escaped_as_surrogate_pairs_are_accepted(lti: LtiActions) -> None:
    """The strict parse still takes what PHP's json_encode writes by default (Moodle):
    non-ASCII escaped, emoji as a surrogate pair."""
    launched = signed_text(
        lti, claims=_course(name="Ada \U0001f600", **{CUSTOM: {"note": "caf\u00e9 \U0001f52c"}})
    )
    assert_accepted(launched, "Ada \U0001f600")


# === pages no other probe reaches ===========================================================


@pytest.mark.parametrize(
    ("roles", "context_claim", "phrase"),
    [
        ([], "course", "Welcome to Pathways"),  # guest home
        ([MEMBERSHIP + "Instructor"], None, ""),  # a launch without a course
        ([MEMBERSHIP + "Learner"], None, ""),
        ([INSTITUTION_ADMIN], None, ""),  # the LMS admin's console
    ],
    ids=["guest", "teacher-no-course", "learner-no-course", "admin-no-course"],
)
def test_markup_from_the_lms_is_escaped_on_the_guest_and_no_course_pages(
    lti: LtiActions, roles: list[str], context_claim: str | None, phrase: str
) -> None:
    """Names and titles from the LMS are untrusted text (Core §5.3.6, PLATFORMS.md: Moodle
    passes raw HTML): the other escaping probes cover the teacher's and learner's course
    homes only."""
    claims: dict[str, Any] = {
        "name": XSS,
        "given_name": XSS,
        "family_name": XSS,
        "email": XSS,
        ROLES: roles,
        CONTEXT: context(title="Course " + XSS, label=XSS) if context_claim else DELETE,
        RESOURCE_LINK: link(title="Link " + XSS, description=XSS),
    }
    launched = launch(lti, TEACHER, **claims)
    assert_accepted(launched, phrase)
    assert "<script>alert(2)" not in launched.text
    assert "<img src=x" not in launched.text
    if context_claim or roles != [INSTITUTION_ADMIN]:
        assert XSS_ESCAPED in launched.text


def test_deep_linking_without_a_course_opens_the_picker_and_answers_the_lms(
    lti: LtiActions,
) -> None:
    """The context claim is optional in a deep-linking request as in any launch (Core §5.4.1,
    DL 2.0 §4.4): a teacher adding Pathways from outside a course gets the picker, and the
    response carries every claim DL 2.0 §4.5 asks for."""
    launched = lti.launch(
        TEACHER, message_type=MessageType.DEEP_LINKING, tweaks=tweaks(**{CONTEXT: DELETE})
    )
    assert_accepted(launched, "Add Pathways to your course")
    autopost = pick_home(launched)
    assert autopost.status_code == 200, autopost.text[:2000]
    (form,) = parse_forms(autopost.text, str(autopost.url))
    body = jwt.decode(form.fields["JWT"], options={"verify_signature": False})
    config = lti.platform.config
    assert body["iss"] == config.client_id
    assert body["aud"] in (config.issuer, [config.issuer])
    assert body[CLAIM + "message_type"] == "LtiDeepLinkingResponse"
    assert body[CLAIM + "version"] == "1.3.0"
    assert body[CLAIM + "deployment_id"] == config.deployment_id
    assert body["nonce"]
    assert [item["type"] for item in body[DL + "content_items"]] == ["ltiResourceLink"]


def test_deep_linking_request_without_a_target_link_uri_opens_the_picker(
    lti: LtiActions,
) -> None:
    """Deep Linking 2.0 §4.4 does not list target_link_uri among the request's claims (Core
    requires it of resource link launches): a platform that leaves it out still gets the
    picker. One that sends another target than its login's is still refused."""
    target = CLAIM + "target_link_uri"
    launched = lti.launch(
        TEACHER, message_type=MessageType.DEEP_LINKING, tweaks=tweaks(**{target: DELETE})
    )
    assert_accepted(launched, "Add Pathways to your course")
    elsewhere = lti.launch(
        TEACHER,
        message_type=MessageType.DEEP_LINKING,
        tweaks=tweaks(**{target: "https://elsewhere.example/lti/launch"}),
    )
    assert_refused(elsewhere, 400, "target_link_uri")
    plain = lti.launch(STUDENT, tweaks=tweaks(**{target: DELETE}))
    assert_refused(plain, 400, "target_link_uri")
