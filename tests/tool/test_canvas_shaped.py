"""Launches shaped exactly as Canvas (Instructure) sends them, the deep-linking answer checked the
way Canvas's deep linking controller checks it, LTI Platform Storage as Canvas offers it, and
the client-credentials assertion as Canvas's token endpoint checks it.

A small fake Canvas runs on loopback as two origins, as Instructure's cloud does: the shared
"sso" origin (sso.canvaslms.com: the OIDC auth endpoint `/api/lti/authorize_redirect` and the
JWKS `/api/lti/security/jwks`, the origin of the `post_message_forwarding` frame) and a school's
own domain (school.instructure.com: `/api/lti/authorize`, `/login/oauth2/token`,
`/courses/:id/deep_linking_response`). Its issuer is `https://canvas.instructure.com` for every
school: a tenant is (issuer, client_id). Built from Canvas's own source (instructure/canvas-lms):

- app/models/lti/lti_advantage_adapter.rb `login_request` / `cache_payload`: login initiation
  sends iss, login_hint (opaque id), client_id (the global developer key id), deployment_id
  (not lti_deployment_id), target_link_uri, lti_message_hint (a Canvas-signed JWT naming
  canvas_domain, the launch verifier and include_storage_target), canvas_environment,
  canvas_region, and lti_storage_target = "post_message_forwarding" when platform storage is on.
- app/controllers/lti/ims/authentication_controller.rb: `authorize_redirect` redirects to the
  school domain named in lti_message_hint; `authorize` requires client_id, login_hint,
  lti_message_hint, nonce, prompt, redirect_uri, response_mode, response_type, scope
  (scope == "openid"), login_hint == the logged-in user's opaque id (else error
  login_required), the developer key bound on (else unauthorized_client), redirect_uri among the
  key's redirect URIs (else "Invalid redirect_uri"), a cached launch used once (else
  launch_no_longer_valid); it posts id_token, state and lti_storage_target.
- lib/lti/messages/jwt_message.rb (+ resource_link_request.rb, deep_linking_request.rb): aud and
  azp = the developer key global id (a string), deployment_id "<tool id>:<context opaque id>",
  exp = iat + 1 hour, iss = lti_iss, sub = the user's lti_id (absent with no user), the
  privacy-level dependent name/email/picture/lis claims, role_scope_mentor (an observer's
  observed students' lti_id, `add_mentorship_claims!`, only for a tool whose privacy level is
  public), context {id, label, title,
  type [course#CourseOffering | "Account"]}, tool_platform, launch_presentation (iframe,
  return_url, locale, height, width), roles from `$com.instructure.User.allRoles`, custom (after
  variable expansion: numbers stay numbers), AGS and NRPS claims, lti11_legacy_user_id, lti1p1,
  `https://www.instructure.com/placement`.
- lib/lti/substitutions_helper.rb LIS_V2_LTI_ADVANTAGE_ROLE_MAP / all_roles: sorted context
  roles plus institution roles (Student, Instructor, Administrator) and system roles (User,
  SysAdmin, TestUser); TA = membership/Instructor#TeachingAssistant + membership#Instructor,
  Designer = ContentDeveloper, Observer = Mentor, Test Student = Learner + TestUser.
- lib/lti/messages/deep_linking_request.rb DEEP_LINKING_DETAILS: link_selection accepts multiple,
  assignment_selection one; no `data`, no accept_lineitem; the return URL carries `?data=`.
- app/controllers/lti/ims/concerns/deep_linking_services.rb `DeepLinkingJwt` +
  lib/canvas/security/jwt_validator.rb: the tool's JWT (form field `JWT`) is found by
  iss = client_id, verified against the developer key's public_jwk_url (kid in the set),
  requires sub (= iss), aud, exp, iat, jti (= nonce) and iss; aud must include lti_iss; exp not
  past; iat at most 5 minutes old and at most 30 s in the future.
  app/controllers/lti/ims/concerns/deep_linking_modules.rb `validate_line_item!`: lineItem needs a
  truthy scoreMaximum; its label becomes the title; resourceId and tag are stored.
- lib/canvas/oauth/asymmetric_client_credentials_provider.rb: the client assertion is found by
  `sub`, verified with the key's JWKS, and validated by the same JwtValidator (aud = the token URL).
- lib/lti/platform_storage.rb, ui/shared/lti/jquery/platform_storage.ts,
  ui/shared/lti/jquery/subjects/lti.capabilities.ts, lti.put_data.ts, doc/api/
  lti_window_post_message.md: put_data/get_data go to the `post_message_forwarding` frame with
  the OIDC auth origin as target origin; storage is per tool origin, at most 4096 characters
  (keys + values) and 500 keys.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import jwt
import pytest
from click.testing import CliRunner
from jwt import PyJWK
from sqlalchemy import select

from lti_app.db import Database, utcnow
from lti_app.demo.browser import HtmlForm, parse_forms, submit_form
from lti_app.demo.keys import SigningKey
from lti_app.demo.launches import DELETE
from lti_app.settings import Settings
from lti_app.tool.client import assertion_audience
from lti_app.tool.models import Deployment, DeploymentStatus, Person, Platform
from tests.conftest import Launched, ToolServer
from tests.security_support import frame_of
from tests.tool.lms_pages import add_competency, assert_home, picker_form, submit_picks
from tests.tool.test_launch import assert_refused

CANVAS_ISS = "https://canvas.instructure.com"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
PLACEMENT = "https://www.instructure.com/placement"
SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
FORWARDING_TARGET = "post_message_forwarding"  # lib/lti/platform_storage.rb
# authentication_controller.rb REQUIRED_PARAMS
AUTHORIZE_REQUIRED_PARAMS = [
    "client_id",
    "login_hint",
    "lti_message_hint",
    "nonce",
    "prompt",
    "redirect_uri",
    "response_mode",
    "response_type",
    "scope",
]

# lib/lti/substitutions_helper.rb LIS_V2_LTI_ADVANTAGE_ROLE_MAP
M = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INST = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
SYS = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"
TEST_USER = "http://purl.imsglobal.org/vocab/lti/system/person#TestUser"
TA_SUB = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


def all_roles(*roles: str) -> list[str]:
    """all_roles('lti1_3'): context + institution roles, uniq, sorted; every user has sys#User."""
    return sorted({*roles, SYS + "User"})


STUDENT_ROLES = all_roles(M + "Learner", INST + "Student")
TEACHER_ROLES = all_roles(M + "Instructor", INST + "Instructor")
TA_ROLES = all_roles(TA_SUB, M + "Instructor", INST + "Instructor")
DESIGNER_ROLES = all_roles(M + "ContentDeveloper", INST + "Instructor")
OBSERVER_ROLES = all_roles(M + "Mentor")
TEST_STUDENT_ROLES = sorted({M + "Learner", TEST_USER})  # the fake student has no "user" role
ADMIN_AS_LEARNER_ROLES = all_roles(M + "Learner", INST + "Administrator")
ADMIN_NOT_ENROLLED_ROLES = all_roles(INST + "Administrator")
SITE_ADMIN_AS_LEARNER_ROLES = all_roles(M + "Learner", SYS + "SysAdmin")


def opaque() -> str:
    """Lti::Asset.opaque_identifier_for: a 40-hex SHA-1 of the asset."""
    return secrets.token_hex(20)


