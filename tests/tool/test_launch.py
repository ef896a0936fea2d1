"""Full OIDC launches from a real LTI 1.3 platform over loopback HTTP: what must work, and
the 1EdTech conformance cases (plus more) that must be refused with a clear 4xx page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from lti_app.db import Database
from lti_app.demo.browser import AUTO_POST_FORM_ID, follow_launch, parse_forms, submit_form
from lti_app.demo.keys import HeaderTweak
from lti_app.demo.launches import DELETE, LaunchTweaks
from lti_app.demo.server import RunningPlatform, start_demo_platform
from lti_app.demo.state import Fault
from lti_app.tool.models import (
    Context,
    Deployment,
    DeploymentStatus,
    LaunchFailure,
    Person,
    Platform,
)
from tests.conftest import Launched, LtiActions, ToolServer, registration_of
from tests.courses.frames import second_lms

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
M = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
TEACHER, STUDENT = "user-t01", "user-s02"


def assert_refused(launched: Launched, status: int, *phrases: str) -> None:
    """A refusal is a 4xx page in plain words: no stack trace, no token, no secret."""
    response = launched.response
    assert response.status_code == status, response.text[:2000]
    text = response.text
    for phrase in phrases:
        assert phrase.lower() in text.lower(), text[:2000]
    assert "Traceback" not in text
    assert "eyJ" not in text  # no JWT echoed back
    assert "secret" not in text.lower()
    assert "Request id" in text
    assert "data-history-url" not in text  # Back brings no refused launch back as a page


def tweaks(**claims: Any) -> LaunchTweaks:
    return LaunchTweaks(claims=claims)


# --- what must work --------------------------------------------------------------------------


def test_teacher_lands_on_the_teacher_home_with_name_course_and_role(lti: LtiActions) -> None:
    launched = lti.launch(TEACHER)
    assert launched.response.status_code == 200
    assert 'role-badge">Teacher<' in launched.text
    assert "Amara Okafor" in launched.text
    assert "Biology 9 — Living Systems" in launched.text


def test_student_lands_on_the_student_home_with_escaped_name(lti: LtiActions) -> None:
    launched = lti.launch(STUDENT)
    assert launched.response.status_code == 200
    assert 'role-badge">Student<' in launched.text
    assert "Siobhán O&#39;Brien" in launched.text


def test_html_in_a_name_from_the_lms_is_shown_as_text(lti: LtiActions) -> None:
    launched = lti.launch("user-s10")  # "Bobby <b>Tables</b>"
    assert "&lt;b&gt;Tables&lt;/b&gt;" in launched.text
    assert "<b>Tables</b>" not in launched.text


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([M + "Instructor", M + "Mentor"], 'role-badge">Teacher<'),  # multiple roles
        (["Instructor"], 'role-badge">Teacher<'),  # deprecated short role name
        (
            ["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"],
            'role-badge">Teacher<',
        ),
        (
            [
                M + "Learner",
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
            ],
            'role-badge">Student<',
        ),
        (
            ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"],
            "Welcome to Pathways",
        ),  # an institution role alone is not this course's teacher
        (["http://example.org/roles#Wizard"], "Welcome to Pathways"),  # unknown role
        ([], "Welcome to Pathways"),  # empty roles list
    ],
)
def test_valid_role_variants_are_accepted(lti: LtiActions, roles: list[str], expected: str) -> None:
    launched = lti.launch(TEACHER, roles=roles)
    assert launched.response.status_code == 200, launched.text[:1500]
    assert expected in launched.text


@pytest.mark.parametrize(
    "removed",
    [
        ("name", "given_name", "family_name"),  # email only
        ("email",),  # names only
        ("name", "given_name", "family_name", "email"),  # no personal data at all
    ],
)
def test_personal_data_variants_are_accepted(lti: LtiActions, removed: tuple[str, ...]) -> None:
    # A launch without names keeps the name an earlier launch gave
    # (tests/tool/test_launch_without_names.py has a person no launch has named yet).
    assert lti.launch(STUDENT).response.status_code == 200
    launched = lti.launch(STUDENT, tweaks=tweaks(**dict.fromkeys(removed, DELETE)))
    assert launched.response.status_code == 200, launched.text[:1500]
    assert 'role-badge">Student<' in launched.text
    assert "Siobhán O&#39;Brien" in launched.text


def test_launch_without_a_course_says_what_it_can_do_there(lti: LtiActions) -> None:
    launched = lti.launch(TEACHER, context_id=None)
    assert launched.response.status_code == 200, launched.text[:1500]
    assert "works inside a course" in launched.text


def test_launch_records_person_course_membership_and_services(
    lti: LtiActions, session: Session
) -> None:
    lti.launch("user-s05")
    person = session.scalar(select(Person).where(Person.sub == "user-s05"))
    assert person is not None
    assert person.name == "محمد علي"


def test_a_course_deleted_behind_the_tools_back_is_made_again_at_the_next_launch(
    lti: LtiActions, database_url: str
) -> None:
    # The tool remembers people, courses and placements for a minute (tool.cache); a launch
    # that meets a remembered row that is gone runs again from the database.
    course = {"id": "course-deleted-meanwhile", "title": "Deleted meanwhile"}
    first = lti.launch(STUDENT, tweaks=tweaks(**{CLAIM + "context": course}))
    assert first.response.status_code == 200, first.text[:1500]
    database = Database(database_url)
    try:
        with database.begin() as own:
            config = lti.platform.config
            platform_id = own.scalar(
                select(Platform.id).where(
                    Platform.issuer == config.issuer, Platform.client_id == config.client_id
                )
            )
            deleted = own.execute(
                delete(Context).where(
                    Context.context_id == course["id"], Context.platform_id == platform_id
                )
            ).rowcount
        assert deleted == 1

        again = lti.launch(STUDENT, tweaks=tweaks(**{CLAIM + "context": course}))

        assert again.response.status_code == 200, again.text[:1500]
        assert "Deleted meanwhile" in again.text
        with database.begin() as own:
            assert own.scalar(
                select(Context.id).where(
                    Context.context_id == course["id"], Context.platform_id == platform_id
                )
            )
    finally:
        database.dispose()


def test_cookies_are_set_for_a_cross_site_frame(
    tool_server: ToolServer, lms: RunningPlatform, database_url: str
) -> None:
    from lti_app import create_app
    from lti_app.settings import load_settings

    settings = load_settings(
        {},
        env="test",
        secret_key="k",
        # The running tool's: another would open none of its keys, and the app not start.
        key_encryption_secret=tool_server.settings.key_encryption_secret,
        database_url=database_url,
        secure_cookies=True,
    )
    app = create_app(settings)
    spec = lms.platform.make_launch(TEACHER)
    with app.test_client() as client:
        login = lms.platform.login_url(spec).replace(tool_server.url, "")
        response = client.get(login, base_url=tool_server.url)
        cookie = response.headers["Set-Cookie"]
    app.extensions["lti_app.db"].dispose()
    assert "Secure" in cookie
    assert "SameSite=None" in cookie
    assert "Partitioned" in cookie
    assert "HttpOnly" in cookie


def test_canvas_deployment_id_at_login_is_accepted(lti: LtiActions) -> None:
    spec = lti.spec(TEACHER)
    url = lti.platform.login_url(spec).replace("lti_deployment_id=", "deployment_id=")
    client = lti.browser()
    response = follow_launch(client, url + "&lti_storage_target=&canvas_region=us-east-1")
    assert response.status_code == 200
    assert 'role-badge">Teacher<' in response.text


def test_login_by_post_works(lti: LtiActions) -> None:
    spec = lti.spec(TEACHER)
    url = httpx.URL(lti.platform.login_url(spec))
    client = lti.browser()
    first = client.post(str(url.copy_with(query=None)), data=dict(url.params))
    assert first.status_code == 302
    assert first.headers["location"].startswith(lti.platform.url("/auth"))


# --- the conformance suite's known-bad launches ----------------------------------------------


@pytest.mark.parametrize(
    ("tweak", "phrase"),
    [
        (LaunchTweaks(header=HeaderTweak.NO_KID), "no key id"),
        (LaunchTweaks(header=HeaderTweak.UNKNOWN_KID), "does not publish"),
        (tweaks(**{CLAIM + "version": "1.2.0"}), "not an LTI 1.3.0 message"),
        (tweaks(**{CLAIM + "version": DELETE}), "not an LTI 1.3.0 message"),
        (
            tweaks(
                **{
                    CLAIM + "version": DELETE,
                    CLAIM + "message_type": DELETE,
                    CLAIM + "roles": DELETE,
                    CLAIM + "resource_link": DELETE,
                }
            ),
            "not an LTI 1.3.0 message",
        ),  # a JWT that is not an LTI message at all
        (tweaks(nonce=DELETE), "lacks the nonce claim"),
        (tweaks(iat=DELETE), "lacks the iat claim"),
        (LaunchTweaks(exp_shift=-3600), "expired"),
        (LaunchTweaks(iat_shift=3600, exp_shift=3600), "in the future"),
        (tweaks(**{CLAIM + "message_type": DELETE}), "message_type"),
        (tweaks(**{CLAIM + "roles": DELETE}), "roles"),
        (tweaks(**{CLAIM + "deployment_id": DELETE}), "deployment_id"),
        (tweaks(**{CLAIM + "resource_link": {"title": "no id"}}), "resource link id"),
        (tweaks(sub=DELETE), "user (sub)"),
    ],
    ids=[
        "no-kid",
        "unknown-kid",
        "wrong-version",
        "no-version",
        "not-lti",
        "no-nonce",
        "no-iat",
        "expired",
        "iat-future",
        "no-message-type",
        "no-roles",
        "no-deployment",
        "no-resource-link-id",
        "no-sub",
    ],
)
def test_known_bad_payloads_are_refused(lti: LtiActions, tweak: LaunchTweaks, phrase: str) -> None:
    assert_refused(lti.launch(TEACHER, tweaks=tweak), 400, phrase)


def test_alg_none_is_refused(lti: LtiActions) -> None:
    assert_refused(
        lti.launch(TEACHER, tweaks=LaunchTweaks(header=HeaderTweak.ALG_NONE)),
        400,
        "accepts only RS256",
    )


def test_hs256_signed_with_the_platform_public_key_is_refused(lti: LtiActions) -> None:
    launched = lti.launch(TEACHER, tweaks=LaunchTweaks(header=HeaderTweak.HS256_PUBLIC_KEY))
    assert_refused(launched, 400, "accepts only RS256")


def test_tampered_signature_is_refused(lti: LtiActions) -> None:
    assert_refused(
        lti.launch(TEACHER, tweaks=LaunchTweaks(foreign_key=True)), 400, "signature does not verify"
    )


def test_wrong_audience_is_refused(lti: LtiActions) -> None:
    assert_refused(
        lti.launch(TEACHER, tweaks=tweaks(aud="some-other-tool", azp=DELETE)), 400, "not registered"
    )


def test_our_client_id_among_several_audiences_needs_azp(lti: LtiActions) -> None:
    client_id = lti.platform.config.client_id
    launched = lti.launch(TEACHER, tweaks=tweaks(aud=[client_id, "other"], azp=DELETE))
    assert_refused(launched, 400, "authorized party")


def test_azp_naming_another_tool_is_refused(lti: LtiActions) -> None:
    client_id = lti.platform.config.client_id
    launched = lti.launch(TEACHER, tweaks=tweaks(aud=[client_id, "other"], azp="other"))
    assert_refused(launched, 400, "not registered")


def test_several_audiences_with_our_azp_is_accepted(lti: LtiActions) -> None:
    client_id = lti.platform.config.client_id
    launched = lti.launch(TEACHER, tweaks=tweaks(aud=[client_id, "other"], azp=client_id))
    assert launched.response.status_code == 200


def test_nonce_that_does_not_match_the_login_is_refused(lti: LtiActions) -> None:
    assert_refused(lti.launch(TEACHER, tweaks=tweaks(nonce="made-up")), 400, "nonce")


def test_target_link_uri_other_than_the_login_asked_for_is_refused(lti: LtiActions) -> None:
    launched = lti.launch(
        TEACHER, tweaks=tweaks(**{CLAIM + "target_link_uri": lti.tool.url + "/elsewhere"})
    )
    assert_refused(launched, 400, "target_link_uri")


def test_login_pointing_at_another_site_is_refused(lti: LtiActions) -> None:
    spec = lti.spec(TEACHER, target_link_uri="https://evil.example/steal")
    assert_refused(lti.launch_spec(spec), 400, "another site")


def _auth_form(lti: LtiActions, client: httpx.Client, user: str = TEACHER) -> Any:
    """Start a login in `client` and stop at the platform's auto-post form."""
    spec = lti.spec(user)
    response = client.get(lti.platform.login_url(spec))
    assert response.status_code == 302
    page = client.get(response.headers["location"])
    return next(f for f in parse_forms(page.text, str(page.url)) if f.id == AUTO_POST_FORM_ID)


