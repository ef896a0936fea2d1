"""Launches shaped exactly as a real Moodle 4.x sends them, and the deep-linking answer checked
the way Moodle's return handler checks it.

A small fake Moodle runs on loopback, under a site path (`$CFG->wwwroot` may have one):
`/moodle/mod/lti/auth.php` and `/moodle/mod/lti/certs.php`. Its OIDC answer and id_tokens are
built from Moodle's own source (moodle/moodle):

- mod/lti/locallib.php `lti_build_login_request` / `lti_initiate_login`: login initiation is an
  auto-submitted POST form with iss, target_link_uri, login_hint ($USER->id), lti_message_hint
  (4.x: JSON `{"cmid":…,"launchid":"ltilaunch<instance>_<rand>"}`), client_id and
  lti_deployment_id (the tool type id).
- mod/lti/auth.php: the OIDC authentication request checks (scope, response_type, client_id,
  redirect_uri registered, login_hint === $USER->id, response_mode form_post, prompt none or
  empty); the answer is a form `ltiAuthForm` posting id_token and state, or error,
  error_description and state.
- mod/lti/locallib.php `lti_sign_jwt`: nonce, iat, exp = iat + 60, iss = wwwroot, aud =
  client_id, deployment_id = strval(typeid), target_link_uri; claims from
  `lti_get_jwt_claim_mapping` (array claims are exploded and *sorted*; 4.1+ sends the deep
  linking booleans as booleans, earlier "true"/"false" strings), `custom_*` -> custom, `ext_*`
  -> ext; header {typ, alg RS256, kid}.
- mod/lti/locallib.php `lti_build_request`, `lti_build_standard_message`, `lti_get_launch_data`,
  `lti_get_ims_role` (Instructor/Learner, site admins add sys and inst Administrator),
  `lti_build_content_item_selection_request` (deep linking: no resource_link, no `data`,
  accept_types ltiResourceLink, targets frame/iframe/window).
- mod/lti/service/gradebookservices/.../gradebookservices.php: AGS claim with `?type_id=`.
- mod/lti/classes/local/ltiopenid/jwks_helper.php: certs.php shape {kty, alg, kid, e, n, use}.
- mod/lti/contentitem_return.php + `lti_convert_from_jwt` / `lti_verify_jwt_signature` /
  `lti_verify_with_keyset` / `lti_convert_content_items` / `content_item_to_form`: what the
  deep-linking response must satisfy (iss === client_id, kid in the tool's JWKS, RS256,
  php-jwt's time checks with leeway 0, the JWT in the form field `JWT`).
"""

from __future__ import annotations

import json
import random
import re
import secrets
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import jwt
import pytest
from jwt import PyJWK
from sqlalchemy import select

from lti_app.db import Database, utcnow
from lti_app.demo.browser import HtmlForm, parse_forms, submit_form
from lti_app.demo.keys import SigningKey
from lti_app.demo.launches import DELETE
from lti_app.grades.client import score_url
from lti_app.tool.models import Deployment, DeploymentStatus, Platform
from tests.conftest import Launched, ToolServer
from tests.tool.lms_pages import add_competency, assert_home, picker_form, submit_picks
from tests.tool.test_launch import assert_refused

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
BOS = "https://purl.imsglobal.org/spec/lti-bos/claim/basicoutcomesservice"
SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
LAUNCH_TOKEN = re.compile(r"[?&]lt=([^\"&]+)")

# lti_get_launch_data: launch containers and the document_target each one sends.
EMBED, EMBED_NO_BLOCKS, WINDOW, REPLACE_MOODLE_WINDOW = 2, 3, 4, 5
DOCUMENT_TARGET = {EMBED: "iframe", EMBED_NO_BLOCKS: "iframe", WINDOW: "window", 5: "frame"}


# --- the fake Moodle ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MoodleUser:
    id: str  # Moodle's DB layer returns ids as strings: auth.php compares login_hint !== $USER->id
    username: str
    firstname: str
    lastname: str
    email: str
    idnumber: str = ""

    @property
    def fullname(self) -> str:  # fullname($USER), not cleaned: raw HTML stays
        return f"{self.firstname} {self.lastname}"


ADMIN = MoodleUser("2", "admin", "Admin", "User", "admin@moodle.example")
TEACHER = MoodleUser("3", "teacher1", "Terry", "Teacher", "teacher1@moodle.example")
STUDENT = MoodleUser("4", "student1", "Sam", "O'Student", "student1@moodle.example")
HTML_NAMED = MoodleUser("5", "student2", "Bobby", "<b>Tables</b><script>alert(1)</script>", "s2@x")


@dataclass(frozen=True)
class MoodleCourse:
    id: str
    shortname: str
    fullname: str
    idnumber: str = ""
    format: str = "topics"  # "site" for the front page


COURSE = MoodleCourse("2", "BIO9", "Biology 9 (Moodle)")

# lti_get_ims_role: the short names Moodle joins with ',' before lti_sign_jwt maps them.
LEARNER = ["Learner"]
EDITING_TEACHER = ["Instructor"]
SITE_ADMIN = [
    "Instructor",
    "urn:lti:sysrole:ims/lis/Administrator",
    "urn:lti:instrole:ims/lis/Administrator",
]