@dataclass(frozen=True)
class CanvasUser:
    name: str
    given_name: str
    family_name: str
    email: str
    lti_id: str = field(default_factory=lambda: str(uuid.uuid4()))  # sub
    opaque_id: str = field(default_factory=opaque)  # login_hint, lti11_legacy_user_id
    lti_context_id: str = field(default_factory=opaque)  # lti1p1.user_id
    canvas_id: int = field(default_factory=lambda: secrets.randbelow(10**6) + 1)
    sis_id: str | None = None


@dataclass(frozen=True)
class CanvasCourse:
    canvas_id: int
    name: str
    course_code: str
    opaque_id: str = field(default_factory=opaque)


STUDENT = CanvasUser("Siân O'Neil", "Siân", "O'Neil", "sian@school.example", sis_id="S-1001")
TEACHER = CanvasUser("Tomás Reyes", "Tomás", "Reyes", "treyes@school.example", sis_id="T-77")
ADMIN = CanvasUser("Ada Admin", "Ada", "Admin", "ada@school.example")
COURSE = CanvasCourse(101, "Biology 9 (Canvas)", "BIO9")


@dataclass(frozen=True)
class School:
    """One institution's Canvas: its developer key (client_id) and the tool installed on it."""

    name: str
    client_id: str  # @tool.global_developer_key_id, e.g. 10000000000123
    tool_id: int
    deployment_id: str  # "<tool id>:<opaque id of the account/course it is installed in>"


def make_school(name: str) -> School:
    tool_id = secrets.randbelow(10**5) + 1
    return School(
        name=name,
        client_id=str(10**13 + secrets.randbelow(10**12)),
        tool_id=tool_id,
        deployment_id=f"{tool_id}:{opaque()}",
    )


@dataclass
class CanvasLaunch:
    """One launch Canvas has prepared (its cached id_token, fetched once by `authorize`)."""

    user: CanvasUser | None
    roles: list[str]
    school: School
    course: CanvasCourse | None = COURSE  # None: an account-level launch (account_navigation)
    placement: str = "course_navigation"
    deep_linking: bool = False
    privacy: str = "public"  # anonymous, name_only, email_only, public
    custom: dict[str, Any] = field(default_factory=dict)
    include_storage_target: bool = False
    assignment: bool = False
    deployment_id: str | None = None
    logged_in: CanvasUser | None = None  # who holds the Canvas session when authorize runs
    age: int = 0  # seconds between Canvas signing the id_token and Pathways receiving it
    claims: dict[str, Any] = field(default_factory=dict)  # last-minute changes (DELETE removes)
    link_id: str = field(default_factory=lambda: str(uuid.uuid4()))  # resource link lookup uuid
    target_link_uri: str = ""
    observees: tuple[CanvasUser, ...] = ()  # an observer's current ObserverEnrollments here


