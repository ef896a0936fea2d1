"""`/lti/register` (LTI Dynamic Registration) and `/lti/canvas.json` (Canvas developer key)."""

from __future__ import annotations

import json
import logging
from typing import cast

import httpx
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    make_response,
    render_template,
    request,
)
from flask.blueprints import BlueprintSetupState
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError

from lti_app.addresses import client_address, external_url, tool_origin
from lti_app.admin.models import SecretPurpose
from lti_app.admin.services import (
    SIGN_IN_MAX_FAILURES,
    SIGN_IN_WINDOW,
    forget_sign_in_failures,
    record_sign_in_failure,
    secret_matches,
    sign_in_locked,
)
from lti_app.csrf_binding import bind_csrf_to_form, seal_forms_of
from lti_app.errors import AppError, render_error, request_id
from lti_app.registration.client import fetch_platform_configuration, post_client_registration
from lti_app.registration.configuration import (
    CLOSE_MESSAGE,
    TOOL_DESCRIPTION,
    TOOL_NAME,
    ToolUrls,
    canvas_configuration,
    client_registration,
    requested_scopes,
    summarize,
)
from lti_app.registration.errors import (
    AlreadySubmittedError,
    RegistrationError,
    RegistrationNotSavedError,
    RegistrationRefusedError,
)
from lti_app.registration.platform_configuration import (
    check_configuration_url,
    check_public_hosts,
    check_registration_token,
    configuration_url_to_keep,
    parse_platform_configuration,
)
from lti_app.registration.services import (
    claim_submission,
    open_pending,
    parse_registration_response,
    release_submission,
    seal_pending,
    store_registration,
)
from lti_app.web import db_session, settings

LOG = logging.getLogger(__name__)
bp = Blueprint("registration", __name__)

PENDING_FIELD = "pending"
PENDING_MAX_AGE = 3600
"""Seconds an admin has to confirm; LMS registration tokens live about as long."""

CLOSE_SCRIPT = """(function () {
  "use strict";
  // LTI Dynamic Registration 1.0, 3.6: tell the LMS that registration is over.
  var button = document.getElementById("finish-registration");
  if (!button) { return; }
  button.addEventListener("click", function () {
    var target = window.opener || (window.parent !== window ? window.parent : null);
    if (target) {
      target.postMessage(%s, "*");
    }
    var hint = document.getElementById("finish-hint");
    if (hint) { hint.hidden = false; }
  });
})();
"""


@bp.record_once
def _register(state: BlueprintSetupState) -> None:
    seal_forms_of(cast(Flask, state.app), "registration.confirm", PENDING_FIELD)


def tool_urls() -> ToolUrls:
    """The URLs the LMS must know, as it sees them (public_url or this request's host)."""
    return ToolUrls(
        login=external_url("tool.login"),
        launch=external_url("tool.launch"),
        jwks=external_url("tool.jwks"),
    )


def _http() -> httpx.Client:
    client: httpx.Client = current_app.extensions["lti_app.registration_http"]
    return client


def _allow_loopback_http() -> bool:
    # Outside production a test or demo LMS on this machine may speak plain http.
    return settings().env != "production"


def _access_code() -> str:
    return settings().registration_access_code


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _about() -> Response:
    return _no_store(
        make_response(
            render_template(
                "registration/about.html",
                register_url=external_url("registration.start"),
                canvas_url=external_url("registration.canvas_json"),
                urls=tool_urls(),
            )
        )
    )


@bp.get("/")
def about() -> Response:
    """The tool's own address opened in a browser (the README's, an admin's first look): what
    Pathways is and the addresses an LMS needs, not a "not found" page."""
    return _about()


