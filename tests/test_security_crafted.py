"""A school IT security review, by crafted HTTP requests against the running tool: CSRF on
every state-changing route, the in-frame launch token, cookies, response headers on every page
type, redirects and reflected input, file names and paths, forwarded headers, and the operator
sign-in. (Changing ids across students, courses and platforms: test_authorization_crafted.py.)
"""

from __future__ import annotations

import inspect
import logging
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter

from lti_app.admin import views as admin_views
from lti_app.demo.launches import LaunchTweaks
from lti_app.demo.server import RunningPlatform
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Ids
from tests.security_support import (
    CSRF_EXEMPT,
    OPERATOR_SECRET,
    ExtraServer,
    Frame,
    aged_launch_token,
    attribute,
    attributes,
    cache_forbids_storing,
    csrf_in,
    extra_server,
    frame_ancestors,
    frame_of,
    header_problems,
    launch_session_id,
    links_in,
    sample_path,
    set_cookies,
    state_changing_rules,
)

M = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
EVIL = "https://evil.example"
SCRIPT = "<script>alert(1)</script>"
BROWSER_NAVIGATION = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def actions(lms: RunningPlatform, tool_server: ToolServer) -> Iterator[LtiActions]:
    acts = LtiActions(lms, tool_server)
    yield acts
    acts.close()


@pytest.fixture(scope="module")
def teacher(actions: LtiActions, tool_server: ToolServer) -> Frame:
    return frame_of(tool_server, actions.launch("user-t01", context_id="course-bio9"))


@pytest.fixture(scope="module")
def student(actions: LtiActions, tool_server: ToolServer) -> Frame:
    return frame_of(tool_server, actions.launch("user-s01", context_id="course-bio9"))


def _add_failing_route(app: Flask) -> None:
    def boom() -> str:
        raise RuntimeError("probe: an unexpected error")

    app.add_url_rule("/__probe/boom", "probe_boom", boom)