class FakeCanvas:
    """Canvas's LTI 1.3 endpoints, from its source, on two loopback origins."""

    def __init__(self, tool_url: str) -> None:
        self.tool_url = tool_url.rstrip("/")
        # Lti::KeyStorage: past, present and future keys, kids are timestamps.
        self.keys = {
            name: SigningKey.generate(f"2025-0{i}-01T00:00:00Z")
            for i, name in enumerate(("past", "present", "future"), start=1)
        }
        self.hint_secret = secrets.token_bytes(64)
        self.redirect_uris = [self.tool_url + "/lti/launch"]
        self.launches: dict[str, CanvasLaunch] = {}
        self.schools: dict[str, School] = {}
        self.token_requests: list[dict[str, Any]] = []
        self.seen_jti: set[str] = set()
        self._sso = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._school = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.sso_origin = f"http://127.0.0.1:{self._sso.server_address[1]}"
        self.school_origin = f"http://127.0.0.1:{self._school.server_address[1]}"
        self._threads = [
            threading.Thread(target=s.serve_forever, daemon=True) for s in (self._sso, self._school)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for server in (self._sso, self._school):
            server.shutdown()
            server.server_close()

    # -- what the admin copies into Pathways --------------------------------------------------
    @property
    def auth_url(self) -> str:
        return self.sso_origin + "/api/lti/authorize_redirect"

    @property
    def jwks_url(self) -> str:
        return self.sso_origin + "/api/lti/security/jwks"

    @property
    def token_url(self) -> str:
        return self.school_origin + "/login/oauth2/token"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self.keys.values()]}

    # -- lti_advantage_adapter.rb login_request --------------------------------------------------
    def prepare(self, launch: CanvasLaunch, target_link_uri: str | None = None) -> dict[str, str]:
        verifier = secrets.token_hex(64)
        self.launches[verifier] = launch
        launch.target_link_uri = target_link_uri or self.tool_url + "/lti/launch"
        context_id = launch.course.canvas_id if launch.course else 1
        hint_claims = {
            "verifier": verifier,
            "canvas_domain": urlsplit(self.school_origin).netloc,
            "context_type": "Course" if launch.course else "Account",
            "context_id": str(10**13 + context_id),
            "canvas_locale": "en",
            "exp": int(time.time()) + 300,
        }
        if launch.include_storage_target:
            hint_claims["include_storage_target"] = True
        params = {
            "iss": CANVAS_ISS,
            "login_hint": launch.user.opaque_id if launch.user else "public-user-lti-id",
            "client_id": launch.school.client_id,
            "deployment_id": launch.deployment_id or launch.school.deployment_id,
            "target_link_uri": launch.target_link_uri,
            "lti_message_hint": jwt.encode(hint_claims, self.hint_secret, algorithm="HS512"),
            "canvas_environment": "prod",
            "canvas_region": "us-east-1",
        }
        if launch.include_storage_target:
            params["lti_storage_target"] = FORWARDING_TARGET
        return params

    # -- authentication_controller.rb authorize_redirect + authorize ----------------------------
    def authorize_redirect(self, params: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        try:
            hint = jwt.decode(params.get("lti_message_hint", ""), self.hint_secret, ["HS512"])
        except jwt.InvalidTokenError:
            return 400, "Invalid lti_message_hint", {}
        location = f"http://{hint['canvas_domain']}/api/lti/authorize?{urlencode(params)}"
        return 302, "", {"Location": location}

    def authorize(self, params: dict[str, str]) -> tuple[int, str]:
        required = AUTHORIZE_REQUIRED_PARAMS
        error: tuple[str, str] | None = None
        missing = [p for p in required if p not in params]
        if missing:
            error = ("invalid_request_object", f"The following parameters are missing: {missing}")
        if params.get("scope") != "openid":
            error = ("invalid_request_object", "The 'scope' must be 'openid'")
        try:
            hint = jwt.decode(params.get("lti_message_hint", ""), self.hint_secret, ["HS512"])
        except jwt.InvalidTokenError:
            return 400, "Invalid lti_message_hint"
        launch = self.launches.get(hint["verifier"])
        if launch is not None:
            session_user = launch.logged_in or launch.user
            expected = session_user.opaque_id if session_user else "public-user-lti-id"
            if params.get("login_hint") != expected:
                error = ("login_required", "Must have an active user session")
            if params.get("client_id") != launch.school.client_id:
                error = ("unauthorized_client", "Client not authorized in requested context")
        if params.get("redirect_uri", "").split("?")[0] not in self.redirect_uris:
            return 400, "Invalid redirect_uri"
        fields: dict[str, str]
        if error is None:
            launch = self.launches.pop(hint["verifier"], None)  # fetch_and_delete_launch
            if launch is None:
                error = ("launch_no_longer_valid", "The launch has either expired or been consumed")
        if error is None and launch is not None:
            fields = {"id_token": self.id_token(launch, params["nonce"]), "state": params["state"]}
            if hint.get("include_storage_target"):
                fields["lti_storage_target"] = FORWARDING_TARGET
        else:
            assert error is not None
            fields = {"error": error[0], "error_description": error[1]}
            fields["state"] = params.get("state", "")
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in fields.items()
        )
        action = html.escape(params["redirect_uri"])
        return 200, f'<form action="{action}" method="POST" id="lti_1_3_authorize">{inputs}</form>'

    # -- jwt_message.rb + resource_link_request.rb + deep_linking_request.rb --------------------
    def payload(self, launch: CanvasLaunch, nonce: str) -> dict[str, Any]:
        school, user, course = launch.school, launch.user, launch.course
        now = int(time.time()) - launch.age
        school_url = self.school_origin
        p: dict[str, Any] = {
            CLAIM + "message_type": (
                "LtiDeepLinkingRequest" if launch.deep_linking else "LtiResourceLinkRequest"
            ),
            CLAIM + "version": "1.3.0",
            "aud": school.client_id,
            "azp": school.client_id,
            CLAIM + "deployment_id": launch.deployment_id or school.deployment_id,
            "exp": now + 3600,
            "iat": now,
            "iss": CANVAS_ISS,
            "nonce": nonce,
            CLAIM + "target_link_uri": launch.target_link_uri,
        }
        if user is not None:
            p["sub"] = user.lti_id
        if not launch.deep_linking:
            p[CLAIM + "resource_link"] = {
                "id": launch.link_id,
                "description": None,  # @assignment&.description
                "title": "Pathways" if course is None else course.name,
            }
        if user is not None and launch.privacy == "public":
            p["picture"] = "https://canvas.instructure.com/images/messages/avatar-50.png"
        if user is not None and launch.privacy in ("public", "email_only"):
            p["email"] = user.email
        if user is not None and launch.privacy in ("public", "name_only"):
            p["name"] = user.name
            p["given_name"] = user.given_name
            p["family_name"] = user.family_name
            p[CLAIM + "lis"] = {
                "person_sourcedid": user.sis_id,
                "course_offering_sourcedid": "SIS-BIO9" if course else None,
            }
        if course is not None:
            p[CLAIM + "context"] = {
                "id": course.opaque_id,
                "label": course.course_code,
                "title": course.name,
                "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
            }
        else:
            p[CLAIM + "context"] = {
                "id": "acct" + opaque()[4:],
                "title": school.name,
                "type": ["Account"],  # LIS_V2_ROLE_MAP[Account] is nil: the class name
            }
        p[CLAIM + "tool_platform"] = {
            "guid": secrets.token_hex(20) + ":canvas-lms",
            "name": school.name,
            "version": "cloud",
            "product_family_code": "canvas",
        }
        p[CLAIM + "launch_presentation"] = {
            "document_target": "iframe",
            "return_url": f"{school_url}/courses/{course.canvas_id if course else 0}/external_"
            "content/success/external_tool_redirect",
            "locale": "en",
            "height": 400,
            "width": 800,
        }
        p["locale"] = "en"
        p[CLAIM + "roles"] = list(launch.roles)
        p[CLAIM + "custom"] = dict(launch.custom)
        if course is not None:
            ags: dict[str, Any] = {
                "scope": [SCOPE + "lineitem", SCOPE + "result.readonly", SCOPE + "score"],
                "lineitems": f"{school_url}/api/lti/courses/{course.canvas_id}/line_items",
            }
            if launch.assignment:
                ags["lineitem"] = f"{ags['lineitems']}/31"
            p[AGS] = ags
            p[NRPS] = {
                "context_memberships_url": (
                    f"{school_url}/api/lti/courses/{course.canvas_id}/names_and_roles"
                ),
                "service_versions": ["2.0"],
            }
        if user is not None and launch.privacy == "public" and course and launch.observees:
            # add_mentorship_claims! (only for a public tool): the observed students' lti_id.
            p[CLAIM + "role_scope_mentor"] = [o.lti_id for o in launch.observees]
        if user is not None:
            p[CLAIM + "lti11_legacy_user_id"] = user.opaque_id
            p[CLAIM + "lti1p1"] = {"user_id": user.lti_context_id}
        p[PLACEMENT] = launch.placement
        if launch.deep_linking:
            details = {
                "link_selection": (True, ["iframe", "window"]),
                "assignment_selection": (False, ["iframe", "window"]),
            }[launch.placement]
            data = jwt.encode(
                {"modal": True, "placement": launch.placement}, self.hint_secret, "HS512"
            )
            p[DL + "deep_linking_settings"] = {
                "deep_link_return_url": (
                    f"{school_url}/courses/{course.canvas_id if course else 0}"
                    f"/deep_linking_response?{urlencode({'data': data})}"
                ),
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": details[1],
                "accept_media_types": "application/vnd.ims.lti.v1.ltilink",
                "auto_create": False,
                "accept_multiple": details[0],
            }
        for name, value in launch.claims.items():
            if value is DELETE:
                p.pop(name, None)
            else:
                p[name] = value
        return p

    def id_token(self, launch: CanvasLaunch, nonce: str) -> str:
        return self.keys["present"].sign(self.payload(launch, nonce))

    # -- asymmetric_client_credentials_provider.rb + jwt_validator.rb ---------------------------
    def token(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(params)
        assertion = params.get("client_assertion", "")
        try:
            client_id = jwt.decode(assertion, options={"verify_signature": False})["sub"]
        except (jwt.InvalidTokenError, KeyError):
            return 400, {"error": "invalid_request"}
        if client_id not in self.schools:
            return 401, {"error": "invalid_client", "error_description": "Unknown client_id"}
        header = jwt.get_unverified_header(assertion)
        tool_keys = httpx.get(self.tool_url + "/.well-known/jwks.json", timeout=10).json()["keys"]
        by_kid = {k.get("kid"): k for k in tool_keys}
        if header.get("kid") not in by_kid:
            return 401, {"error": "invalid_client", "error_description": "JWS signature invalid."}
        try:
            claims = jwt.decode(
                assertion,
                PyJWK(by_kid[header["kid"]]).key,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError:
            return 401, {"error": "invalid_client", "error_description": "JWS signature invalid."}
        errors = jwt_validator_errors(claims, expected_aud=self.token_url, require_iss=True)
        if errors:
            return 400, {"error": "invalid_request", "error_description": " | ".join(errors)}
        if params.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        return 200, {
            "access_token": secrets.token_urlsafe(32),
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": params.get("scope", ""),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        canvas = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(
                self, status: int, body: str, ctype: str, headers: dict[str, str] | None = None
            ) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _route(self, params: dict[str, str]) -> None:
                path = urlsplit(self.path).path
                if path == "/api/lti/security/jwks":
                    self._answer(200, json.dumps(canvas.jwks()), "application/json")
                elif path == "/api/lti/authorize_redirect":
                    status, body, headers = canvas.authorize_redirect(params)
                    self._answer(status, body, "text/html", headers)
                elif path == "/api/lti/authorize":
                    status, body = canvas.authorize(params)
                    self._answer(status, body, "text/html; charset=utf-8")
                elif path == "/login/oauth2/token":
                    status, answer = canvas.token(params)
                    self._answer(status, json.dumps(answer), "application/json")
                else:
                    self._answer(404, "not found", "text/plain")

            def do_GET(self) -> None:
                self._route(dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True)))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
                self._route(query | dict(parse_qsl(body, keep_blank_values=True)))

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def jwt_validator_errors(
    claims: dict[str, Any], *, expected_aud: str, require_iss: bool, now: float | None = None
) -> list[str]:
    """Canvas::Security::JwtValidator (lib/canvas/security/jwt_validator.rb), no leeway except
    iat_future_buffer = 30 s; max_iat_age = 5 minutes."""
    now = time.time() if now is None else now
    missing = {"sub", "aud", "exp", "iat", "jti"} - set(claims)
    if require_iss and "iss" not in claims:
        missing.add("iss")
    if missing:
        return [f"the following assertions are missing: {','.join(sorted(missing))}"]
    errors = []
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if expected_aud not in aud:
        errors.append("the 'aud' is invalid")
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        errors.append("the 'exp' must be a number")
    elif exp < now:
        errors.append("the JWT has expired")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        errors.append("the 'iat' must be a number")
    else:
        if iat < now - 300:
            errors.append("the 'iat' must be less than 300 seconds old")
        if iat > now + 30:
            errors.append("the 'iat' must not be in the future")
    return errors


