"""Deep-linking probes written from the LTI Deep Linking 2.0 specification and from what Canvas and
Moodle send and accept, independently of the other deep-linking tests.

Sources (what each probe leans on):
- IMS LTI Deep Linking 2.0 (https://www.imsglobal.org/spec/lti-dl/v2p0): deep_linking_settings
  (`accept_types`, `accept_multiple` optional with no stated default, `data` to be returned
  unchanged when sent), the LtiDeepLinkingResponse claims (iss = client_id, aud = platform
  issuer, nonce, iat/exp, deployment_id, message_type, version, content_items, msg/errormsg).
- Canvas, instructure/canvas-lms:
  lib/lti/messages/deep_linking_request.rb (DEEP_LINKING_DETAILS: per-placement accept_types,
  accept_multiple false for assignment_selection, conference_selection takes only link/html,
  migration_selection only file; no `data`, the return URL carries its own query string);
  app/controllers/lti/ims/concerns/deep_linking_services.rb (DeepLinkingJwt: key by kid from the
  developer key's JWKS, nonce used as jti, iss required);
  lib/canvas/security/jwt_validator.rb (exp in the future, iat at most 5 minutes old and not
  more than 30 s in the future); app/controllers/lti/ims/deep_linking_controller.rb and
  concerns/deep_linking_modules.rb (an empty content_items list is a clean no-op; lineItem needs
  a scoreMaximum; resourceId/tag go onto the assignment's line item).
- Moodle, moodle/moodle: mod/lti/contentitem.php + lti_build_content_item_selection_request
  (accept_types ltiResourceLink only, accept_multiple "true"/"false" strings before 4.1, title and
  text, no data, return URL /mod/lti/contentitem_return.php?course=..&id=..&sesskey=..);
  mod/lti/contentitem_return.php and lti_tool_configuration_from_content_item (an empty @graph
  is a cancel, custom values are written as "key=value" lines: they must be strings).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from lti_app.db import Database
from lti_app.demo.browser import AUTO_POST_FORM_ID, HtmlForm, parse_forms
from lti_app.demo.launches import DELETE, DL_SETTINGS, LaunchTweaks, MessageType
from lti_app.demo.server import RunningPlatform
from lti_app.launch_tokens import LAUNCH_TOKEN_FIELD
from lti_app.tool.keys import KeyRing
from tests.conftest import Launched, LtiActions, ToolServer

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
RESOURCE_LINK = CLAIM + "resource_link"
ITEMS = DL + "content_items"
DATA = DL + "data"
TEACHER, SECOND_TEACHER, STUDENT = "user-t01", "user-t02", "user-s02"
DL_RETURN = "/deep_link_return"
MAX_TOKEN_AGE = 300
"""Canvas refuses a deep-linking response whose iat is more than 5 minutes old."""


@pytest.fixture(autouse=True, scope="module")
def _quiet_database(lms: RunningPlatform, tool_server: ToolServer) -> None:
    """Settle what the first launches start before the probes run: the tool's first signing
    key, and the background roster sync a teacher's first launch in a course begins (which once
    stalled a deep-linking answer 30 s on SQLite: tests/tool/test_keys.py keeps that fixed)."""
    from lti_app.roster import jobs

    assert httpx.get(tool_server.url + "/.well-known/jwks.json", timeout=30).status_code == 200
    actions = LtiActions(lms, tool_server)
    try:
        for user, course in ((TEACHER, "course-bio9"), (SECOND_TEACHER, "course-chem-club")):
            assert actions.launch(user, context_id=course).response.status_code == 200
    finally:
        actions.close()
    deadline = time.monotonic() + 60
    while jobs._running and time.monotonic() < deadline:
        time.sleep(0.05)


# --- driving the picker ------------------------------------------------------------------------


def settings_claim(lti: LtiActions, hint: str, **fields: Any) -> dict[str, Any]:
    """Deep-linking settings as Canvas's link_selection placement sends them, plus `data` (the
    demo LMS finds its launch by it); a field set to DELETE is left out."""
    claim: dict[str, Any] = {
        "deep_link_return_url": lti.platform.url(DL_RETURN),
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe", "window"],
        "accept_media_types": "application/vnd.ims.lti.v1.ltilink",
        "accept_multiple": True,
        "auto_create": False,
        "data": hint,
    }
    for name, value in fields.items():
        if value is DELETE:
            claim.pop(name, None)
        else:
            claim[name] = value
    return claim


def open_picker(
    lti: LtiActions,
    user: str = TEACHER,
    *,
    context_id: str = "course-bio9",
    extra_claims: dict[str, Any] | None = None,
    **settings: Any,
) -> Launched:
    """A deep-linking launch from the demo LMS with these settings (and top-level claims)."""
    spec = lti.spec(user, context_id=context_id, message_type=MessageType.DEEP_LINKING)
    claims = {DL_SETTINGS: settings_claim(lti, spec.hint, **settings), **(extra_claims or {})}
    spec.tweaks = LaunchTweaks(claims=claims)
    return lti.launch_spec(spec)


def picker_form(launched: Launched) -> HtmlForm:
    assert launched.response.status_code == 200, launched.text[:2000]
    forms = [
        f
        for f in parse_forms(launched.text, str(launched.response.url))
        if f.action.endswith("/lti/deep-link")
    ]
    assert forms, launched.text[:2000]
    return forms[0]


def post_picks(
    launched: Launched,
    items: list[str],
    *,
    form: HtmlForm | None = None,
    **extra: str,
) -> httpx.Response:
    """Submit the picker as a browser would, with these item keys ticked (in this order)."""
    return submit_picks(launched.client, form or picker_form(launched), items, **extra)


def submit_picks(
    client: httpx.Client, form: HtmlForm, items: list[str], **extra: str
) -> httpx.Response:
    data: dict[str, Any] = {
        **extra,
        "csrf_token": form.fields["csrf_token"],
        LAUNCH_TOKEN_FIELD: form.fields[LAUNCH_TOKEN_FIELD],
        "item": items,
    }
    return client.post(form.action, data=data)


def return_form(page: httpx.Response) -> HtmlForm:
    """The auto-post form that carries the signed response back to the LMS."""
    assert page.status_code == 200, page.text[:2000]
    forms = [f for f in parse_forms(page.text, str(page.url)) if "JWT" in f.fields]
    assert len(forms) == 1, page.text[:2000]
    return forms[0]


def claims_of(form: HtmlForm) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(form.fields["JWT"], options={"verify_signature": False})
    return claims


def no_response_sent(page: httpx.Response) -> bool:
    return not any("JWT" in f.fields for f in parse_forms(page.text, str(page.url)))


PathwayMaker = Callable[..., int]


@pytest.fixture
def add_pathway(lti: LtiActions, db: Database) -> Iterator[PathwayMaker]:
    """Make pathways in this LMS's courses (committed, so the running tool sees them); they are
    deleted after the test, so other tests' course pages do not list them."""
    from lti_app.pathways import services as pathways

    made: list[tuple[int, int]] = []

    def make(title: str, context_id: str = "course-bio9") -> int:
        with db.begin() as s:
            course = lti.course_id(s, context_id)
            pathway_id = pathways.create_pathway(s, context_id=course, title=title).id
        made.append((course, pathway_id))
        return pathway_id

    yield make
    with db.begin() as s:
        for course, pathway_id in made:
            pathways.delete_pathway(s, context_id=course, pathway_id=pathway_id)