@bp.get("/lti/register")
def start() -> Response:
    """The platform opens this with openid_configuration (and registration_token)."""
    config_url = request.args.get("openid_configuration", "").strip()
    token = request.args.get("registration_token", "")
    if not config_url:
        return _about()
    allow_http = _allow_loopback_http()
    check_configuration_url(config_url, allow_loopback_http=allow_http)
    check_registration_token(token)
    if not settings().registration_private_hosts:
        check_public_hosts(config_url)
    raw = fetch_platform_configuration(_http(), config_url, token)
    platform = parse_platform_configuration(config_url, raw, allow_loopback_http=allow_http)
    if not settings().registration_private_hosts:
        check_public_hosts(
            platform.registration_endpoint, platform.jwks_uri, platform.token_endpoint
        )
    LOG.info("registration offered iss=%s family=%s", platform.issuer, platform.product_family_code)
    sealed = seal_pending(settings().secret_key, config_url=config_url, token=token, config=raw)
    bind_csrf_to_form(sealed)
    return _no_store(
        make_response(
            render_template(
                "registration/confirm.html",
                platform=platform,
                summary=summarize(platform),
                urls=tool_urls(),
                pending=sealed,
                pending_field=PENDING_FIELD,
                needs_code=bool(_access_code()),
                tool_name=TOOL_NAME,
                tool_description=TOOL_DESCRIPTION,
            )
        )
    )