# --- fixtures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CanvasSite:
    canvas: FakeCanvas
    north: School  # two schools on Instructure's cloud: one issuer, two developer keys
    south: School


def _register(db: Database, canvas: FakeCanvas, school: School) -> None:
    with db.begin() as s:
        platform = Platform(
            issuer=CANVAS_ISS,
            client_id=school.client_id,
            name=school.name,
            auth_login_url=canvas.auth_url,
            token_url=canvas.token_url,
            jwks_url=canvas.jwks_url,
            is_active=True,
        )
        s.add(platform)
        s.flush()
        s.add(
            Deployment(
                platform_id=platform.id,
                deployment_id=school.deployment_id,
                status=DeploymentStatus.ACTIVE,
                approved_at=utcnow(),
            )
        )
    canvas.schools[school.client_id] = school


@pytest.fixture(scope="module")
def site(tool_server: ToolServer, database_url: str) -> Iterator[CanvasSite]:
    canvas = FakeCanvas(tool_server.url)
    north, south = make_school("North High"), make_school("South College")
    db = Database(database_url)
    _register(db, canvas, north)
    _register(db, canvas, south)
    db.dispose()
    yield CanvasSite(canvas, north, south)
    canvas.stop()


@pytest.fixture
def canvas(site: CanvasSite) -> FakeCanvas:
    return site.canvas


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


# --- the browser between Canvas and Pathways --------------------------------------------------


def start(
    canvas: FakeCanvas, browser: httpx.Client, launch: CanvasLaunch
) -> tuple[httpx.Response, dict[str, str]]:
    """Canvas's login form (auto-submitted POST in the tool iframe) reaching Pathways."""
    params = canvas.prepare(launch)
    return browser.post(canvas.tool_url + "/lti/login", data=params), params


def storage_div(page: str, element_id: str = "lti-storage") -> dict[str, str]:
    """The data-* attributes of the platform-storage element in a Pathways page."""
    match = re.search(rf'<(?:div|form)[^>]*id="{element_id}"[^>]*>', page, re.S)
    assert match, page[:2000]
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'data-([a-z-]+)="([^"]*)"', match.group(0))
    }


def auth_url_after_login(login: httpx.Response) -> str:
    if login.status_code == 302:
        return login.headers["location"]
    assert login.status_code == 200, login.text[:2000]
    return storage_div(login.text)["auth-url"]


def authorize(canvas: FakeCanvas, browser: httpx.Client, login: httpx.Response) -> HtmlForm:
    """sso authorize_redirect -> the school's authorize page -> its auto-posting form."""
    first = browser.get(auth_url_after_login(login))
    assert first.status_code == 302, first.text[:2000]
    page = browser.get(first.headers["location"])
    assert page.status_code == 200, page.text[:2000]
    return next(f for f in parse_forms(page.text, str(page.url)) if f.id == "lti_1_3_authorize")


def canvas_launch(canvas: FakeCanvas, browser: httpx.Client, launch: CanvasLaunch) -> Launched:
    login, _ = start(canvas, browser, launch)
    form = authorize(canvas, browser, login)
    return Launched(submit_form(browser, form), browser)


# === 1. Canvas login initiation, student and teacher launches ================================


@pytest.mark.parametrize("storage", [False, True], ids=["no-storage", "lti_storage_target"])
def test_canvas_login_initiation_leads_to_an_auth_request_canvas_accepts(
    site: CanvasSite, browser: httpx.Client, storage: bool
) -> None:
    canvas = site.canvas
    launch = CanvasLaunch(TEACHER, TEACHER_ROLES, site.north, include_storage_target=storage)
    login, sent = start(canvas, browser, launch)
    # Canvas sends deployment_id (not lti_deployment_id), canvas_region, canvas_environment.
    assert "deployment_id" in sent
    assert "lti_deployment_id" not in sent
    location = urlsplit(auth_url_after_login(login))
    assert f"{location.scheme}://{location.netloc}{location.path}" == canvas.auth_url
    query = dict(parse_qsl(location.query, keep_blank_values=True))
    # authentication_controller.rb REQUIRED_PARAMS, every one present; scope openid.
    for name in AUTHORIZE_REQUIRED_PARAMS:
        assert query.get(name), name
    assert query["scope"] == "openid"
    assert query["response_type"] == "id_token"
    assert query["response_mode"] == "form_post"
    assert query["prompt"] == "none"
    assert query["client_id"] == site.north.client_id
    assert query["login_hint"] == TEACHER.opaque_id
    assert query["lti_message_hint"] == sent["lti_message_hint"]  # Canvas's JWT, verbatim
    assert query["redirect_uri"] in canvas.redirect_uris
    assert query["state"]
    form = authorize(canvas, browser, login)
    assert "id_token" in form.fields, form.fields
    assert ("lti_storage_target" in form.fields) == storage  # Canvas posts it back too
    assert_home(Launched(submit_form(browser, form), browser), "Teacher", "Tomás Reyes")


def test_canvas_student_launch_lands_on_the_student_home(
    site: CanvasSite, browser: httpx.Client
) -> None:
    launch = CanvasLaunch(STUDENT, STUDENT_ROLES, site.north, assignment=True)
    assert_home(
        canvas_launch(site.canvas, browser, launch),
        "Student",
        "Siân O&#39;Neil",
        "Biology 9 (Canvas)",
    )


def test_canvas_teacher_launch_lands_on_the_teacher_home(
    site: CanvasSite, browser: httpx.Client
) -> None:
    launch = CanvasLaunch(TEACHER, TEACHER_ROLES, site.north)
    assert_home(canvas_launch(site.canvas, browser, launch), "Teacher", "Biology 9 (Canvas)")