def moodle_roles(short: list[str]) -> list[str]:
    """lti_sign_jwt's role mapping, then the claim mapping's explode + sort()."""
    out = []
    for role in short:
        if role.startswith("urn:lti:role:ims/lis/"):
            role = "http://purl.imsglobal.org/vocab/lis/v2/membership#" + role[21:]
        elif role.startswith("urn:lti:instrole:ims/lis/"):
            role = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#" + role[25:]
        elif role.startswith("urn:lti:sysrole:ims/lis/"):
            role = "http://purl.imsglobal.org/vocab/lis/v2/system/person#" + role[24:]
        elif "://" not in role and not role.startswith("urn:"):
            role = "http://purl.imsglobal.org/vocab/lis/v2/membership#" + role
        out.append(role)
    return sorted(out)


@dataclass
class MoodleLaunch:
    """One launch Moodle has prepared (its $SESSION->$launchid)."""

    user: MoodleUser
    roles: list[str]
    deep_linking: bool = False
    course: MoodleCourse = COURSE
    instance_id: str = "1"  # the lti activity's id: resource_link.id
    cmid: int = 5
    activity_name: str = "Pathways"
    launch_container: int = EMBED_NO_BLOCKS
    send_name: bool = True
    send_email: bool = True
    custom: dict[str, str] = field(default_factory=dict)
    grade_sync: str = "partial"  # ltiservice_gradesynchronization: none, partial, full
    accept_multiple: Any = True  # 4.1+ booleans; 4.0 and earlier "true"/"false"
    age: int = 0  # seconds between Moodle signing the id_token and Pathways receiving it
    claims: dict[str, Any] = field(default_factory=dict)  # last-minute changes (DELETE removes)
    session_user_id: str | None = None  # who is logged in to Moodle when auth.php runs
    launchid: str = ""
    target_link_uri: str = ""