@pytest.fixture(scope="module")
def operator(
    tool_server: ToolServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExtraServer]:
    """A second Pathways worker with an admin secret (and a route that fails, for the 500)."""
    with extra_server(
        tool_server.settings,
        tmp_path_factory.mktemp("operator"),
        _add_failing_route,
        admin_secret=OPERATOR_SECRET,
        secure_cookies=False,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def secure(
    tool_server: ToolServer, lms: RunningPlatform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExtraServer]:
    """Pathways as deployed: Secure cookies (the test servers turn them off for httpx)."""
    with extra_server(
        tool_server.settings,
        tmp_path_factory.mktemp("secure"),
        admin_secret=OPERATOR_SECRET,
        secure_cookies=True,
    ) as server:
        yield server


def _sign_in(
    server: ExtraServer, client: httpx.Client, secret: str, **headers: str
) -> httpx.Response:
    page = client.get(server.url + "/admin/login", headers=headers)
    return client.post(
        server.url + "/admin/login",
        data={"csrf_token": csrf_in(page.text), "admin_secret": secret},
        headers=headers,
    )


# --- CSRF and methods --------------------------------------------------------------------------


def _answers_get(adapter: MapAdapter, path: str) -> bool:
    """Whether another rule on the same path takes GET (/lti/register: the form's page)."""
    try:
        adapter.match(path, method="GET")
    except HTTPException:
        return False
    return True


def _csrf_probes(tool_server: ToolServer) -> list[tuple[str, str, str]]:
    app = tool_server.app
    return [
        (method, rule.endpoint, sample_path(app, rule))
        for method, rule in state_changing_rules(app)
        if rule.endpoint not in CSRF_EXEMPT
    ]


def test_only_the_lms_posts_are_exempt_from_csrf(tool_server: ToolServer) -> None:
    csrf = tool_server.app.extensions["csrf"]
    exempt = {view.rsplit(".", 1)[-1] for view in csrf._exempt_views}
    assert exempt == {"login", "launch"}, exempt
    assert not csrf._exempt_blueprints


def test_every_state_changing_route_refuses_a_request_without_a_csrf_token(
    tool_server: ToolServer, teacher: Frame
) -> None:
    probes = _csrf_probes(tool_server)
    assert len(probes) > 35, probes  # the enumeration found the app's forms
    accepted = []
    for method, endpoint, path in probes:
        response = teacher.client.request(
            method, tool_server.url + path, data={"lt": teacher.token, "name": "csrf-probe"}
        )
        if response.status_code != 400:
            accepted.append((endpoint, path, response.status_code))
    assert accepted == []


def test_every_state_changing_route_refuses_the_csrf_token_of_another_launch(
    tool_server: ToolServer, teacher: Frame, student: Frame
) -> None:
    accepted = []
    for method, endpoint, path in _csrf_probes(tool_server):
        # The teacher's launch with the student's (valid, but not this launch's) CSRF token,
        # and the other way round.
        for frame, other in ((teacher, student), (student, teacher)):
            response = frame.client.request(
                method,
                tool_server.url + path,
                data={"lt": frame.token, "csrf_token": other.csrf, "name": "csrf-probe"},
            )
            if response.status_code != 400:
                accepted.append((endpoint, path, response.status_code))
    assert accepted == []


def test_a_post_refused_for_its_csrf_token_changes_nothing(
    tool_server: ToolServer, teacher: Frame, student: Frame
) -> None:
    title = f"Forged competency {uuid.uuid4().hex[:8]}"
    refused = teacher.post(
        "/competencies/",
        {"csrf_token": student.csrf, "name": title, "title": title, "short_name": title},
    )
    assert refused.status_code == 400
    assert title not in teacher.get("/competencies/").text


def test_a_refused_form_says_in_plain_words_what_to_do(teacher: Frame, student: Frame) -> None:
    refused = teacher.post("/competencies/", {"csrf_token": student.csrf, "title": "x"})
    assert refused.status_code == 400
    assert "Reload the page and send the form again." in refused.text
    assert "CSRF" not in refused.text


@pytest.mark.parametrize(
    "incoming",
    ["abc\nFAKE LOG LINE", "abc\rxyz", "a b", "x" * 65, "<b>", "abc\x00"],
    ids=["newline", "cr", "space", "long", "markup", "nul"],
)
def test_a_request_id_from_outside_cannot_write_log_lines(
    tool_server: ToolServer, incoming: str
) -> None:
    """A proxy's request id is kept for the logs only when it looks like one: otherwise a
    client could start a log line of its own with a line break."""
    from lti_app.errors import request_id

    # As a WSGI server hands it over (HTTP clients refuse to send some of these at all).
    with tool_server.app.test_request_context(environ_overrides={"HTTP_X_REQUEST_ID": incoming}):
        assert re.fullmatch(r"[0-9a-f]{16}", request_id())
    with tool_server.app.test_request_context(
        environ_overrides={"HTTP_X_REQUEST_ID": "lb-7f3a.2:9"}
    ):
        assert request_id() == "lb-7f3a.2:9"


def test_a_get_to_every_post_only_route_is_405(tool_server: ToolServer, teacher: Frame) -> None:
    app = tool_server.app
    adapter = app.url_map.bind("localhost")
    wrong = []
    for rule in app.url_map.iter_rules():
        methods = rule.methods or set()
        path = sample_path(app, rule)
        if "POST" in methods and "GET" not in methods and not _answers_get(adapter, path):
            response = teacher.get(path)
            if response.status_code != 405:
                wrong.append((rule.endpoint, response.status_code))
    assert wrong == []


# --- the in-frame launch token ----------------------------------------------------------------


def test_a_launch_token_is_refused_once_it_has_expired(
    tool_server: ToolServer, student: Frame
) -> None:
    settings = tool_server.settings
    sid = launch_session_id(settings.secret_key, student.token)
    fresh = aged_launch_token(settings.secret_key, sid, settings.launch_token_ttl - 60)
    stale = aged_launch_token(settings.secret_key, sid, settings.launch_token_ttl + 5)
    assert (
        student.client.get(tool_server.url + "/progress/", params={"lt": fresh}).status_code == 200
    )
    for path in ("/progress/", "/home", "/reports/"):
        answer = student.client.get(tool_server.url + path, params={"lt": stale})
        assert answer.status_code == 401, (path, answer.status_code)
    posted = student.client.post(
        tool_server.url + "/reports/reflection",
        data={"lt": stale, "csrf_token": csrf_for_stale(tool_server, stale), "text": "x"},
    )
    assert posted.status_code == 401


def csrf_for_stale(tool_server: ToolServer, token: str) -> str:
    from tests.security_support import csrf_for

    return csrf_for(tool_server.app, token)


def test_a_launch_token_signed_by_another_pathways_install_is_refused(
    tool_server: ToolServer, student: Frame
) -> None:
    sid = launch_session_id(tool_server.settings.secret_key, student.token)
    foreign = aged_launch_token("another-schools-pathways-secret-" + "z" * 16, sid, 0)
    answer = student.client.get(tool_server.url + "/progress/", params={"lt": foreign})
    assert answer.status_code == 401


def test_the_launch_token_is_never_sent_to_another_site(
    tool_server: ToolServer, actions: LtiActions, teacher: Frame, student: Frame
) -> None:
    # The LMS's return URL is another site: whatever Pathways does with it, no token goes along.
    back = EVIL + "/courses/1/modules?from=pathways"
    launched = actions.launch("user-s02", context_id="course-bio9", return_url=back)
    own = frame_of(tool_server, launched)
    pages = [
        own.page,
        own.get("/progress/"),
        own.get("/pathways/"),
        teacher.page,
        teacher.get("/insights/"),
        teacher.get("/course/"),
        student.get("/profile/"),
    ]
    tool_origin = urlsplit(tool_server.url).netloc
    for page in pages:
        assert page.status_code == 200, page.url
        assert header_problems(page) == [], page.url
        for link in links_in(page.text):
            parts = urlsplit(link)
            if parts.netloc and parts.netloc != tool_origin:
                assert "lt=" not in link, link
                assert own.token not in link, link
                assert teacher.token not in link, link
            assert not link.lower().startswith("javascript:"), link


def test_the_launch_token_is_not_written_to_logs(
    tool_server: ToolServer, actions: LtiActions
) -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep(level=logging.DEBUG)
    logger = logging.getLogger("lti_app")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        own = frame_of(tool_server, actions.launch("user-s02", context_id="course-bio9"))
        own.get("/progress/")
        own.post("/reports/reflection", {"csrf_token": "wrong"})
        own.get("/mastery/scale")  # refused: a student
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert records, "nothing was logged at DEBUG"
    leaked = [r for r in records if own.token in r or own.csrf in r or "id_token" in r.lower()]
    assert leaked == []
    # The production access log (gunicorn) logs the path without its query string (lt=...).
    conf = (Path(__file__).resolve().parents[1] / "config" / "gunicorn.conf.py").read_text()
    fmt = next(line for line in conf.splitlines() if line.startswith("access_log_format"))
    assert "%(q)s" not in fmt
    assert "%(r)s" not in fmt
    # No request header (a Referer carries the LMS page's query); only our own response header.
    assert re.findall(r"%\(\{([^}]*)\}(.)\)s", fmt) == [("x-request-id", "o")]


def test_a_link_shared_with_a_classmate_does_not_open_as_the_student(
    tool_server: ToolServer, student: Frame
) -> None:
    """A student copies a link out of the frame (its lt= token) into a chat, or into a forum
    post of an LMS on the school's own domain (moodle.school.edu beside pathways.school.edu);
    the classmate opens it in their own browser. Browsers mark a pasted address as
    Sec-Fetch-Site none, a link clicked in a chat as cross-site, in that LMS's page as
    same-site; links inside the frame are same-origin. The refusal says what to do."""
    name = "whoami"
    link = f"{tool_server.url}/progress/?lt={student.token}"
    in_frame = student.client.get(
        link, headers={"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "iframe"}
    )
    assert in_frame.status_code == 200
    assert name in in_frame.text
    for site in ("none", "cross-site", "same-site", "SAME-SITE", ""):
        with httpx.Client(timeout=30) as classmate:
            opened = classmate.get(link, headers={"Sec-Fetch-Site": site, **BROWSER_NAVIGATION})
        assert opened.status_code == 401, (site, opened.status_code)
        assert name not in opened.text
        assert "does not open from a copied link" in opened.text, site
        assert "Open Pathways from your course in the LMS" in opened.text, site


# --- cookies -----------------------------------------------------------------------------------


def test_cookies_are_secure_samesite_none_partitioned_and_httponly(
    secure: ExtraServer, actions: LtiActions
) -> None:
    with httpx.Client(timeout=30) as browser:
        page = browser.get(secure.url + "/admin/login")
        session_cookie = set_cookies(page)["pathways_session"]
        spec = actions.spec(
            "user-s01", context_id="course-bio9", target_link_uri=secure.url + "/lti/launch"
        )
        login_url = actions.platform.login_url(spec).replace(actions.tool.url, secure.url)
        login = browser.get(login_url)
    assert login.status_code in {200, 302}, login.text[:500]
    [state_cookie] = [v for k, v in set_cookies(login).items() if k != "pathways_session"]
    for cookie in (session_cookie, state_cookie):
        flags = attributes(cookie)
        assert {"secure", "httponly", "partitioned"} <= flags, cookie
        assert attribute(cookie, "samesite").lower() == "none", cookie
    assert attribute(state_cookie, "path") == "/lti/"
    assert int(attribute(state_cookie, "max-age")) <= 600
    # A browser-session cookie, or one that does not outlive the operator's 8 hours.
    signed_in = _sign_in_by_hand(secure, session_cookie)
    assert signed_in.status_code == 302
    operator_cookie = set_cookies(signed_in)["pathways_session"]
    assert (
        "expires" not in attributes(operator_cookie)
        or int(attribute(operator_cookie, "max-age") or 0) <= admin_views.OPERATOR_SESSION_SECONDS
    )


def _sign_in_by_hand(server: ExtraServer, set_cookie: str) -> httpx.Response:
    """httpx keeps Secure cookies off plain http, so carry the cookie by hand."""
    cookie = set_cookie.split(";", 1)[0]
    with httpx.Client(timeout=30) as raw:
        page = raw.get(server.url + "/admin/login", headers={"Cookie": cookie})
        return raw.post(
            server.url + "/admin/login",
            data={"csrf_token": csrf_in(page.text), "admin_secret": OPERATOR_SECRET},
            headers={"Cookie": cookie},
        )


def test_a_session_cookie_planted_before_a_launch_does_not_become_the_student(
    tool_server: ToolServer, actions: LtiActions
) -> None:
    app = tool_server.app
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    planted = serializer.dumps({"csrf_token": "f" * 40, "planted": True})
    victim = actions.browser()
    victim.cookies.set("pathways_session", planted)
    own = frame_of(tool_server, actions.launch("user-s02", context_id="course-bio9", client=victim))
    assert own.page.status_code == 200
    with httpx.Client(timeout=30, cookies={"pathways_session": planted}) as attacker:
        assert attacker.get(tool_server.url + "/home").status_code == 401
        assert attacker.get(tool_server.url + "/progress/").status_code == 401
        after = victim.cookies.get("pathways_session")
        if after:
            attacker.cookies.set("pathways_session", after)
            # Even the victim's cookie after the launch names no one without the launch token.
            assert attacker.get(tool_server.url + "/progress/").status_code == 401


def test_a_session_cookie_planted_before_operator_sign_in_is_not_signed_in(
    operator: ExtraServer,
) -> None:
    with httpx.Client(timeout=30) as attacker:
        attacker.get(operator.url + "/admin/login")
        planted = next(c.value for c in attacker.cookies.jar if c.name == "pathways_session")
        assert planted
        with httpx.Client(timeout=30, cookies={"pathways_session": planted}) as victim:
            signed_in = _sign_in(operator, victim, OPERATOR_SECRET)
            assert signed_in.status_code == 302
            issued = set_cookies(signed_in)["pathways_session"].split(";", 1)[0]
            assert issued.split("=", 1)[1] != planted
        with httpx.Client(timeout=30) as after:
            console_of_victim = after.get(operator.url + "/admin/", headers={"Cookie": issued})
            assert console_of_victim.status_code == 200
        console = attacker.get(operator.url + "/admin/")
        assert console.status_code == 302
        assert console.headers["location"].endswith("/admin/login")


# --- response headers -------------------------------------------------------------------------


def test_in_frame_pages_and_downloads_have_safe_headers_and_are_not_stored(
    tool_server: ToolServer, teacher: Frame, student: Frame, ids: Ids
) -> None:
    sid = ids.person("user-s01")
    pages = {
        "teacher home": teacher.page,
        "student home": student.page,
        "dashboard": teacher.get("/insights/"),
        "class progress": teacher.get("/insights/progress"),
        "course overview": teacher.get("/course/"),
        "student page": teacher.get(f"/course/students/{sid}"),
        "family report": teacher.get(f"/reports/students/{sid}"),
        "own report": student.get(f"/reports/students/{sid}"),
        "own progress": student.get("/progress/"),
        "own profile": student.get("/profile/"),
        "dashboard CSV": teacher.get("/insights/dashboard.csv"),
        "evidence CSV": teacher.get("/insights/evidence.csv"),
        "framework CSV": teacher.get("/competencies/export.csv"),
        "report PDF": teacher.get(f"/reports/students/{sid}/report.pdf"),
        "class ZIP": teacher.get("/reports/class.zip"),
    }
    problems = {}
    for name, page in pages.items():
        assert page.status_code == 200, (name, page.status_code)
        found = header_problems(page)
        if not cache_forbids_storing(page):
            found.append(f"Cache-Control {page.headers.get('Cache-Control')!r} lets it be stored")
        if found:
            problems[name] = found
    assert problems == {}
    assert pages["report PDF"].headers["Content-Type"] == "application/pdf"
    assert pages["class ZIP"].headers["Content-Type"].startswith("application/zip")


def test_error_pages_have_safe_headers(
    tool_server: ToolServer, operator: ExtraServer, teacher: Frame, student: Frame
) -> None:
    base = tool_server.url
    with httpx.Client(timeout=30) as anonymous:
        errors = {
            400: student.post("/reports/reflection", {"text": "no csrf"}),
            401: anonymous.get(base + "/home"),
            403: student.get("/insights/"),
            404: anonymous.get(base + "/no-such-page"),
            405: anonymous.get(base + "/lti/launch"),
            413: teacher.post(
                "/competencies/import",
                {"csrf_token": teacher.csrf},
                files={"file": ("big.csv", b"x" * (9 * 1024 * 1024), "text/csv")},
            ),
            500: anonymous.get(operator.url + "/__probe/boom"),
        }
    problems = {}
    for status, page in errors.items():
        assert page.status_code == status, (status, page.status_code, page.text[:300])
        assert page.headers["Content-Type"].startswith("text/html")
        found = header_problems(page)
        if found:
            problems[status] = found
    assert problems == {}
    assert "RuntimeError" not in errors[500].text
    assert "Traceback" not in errors[500].text


def test_json_documents_have_safe_headers(tool_server: ToolServer) -> None:
    with httpx.Client(timeout=30) as anonymous:
        for path in ("/.well-known/jwks.json", "/lti/jwks", "/lti/canvas.json"):
            page = anonymous.get(tool_server.url + path)
            assert page.status_code == 200
            assert page.headers["Content-Type"].startswith("application/json"), path
            assert page.headers.get("X-Content-Type-Options") == "nosniff", path
            assert "private" not in page.text.lower() or path == "/lti/canvas.json"
            for key in page.json().get("keys", []):
                assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), "private key parts"


def test_operator_pages_cannot_be_framed_by_anyone(operator: ExtraServer) -> None:
    with httpx.Client(timeout=30) as browser:
        login_page = browser.get(operator.url + "/admin/login")
        assert _sign_in(operator, browser, OPERATOR_SECRET).status_code == 302
        console = browser.get(operator.url + "/admin/")
        assert console.status_code == 200
        # A forged launch token does not make the operator's pages framable either.
        forged = browser.get(operator.url + "/admin/login", params={"lt": "x"})
    for page in (login_page, console, forged):
        ancestors = frame_ancestors(page)
        denied = ancestors == "'none'" or page.headers.get("X-Frame-Options", "") == "DENY"
        assert denied, (page.url, ancestors)
        assert "*" not in ancestors, (page.url, ancestors)


def test_in_frame_pages_may_still_be_framed_by_the_lms(teacher: Frame, student: Frame) -> None:
    for page in (teacher.page, student.get("/progress/"), teacher.get("/insights/")):
        assert frame_ancestors(page) not in {"", "'none'", "'self'"}
        assert "X-Frame-Options" not in page.headers


# --- redirects, reflection, file names and paths ----------------------------------------------


def _no_evil_location(response: httpx.Response) -> None:
    location = response.headers.get("location", "")
    assert "evil.example" not in location, location
    assert not location.startswith("//"), location


def test_no_parameter_chooses_where_a_redirect_goes(
    operator: ExtraServer, tool_server: ToolServer, actions: LtiActions, teacher: Frame
) -> None:
    evil_params = {"next": EVIL, "return_to": EVIL, "redirect": "//evil.example", "url": EVIL}
    with httpx.Client(timeout=30) as browser:
        _no_evil_location(browser.get(operator.url + "/admin/", params=evil_params))
        page = browser.get(operator.url + "/admin/login", params=evil_params)
        signed_in = browser.post(
            operator.url + "/admin/login",
            params=evil_params,
            data={"csrf_token": csrf_in(page.text), "admin_secret": OPERATOR_SECRET, **evil_params},
        )
        assert signed_in.status_code == 302
        _no_evil_location(signed_in)
        logout = browser.post(
            operator.url + "/admin/logout",
            params=evil_params,
            data={"csrf_token": csrf_in(page.text), **evil_params},
        )
        _no_evil_location(logout)
        # OIDC login: a target_link_uri on another site is refused, not followed.
        spec = actions.spec("user-s01", target_link_uri=EVIL + "/lti/launch")
        login = browser.get(actions.platform.login_url(spec))
        assert login.status_code in {400, 403}, login.status_code
        _no_evil_location(login)
    # A teacher's form that redirects back keeps the redirect on Pathways.
    saved = teacher.post(
        "/mastery/scale", {"csrf_token": teacher.csrf, **evil_params}, follow_redirects=False
    )
    _no_evil_location(saved)


def test_input_is_not_reflected_unescaped_in_error_pages(tool_server: ToolServer) -> None:
    base = tool_server.url
    with httpx.Client(timeout=30) as anonymous:
        pages = [
            anonymous.post(
                base + "/lti/launch",
                data={"error": SCRIPT, "error_description": '"><img src=x onerror=alert(1)>'},
            ),
            anonymous.get(
                base + "/lti/register", params={"openid_configuration": EVIL + "/" + SCRIPT}
            ),
            anonymous.get(
                base + "/lti/register", params={"openid_configuration": "javascript:" + SCRIPT}
            ),
            anonymous.get(base + "/" + SCRIPT),
            anonymous.get(base + "/home", params={"lt": SCRIPT}),
            anonymous.get(base + "/home", headers={"X-Request-Id": SCRIPT}),
            anonymous.get(base + "/lti/login", params={"iss": SCRIPT, "login_hint": SCRIPT}),
        ]
    for page in pages:
        # 502: the registration page could not reach the (made-up) LMS it was given.
        assert 400 <= page.status_code < 500 or page.status_code == 502, page.url
        assert SCRIPT not in page.text, page.url
        assert "<img src=x" not in page.text, page.url
        headers = {k: v for k, v in page.headers.items() if k.lower() != "x-request-id"}
        assert SCRIPT not in "".join(headers.values())


def test_content_disposition_cannot_be_injected_through_a_student_name(
    tool_server: ToolServer, actions: LtiActions, teacher: Frame, ids: Ids
) -> None:
    evil = 'Zoë"; filename="evil.exe"\r\nSet-Cookie: pwn=1; x=\\..\\..\\'
    tweaks = LaunchTweaks(claims={"name": evil, "given_name": evil, "family_name": "Ng"})
    launched = actions.launch(
        "user-s27", context_id="course-bio9", roles=[M + "Learner"], tweaks=tweaks
    )
    assert launched.response.status_code == 200, launched.text[:500]
    try:
        pid = ids.person("user-s27")
        for lang in ("en", "../../../etc/passwd", "es\r\nX-Evil: 1"):
            pdf = teacher.get(f"/reports/students/{pid}/report.pdf", lang=lang)
            assert pdf.status_code == 200
            disposition = pdf.headers["Content-Disposition"]
            assert "pwn" not in "".join(pdf.headers.keys()).lower()
            assert "set-cookie" not in {k.lower() for k in pdf.headers}
            assert "\r" not in disposition
            assert "\n" not in disposition
            assert disposition.count("filename=") == 1
            assert disposition.count("filename*=") == 1
            plain = disposition.split('filename="', 1)[1].split('"', 1)[0]
            assert plain.endswith(".pdf")
            assert "/" not in plain
            assert "\\" not in plain
            assert ".." not in plain
            assert '"' not in plain
            assert "X-Evil" not in pdf.headers
    finally:
        actions.launch("user-s27", context_id="course-bio9", roles=[M + "Learner"])


def test_file_like_parameters_do_not_reach_other_files(tool_server: ToolServer) -> None:
    base = tool_server.url
    with httpx.Client(timeout=30) as anonymous:
        for path in (
            "/static/..%2f..%2fsettings.py",
            "/static/%2e%2e/%2e%2e/pyproject.toml",
            "/static/css/..%2f..%2f__init__.py",
            "/static/%2fetc%2fpasswd",
            "/static/..%5c..%5csettings.py",
        ):
            page = anonymous.get(base + path, follow_redirects=True)
            assert page.status_code == 404, (path, page.status_code)
            assert page.url.host == "127.0.0.1"
            assert "SECRET" not in page.text
            assert "root:" not in page.text


def test_a_forged_forwarded_host_from_a_peer_that_is_not_the_proxy_changes_no_url(
    tool_server: ToolServer, actions: LtiActions
) -> None:
    """Pathways answering directly (no proxy in front, or a client going around it): a
    forged X-Forwarded-Host must not name the tool's addresses in what the LMS is told."""
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    # Loopback but not 127.0.0.1: a peer other than the configured proxy.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(timeout=30, transport=transport) as stranger:
        canvas = stranger.get(tool_server.url + "/lti/canvas.json", headers=forged)
        about = stranger.get(tool_server.url + "/lti/register", headers=forged)
        login = stranger.get(actions.platform.login_url(actions.spec("user-s01")), headers=forged)
    assert canvas.status_code == 200
    assert about.status_code == 200
    assert "evil.example" not in canvas.text
    assert "evil.example" not in about.text
    assert "evil.example" not in login.headers.get("location", "") + login.text


# --- operator sign-in ----------------------------------------------------------------------------


def test_the_operator_secret_is_compared_in_constant_time() -> None:
    source = inspect.getsource(admin_views.login)
    assert "secret_matches(" in source  # equal-length digests (admin.services)
    assert "== secret" not in source
    assert "secret ==" not in source


def test_repeated_wrong_operator_secrets_lock_out_that_address(operator: ExtraServer) -> None:
    """An IT department expects a throttle on a shared secret: after 10 wrong tries from one
    address in 15 minutes that address is refused (429, Retry-After), even with the right
    secret, while the operator elsewhere can still sign in."""
    guesser = {"X-Forwarded-For": f"198.51.100.{uuid.uuid4().int % 250 + 1}"}
    elsewhere = {"X-Forwarded-For": f"203.0.113.{uuid.uuid4().int % 250 + 1}"}
    with httpx.Client(timeout=30) as browser:
        statuses = [
            _sign_in(operator, browser, f"guess-{n}", **guesser).status_code for n in range(10)
        ]
        assert set(statuses) <= {403, 429}
        locked = _sign_in(operator, browser, OPERATOR_SECRET, **guesser)
        assert locked.status_code == 429, locked.status_code
        assert int(locked.headers.get("Retry-After", "0")) > 0
        assert browser.get(operator.url + "/admin/", headers=guesser).status_code == 302
    with httpx.Client(timeout=30) as operator_browser:
        assert _sign_in(operator, operator_browser, OPERATOR_SECRET, **elsewhere).status_code == 302


def test_an_operator_session_ends_after_its_lifetime(operator: ExtraServer) -> None:
    app = operator.app
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    with app.test_request_context():
        fingerprint = admin_views._secret_fingerprint(OPERATOR_SECRET)

    def cookie(started: float) -> str:
        return str(
            serializer.dumps(
                {
                    admin_views.OPERATOR_KEY: int(started),
                    admin_views.OPERATOR_FINGERPRINT_KEY: fingerprint,
                }
            )
        )

    now = time.time()
    for started, expected in (
        (now - 60, 200),
        (now - admin_views.OPERATOR_SESSION_SECONDS - 60, 302),
        (now + 3600, 302),  # a start time in the future is no way round the limit
    ):
        with httpx.Client(timeout=30, cookies={"pathways_session": cookie(started)}) as browser:
            assert browser.get(operator.url + "/admin/").status_code == expected