def test_replayed_id_token_is_refused(lti: LtiActions) -> None:
    client = lti.browser()
    form = _auth_form(lti, client)
    assert submit_form(client, form).status_code == 200
    assert_refused(Launched(submit_form(client, form), client), 400, "already used")


def test_state_from_another_browser_is_refused(lti: LtiActions) -> None:
    form = _auth_form(lti, lti.browser())
    other = lti.browser()
    assert_refused(Launched(submit_form(other, form), other), 400, "different browser")


def test_unknown_state_is_refused(lti: LtiActions) -> None:
    client = lti.browser()
    form = _auth_form(lti, client)
    form.fields["state"] = "not-a-state-we-issued"
    assert_refused(Launched(submit_form(client, form), client), 400, "unknown state")


def test_missing_id_token_is_refused(lti: LtiActions) -> None:
    client = lti.browser()
    response = client.post(lti.tool.url + "/lti/launch", data={"state": "x"})
    assert_refused(Launched(response, client), 400, "missing its id_token")


def test_unknown_client_id_at_login_is_refused(lti: LtiActions) -> None:
    spec = lti.spec(TEACHER)
    url = lti.platform.login_url(spec).replace("client_id=pathways-demo", "client_id=nobody")
    client = lti.browser()
    assert_refused(Launched(client.get(url), client), 400, "not registered")