@pytest.mark.parametrize(
    ("roles", "badge"),
    [
        (TA_ROLES, "Teacher"),
        (DESIGNER_ROLES, "Teacher"),
        (OBSERVER_ROLES, "Family"),
        (TEST_STUDENT_ROLES, "Student"),
        # An account admin who is also enrolled as a student: a student in this course.
        (ADMIN_AS_LEARNER_ROLES, "Student"),
        (SITE_ADMIN_AS_LEARNER_ROLES, "Student"),
        # An account admin opening course navigation of a course they are not enrolled in.
        (ADMIN_NOT_ENROLLED_ROLES, "LMS administrator"),
    ],
    ids=[
        "ta",
        "designer",
        "observer",
        "test-student",
        "admin-learner",
        "siteadmin-learner",
        "admin-not-enrolled",
    ],
)
def test_canvas_roles_map_by_the_course_roles(
    site: CanvasSite, browser: httpx.Client, roles: list[str], badge: str
) -> None:
    user = CanvasUser("Role Person", "Role", "Person", "role@school.example")
    assert_home(canvas_launch(site.canvas, browser, CanvasLaunch(user, roles, site.north)), badge)


def test_canvas_test_student_sees_the_student_pages_but_is_not_one_of_the_class(
    site: CanvasSite, tool_server: ToolServer
) -> None:
    # Student View: the teacher checks what students see, as a "Test Student" Canvas makes
    # (Learner + TestUser). The teacher's class lists are of real students only.
    course = CanvasCourse(secrets.randbelow(10**6) + 1000, "Preview check", "PRV")
    tester = CanvasUser("Test Student", "Test", "Student", "")
    with httpx.Client(timeout=30) as b1, httpx.Client(timeout=30) as b2:
        preview = CanvasLaunch(tester, TEST_STUDENT_ROLES, site.north, course=course)
        assert_home(canvas_launch(site.canvas, b1, preview), "Student", "Test Student")
        real = CanvasLaunch(STUDENT, STUDENT_ROLES, site.north, course=course)
        assert_home(canvas_launch(site.canvas, b1, real), "Student")
        teacher = CanvasLaunch(TEACHER, TEACHER_ROLES, site.north, course=course)
        students = frame_of(tool_server, canvas_launch(site.canvas, b2, teacher)).get("/roster/")
    assert students.status_code == 200, students.text[:2000]
    assert "O&#39;Neil" in students.text
    assert "Test Student" not in students.text
    assert "1 student," in students.text or "1 student." in students.text


@pytest.mark.parametrize("privacy", ["anonymous", "name_only", "email_only", "public"])
def test_canvas_privacy_levels_are_all_accepted(
    site: CanvasSite, browser: httpx.Client, privacy: str
) -> None:
    # Anonymous: no name, email, picture, lis; the custom variables Canvas may not expand at
    # that level stay as their literal "$Canvas..." text.
    custom = {"login_id": "$Canvas.user.loginId"} if privacy == "anonymous" else {}
    user = CanvasUser("Priv Acy", "Priv", "Acy", "p@school.example")
    launch = CanvasLaunch(user, STUDENT_ROLES, site.north, privacy=privacy, custom=custom)
    launched = canvas_launch(site.canvas, browser, launch)
    assert_home(launched, "Student")
    if privacy in ("name_only", "public"):
        assert "Priv Acy" in launched.text


def test_canvas_custom_fields_expanded_to_numbers_and_nulls_are_accepted(
    site: CanvasSite, browser: httpx.Client
) -> None:
    # Developer key custom_fields: "$Canvas.user.id", "$Canvas.course.id" expand to integers;
    # a variable without a value can expand to nil.
    custom = {
        "canvas_user_id": 4521,
        "canvas_course_id": COURSE.canvas_id,
        "canvas_user_login_id": "sian",
        "section_ids": "12,13",
        "canvas_user_sis_id": None,
        "pathways_item": "home",
    }
    launch = CanvasLaunch(STUDENT, STUDENT_ROLES, site.north, custom=custom)
    assert_home(canvas_launch(site.canvas, browser, launch), "Student")


def test_canvas_account_navigation_launch_without_a_course_is_accepted(
    site: CanvasSite, browser: httpx.Client
) -> None:
    # account_navigation: context type ["Account"], no label, no AGS/NRPS; an admin's roles.
    launch = CanvasLaunch(
        ADMIN, ADMIN_NOT_ENROLLED_ROLES, site.north, course=None, placement="account_navigation"
    )
    launched = canvas_launch(site.canvas, browser, launch)
    assert launched.response.status_code == 200, launched.text[:2000]
    assert "Traceback" not in launched.text


def test_canvas_launch_arriving_50_minutes_after_signing_is_accepted(
    site: CanvasSite, browser: httpx.Client
) -> None:
    # Canvas caches the id_token when it renders the login form; exp is iat + 1 hour.
    launch = CanvasLaunch(STUDENT, STUDENT_ROLES, site.north, age=50 * 60)
    assert_home(canvas_launch(site.canvas, browser, launch), "Student")


def test_canvas_refusing_the_login_is_shown_in_plain_words(
    site: CanvasSite, browser: httpx.Client
) -> None:
    # authorize: another user holds the Canvas session -> error=login_required with the state.
    launch = CanvasLaunch(STUDENT, STUDENT_ROLES, site.north, logged_in=TEACHER)
    assert_refused(canvas_launch(site.canvas, browser, launch), 400, "login_required")


def test_canvas_public_course_launch_without_a_user_is_refused_clearly(
    site: CanvasSite, browser: httpx.Client
) -> None:
    # A public course opened by someone not logged in: no sub, roles [system/person#None].
    launch = CanvasLaunch(None, [SYS + "None"], site.north)
    launched = canvas_launch(site.canvas, browser, launch)
    assert launched.response.status_code in (200, 400, 403), launched.text[:2000]
    assert "Traceback" not in launched.text


def test_canvas_form_posted_twice_is_refused_as_used(
    site: CanvasSite, browser: httpx.Client
) -> None:
    login, _ = start(site.canvas, browser, CanvasLaunch(STUDENT, STUDENT_ROLES, site.north))
    form = authorize(site.canvas, browser, login)
    assert submit_form(browser, form).status_code == 200
    assert_refused(Launched(submit_form(browser, form), browser), 400, "already used")


# === 1b. one issuer, many schools ===========================================================


def _person_ids(database_url: str, client_id: str, sub: str) -> list[int]:
    db = Database(database_url)
    with db.begin() as s:
        ids = list(
            s.scalars(
                select(Person.id)
                .join(Platform, Platform.id == Person.platform_id)
                .where(
                    Platform.issuer == CANVAS_ISS,
                    Platform.client_id == client_id,
                    Person.sub == sub,
                )
            )
        )
    db.dispose()
    return ids


def test_two_canvas_schools_share_the_issuer_and_keep_their_people_apart(
    site: CanvasSite, database_url: str
) -> None:
    # The same sub from North and from South: two people, each in their own school.
    same = CanvasUser("Same Sub", "Same", "Sub", "same@north.example")
    twin = replace(same, name="Other Person", given_name="Other", family_name="Person")
    with httpx.Client(timeout=30) as b1, httpx.Client(timeout=30) as b2:
        north = canvas_launch(site.canvas, b1, CanvasLaunch(same, STUDENT_ROLES, site.north))
        south = canvas_launch(site.canvas, b2, CanvasLaunch(twin, TEACHER_ROLES, site.south))
    assert_home(north, "Student", "Same Sub")
    assert_home(south, "Teacher", "Other Person")
    (north_id,) = _person_ids(database_url, site.north.client_id, same.lti_id)
    (south_id,) = _person_ids(database_url, site.south.client_id, same.lti_id)
    assert north_id != south_id