class FakeMoodle:
    """Moodle's LTI 1.3 platform endpoints, from its source, on a loopback server."""

    def __init__(self, tool_url: str) -> None:
        self.tool_url = tool_url.rstrip("/")
        self.key = SigningKey.generate(secrets.token_hex(10))  # kid: bin2hex(random 10 bytes)
        # lti_prepare_type_for_save: a 1.3 tool's client id is random_string(15).
        self.client_id = "".join(random.choices(string.ascii_letters + string.digits, k=15))
        self.type_id = "1"
        self.redirect_uris = [self.tool_url + "/lti/launch"]
        self.launches: dict[str, MoodleLaunch] = {}
        self.auth_requests: list[dict[str, str]] = []
        self.certs_fetches = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.wwwroot = f"http://127.0.0.1:{self._server.server_address[1]}/moodle"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what the admin copies into Pathways (Moodle's "Tool configuration details") --------
    @property
    def auth_url(self) -> str:
        return self.wwwroot + "/mod/lti/auth.php"

    @property
    def certs_url(self) -> str:
        return self.wwwroot + "/mod/lti/certs.php"

    @property
    def token_url(self) -> str:
        return self.wwwroot + "/mod/lti/token.php"

    def jwks(self) -> dict[str, Any]:
        """jwks_helper::get_jwks."""
        public = self.key.public_jwk
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "alg": "RS256",
                    "kid": self.key.kid,
                    "e": public["e"],
                    "n": public["n"],
                    "use": "sig",
                }
            ]
        }

    # -- lti_build_login_request (4.x) --------------------------------------------------------
    def prepare(self, launch: MoodleLaunch, target_link_uri: str | None = None) -> dict[str, str]:
        hint: dict[str, Any] = {}
        if launch.deep_linking:
            launch.launchid = "ltilaunch_ContentItemSelectionRequest" + str(random.randrange(2**31))
        else:
            launch.launchid = f"ltilaunch{launch.instance_id}_{random.randrange(2**31)}"
            hint["cmid"] = launch.cmid
        hint["launchid"] = launch.launchid
        self.launches[launch.launchid] = launch
        launch.target_link_uri = target_link_uri or self.tool_url + "/lti/launch"
        return {
            "iss": self.wwwroot,
            "target_link_uri": launch.target_link_uri,
            "login_hint": launch.user.id,
            "lti_message_hint": json.dumps(hint, separators=(",", ":")),
            "client_id": self.client_id,
            "lti_deployment_id": self.type_id,
        }

    # -- mod/lti/auth.php (4.x) ---------------------------------------------------------------
    def authenticate(self, params: dict[str, str]) -> tuple[int, str]:
        self.auth_requests.append(params)
        get = params.get
        ok = all(get(n) for n in ("scope", "response_type", "client_id", "redirect_uri"))
        ok = ok and bool(get("login_hint")) and bool(get("nonce"))
        error, desc = ("" if ok else "invalid_request"), ""
        launch: MoodleLaunch | None = None
        try:
            hint = json.loads(get("lti_message_hint", ""))
        except ValueError:
            hint = None
        if ok and not (isinstance(hint, dict) and "launchid" in hint):
            ok, error, desc = False, "invalid_request", "No launch id in LTI hint"
        if ok and get("scope") != "openid":
            ok, error = False, "invalid_scope"
        if ok and get("response_type") != "id_token":
            ok, error = False, "unsupported_response_type"
        if ok:
            launch = self.launches.pop(hint["launchid"], None)
            if launch is None or get("client_id") != self.client_id:
                ok, error = False, "unauthorized_client"
        if ok and launch is not None:
            logged_in = launch.session_user_id or launch.user.id
            if get("login_hint") != logged_in:
                ok, error = False, "access_denied"
        if get("redirect_uri") not in self.redirect_uris:
            return 400, "<p>Invalid request (redirect_uri not registered)</p>"
        if ok and get("response_mode") != "form_post":
            ok, error, desc = False, "invalid_request", "Invalid response_mode"
        if ok and get("prompt") and get("prompt") != "none":
            ok, error, desc = False, "invalid_request", "Invalid prompt"
        fields: dict[str, str] = {}
        if ok and launch is not None:
            fields["id_token"] = self.id_token(launch, get("nonce", ""))
        else:
            fields["error"] = error
            if desc:
                fields["error_description"] = desc
        if "state" in params:
            fields["state"] = params["state"]
        inputs = "".join(
            f'  <input type="hidden" name="{_h(k)}" value="{_h(v)}"/>\n' for k, v in fields.items()
        )
        form = (
            f'<form action="{get("redirect_uri")}" name="ltiAuthForm" id="ltiAuthForm" '
            f'method="post" enctype="application/x-www-form-urlencoded">\n{inputs}</form>\n'
            '<script type="text/javascript">\n//<![CDATA[\ndocument.ltiAuthForm.submit();\n'
            "//]]>\n</script>\n"
        )
        return 200, form

    # -- lti_build_request + lti_build_standard_message + services + lti_sign_jwt -------------
    def payload(self, launch: MoodleLaunch, nonce: str, target_link_uri: str) -> dict[str, Any]:
        user, course = launch.user, launch.course
        now = int(time.time()) - launch.age
        p: dict[str, Any] = {
            "nonce": nonce,
            "iat": now,
            "exp": now + 60,
            "iss": self.wwwroot,
            "aud": self.client_id,
            CLAIM + "deployment_id": self.type_id,
            CLAIM + "target_link_uri": target_link_uri,
            "sub": user.id,
            CLAIM + "lis": {"person_sourcedid": user.idnumber},
            CLAIM + "roles": moodle_roles(launch.roles),
            CLAIM + "context": {
                "id": course.id,
                "label": course.shortname,
                "title": course.fullname,
                "type": ["Group" if course.format == "site" else "CourseSection"],
            },
        }
        if course.format != "site":
            p[CLAIM + "lis"]["course_section_sourcedid"] = course.idnumber
        if not launch.deep_linking:
            p[CLAIM + "resource_link"] = {
                "title": launch.activity_name,
                "description": "",
                "id": launch.instance_id,
            }
        if launch.send_name:
            p["given_name"] = user.firstname
            p["family_name"] = user.lastname
            p["name"] = user.fullname
            p[CLAIM + "ext"] = {"user_username": user.username}
        if launch.send_email:
            p["email"] = user.email
        p.setdefault(CLAIM + "ext", {})["lms"] = "moodle-2"
        p[CLAIM + "launch_presentation"] = {"locale": "en"}
        p[CLAIM + "tool_platform"] = {
            "product_family_code": "moodle",
            "version": "2022112800",
            "guid": "127.0.0.1",
            "name": "Moodle",
            "description": "Moodle School",
        }
        p[CLAIM + "version"] = "1.3.0"
        p[CLAIM + "message_type"] = (
            "LtiDeepLinkingRequest" if launch.deep_linking else "LtiResourceLinkRequest"
        )
        if launch.custom:
            p[CLAIM + "custom"] = dict(launch.custom)
        services = self.wwwroot + "/mod/lti/services.php"
        if launch.grade_sync != "none":
            scopes = [SCOPE + "lineitem.readonly", SCOPE + "result.readonly", SCOPE + "score"]
            if launch.grade_sync == "full":
                scopes.append(SCOPE + "lineitem")
            p[AGS] = {
                "scope": sorted(scopes),
                "lineitems": f"{services}/{course.id}/lineitems?type_id={self.type_id}",
            }
            if not launch.deep_linking:
                p[AGS]["lineitem"] = (
                    f"{services}/{course.id}/lineitems/7/lineitem?type_id={self.type_id}"
                )
        p[NRPS] = {
            "context_memberships_url": (
                f"{services}/CourseSection/{course.id}/bindings/{self.type_id}/memberships"
            ),
            "service_versions": ["1.0", "2.0"],
        }
        if launch.deep_linking:
            flag = (lambda v: v) if isinstance(launch.accept_multiple, bool) else _flag_str
            p[DL + "deep_linking_settings"] = {
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["frame", "iframe", "window"],
                "accept_copy_advice": flag(False),
                "accept_multiple": launch.accept_multiple,
                "accept_unsigned": flag(False),
                "auto_create": flag(False),
                "can_confirm": flag(False),
                "deep_link_return_url": (
                    f"{self.wwwroot}/mod/lti/contentitem_return.php?course={course.id}"
                    f"&id={self.type_id}&sesskey=Kx7Pq2LmZa"
                ),
                "title": "Pathways",
                "text": "",
            }
        else:
            target = DOCUMENT_TARGET.get(launch.launch_container)
            if target:
                p[CLAIM + "launch_presentation"]["document_target"] = target
            p[CLAIM + "launch_presentation"]["return_url"] = (
                f"{self.wwwroot}/mod/lti/return.php?course={course.id}"
                f"&launch_container={launch.launch_container}&instanceid={launch.instance_id}"
                "&sesskey=Kx7Pq2LmZa"
            )
            p[BOS] = {
                "lis_result_sourcedid": json.dumps(
                    {
                        "data": {
                            "instanceid": launch.instance_id,
                            "userid": user.id,
                            "typeid": self.type_id,
                            "launchid": 1804289383,
                        },
                        "hash": "0" * 64,
                    }
                ),
                "lis_outcome_service_url": self.wwwroot + "/mod/lti/service.php",
            }
        for name, value in launch.claims.items():
            if value is DELETE:
                p.pop(name, None)
            else:
                p[name] = value
        return p

    def id_token(self, launch: MoodleLaunch, nonce: str) -> str:
        payload = self.payload(launch, nonce, launch.target_link_uri)
        # JWT::encode($payload, $privatekey, 'RS256', $kid): {"typ":"JWT","alg":"RS256","kid":…}
        return jwt.encode(
            payload, self.key.private_key, algorithm="RS256", headers={"kid": self.key.kid}
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        moodle = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: str, ctype: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, params: dict[str, str]) -> None:
                path = urlsplit(self.path).path
                if path == "/moodle/mod/lti/certs.php":
                    moodle.certs_fetches += 1
                    self._answer(200, json.dumps(moodle.jwks()), "application/json; charset=utf-8")
                elif path == "/moodle/mod/lti/auth.php":
                    status, body = moodle.authenticate(params)
                    self._answer(status, body, "text/html; charset=utf-8")
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