def test_login_without_client_id_finds_the_registration_by_its_deployment(
    lti: LtiActions, database_url: str
) -> None:
    """client_id is optional at login initiation. With a second registration of the same
    issuer (Canvas: one issuer for every school), the deployment the login names says which
    registration is meant; naming neither, the LMS gets a plain refusal."""
    issuer = lti.platform.config.issuer
    db = Database(database_url)
    with db.begin() as session:
        mine = session.scalars(select(Platform).where(registration_of(lti.lms))).one()
        other = Platform(
            issuer=issuer,
            client_id=f"other-{time.monotonic_ns()}",
            auth_login_url=mine.auth_login_url,
            token_url=mine.token_url,
            jwks_url=mine.jwks_url,
        )
        other.deployments.append(Deployment(deployment_id="other-deployment"))
        session.add(other)
    try:
        spec = lti.spec(TEACHER)
        url = lti.platform.login_url(spec).replace("client_id=pathways-demo&", "")
        url = url.replace("&client_id=pathways-demo", "")
        assert "client_id" not in url
        client = lti.browser()
        launched = Launched(follow_launch(client, url), client)
        assert launched.response.status_code == 200, launched.text[:2000]
        anonymous = re.sub(r"&?lti_deployment_id=[^&]*", "", url)
        client = lti.browser()
        assert_refused(Launched(client.get(anonymous), client), 400, "Several registrations")
    finally:
        with db.begin() as session:
            session.execute(delete(Platform).where(Platform.client_id == other.client_id))
        db.dispose()