CompetencyMaker = Callable[..., int]


@pytest.fixture
def add_competency(lti: LtiActions, db: Database) -> Iterator[CompetencyMaker]:
    """Make competencies (committed) whose mastery columns the picker offers; deleted after
    the test with their gradebook rows, so other tests' course pages do not list them."""
    from lti_app.competencies.models import Competency
    from lti_app.competencies.services import create_competency

    made: list[int] = []

    def make(code: str, title: str, context_id: str = "course-bio9") -> int:
        with db.begin() as s:
            course = lti.course_id(s, context_id)
            competency_id = create_competency(s, context_id=course, code=code, title=title).id
        made.append(competency_id)
        return competency_id

    yield make
    with db.begin() as s:
        for competency_id in made:
            competency = s.get(Competency, competency_id)
            if competency is not None:
                s.delete(competency)  # its line item and outbox rows go with it (cascade)


def launch_id_of(lti: LtiActions, token: str) -> str:
    serializer = URLSafeTimedSerializer(lti.tool.settings.secret_key, salt="pathways-launch")
    launch_id: str = serializer.loads(token)
    return launch_id


def csrf_for(lti: LtiActions, launch_id: str) -> str:
    """The CSRF token a page of this launch would carry (Pathways derives it from the launch)."""
    from flask import session
    from flask_wtf.csrf import generate_csrf

    from lti_app.csrf_binding import _csrf_secret

    with lti.tool.app.test_request_context():
        session["csrf_token"] = _csrf_secret(launch_id)
        token: str = generate_csrf()
        return token