def test_canvas_launch_whose_token_names_the_other_schools_client_id_is_refused(
    site: CanvasSite, browser: httpx.Client
) -> None:
    # One Canvas key signs for every school: a token made for South (aud = South's client_id)
    # answering a login North started must not open North's (or South's) Pathways.
    south = site.south
    launch = CanvasLaunch(
        STUDENT,
        STUDENT_ROLES,
        site.north,
        claims={
            "aud": south.client_id,
            "azp": south.client_id,
            CLAIM + "deployment_id": south.deployment_id,
        },
    )
    assert_refused(canvas_launch(site.canvas, browser, launch), 400, "different LMS")


def test_canvas_launch_with_azp_naming_another_client_in_a_list_aud_is_refused(
    site: CanvasSite, browser: httpx.Client
) -> None:
    north, south = site.north, site.south
    launch = CanvasLaunch(
        STUDENT,
        STUDENT_ROLES,
        north,
        claims={"aud": [north.client_id, south.client_id], "azp": south.client_id},
    )
    launched = canvas_launch(site.canvas, browser, launch)
    assert launched.response.status_code in (400, 403), launched.text[:2000]
    assert "Traceback" not in launched.text


# === 2. a new deployment of a known developer key ==========================================


def test_new_canvas_deployment_is_pending_with_an_actionable_403_then_approved_works(
    site: CanvasSite,
    database_url: str,
    tool_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lti_app.cli import main

    school = site.north
    new_dep = f"{school.tool_id + 1}:{opaque()}"  # installed again, in a course
    with httpx.Client(timeout=30) as b:
        launch = CanvasLaunch(TEACHER, TEACHER_ROLES, school, deployment_id=new_dep)
        refused = canvas_launch(site.canvas, b, launch)
    assert_refused(refused, 403, "waiting for approval", new_dep, school.client_id)
    hint = html.unescape(refused.text)
    command = re.search(r"lti-app (platform approve-deployment [^<\n]+)", hint)
    assert command, hint[:3000]
    args = command.group(1).split()
    # The other school's registration has not learnt this deployment.
    db = Database(database_url)
    with db.begin() as s:
        rows = s.execute(
            select(Platform.client_id, Deployment.status)
            .join(Platform, Platform.id == Deployment.platform_id)
            .where(Deployment.deployment_id == new_dep)
        ).all()
    db.dispose()
    assert rows == [(school.client_id, DeploymentStatus.PENDING)]
    monkeypatch.setenv("LTI_APP_SECRET_KEY", tool_settings.secret_key)
    monkeypatch.setenv("LTI_APP_KEY_ENCRYPTION_SECRET", tool_settings.key_encryption_secret)
    monkeypatch.setenv("LTI_APP_DATABASE_URL", database_url)
    monkeypatch.setenv("LTI_APP_ENV", "test")
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with httpx.Client(timeout=30) as b:
        launch = CanvasLaunch(TEACHER, TEACHER_ROLES, school, deployment_id=new_dep)
        assert_home(canvas_launch(site.canvas, b, launch), "Teacher")
    # South, same deployment id string, is still not approved.
    with httpx.Client(timeout=30) as b:
        launch = CanvasLaunch(TEACHER, TEACHER_ROLES, site.south, deployment_id=new_dep)
        assert_refused(canvas_launch(site.canvas, b, launch), 403, "waiting for approval")


# === 3. deep linking from Canvas ============================================================


def tool_jwks(canvas: FakeCanvas) -> dict[str, Any]:
    response = httpx.get(canvas.tool_url + "/.well-known/jwks.json", timeout=30)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def canvas_reads_deep_link_response(
    site: CanvasSite, token: str, *, canvas_now: float | None = None
) -> dict[str, Any]:
    """deep_linking_services.rb DeepLinkingJwt#verified_jwt: the developer key found by the
    JWT's iss, the JWT verified against its public_jwk_url (JSON::JWK::Set: kid must match),
    then JwtValidator with sub := iss, jti := nonce, expected_aud = lti_iss, require_iss."""
    header = jwt.get_unverified_header(token)
    assert header.get("alg") == "RS256", "JWT has unexpected alg"
    keys = {k.get("kid"): k for k in tool_jwks(site.canvas)["keys"]}
    assert header.get("kid") in keys, "JWT verification failure (no key with this kid)"
    unverified = jwt.decode(token, options={"verify_signature": False})
    assert unverified.get("iss") in site.canvas.schools, "Client not found"
    claims: dict[str, Any] = jwt.decode(
        token,
        PyJWK(keys[header["kid"]]).key,
        algorithms=["RS256"],
        options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
    )
    checked = dict(claims, jti=claims.get("nonce"), sub=claims.get("iss"))
    errors = jwt_validator_errors(
        checked, expected_aud=CANVAS_ISS, require_iss=True, now=canvas_now
    )
    assert not errors, errors
    return claims


def deep_link(
    site: CanvasSite,
    browser: httpx.Client,
    *,
    placement: str = "link_selection",
    user: CanvasUser = TEACHER,
    roles: list[str] = TEACHER_ROLES,
) -> Launched:
    launch = CanvasLaunch(user, roles, site.north, placement=placement, deep_linking=True)
    launched = canvas_launch(site.canvas, browser, launch)
    assert launched.response.status_code == 200, launched.text[:2000]
    return launched


def test_canvas_deep_link_request_shape_is_what_canvas_sends(site: CanvasSite) -> None:
    launch = CanvasLaunch(
        TEACHER, TEACHER_ROLES, site.north, deep_linking=True, placement="link_selection"
    )
    launch.target_link_uri = "t"
    claims = site.canvas.payload(launch, "n")
    settings = claims[DL + "deep_linking_settings"]
    assert CLAIM + "resource_link" not in claims
    assert "data" not in settings
    assert "accept_lineitem" not in settings
    assert "/deep_linking_response?data=" in settings["deep_link_return_url"]
    assert claims["aud"] == claims["azp"] == site.north.client_id
    assert claims["exp"] - claims["iat"] == 3600


def test_canvas_link_selection_returns_what_canvas_deep_linking_controller_accepts(
    site: CanvasSite, browser: httpx.Client, database_url: str
) -> None:
    deep_link(site, browser)  # Pathways records the course
    launch = CanvasLaunch(
        TEACHER, TEACHER_ROLES, site.north, placement="link_selection", deep_linking=True
    )
    competency = add_competency(database_url, site.canvas.payload(launch, "n"))
    launched = deep_link(site, browser)
    assert "Add Pathways to your course" in launched.text
    assert 'type="checkbox" name="item"' in launched.text  # link_selection: accept_multiple
    back = submit_picks(launched, f"competency-{competency}")
    # The return URL exactly, with its ?data= (return_url_data is read from it), field JWT.
    assert back.method == "post"
    settings_url = back.action
    assert urlsplit(settings_url).path.endswith("/courses/101/deep_linking_response")
    assert dict(parse_qsl(urlsplit(settings_url).query)).get("data")
    assert set(back.fields) == {"JWT"}
    claims = canvas_reads_deep_link_response(site, back.fields["JWT"])
    assert claims["iss"] == site.north.client_id
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert CANVAS_ISS in aud
    assert claims[CLAIM + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[CLAIM + "version"] == "1.3.0"
    assert claims[CLAIM + "deployment_id"] == site.north.deployment_id
    assert claims.get("nonce")
    assert claims["exp"] > claims["iat"]
    assert DL + "data" not in claims  # Canvas sent none
    (item,) = claims[DL + "content_items"]
    assert item["type"] == "ltiResourceLink"
    assert item["url"] == site.canvas.tool_url + "/lti/launch"
    assert item["title"]
    # The competency's mastery column: the gradebook's label, maximum, resourceId and tag.
    line_item = item["lineItem"]
    assert line_item["scoreMaximum"] == 4  # validate_line_item!: truthy, a number
    assert isinstance(line_item["scoreMaximum"], int | float)
    assert line_item["label"] == "LS1 Explains how cells divide"  # the assignment's name
    assert line_item["resourceId"] == f"pathways-competency-{competency}"
    assert line_item["tag"] == "pathways-competency"
    assert all(isinstance(v, str) for v in (item.get("custom") or {}).values())


def test_canvas_assignment_selection_allows_one_item(
    site: CanvasSite, browser: httpx.Client
) -> None:
    launched = deep_link(site, browser, placement="assignment_selection")
    assert 'type="radio"' in launched.text
    form = picker_form(launched)
    fields = [*form.fields.items(), ("item", "home"), ("item", "home")]
    response = launched.client.post(
        form.action,
        content=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    (back,) = parse_forms(response.text, str(response.url))
    items = canvas_reads_deep_link_response(site, back.fields["JWT"])[DL + "content_items"]
    assert len(items) <= 1


def test_canvas_accepts_the_deep_link_response_when_its_clock_is_5_seconds_behind(
    site: CanvasSite, browser: httpx.Client
) -> None:
    launched = deep_link(site, browser)
    signed_after = time.time()
    back = submit_picks(launched)
    claims = canvas_reads_deep_link_response(site, back.fields["JWT"], canvas_now=signed_after - 5)
    assert "lineItem" not in claims[DL + "content_items"][0]  # the home: a link, no column


def test_canvas_accepts_the_deep_link_response_when_posted_4_minutes_later(
    site: CanvasSite, browser: httpx.Client
) -> None:
    # A teacher may leave the auto-post page (no JS) open: iat must be under 5 minutes old.
    launched = deep_link(site, browser)
    back = submit_picks(launched)
    canvas_reads_deep_link_response(site, back.fields["JWT"], canvas_now=time.time() + 240)


def test_canvas_account_admin_not_enrolled_can_deep_link(
    site: CanvasSite, browser: httpx.Client
) -> None:
    launched = deep_link(site, browser, user=ADMIN, roles=ADMIN_NOT_ENROLLED_ROLES)
    back = submit_picks(launched)
    canvas_reads_deep_link_response(site, back.fields["JWT"])


def test_canvas_designer_can_deep_link(site: CanvasSite, browser: httpx.Client) -> None:
    designer = CanvasUser("Dee Signer", "Dee", "Signer", "dee@school.example")
    launched = deep_link(site, browser, user=designer, roles=DESIGNER_ROLES)
    canvas_reads_deep_link_response(site, submit_picks(launched).fields["JWT"])


def test_canvas_student_deep_link_is_refused_clearly(
    site: CanvasSite, browser: httpx.Client
) -> None:
    launch = CanvasLaunch(
        STUDENT, STUDENT_ROLES, site.north, deep_linking=True, placement="link_selection"
    )
    assert_refused(canvas_launch(site.canvas, browser, launch), 403, "Only a teacher")


@pytest.mark.parametrize(
    "score_maximum",
    [
        pytest.param("abc", id="text"),
        pytest.param("nan", id="nan"),
        pytest.param("inf", id="inf"),
        pytest.param("0", id="zero"),
        pytest.param("-5", id="negative"),
        pytest.param("12.5", id="decimal"),
    ],
)
def test_canvas_deep_link_ignores_a_posted_score_maximum(
    site: CanvasSite, browser: httpx.Client, score_maximum: str
) -> None:
    # validate_line_item!: a falsy scoreMaximum is an error; NaN/Infinity are not JSON
    # (JSON::JWT::InvalidFormat). The picker has no points field any more (a column's maximum
    # is the gradebook's), and a forged one must neither reach Canvas nor make a column.
    launched = deep_link(site, browser)
    form = picker_form(launched)
    form.fields.update({"item": "home", "gradebook": "on", "score_maximum": score_maximum})
    response = submit_form(launched.client, form)
    assert response.status_code == 200, response.text[:2000]
    (back,) = parse_forms(response.text, str(response.url))
    token = back.fields["JWT"]
    body = jwt.utils.base64url_decode(token.split(".")[1]).decode()
    assert "NaN" not in body, body
    assert "Infinity" not in body, body
    (item,) = canvas_reads_deep_link_response(site, token)[DL + "content_items"]
    assert "lineItem" not in item


# === 4. LTI Platform Storage, the Canvas way ================================================


def test_canvas_storage_login_page_targets_the_forwarding_frame_at_the_oidc_origin(
    site: CanvasSite, browser: httpx.Client
) -> None:
    launch = CanvasLaunch(STUDENT, STUDENT_ROLES, site.north, include_storage_target=True)
    login, _ = start(site.canvas, browser, launch)
    assert login.status_code == 200, login.text[:2000]
    assert "no-store" in login.headers.get("cache-control", "")
    data = storage_div(login.text)
    assert data["mode"] == "put"
    assert data["target"] == FORWARDING_TARGET
    # The target origin is the OIDC auth origin (sso), not the school's, never "*".
    assert data["origin"] == site.canvas.sso_origin
    assert data["auth-url"].startswith(site.canvas.auth_url + "?")
    # The cookie is set too: the fallback when Canvas (mobile) never answers.
    assert any(c.startswith("lti1p3_state_") for c in browser.cookies)
    # ui/shared/lti/jquery/platform_storage.ts: 4096 characters of keys + values per tool and
    # page; one login must leave room for several.
    assert len(data["key"]) + len(data["value"]) <= 4096 // 4, (len(data["key"]), data["key"])
    script = httpx.get(site.canvas.tool_url + "/static/js/platform_storage.js", timeout=30)
    assert script.status_code == 200
    for subject in ("lti.capabilities", "lti.put_data", "lti.get_data"):
        assert subject in script.text


def _storage_launch_without_cookie(site: CanvasSite, browser: httpx.Client) -> tuple[Launched, str]:
    """A storage login; the browser then loses the third-party cookie (Safari, Chrome)."""
    launch = CanvasLaunch(STUDENT, STUDENT_ROLES, site.north, include_storage_target=True)
    login, _ = start(site.canvas, browser, launch)
    secret = storage_div(login.text)["value"]
    form = authorize(site.canvas, browser, login)
    browser.cookies.clear()
    return Launched(submit_form(browser, form), browser), secret


def test_canvas_launch_without_cookie_asks_platform_storage_and_works_with_the_secret(
    site: CanvasSite, browser: httpx.Client
) -> None:
    launched, secret = _storage_launch_without_cookie(site, browser)
    response = launched.response
    assert response.status_code == 200, response.text[:2000]
    data = storage_div(response.text)
    assert data["mode"] == "get"
    assert data["target"] == FORWARDING_TARGET
    assert data["origin"] == site.canvas.sso_origin
    (form,) = [f for f in parse_forms(response.text, str(response.url)) if f.id == "lti-storage"]
    assert form.action == site.canvas.tool_url + "/lti/launch"
    form.fields["lti_storage_secret"] = secret  # what lti.get_data answered
    assert_home(Launched(submit_form(browser, form), browser), "Student")


def test_canvas_launch_with_cookie_needs_no_platform_storage(
    site: CanvasSite, browser: httpx.Client
) -> None:
    # Canvas mobile sends lti_storage_target but never answers: the cookie carries the launch.
    launch = CanvasLaunch(STUDENT, STUDENT_ROLES, site.north, include_storage_target=True)
    launched = canvas_launch(site.canvas, browser, launch)
    assert_home(launched, "Student")
    # Canvas keeps put_data in the browser's localStorage: the home takes the login's copy
    # out again (tests/e2e runs the script against the demo LMS).
    (clear,) = re.findall(r'<div id="lti-storage" data-mode="clear"[^>]*>', launched.text)
    assert 'data-key="lti_state_' in clear
    assert f'data-target="{FORWARDING_TARGET}"' in clear
    assert f'data-origin="{site.canvas.sso_origin}"' in clear  # the OIDC auth origin


def test_canvas_launch_refused_still_takes_its_login_out_of_platform_storage(
    site: CanvasSite, browser: httpx.Client
) -> None:
    # A launch Pathways refuses (here: a deployment nobody approved) put its login in Canvas's
    # localStorage like any other; the refusal page takes it out again.
    launch = CanvasLaunch(
        STUDENT,
        STUDENT_ROLES,
        site.north,
        include_storage_target=True,
        deployment_id="deployment-nobody-approved",
    )
    launched = canvas_launch(site.canvas, browser, launch)
    assert launched.response.status_code == 403, launched.text[:2000]
    (clear,) = re.findall(r'<div id="lti-storage" data-mode="clear"[^>]*>', launched.text)
    assert 'data-key="lti_state_' in clear
    assert f'data-target="{FORWARDING_TARGET}"' in clear
    assert f'data-origin="{site.canvas.sso_origin}"' in clear


def test_canvas_launch_without_platform_storage_leaves_nothing_to_clear(
    site: CanvasSite, browser: httpx.Client
) -> None:
    launched = canvas_launch(site.canvas, browser, CanvasLaunch(STUDENT, STUDENT_ROLES, site.north))
    assert_home(launched, "Student")
    assert "lti-storage" not in launched.text


def test_canvas_storage_answer_with_a_wrong_secret_is_refused(
    site: CanvasSite, browser: httpx.Client
) -> None:
    launched, _ = _storage_launch_without_cookie(site, browser)
    (form,) = [
        f for f in parse_forms(launched.text, str(launched.response.url)) if f.id == "lti-storage"
    ]
    form.fields["lti_storage_secret"] = "not-the-secret"
    assert_refused(Launched(submit_form(browser, form), browser), 400, "new window")


def test_canvas_storage_answer_with_no_value_is_refused_not_asked_again(
    site: CanvasSite, browser: httpx.Client
) -> None:
    launched, _ = _storage_launch_without_cookie(site, browser)
    (form,) = [
        f for f in parse_forms(launched.text, str(launched.response.url)) if f.id == "lti-storage"
    ]
    form.fields["lti_storage_secret"] = ""  # what a platform with nothing stored leads to
    assert_refused(Launched(submit_form(browser, form), browser), 400, "new window")


def test_canvas_launch_without_cookie_and_without_storage_says_what_to_do(
    site: CanvasSite, browser: httpx.Client
) -> None:
    # Platform storage off (no lti_storage_target): a blocked cookie gets a plain answer.
    launch = CanvasLaunch(STUDENT, STUDENT_ROLES, site.north)
    login, _ = start(site.canvas, browser, launch)
    form = authorize(site.canvas, browser, login)
    browser.cookies.clear()
    assert_refused(Launched(submit_form(browser, form), browser), 400, "new window")


# === 5. what else Canvas's source says ======================================================


def test_tool_jwks_has_what_canvas_developer_keys_require(site: CanvasSite) -> None:
    # public_jwk_url: JSON::JWK::Set, each key with kty, kid, alg, use; no private parts.
    keys = tool_jwks(site.canvas)["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "RSA"
        assert key["alg"] == "RS256"
        assert key["use"] == "sig"
        assert key["kid"]
        assert key["n"]
        assert key["e"]
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


@pytest.mark.parametrize(
    "audience",
    [None, "sso.canvaslms.com"],
    ids=["registered-by-hand", "registered-dynamically"],
)
def test_canvas_accepts_the_assertion_audience_however_it_was_registered(
    site: CanvasSite, audience: str | None
) -> None:
    """Canvas's dynamic registration advertises its authorization server as a bare host
    (security_controller.rb: `Lti::Oidc.auth_domain`), which its own token endpoint does not take
    as the `aud`: that wants the token URL (client_credentials_provider.rb)."""
    platform = Platform(
        id=1,
        issuer=CANVAS_ISS,
        client_id=site.north.client_id,
        token_url=site.canvas.token_url,
        token_audience=audience,
    )
    claims = {"aud": assertion_audience(platform), "sub": "c", "iss": "c", "jti": "j"}
    claims |= {"exp": time.time() + 60, "iat": time.time()}
    assert not jwt_validator_errors(claims, expected_aud=site.canvas.token_url, require_iss=True)
    if audience:
        assert audience in claims["aud"]  # LTI-DR §3.5: the authorization server's own name


def test_canvas_token_endpoint_accepts_pathways_client_assertion(
    site: CanvasSite, tool_server: ToolServer, database_url: str
) -> None:
    from lti_app.roster.jobs import service_tokens

    db = Database(database_url)
    with db.begin() as s:
        platform = s.scalars(
            select(Platform).where(
                Platform.issuer == CANVAS_ISS, Platform.client_id == site.north.client_id
            )
        ).one()
        s.expunge(platform)
    db.dispose()
    tokens = service_tokens(tool_server.app)
    before = len(site.canvas.token_requests)
    token = tokens.token(platform, frozenset({SCOPE + "score", SCOPE + "lineitem"}))
    assert token.value
    assert len(site.canvas.token_requests) == before + 1
    sent = site.canvas.token_requests[-1]
    assert sent["grant_type"] == "client_credentials"
    assert sent["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    claims = jwt.decode(sent["client_assertion"], options={"verify_signature": False})
    assert claims["aud"] == site.canvas.token_url  # exactly: no trailing slash
    assert claims["iss"] == claims["sub"] == site.north.client_id
    assert claims["jti"]
    # The other school's assertion names its own client (tokens are per registration).
    assert not jwt_validator_errors(
        claims, expected_aud=site.canvas.token_url, require_iss=True, now=time.time() - 5
    )


def test_canvas_launch_signed_with_the_rotated_in_key_is_accepted(
    site: CanvasSite, browser: httpx.Client
) -> None:
    # Lti::KeyStorage rotation: "future" becomes "present"; it was already in the JWKS.
    canvas = site.canvas
    old = canvas.keys["present"]
    canvas.keys["present"] = canvas.keys["future"]
    try:
        launch = CanvasLaunch(STUDENT, STUDENT_ROLES, site.north)
        assert_home(canvas_launch(canvas, browser, launch), "Student")
    finally:
        canvas.keys["present"] = old