@pytest.fixture
def unregistered_lms(tool_server: ToolServer, database_url: str) -> Iterator[RunningPlatform]:
    running = start_demo_platform(tool_server.url)
    # Loopback ports are reused: an earlier test may have registered this very address.
    db = Database(database_url)
    with db.begin() as session:
        session.execute(delete(Platform).where(Platform.issuer == running.base_url))
    db.dispose()
    yield running
    running.stop()


def test_unknown_issuer_is_refused(lti: LtiActions, unregistered_lms: RunningPlatform) -> None:
    spec = unregistered_lms.platform.make_launch(TEACHER)
    client = lti.browser()
    response = client.get(unregistered_lms.platform.login_url(spec))
    assert_refused(Launched(response, client), 400, "not registered for the LMS")


def test_refusals_are_logged_for_the_admin(lti: LtiActions, session: Session) -> None:
    lti.launch(TEACHER, tweaks=tweaks(**{CLAIM + "roles": DELETE}))
    failure = session.scalars(
        select(LaunchFailure).order_by(LaunchFailure.id.desc()).limit(1)
    ).one()
    assert failure.issuer == lti.platform.config.issuer
    assert "roles" in failure.reason.lower()
    assert failure.request_id


# --- deployments -------------------------------------------------------------------------------


def test_unknown_deployment_is_recorded_pending_and_refused_until_approved(
    lti: LtiActions, database_url: str
) -> None:
    deployment_id = f"dep-{time.monotonic_ns()}"
    assert_refused(
        lti.launch(TEACHER, deployment_id=deployment_id),
        403,
        "waiting for approval",
        "approve-deployment",
    )
    db = Database(database_url)
    with db.begin() as session:
        row = session.scalar(select(Deployment).where(Deployment.deployment_id == deployment_id))
        assert row is not None
        assert row.status is DeploymentStatus.PENDING
        row.status = DeploymentStatus.ACTIVE
    db.dispose()
    assert lti.launch(TEACHER, deployment_id=deployment_id).response.status_code == 200