# === 1. the response the LMS verifies ==========================================================


def test_response_is_signed_with_a_published_key_and_has_every_claim_canvas_checks(
    lti: LtiActions, add_competency: CompetencyMaker
) -> None:
    competency = add_competency("SIG1", "Signs what it sends")
    launched = open_picker(lti)
    before = time.time()
    form = return_form(post_picks(launched, [f"competency-{competency}"]))
    header = jwt.get_unverified_header(form.fields["JWT"])
    assert header["alg"] == "RS256"
    jwks = httpx.get(lti.tool.url + "/.well-known/jwks.json", timeout=10).json()
    published = {k["kid"]: k for k in jwks["keys"]}
    assert header.get("kid") in published, "signed with a key the tool does not publish"
    config = lti.platform.config
    claims = jwt.decode(
        form.fields["JWT"],
        jwt.PyJWK(published[header["kid"]]).key,
        algorithms=["RS256"],
        audience=config.issuer,
        issuer=config.client_id,
        options={"require": ["iss", "aud", "exp", "iat", "nonce"]},
    )
    now = time.time()
    # Canvas's JwtValidator: iat within the last 5 minutes and at most 30 s ahead; exp later.
    assert now - MAX_TOKEN_AGE < claims["iat"] <= now + 30
    assert claims["exp"] > now
    assert claims["exp"] - before <= 15 * 60, "a deep-linking response should expire quickly"
    assert isinstance(claims["nonce"], str)
    assert len(claims["nonce"]) >= 16
    assert claims[CLAIM + "deployment_id"] == config.deployment_id
    assert claims[CLAIM + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[CLAIM + "version"] == "1.3.0"
    (item,) = claims[ITEMS]
    assert item["type"] == "ltiResourceLink"
    assert item["url"].startswith(lti.tool.url + "/")
    # Moodle writes custom parameters as "key=value" lines; the spec says strings.
    assert item["custom"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in item["custom"].items())
    line_item = item["lineItem"]
    assert line_item["scoreMaximum"] == 4
    assert line_item["label"] == "SIG1 Signs what it sends"
    assert line_item["resourceId"] == f"pathways-competency-{competency}"


def test_posting_the_picker_twice_gives_two_responses_with_their_own_nonce(
    lti: LtiActions,
) -> None:
    """Canvas uses the nonce as the JWT's jti: a response must never repeat one."""
    launched = open_picker(lti)
    form = picker_form(launched)
    first = claims_of(return_form(post_picks(launched, ["home"], form=form)))
    second = claims_of(return_form(post_picks(launched, ["home"], form=form)))
    assert first["nonce"] != second["nonce"]
    assert first[ITEMS] == second[ITEMS]


# === 2. data and the return address ===========================================================


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("a\"b'c\\d", id="quotes-backslash"),
        pytest.param("</form><script>alert(1)</script>", id="markup"),
        pytest.param("\u00e9\u4e2d\u0627\U0001f469\u200d\U0001f52c", id="unicode"),
        pytest.param("  leading and trailing  \n", id="whitespace"),
        pytest.param("x\x00y", id="nul"),
        pytest.param("d" * 4000, id="long"),
        pytest.param('{"course": 7, "placement": "link_selection"}', id="json-text"),
        pytest.param("", id="empty"),
    ],
)
def test_data_is_returned_exactly_as_sent(lti: LtiActions, data: str) -> None:
    launched = open_picker(lti, data=data)
    page = post_picks(launched, ["home"])
    assert "<script>alert(1)" not in page.text
    claims = claims_of(return_form(page))
    assert DATA in claims, "the request carried data: the response must return it"
    assert claims[DATA] == data