def _h(value: str) -> str:
    """PHP htmlspecialchars with ENT_COMPAT (auth.php escapes every value it posts)."""
    for raw, escaped in (("&", "&amp;"), ('"', "&quot;"), ("<", "&lt;"), (">", "&gt;")):
        value = value.replace(raw, escaped)
    return value


def _flag_str(value: bool) -> str:
    return "true" if value else "false"


def register_moodle(database_url: str, site: FakeMoodle, *, token_url: str = "") -> None:
    """Register a Moodle site in Pathways as its admin would from Moodle's tool details."""
    db = Database(database_url)
    with db.begin() as s:
        platform = Platform(
            issuer=site.wwwroot,
            client_id=site.client_id,
            name="Moodle",
            auth_login_url=site.auth_url,
            token_url=token_url or site.token_url,
            jwks_url=site.certs_url,
            is_active=True,
        )
        s.add(platform)
        s.flush()
        s.add(
            Deployment(
                platform_id=platform.id,
                deployment_id=site.type_id,
                status=DeploymentStatus.ACTIVE,
                approved_at=utcnow(),
            )
        )
    db.dispose()


@pytest.fixture(scope="module")
def moodle(tool_server: ToolServer, database_url: str) -> Iterator[FakeMoodle]:
    """A Moodle site registered in Pathways as its admin would from Moodle's tool details."""
    site = FakeMoodle(tool_server.url)
    register_moodle(database_url, site)
    yield site
    site.stop()


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


# --- the browser between Moodle and Pathways ------------------------------------------------


def start(
    moodle: FakeMoodle,
    browser: httpx.Client,
    launch: MoodleLaunch,
    *,
    method: str = "POST",
    target_link_uri: str | None = None,
) -> tuple[httpx.Response, dict[str, str]]:
    """Moodle's login initiation form reaching Pathways (POST, as lti_initiate_login's
    auto-submitted form; GET for platforms and proxies that redirect)."""
    params = moodle.prepare(launch, target_link_uri)
    login = moodle.tool_url + "/lti/login"
    if method == "POST":
        return browser.post(login, data=params), params
    return browser.get(login, params=params), params


def authorize(moodle: FakeMoodle, browser: httpx.Client, login: httpx.Response) -> HtmlForm:
    assert login.status_code == 302, login.text[:2000]
    page = browser.get(login.headers["location"])
    assert page.status_code == 200, page.text[:2000]
    return next(f for f in parse_forms(page.text, str(page.url)) if f.id == "ltiAuthForm")


def moodle_launch(
    moodle: FakeMoodle,
    browser: httpx.Client,
    launch: MoodleLaunch,
    *,
    method: str = "POST",
    target_link_uri: str | None = None,
) -> Launched:
    login, _ = start(moodle, browser, launch, method=method, target_link_uri=target_link_uri)
    form = authorize(moodle, browser, login)
    return Launched(submit_form(browser, form), browser)


# === 1. Moodle student, teacher and site admin launches =====================================