def test_auto_approve_registration_accepts_a_new_deployment(
    lti: LtiActions, database_url: str
) -> None:
    db = Database(database_url)

    def set_auto(value: bool) -> None:
        with db.begin() as session:
            platform = session.scalars(select(Platform).where(registration_of(lti.lms))).one()
            platform.auto_approve_deployments = value

    set_auto(True)
    try:
        launched = lti.launch(TEACHER, deployment_id=f"auto-{time.monotonic_ns()}")
        assert launched.response.status_code == 200
    finally:
        set_auto(False)
        db.dispose()


# --- platform keys -----------------------------------------------------------------------------


def test_platform_key_rotation_needs_one_refetch(lti: LtiActions) -> None:
    assert lti.launch(TEACHER).response.status_code == 200
    before = lti.platform.counters.jwks_fetches
    lti.platform.rotate_key(keep_old=False)
    assert lti.launch(TEACHER).response.status_code == 200
    assert lti.launch(STUDENT).response.status_code == 200
    assert lti.platform.counters.jwks_fetches == before + 1


def test_no_jwks_fetch_per_launch(lti: LtiActions) -> None:
    lti.launch(TEACHER)
    before = lti.platform.counters.jwks_fetches
    for user in ("user-s01", "user-s03", "user-s04"):
        assert lti.launch(user).response.status_code == 200
    assert lti.platform.counters.jwks_fetches == before


def test_cached_keys_still_work_when_the_jwks_endpoint_is_down(lti: LtiActions) -> None:
    lti.launch(TEACHER)
    lti.platform.set_outage("jwks", Fault(500))
    assert lti.launch(STUDENT).response.status_code == 200