def _check_access_code(expected: str) -> Response | None:
    """Refuse a wrong access code, and any code from an address that guessed too often.

    The code guards a public page, so guesses are counted per address like the operator's
    admin secret (admin.services), in the database every worker shares.
    """
    session = db_session()
    address = client_address()
    if sign_in_locked(
        session,
        purpose=SecretPurpose.REGISTRATION,
        address=address,
        window=SIGN_IN_WINDOW,
        max_failures=SIGN_IN_MAX_FAILURES,
    ):
        # Checked before the code: a locked-out address learns nothing from its guesses.
        LOG.warning("registration refused: too many wrong access codes from %s", address)
        minutes = int(SIGN_IN_WINDOW.total_seconds() // 60)
        page, _status = render_error(
            RegistrationError(
                "Too many wrong access codes were tried from this address, so Pathways is "
                f"not accepting any for now. Try again in {minutes} minutes.",
                hint="Ask the Pathways operator for the registration access code, then start "
                "again from the LMS.",
            ),
        )
        response = make_response(page, 429)
        response.headers["Retry-After"] = str(int(SIGN_IN_WINDOW.total_seconds()))
        return _no_store(response)
    if not secret_matches(request.form.get("access_code", ""), expected):
        LOG.warning("registration refused: wrong access code from %s", address)
        record_sign_in_failure(
            session, purpose=SecretPurpose.REGISTRATION, address=address, window=SIGN_IN_WINDOW
        )
        session.commit()
        raise RegistrationError(
            "The access code is not right.",
            hint="Ask the Pathways operator for the registration access code, then start "
            "again from the LMS.",
        )
    forget_sign_in_failures(session, purpose=SecretPurpose.REGISTRATION, address=address)
    return None


def _check_form_came_from_its_page() -> None:
    """CSRF protection for the confirm form, which must work without a cookie: the LMS opens
    registration in a frame of its own site, where Safari keeps none of ours.

    The form's CSRF token is bound to the pending registration the form carries
    (`seal_forms_of`) rather than to a cookie, so it proves only that the two belong together:
    anyone can have a pair made by opening the page. What keeps other sites out is this check
    of what the browser says about the POST (Fetch Metadata, else Origin). A request with
    neither header is no browser's, and carries no one's authority: the confirm step acts on
    what the form itself holds (and the access code typed into it), not on a session."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if (site is not None and site != "same-origin") or (
        site is None and origin is not None and origin != tool_origin()
    ):
        raise CSRFError("The form was sent from another site.")


@bp.post("/lti/register")
def confirm() -> Response:
    """Register with the platform, store what it issued, and hand control back to it."""
    sealed = request.form.get(PENDING_FIELD, "")
    config_url, token, raw = open_pending(settings().secret_key, sealed, max_age=PENDING_MAX_AGE)
    _check_form_came_from_its_page()
    expected_code = _access_code()
    if expected_code:
        locked = _check_access_code(expected_code)
        if locked is not None:
            return locked
    allow_http = _allow_loopback_http()
    platform = parse_platform_configuration(config_url, raw, allow_loopback_http=allow_http)
    if not settings().registration_private_hosts:
        # The configuration names the addresses Pathways posts to now and fetches keys and
        # tokens from later: none may lead into a private network either.
        check_public_hosts(
            platform.registration_endpoint, platform.jwks_uri, platform.token_endpoint
        )
    body = client_registration(tool_urls(), platform)
    session = db_session()
    if not claim_submission(
        session, sealed, config_url=config_url, token=token, max_age=PENDING_MAX_AGE
    ):
        session.rollback()
        raise AlreadySubmittedError(
            "This registration was already sent to the LMS (was Register pressed twice?), so "
            "Pathways did not send it again.",
            hint="Look for Pathways among the LMS's tools. If it is not there, start the "
            "registration again from the LMS.",
        )
    session.commit()  # before the LMS is asked: a second press must find it
    try:
        answer = post_client_registration(_http(), platform.registration_endpoint, token, body)
    except RegistrationRefusedError:
        # Only a plain refusal: after a timeout the LMS may have registered Pathways, and the
        # claim keeps a second press from registering it twice.
        try:
            release_submission(session, sealed, config_url=config_url, token=token)
            session.commit()
        except SQLAlchemyError as err:  # the LMS's refusal is still what the admin must see
            session.rollback()
            LOG.warning("registration claim not released error=%s", type(err).__name__)
        raise
    issued = parse_registration_response(answer)
    auto_approve = request.form.get("auto_approve") == "on"
    try:
        stored = store_registration(
            session,
            platform=platform,
            issued=issued,
            config_url=configuration_url_to_keep(config_url, token),
            requested=requested_scopes(platform),
            auto_approve_deployments=auto_approve,
        )
        approves_first_launch = stored.approve_first_deployment
        session.commit()
    except SQLAlchemyError as err:
        session.rollback()
        LOG.error(
            "registration not saved iss=%s client_id=%s error=%s",
            platform.issuer,
            issued.client_id,
            type(err).__name__,
        )
        raise RegistrationNotSavedError(
            f"The LMS registered Pathways (client ID {issued.client_id}), but Pathways could "
            "not save the registration, so launches will not work yet.",
            hint="Remove the Pathways tool the LMS just created and start again. If it "
            f"happens again, give the Pathways operator the request id {request_id()}.",
        ) from err
    return _no_store(
        make_response(
            render_template(
                "registration/done.html",
                platform=platform,
                issued=issued,
                auto_approve=auto_approve,
                approves_first_launch=approves_first_launch,
                is_moodle=platform.product_family_code.lower() == "moodle",
            )
        )
    )


@bp.get("/lti/register/close.js")
def close_script() -> Response:
    """The script that posts {subject: "org.imsglobal.lti.close"} (inline scripts are off)."""
    response = make_response(CLOSE_SCRIPT % json.dumps(CLOSE_MESSAGE))
    response.headers["Content-Type"] = "text/javascript; charset=utf-8"
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/lti/canvas.json")
def canvas_json() -> Response:
    """Canvas developer-key configuration ("Enter URL" in the LTI key form)."""
    response = jsonify(canvas_configuration(tool_urls()))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.errorhandler(CSRFError)
def _csrf_failed(err: CSRFError) -> tuple[str, int]:
    if request.method == "POST":
        # A form held past its hour, or changed, fails the token bound to it: say which.
        try:
            open_pending(
                settings().secret_key,
                request.form.get(PENDING_FIELD, ""),
                max_age=PENDING_MAX_AGE,
            )
        except RegistrationError as expired:
            return render_error(expired)
    error = AppError(
        "Pathways could not confirm that this form came from this browser window.",
        hint="Start the registration again from the LMS and send its form within the hour, "
        "from the page Pathways shows.",
    )
    return render_error(error, title="Please try again")
