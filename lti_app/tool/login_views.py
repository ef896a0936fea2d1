"""OIDC login initiation, and the check that the login's cookie survives the LMS's frame
(split from `views`, whose blueprint it shares)."""

from __future__ import annotations

import hmac
import logging
import time
from urllib.parse import urlencode

from flask import Response, make_response, render_template, request

from lti_app.addresses import external_url, tool_origin
from lti_app.errors import LaunchError
from lti_app.http import origin_of
from lti_app.tool.launch import EXPIRED
from lti_app.tool.login import (
    STATE_COOKIE_PREFIX,
    UNKNOWN_STATE,
    UNKNOWN_STATE_HINT,
    authorization_url,
    browser_hash,
    load_login_state,
    start_login,
    state_cookie_name,
    storage_key,
)
from lti_app.tool.models import Platform
from lti_app.tool.refusals import log_failure, printable
from lti_app.tool.views import bp, set_frame_cookie
from lti_app.web import db_session, path_of, settings

LOG = logging.getLogger(__name__)


def _log_login_failure(err: LaunchError, params: dict[str, str]) -> None:
    log_failure(
        err,
        params.get("iss", ""),
        params.get("client_id", ""),
        params.get("lti_deployment_id", ""),
    )


@bp.route("/lti/login", methods=["GET", "POST"])
def login() -> Response | str:
    """OIDC third-party initiated login."""
    params = {k: v for k, v in (request.form or request.args).items() if isinstance(v, str)}
    # Canvas sends deployment_id at login; the spec says lti_deployment_id.
    params.setdefault("lti_deployment_id", params.get("deployment_id", ""))
    session = db_session()
    try:
        redirect_to = start_login(
            session,
            params,
            secret_key=settings().secret_key,
            tool_origin=tool_origin(),
            redirect_uri=external_url("tool.launch"),
            state_ttl=settings().login_state_ttl,
        )
    except LaunchError as err:
        _log_login_failure(err, params)
        raise
    session.rollback()  # it only read the registration
    # Safari, and any browser set to block third-party cookies outright, keeps no cookie in
    # the LMS's frame; without platform storage nothing else can bind the login to this
    # browser, and the launch would be refused after the LMS had spent its one-time
    # authorization (Moodle forgets the lti_message_hint at its first auth.php). Such a login
    # passes through our own address first: the state cookie either comes back, and the
    # login goes on to the LMS, or Pathways offers a window of its own while the login can
    # still be started again.
    via_check = (
        path_of("tool.login_check")
        + "?"
        + urlencode({"state": redirect_to.state} | _login_initiation(params))
        if _cookies_unproven_in_a_frame()
        else None
    )
    platform_origin = origin_of(redirect_to.auth_url) if redirect_to.storage_target else None
    if platform_origin is not None:
        # Try the platform's storage first (works with third-party cookies blocked);
        # the cookie below is the fallback when the platform does not answer.
        response = make_response(
            render_template(
                "tool/login_storage.html",
                auth_url=redirect_to.auth_url,
                fallback_url=via_check or redirect_to.auth_url,
                storage_key=storage_key(redirect_to.state),
                secret=redirect_to.browser_secret,
                storage_target=redirect_to.storage_target,
                platform_origin=platform_origin,
            )
        )
    else:
        response = make_response("", 302)
        response.headers["Location"] = via_check or redirect_to.auth_url
    response.headers["Cache-Control"] = "no-store"
    set_frame_cookie(
        response,
        state_cookie_name(redirect_to.state),
        redirect_to.browser_secret,
        settings().login_state_ttl,
        "/lti/",
    )
    return response


LOGIN_INITIATION = (
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "client_id",
    "lti_deployment_id",
)
FRAME_DESTINATIONS = frozenset({"iframe", "frame"})
COOKIES_WORK_HERE = "lti_cookies_work"
COOKIES_WORK_HERE_SECONDS = 180 * 24 * 3600


def _login_initiation(params: dict[str, str]) -> dict[str, str]:
    """What the LMS sent to start this login, so a new window can start it again."""
    return {name: params[name] for name in LOGIN_INITIATION if params.get(name)}


def _cookies_unproven_in_a_frame() -> bool:
    # A login cookie of ours that came along proves cookies work here (a returning browser;
    # a load balancer's cookie proves nothing); a browser that does not say where the answer
    # goes (no Fetch Metadata: Safari before 16.4) goes on as before.
    if request.headers.get("Sec-Fetch-Dest") not in FRAME_DESTINATIONS:
        return False
    return not any(
        name == COOKIES_WORK_HERE or name.startswith(STATE_COOKIE_PREFIX)
        for name in request.cookies
    )


@bp.get("/lti/login/check")
def login_check() -> Response | str:
    """Did the state cookie the login set in the LMS's frame come back? Then on to the LMS;
    if not, a page offering Pathways in a window of its own, where its cookies are first-party."""
    params = _login_initiation(
        {name: value for name, value in request.args.items() if isinstance(value, str)}
    )
    state = request.args.get("state", "")
    session = db_session()
    try:
        login_state = load_login_state(state, secret_key=settings().secret_key)
        platform = session.get(Platform, login_state.platform_id)
        if platform is None:
            raise LaunchError(UNKNOWN_STATE, hint=UNKNOWN_STATE_HINT)
        if login_state.expires_at <= time.time():
            raise LaunchError(EXPIRED)
    except LaunchError as err:
        _log_login_failure(err, params)
        raise
    session.rollback()  # it only read the registration
    secret = request.cookies.get(state_cookie_name(state))
    if secret and hmac.compare_digest(browser_hash(secret), login_state.browser_hash):
        response = make_response("", 302)
        response.headers["Location"] = authorization_url(
            platform,
            params,
            redirect_uri=external_url("tool.launch"),
            state=state,
            nonce=login_state.nonce,
        )
        # Its coming back next time is proof enough: later logins here skip this step.
        set_frame_cookie(response, COOKIES_WORK_HERE, "1", COOKIES_WORK_HERE_SECONDS, "/lti/")
    else:
        LOG.info(
            "login: no cookie in the LMS frame, offered a new window iss=%s client_id=%s",
            printable(platform.issuer),
            printable(platform.client_id),
        )
        response = make_response(
            render_template(
                "tool/open_in_window.html",
                window_url=path_of("tool.login") + "?" + urlencode(params),
            )
        )
    response.headers["Cache-Control"] = "no-store"
    return response