@pytest.fixture
def fresh_lms(tool_server: ToolServer, database_url: str) -> Iterator[RunningPlatform]:
    with second_lms(tool_server, database_url) as running:
        yield running


def test_jwks_down_with_nothing_cached_is_a_clear_error(
    lti: LtiActions, fresh_lms: RunningPlatform
) -> None:
    fresh_lms.platform.set_outage("jwks", Fault(503))
    spec = fresh_lms.platform.make_launch(TEACHER)
    client = lti.browser()
    launched = Launched(follow_launch(client, fresh_lms.platform.login_url(spec)), client)
    assert_refused(launched, 400, "could not fetch the LMS", fresh_lms.platform.url("/jwks"))


def test_same_sub_from_two_issuers_is_two_people(
    lti: LtiActions, fresh_lms: RunningPlatform, session: Session
) -> None:
    lti.launch("user-s07")
    spec = fresh_lms.platform.make_launch("user-s07")
    assert follow_launch(lti.browser(), fresh_lms.platform.login_url(spec)).status_code == 200
    issuers = {lti.platform.config.issuer, fresh_lms.platform.config.issuer}
    people = session.execute(
        select(Person.id, Platform.issuer)
        .join(Platform, Platform.id == Person.platform_id)
        .where(
            Person.sub == "user-s07",
            or_(registration_of(lti.lms), registration_of(fresh_lms)),
        )
    ).all()
    assert {issuer for _id, issuer in people} == issuers
    assert len({person_id for person_id, _issuer in people}) == 2


def test_a_launch_completes_on_another_worker_or_after_a_restart(
    lti: LtiActions, tool_server: ToolServer
) -> None:
    """The login travels signed in its state: a worker that shares no memory with the one
    that started the login (or the same server after a restart) completes the launch."""
    from urllib.parse import urlsplit

    from lti_app import create_app

    client = lti.browser()
    # A student: a teacher's launch would also start a roster sync in that worker.
    form = _auth_form(lti, client, STUDENT)
    other_worker = create_app(tool_server.settings)
    host = urlsplit(tool_server.url).hostname or "127.0.0.1"
    with other_worker.test_client() as browser:
        for cookie in client.cookies.jar:
            browser.set_cookie(cookie.name, cookie.value or "", domain=host, path="/lti/")
        response = browser.post("/lti/launch", data=form.fields, base_url=tool_server.url)
        assert response.status_code == 200, response.get_data(as_text=True)[:1500]
        assert 'role-badge">Student<' in response.get_data(as_text=True)
    other_worker.extensions["lti_app.db"].dispose()
    # The first worker then sees the same launch as a replay.
    assert_refused(Launched(submit_form(client, form), client), 400, "already used")


# --- the id_token's segments are checked as strictly as PyJWT checks them --------------------


@pytest.mark.parametrize(
    "segment",
    [
        b"eyJhbGciOiJSUzI1NiJ9",
        b"QQ",
        b"QQ==",  # padding some issuers send
        b"QQ=",
        b"QQ===",  # too much padding
        b"QR",  # not the canonical encoding of its bytes
        b"Q",  # a length no encoding has
        b"!!!!",
        b"QQ.Q",
        b"QUJD\n",
        b"QUJD+/",  # standard base64, not base64url
        b"",
    ],
)
def test_segment_check_agrees_with_pyjwt(segment: bytes) -> None:
    from jwt.api_jws import PyJWS

    from lti_app.tool.launch import ID_TOKEN_DECODER, _decode_base64url_segment

    reference = getattr(PyJWS, "_decode_base64url_segment", None)
    if reference is None:
        pytest.skip("this PyJWT decodes segments without its own check")
    assert ID_TOKEN_DECODER._jws._decode_base64url_segment is _decode_base64url_segment

    def outcome(check: Any) -> bytes | str:
        try:
            return bytes(check(segment, "payload"))
        except Exception as err:  # the kind of error is what is compared
            return type(err).__name__

    assert outcome(_decode_base64url_segment) == outcome(reference)