def test_moodle_student_launch_lands_on_the_student_home(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    launched = moodle_launch(moodle, browser, MoodleLaunch(STUDENT, LEARNER))
    assert_home(launched, "Student", "Sam O&#39;Student", "Biology 9 (Moodle)")


def test_moodle_editing_teacher_launch_lands_on_the_teacher_home(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    launched = moodle_launch(moodle, browser, MoodleLaunch(TEACHER, EDITING_TEACHER))
    assert_home(launched, "Teacher", "Terry Teacher", "Biology 9 (Moodle)")


def test_moodle_site_admin_launch_is_a_teacher_of_the_course(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    # lti_get_ims_role: a site admin has mod/lti:manage (Instructor) and gets sys + inst
    # Administrator; Moodle sorts the list, so institution Administrator comes first.
    launch = MoodleLaunch(ADMIN, SITE_ADMIN)
    assert moodle.payload(launch, "n", "t")[CLAIM + "roles"][0].endswith(
        "institution/person#Administrator"
    )
    assert_home(moodle_launch(moodle, browser, launch), "Teacher", "Admin User")


def test_moodle_names_with_raw_html_are_shown_as_text(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    launched = moodle_launch(moodle, browser, MoodleLaunch(HTML_NAMED, LEARNER))
    assert_home(launched, "Student", "&lt;b&gt;Tables&lt;/b&gt;")
    assert "<b>Tables</b>" not in launched.text
    assert "<script>alert(1)" not in launched.text


def test_moodle_launch_without_name_or_email_is_accepted(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    # The tool's privacy settings "Share launcher's name/email" set to Never.
    launch = MoodleLaunch(
        MoodleUser("6", "student3", "Priv", "Ate", "p@x"),
        LEARNER,
        send_name=False,
        send_email=False,
    )
    assert_home(moodle_launch(moodle, browser, launch), "Student")


@pytest.mark.parametrize(
    "container", [EMBED, EMBED_NO_BLOCKS, WINDOW, REPLACE_MOODLE_WINDOW], ids=str
)
def test_every_moodle_launch_container_is_accepted(
    moodle: FakeMoodle, browser: httpx.Client, container: int
) -> None:
    # document_target iframe / iframe / window / frame (the mobile app and tablets).
    launch = MoodleLaunch(STUDENT, LEARNER, launch_container=container)
    assert_home(moodle_launch(moodle, browser, launch), "Student")


def test_moodle_front_page_launch_with_a_group_context_is_accepted(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    # lti_build_request: the site course ($course->format == 'site') is context_type Group.
    site = MoodleCourse("1", "moodle", "Moodle School", format="site")
    launched = moodle_launch(moodle, browser, MoodleLaunch(STUDENT, LEARNER, course=site))
    assert launched.response.status_code == 200, launched.text[:2000]
    assert "Traceback" not in launched.text


def test_moodle_custom_parameters_arrive_lowercased_and_as_typed(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    # lti_split_custom_parameters: for 1.3 Moodle sends lti_map_keyname(key) and the key
    # as typed when they differ ("Pathway_ID=…" arrives as pathway_id and Pathway_ID).
    launch = MoodleLaunch(STUDENT, LEARNER, custom={"pathway_id": "999999", "Pathway_ID": "999999"})
    assert_home(moodle_launch(moodle, browser, launch), "Student")


# === 2. time: Moodle's exp is iat + 60 ======================================================


def test_moodle_launch_arriving_50_seconds_after_signing_is_accepted(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    assert_home(moodle_launch(moodle, browser, MoodleLaunch(STUDENT, LEARNER, age=50)), "Student")


def test_moodle_launch_arriving_just_after_exp_within_leeway_is_accepted(
    moodle: FakeMoodle, browser: httpx.Client, tool_server: ToolServer
) -> None:
    leeway = tool_server.settings.clock_skew_seconds
    launch = MoodleLaunch(STUDENT, LEARNER, age=60 + leeway - 15)
    assert_home(moodle_launch(moodle, browser, launch), "Student")


def test_moodle_launch_arriving_after_exp_and_leeway_is_refused_in_plain_words(
    moodle: FakeMoodle, browser: httpx.Client, tool_server: ToolServer
) -> None:
    leeway = tool_server.settings.clock_skew_seconds
    launch = MoodleLaunch(STUDENT, LEARNER, age=60 + leeway + 15)
    assert_refused(moodle_launch(moodle, browser, launch), 400, "expired")


# === 3. login initiation exactly as Moodle sends it =========================================


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_moodle_login_initiation_leads_to_an_auth_request_moodle_accepts(
    moodle: FakeMoodle, browser: httpx.Client, method: str
) -> None:
    login, sent = start(moodle, browser, MoodleLaunch(TEACHER, EDITING_TEACHER), method=method)
    assert login.status_code == 302, login.text[:2000]
    location = urlsplit(login.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == moodle.auth_url
    query = dict(parse_qsl(location.query, keep_blank_values=True))
    # mod/lti/auth.php's checks, one by one.
    assert query["scope"] == "openid"
    assert query["response_type"] == "id_token"
    assert query["client_id"] == moodle.client_id
    assert query["redirect_uri"] in moodle.redirect_uris
    assert query["login_hint"] == sent["login_hint"] == TEACHER.id  # compared with !==
    assert query["lti_message_hint"] == sent["lti_message_hint"]  # JSON, verbatim
    assert "launchid" in json.loads(query["lti_message_hint"])
    assert query["response_mode"] == "form_post"
    assert query.get("prompt", "none") == "none"
    assert query["nonce"]
    assert query["state"]
    # ...and the whole launch completes.
    form = authorize(moodle, browser, login)
    assert "id_token" in form.fields, form.fields
    assert_home(Launched(submit_form(browser, form), browser), "Teacher")


def test_moodle_tool_url_set_to_the_site_root_still_launches(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    # Admins often type the tool's base URL as "Tool URL"; Moodle sends it as
    # target_link_uri at login and in the id_token, and posts to the redirect URI.
    launched = moodle_launch(
        moodle, browser, MoodleLaunch(STUDENT, LEARNER), target_link_uri=moodle.tool_url
    )
    assert_home(launched, "Student")


def test_two_moodle_launches_in_one_browser_finish_in_any_order(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    # Moodle 4.x keys each launch by its launchid, so two tabs can launch at once.
    first, _ = start(moodle, browser, MoodleLaunch(STUDENT, LEARNER, instance_id="1"))
    second, _ = start(moodle, browser, MoodleLaunch(STUDENT, LEARNER, instance_id="2"))
    forms = [authorize(moodle, browser, first), authorize(moodle, browser, second)]
    for form in reversed(forms):
        assert_home(Launched(submit_form(browser, form), browser), "Student")


def test_moodle_refusing_the_login_is_shown_in_plain_words(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    # auth.php posts error=access_denied with the state when the Moodle session belongs to
    # someone else than login_hint (another user logged in, in another tab).
    launch = MoodleLaunch(STUDENT, LEARNER, session_user_id=TEACHER.id)
    launched = moodle_launch(moodle, browser, launch)
    assert_refused(launched, 400, "refused the login", "access_denied")


def test_moodle_launch_without_the_state_cookie_says_what_to_do(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    # Moodle offers no LTI platform storage (no lti_storage_target): a browser that blocks
    # Pathways' cookie in Moodle's iframe must get a plain explanation.
    login, _ = start(moodle, browser, MoodleLaunch(STUDENT, LEARNER))
    form = authorize(moodle, browser, login)
    browser.cookies.clear()
    assert_refused(Launched(submit_form(browser, form), browser), 400, "new window")


# === 4. deep linking from Moodle ============================================================


def tool_jwks(moodle: FakeMoodle, path: str = "/.well-known/jwks.json") -> dict[str, Any]:
    response = httpx.get(moodle.tool_url + path, timeout=30)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def moodle_reads_deep_link_response(
    moodle: FakeMoodle, token: str, *, moodle_now: float | None = None
) -> dict[str, Any]:
    """contentitem_return.php's lti_convert_from_jwt, with the tool's "Public keyset" URL:
    iss must be the client id, the header's kid must name a key of the tool's JWKS
    (jwks_helper::fix_jwks_alg throws without kid), php-jwt verifies RS256 and its time
    claims with leeway 0 at Moodle's clock. Returns the claims."""
    header = jwt.get_unverified_header(token)
    assert header.get("kid"), "Moodle: 'kid must be provided in JWT header'"
    assert header.get("alg") == "RS256"
    keys = {k["kid"]: k for k in tool_jwks(moodle)["keys"]}
    assert header["kid"] in keys, "the signing key is not in the tool's JWKS"
    jwk = keys[header["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        PyJWK(jwk).key,
        algorithms=[jwk.get("alg") or header["alg"]],
        options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
    )
    now = int(time.time() if moodle_now is None else moodle_now)
    # php-jwt JWT::decode, leeway 0.
    assert not ("nbf" in claims and claims["nbf"] > now), "Cannot handle token prior to nbf"
    assert not ("iat" in claims and claims["iat"] > now), "Cannot handle token prior to iat"
    assert not ("exp" in claims and now >= claims["exp"]), "Expired token"
    assert claims["iss"] == moodle.client_id  # lti_verify_jwt_signature: $consumerkey !== $key
    return claims


def moodle_form_config(item: dict[str, Any], *, accept_grades: bool = True) -> dict[str, Any]:
    """lti_convert_content_items + content_item_to_form (tool with acceptgrades=Delegate)."""
    config: dict[str, Any] = {"name": item.get("title") or "Pathways"}
    config["intro"] = item.get("text", "")
    if "url" in item:
        config["toolurl"] = item["url"]
    line_item = item.get("lineItem")
    config["acceptgrades"] = bool(accept_grades and isinstance(line_item, dict))
    if config["acceptgrades"]:
        config["grade_max"] = line_item.get("scoreMaximum", 100)  # type: ignore[union-attr]
        config["resourceid"] = line_item.get("resourceId") or ""  # type: ignore[union-attr]
        config["tag"] = line_item.get("tag") or ""  # type: ignore[union-attr]
    # "{$key}={$value}" lines: every value must be text for the next launch to carry it.
    config["custom"] = "\n".join(f"{k}={v}" for k, v in (item.get("custom") or {}).items())
    return config


def deep_link(
    moodle: FakeMoodle,
    browser: httpx.Client,
    *,
    user: MoodleUser = TEACHER,
    roles: list[str] | None = None,
    accept_multiple: Any = True,
) -> Launched:
    launch = MoodleLaunch(
        user, roles or EDITING_TEACHER, deep_linking=True, accept_multiple=accept_multiple
    )
    launched = moodle_launch(moodle, browser, launch)
    assert launched.response.status_code == 200, launched.text[:2000]
    assert "Add Pathways to your course" in launched.text
    return launched


def test_moodle_deep_link_request_shape_is_what_moodle_sends(moodle: FakeMoodle) -> None:
    claims = moodle.payload(MoodleLaunch(TEACHER, EDITING_TEACHER, deep_linking=True), "n", "t")
    settings = claims[DL + "deep_linking_settings"]
    assert CLAIM + "resource_link" not in claims
    assert "data" not in settings  # Moodle sends no data to echo
    assert "accept_lineitem" not in settings
    assert "?course=2&id=1&sesskey=" in settings["deep_link_return_url"]
    assert claims["exp"] - claims["iat"] == 60
    assert claims[CLAIM + "deployment_id"] == "1"


@pytest.mark.parametrize("accept_multiple", [True, "true"], ids=["moodle-4.1+", "moodle-4.0"])
def test_moodle_deep_linking_with_a_gradebook_column_returns_what_moodle_accepts(
    moodle: FakeMoodle, browser: httpx.Client, accept_multiple: Any, database_url: str
) -> None:
    deep_link(moodle, browser)  # Pathways records the course
    claims = moodle.payload(MoodleLaunch(TEACHER, EDITING_TEACHER, deep_linking=True), "n", "t")
    # A competency of each run's own: a column placed and not yet found in the LMS is not asked
    # of the LMS a second time.
    code = "LS1" if accept_multiple is True else "LS1-4.0"
    competency = add_competency(database_url, claims, code=code)
    launched = deep_link(moodle, browser, accept_multiple=accept_multiple)
    assert 'type="checkbox" name="item"' in launched.text
    back = submit_picks(launched, f"competency-{competency}")
    # The return URL with its query (course, id = type id, sesskey) exactly; the field JWT.
    assert back.method == "post"
    assert back.action == (
        f"{moodle.wwwroot}/mod/lti/contentitem_return.php?course=2&id=1&sesskey=Kx7Pq2LmZa"
    )
    assert set(back.fields) == {"JWT"}
    claims = moodle_reads_deep_link_response(moodle, back.fields["JWT"])
    # The spec's claims (Moodle reads message_type and version, and ignores the rest).
    assert claims[CLAIM + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[CLAIM + "version"] == "1.3.0"
    assert claims[CLAIM + "deployment_id"] == "1"
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert moodle.wwwroot in aud
    assert claims.get("nonce")
    assert DL + "data" not in claims  # nothing to echo: Moodle sent no data
    items = claims[DL + "content_items"]
    assert isinstance(items, list)
    assert len(items) == 1
    (item,) = items
    assert item["type"] == "ltiResourceLink"
    assert all(isinstance(v, str) for v in (item.get("custom") or {}).values())
    config = moodle_form_config(item)
    assert config["toolurl"] == moodle.tool_url + "/lti/launch"
    # Moodle sent the activity name "Pathways" as the title: the very title of Pathways' home
    # link, so possibly an earlier pick's left in the form. The activity takes the column's.
    assert config["name"] == item["title"]
    assert item["title"].endswith("\N{EM DASH} mastery column")
    # The grade item is the competency's mastery column, out of the gradebook's maximum.
    assert config["acceptgrades"]
    assert config["grade_max"] == 4
    assert config["resourceid"] == f"pathways-competency-{competency}"
    assert config["tag"] == "pathways-competency"
    assert f"pathways_item=competency-{competency}" in config["custom"].splitlines()


def test_moodle_deep_linking_of_the_home_sends_no_line_item(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    back = submit_picks(deep_link(moodle, browser))
    (item,) = moodle_reads_deep_link_response(moodle, back.fields["JWT"])[DL + "content_items"]
    assert "lineItem" not in item
    assert not moodle_form_config(item)["acceptgrades"]


@pytest.mark.parametrize("accept_multiple", [False, "false"], ids=["bool", "string"])
def test_moodle_deep_linking_single_choice_gives_radio_buttons_and_one_item(
    moodle: FakeMoodle, browser: httpx.Client, accept_multiple: Any
) -> None:
    launched = deep_link(moodle, browser, accept_multiple=accept_multiple)
    assert 'type="radio"' in launched.text
    form = picker_form(launched)
    fields = [*form.fields.items(), ("item", "home"), ("item", "home")]
    response = launched.client.post(
        form.action,
        content=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    (back,) = parse_forms(response.text, str(response.url))
    items = moodle_reads_deep_link_response(moodle, back.fields["JWT"])[DL + "content_items"]
    assert len(items) <= 1


def test_moodle_site_admin_can_deep_link(moodle: FakeMoodle, browser: httpx.Client) -> None:
    back = submit_picks(deep_link(moodle, browser, user=ADMIN, roles=SITE_ADMIN))
    moodle_reads_deep_link_response(moodle, back.fields["JWT"])


def test_moodle_student_deep_link_is_refused_clearly(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    launch = MoodleLaunch(STUDENT, LEARNER, deep_linking=True)
    assert_refused(moodle_launch(moodle, browser, launch), 403, "Only a teacher")


@pytest.mark.parametrize("path", ["/.well-known/jwks.json", "/lti/jwks"])
def test_tool_jwks_is_what_moodle_php_jwt_can_parse(moodle: FakeMoodle, path: str) -> None:
    # Moodle 4.0 (php-jwt 5) and 4.1+ (php-jwt 6: JWK::parseKeySet needs "alg" on the key,
    # 4.1+ patches it in from the JWT header only for the key named by kid).
    keys = tool_jwks(moodle, path)["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "RSA"
        assert key["alg"] == "RS256"
        assert key.get("use", "sig") == "sig"
        assert key["kid"]
        assert key["n"]
        assert key["e"]
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), "private key material"


def test_moodle_accepts_the_deep_link_response_when_its_clock_is_2_seconds_behind(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    launched = deep_link(moodle, browser)
    signed_after = time.time()  # Pathways signs after this; Moodle reads it at once
    back = submit_picks(launched)
    moodle_reads_deep_link_response(moodle, back.fields["JWT"], moodle_now=signed_after - 2)


# === 5. what else Moodle's source says ========================================================


def test_moodle_ags_claim_with_type_id_and_read_only_scopes_keeps_the_gradebook_pages_working(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    # "Use this service for grade sync only" (partial): lineitem.readonly, result.readonly,
    # score; line item URLs carry ?type_id=. The pages must render without calling Moodle.
    course = MoodleCourse("3", "CHEM", "Chemistry (Moodle)")
    launched = moodle_launch(moodle, browser, MoodleLaunch(TEACHER, EDITING_TEACHER, course=course))
    assert_home(launched, "Teacher", "Chemistry (Moodle)")
    token = LAUNCH_TOKEN.search(launched.text)
    assert token is not None
    for page in ("/grades/", "/grades/sync"):
        response = browser.get(moodle.tool_url + page, params={"lt": token.group(1)})
        assert response.status_code == 200, response.text[:2000]
        assert "Traceback" not in response.text


def test_moodle_line_item_score_url_keeps_type_id_in_the_query() -> None:
    # gradebookservices scores resource: /{context_id}/lineitems/{item_id}/lineitem/scores.
    line_item = "https://moodle.example/mod/lti/services.php/2/lineitems/7/lineitem?type_id=1"
    assert score_url(line_item) == (
        "https://moodle.example/mod/lti/services.php/2/lineitems/7/lineitem/scores?type_id=1"
    )


def test_moodle_launch_records_the_person_by_numeric_string_sub(
    moodle: FakeMoodle, browser: httpx.Client, database_url: str
) -> None:
    from lti_app.tool.models import Person

    assert_home(moodle_launch(moodle, browser, MoodleLaunch(STUDENT, LEARNER)), "Student")
    db = Database(database_url)
    with db.begin() as s:
        platform_id = s.scalar(
            select(Platform.id).where(
                Platform.issuer == moodle.wwwroot, Platform.client_id == moodle.client_id
            )
        )
        subs = set(s.scalars(select(Person.sub).where(Person.platform_id == platform_id)))
    db.dispose()
    assert STUDENT.id in subs


def test_moodle_can_embed_the_launch_page_in_its_iframe(
    moodle: FakeMoodle, browser: httpx.Client
) -> None:
    # Launch containers Embed / Embed without blocks put Pathways in an iframe on Moodle.
    launched = moodle_launch(moodle, browser, MoodleLaunch(STUDENT, LEARNER, launch_container=2))
    assert_home(launched, "Student")
    headers = launched.response.headers
    assert "x-frame-options" not in headers
    csp = headers.get("content-security-policy", "")
    ancestors = re.search(r"frame-ancestors([^;]*)", csp)
    if ancestors:
        sources = ancestors.group(1).split()
        origin = moodle.wwwroot.rsplit("/moodle", 1)[0]
        assert "*" in sources or origin in sources or "http:" in sources, csp


def moodle_token_php_accepts(
    moodle: FakeMoodle, assertion: str, *, moodle_now: float | None = None
) -> dict[str, Any]:
    """mod/lti/token.php: the tool is found by the assertion's `sub` (its client id) and the
    assertion verified by lti_verify_jwt_signature (keyset: kid needed; php-jwt, leeway 0)."""
    header = jwt.get_unverified_header(assertion)
    assert header.get("kid")
    assert header.get("alg") == "RS256"
    keys = {k["kid"]: k for k in tool_jwks(moodle)["keys"]}
    claims: dict[str, Any] = jwt.decode(
        assertion,
        PyJWK(keys[header["kid"]]).key,
        algorithms=["RS256"],
        options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == moodle.client_id
    now = int(time.time() if moodle_now is None else moodle_now)
    assert not ("iat" in claims and claims["iat"] > now), "Cannot handle token prior to iat"
    assert not ("exp" in claims and now >= claims["exp"]), "Expired token"
    return claims


def _client_assertion(moodle: FakeMoodle, tool_server: ToolServer, database_url: str) -> str:
    from lti_app.roster.jobs import service_tokens

    db = Database(database_url)
    with db.begin() as s:
        platform = s.scalars(
            select(Platform).where(
                Platform.issuer == moodle.wwwroot, Platform.client_id == moodle.client_id
            )
        ).one()
        s.expunge(platform)
    db.dispose()
    return service_tokens(tool_server.app).client_assertion(platform)


def test_client_assertion_for_moodle_token_php(
    moodle: FakeMoodle, tool_server: ToolServer, database_url: str
) -> None:
    claims = moodle_token_php_accepts(moodle, _client_assertion(moodle, tool_server, database_url))
    assert claims["aud"] == moodle.token_url


def test_moodle_token_php_accepts_the_client_assertion_when_its_clock_is_2_seconds_behind(
    moodle: FakeMoodle, tool_server: ToolServer, database_url: str
) -> None:
    signed_after = time.time()
    assertion = _client_assertion(moodle, tool_server, database_url)
    moodle_token_php_accepts(moodle, assertion, moodle_now=signed_after - 2)