def test_a_key_secret_that_opens_no_key_is_a_page_naming_the_setting(lti: LtiActions) -> None:
    """A server restarted with another key secret (its start-up check could not read the
    database then): the teacher's pick was "Pathways hit an unexpected problem" (500), and
    the operator had to find the traceback to learn which setting was wrong."""
    from lti_app import create_app

    form = picker_form(open_picker(lti))
    # A server of its own: the running one's key ring is shared with other tests' threads.
    server = create_app(lti.tool.settings)
    server.extensions["lti_app.keyring"] = KeyRing(secret="not the servers' secret")
    try:
        page = server.test_client().post(
            form.action.removeprefix(lti.tool.url),
            base_url=lti.tool.url,
            data={
                "csrf_token": form.fields["csrf_token"],
                LAUNCH_TOKEN_FIELD: form.fields[LAUNCH_TOKEN_FIELD],
                "item": ["home"],
            },
        )
    finally:
        server.extensions["lti_app.db"].dispose()
        server.extensions["lti_app.http"].close()
    text = page.get_data(as_text=True)
    assert page.status_code == 503, text[:2000]
    assert "LTI_APP_KEY_ENCRYPTION_SECRET" in text
    assert "Nothing was sent to the LMS" in text
    assert "unexpected" not in text
    assert "JWT" not in text


def test_no_data_claim_when_the_lms_sent_none(lti: LtiActions) -> None:
    """Canvas and Moodle send no `data`; Canvas carries its own state in the return URL."""
    url = lti.platform.url(DL_RETURN) + "?data=eyJhbGciOi.canvas.state&placement=link_selection"
    launched = open_picker(lti, data=DELETE, deep_link_return_url=url)
    claims = claims_of(return_form(post_picks(launched, ["home"])))
    assert DATA not in claims


@pytest.mark.parametrize(
    "suffix",
    [
        pytest.param("?course=2&id=5&sesskey=AbC123xyz", id="moodle"),
        pytest.param("?modal=true&placement=link_selection&context_module_id=31", id="canvas"),
        pytest.param("?q=%22a%20b%22&next=%2Fcourses%2F1&x=%E2%9C%93&empty=", id="encoded"),
        pytest.param('?raw="<b>"&amp=1', id="markup-in-query"),
        pytest.param("?a=1#fragment", id="fragment"),
    ],
)
def test_the_return_address_keeps_its_query_string_exactly(lti: LtiActions, suffix: str) -> None:
    url = lti.platform.url(DL_RETURN) + suffix
    launched = open_picker(lti, deep_link_return_url=url)
    form = return_form(post_picks(launched, ["home"]))
    assert form.action == url
    assert form.method == "post"


# === 3. who may answer, and with which session ================================================


def test_a_replayed_deep_linking_request_is_refused(lti: LtiActions) -> None:
    spec = lti.spec(TEACHER, message_type=MessageType.DEEP_LINKING)
    client = lti.browser()
    login = client.get(lti.platform.login_url(spec))
    assert login.status_code == 302, login.text[:1000]
    auth_page = client.get(login.headers["location"])
    (lms_form,) = [
        f for f in parse_forms(auth_page.text, str(auth_page.url)) if f.id == AUTO_POST_FORM_ID
    ]
    first = client.post(lms_form.action, data=lms_form.fields)
    assert "Add Pathways to your course" in first.text, first.text[:2000]
    again = client.post(lms_form.action, data=lms_form.fields)
    assert again.status_code == 400, again.text[:2000]
    assert "already used" in again.text
    assert "/lti/deep-link" not in again.text


def test_a_picker_form_carrying_another_launchs_token_is_refused(lti: LtiActions) -> None:
    """Teacher A's form (its CSRF token) with teacher B's launch token, from another course."""
    mine = picker_form(open_picker(lti, TEACHER))
    theirs = picker_form(open_picker(lti, SECOND_TEACHER, context_id="course-chem-club"))
    mixed = HtmlForm(mine.id, mine.method, mine.action, dict(mine.fields))
    mixed.fields[LAUNCH_TOKEN_FIELD] = theirs.fields[LAUNCH_TOKEN_FIELD]
    page = submit_picks(lti.browser(), mixed, ["home"])
    assert page.status_code == 400, page.text[:2000]
    assert no_response_sent(page)


def test_a_picker_form_with_an_expired_launch_token_is_refused(lti: LtiActions) -> None:
    form = picker_form(open_picker(lti))
    launch_id = launch_id_of(lti, form.fields[LAUNCH_TOKEN_FIELD])
    ttl = lti.tool.settings.launch_token_ttl

    class Yesterday(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - ttl - 60

    old = URLSafeTimedSerializer(
        lti.tool.settings.secret_key, salt="pathways-launch", signer=Yesterday
    ).dumps(launch_id)
    form.fields[LAUNCH_TOKEN_FIELD] = old
    page = submit_picks(lti.browser(), form, ["home"])
    assert page.status_code == 401, page.text[:2000]
    assert "Open Pathways again" in page.text
    assert no_response_sent(page)


def test_a_resource_link_launch_carrying_deep_linking_settings_cannot_answer_the_lms(
    lti: LtiActions,
) -> None:
    """Only an LtiDeepLinkingRequest may be answered, whatever other claims a launch carries."""
    spec = lti.spec(TEACHER)
    spec.tweaks = LaunchTweaks(claims={DL_SETTINGS: settings_claim(lti, spec.hint)})
    home = lti.launch_spec(spec)
    assert home.response.status_code == 200, home.text[:2000]
    assert "Add Pathways to your course" not in home.text
    found = re.search(r"[?&;]lt=([A-Za-z0-9_.\-]+)", home.text)
    assert found, home.text[:2000]
    token = found.group(1)
    page = lti.browser().post(
        lti.tool.url + "/lti/deep-link",
        data={
            LAUNCH_TOKEN_FIELD: token,
            "csrf_token": csrf_for(lti, launch_id_of(lti, token)),
            "item": "home",
        },
    )
    assert page.status_code == 403, page.text[:2000]
    assert "not opened to add content" in page.text
    assert no_response_sent(page)


def test_a_deep_linking_request_that_also_names_a_resource_link_still_opens_the_picker(
    lti: LtiActions,
) -> None:
    launched = open_picker(
        lti, extra_claims={RESOURCE_LINK: {"id": "dl-with-link", "title": "Stray link"}}
    )
    assert "Add Pathways to your course" in launched.text, launched.text[:2000]
    claims = claims_of(return_form(post_picks(launched, ["home"])))
    assert claims[CLAIM + "message_type"] == "LtiDeepLinkingResponse"
    assert [i["custom"]["pathways_item"] for i in claims[ITEMS]] == ["home"]


# === 4. what is picked ========================================================================


def test_unknown_and_foreign_item_keys_are_never_sent(
    lti: LtiActions, add_pathway: PathwayMaker
) -> None:
    foreign = add_pathway("Chemistry only", context_id="course-chem-club")
    launched = open_picker(lti)
    assert f"pathway-{foreign}" not in launched.text
    page = post_picks(
        launched, ["nope", f"pathway-{foreign}", "pathway-abc", "../home", "HOME", "home"]
    )
    items = claims_of(return_form(page))[ITEMS]
    assert [i["custom"]["pathways_item"] for i in items] == ["home"]
    assert all(i["custom"].get("pathway_id") != str(foreign) for i in items)


def test_an_item_posted_twice_is_placed_once(lti: LtiActions) -> None:
    """Two identical items would make Canvas create two assignments with the same resourceId,
    and a grade for that resourceId would then have two gradebook columns to choose from."""
    launched = open_picker(lti)
    items = claims_of(return_form(post_picks(launched, ["home", "home"])))[ITEMS]
    assert len(items) == 1, items


@pytest.mark.parametrize(
    "accept_multiple",
    [False, "false", "False"],
    ids=["canvas-assignment-selection", "moodle-4.0-string", "capitalised"],
)
def test_a_single_item_placement_gets_one_item_and_radio_buttons(
    lti: LtiActions, add_pathway: PathwayMaker, accept_multiple: Any
) -> None:
    pathway = add_pathway("Single pick")
    launched = open_picker(lti, accept_multiple=accept_multiple)
    assert 'type="radio"' in launched.text
    items = claims_of(return_form(post_picks(launched, [f"pathway-{pathway}", "home"])))[ITEMS]
    assert [i["custom"]["pathways_item"] for i in items] == [f"pathway-{pathway}"]


def test_a_platform_that_does_not_say_it_takes_several_items_gets_one(
    lti: LtiActions, add_pathway: PathwayMaker
) -> None:
    """`accept_multiple` is optional and the spec gives it no default: without the platform's
    word that it takes several items, send one (a radio choice), as for accept_multiple=false."""
    pathway = add_pathway("Unsaid multiple")
    launched = open_picker(lti, accept_multiple=DELETE)
    assert 'type="checkbox" name="item"' not in launched.text
    items = claims_of(return_form(post_picks(launched, ["home", f"pathway-{pathway}"])))[ITEMS]
    assert len(items) == 1


def test_nothing_picked_is_a_clean_empty_answer_the_lms_accepts(lti: LtiActions) -> None:
    """Canvas treats an empty content_items list as a no-op; Moodle as a cancel."""
    launched = open_picker(lti)
    form = return_form(post_picks(launched, []))
    claims = claims_of(form)
    assert claims[ITEMS] == []
    assert DL + "errormsg" not in claims
    assert isinstance(claims.get(DL + "msg"), str)
    before = len(lti.platform.state.deep_link_returns)
    accepted = launched.client.post(form.action, data=form.fields)
    assert accepted.status_code == 200, accepted.text[:2000]
    assert lti.platform.state.deep_link_returns[before].items == []


def test_pathway_choices_are_escaped_in_the_picker_and_sent_verbatim(
    lti: LtiActions, add_pathway: PathwayMaker
) -> None:
    title = 'Cells & "Energy" <script>alert(3)</script> \u00e9t\u00e9'
    pathway = add_pathway(title)
    launched = open_picker(lti)
    assert "<script>alert(3)" not in launched.text
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in launched.text
    page = post_picks(launched, [f"pathway-{pathway}"])
    assert "<script>alert(3)" not in page.text
    (item,) = claims_of(return_form(page))[ITEMS]
    assert item["title"] == title
    assert "lineItem" not in item  # a pathway is a link; nothing would fill its column
    assert item["custom"] == {"pathways_item": f"pathway-{pathway}", "pathway_id": str(pathway)}


# === 5. points possible ========================================================================


@pytest.mark.parametrize(
    "score",
    ["0", "-4", "0.5", "1000.5", "1e9", "four", "nan", "inf", "-inf", "1e400", "4,5", "0x10"],
)
def test_a_posted_points_value_never_changes_a_columns_maximum(
    lti: LtiActions, add_competency: CompetencyMaker, score: str
) -> None:
    """The picker has no points field: a column is out of the gradebook's maximum (the top
    level's points), so what Pathways sends to the column and the column agree."""
    competency = add_competency("PTS1", "Points stay put")
    launched = open_picker(lti)
    page = post_picks(launched, [f"competency-{competency}"], gradebook="on", score_maximum=score)
    assert "Traceback" not in page.text
    (item,) = claims_of(return_form(page))[ITEMS]
    value = item["lineItem"]["scoreMaximum"]
    assert isinstance(value, int | float)
    assert not isinstance(value, bool)
    assert math.isclose(value, 4)


# === 6. placements Pathways cannot fill =======================================================


@pytest.mark.parametrize(
    "accept_types",
    [["link", "html"], ["file"]],
    ids=["canvas-conference-selection", "canvas-migration-selection"],
)
def test_a_placement_that_takes_no_activity_links_gets_a_plain_answer(
    lti: LtiActions, accept_types: list[str]
) -> None:
    """No picker (the LMS would refuse what it offers), and no talk of an incomplete message or
    a registration to check: the teacher is told this place takes other content, and where
    Pathways can be added instead."""
    launched = open_picker(lti, accept_types=accept_types)
    text = launched.text
    assert 400 <= launched.response.status_code < 500, text[:2000]
    assert "/lti/deep-link" not in text
    assert "Traceback" not in text
    assert "incomplete" not in text.lower(), text[:2000]
    assert "registration" not in text.lower(), text[:2000]
    assert "activit" in text.lower(), text[:2000]
    assert accept_types[0] in text
