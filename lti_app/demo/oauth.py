"""The platform's security endpoints: OIDC authorization, public keys, OAuth 2 token."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from lti_app.demo.launches import ALL_SCOPES
from lti_app.demo.lti import DemoMessageLaunch, FlaskRequest
from lti_app.demo.platform import current_platform
from lti_app.demo.seed import PEOPLE
from lti_app.demo.tool_keys import ToolJwtError, verify_tool_jwt

LOG = logging.getLogger(__name__)
bp = Blueprint("oauth", __name__)

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def error_page(message: str, status: int = 400) -> tuple[str, int]:
    """The platform's plain error page."""
    return render_template("demo/error.html", message=message, status=status), status


def _auth_request_problem(params: dict[str, str]) -> str | None:
    """What is wrong with an OIDC authentication request, per LTI 1.3 §5.1.1.2, or None."""
    platform = current_platform()
    fixed = {
        "response_type": "id_token",
        "scope": "openid",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.config.client_id,
    }
    for name, expected in fixed.items():
        if params.get(name) != expected:
            return f"{name} must be {expected!r}, got {params.get(name)!r}"
    if params.get("redirect_uri") not in platform.redirect_uris:
        return f"redirect_uri {params.get('redirect_uri')!r} is not registered for this tool"
    for name in ("login_hint", "nonce", "state", "lti_message_hint"):
        if not params.get(name):
            return f"{name} is missing"
    return None


@bp.route("/auth", methods=["GET", "POST"])
def authorize() -> Any:
    """OIDC authorization endpoint: answer a form that posts the id_token to the tool."""
    platform = current_platform()
    params = request.values.to_dict()
    problem = _auth_request_problem(params)
    if problem:
        return error_page(f"Invalid authentication request: {problem}")
    spec = platform.get_launch(params["lti_message_hint"])
    if spec is None:
        return error_page("Unknown lti_message_hint: this launch was not started here.")
    if params["login_hint"] != spec.user_id or spec.user_id not in PEOPLE:
        return error_page("login_hint does not match the user who started this launch.")
    launch = DemoMessageLaunch(
        FlaskRequest(request), platform.lti_conf, platform=platform, spec=spec
    )
    return launch.lti_launch()


@bp.get("/jwks")
def jwks() -> Response:
    """The platform's public keys."""
    platform = current_platform()
    resp = jsonify({"keys": platform.public_jwks()})
    resp.headers["Cache-Control"] = f"max-age={platform.config.jwks_max_age}"
    return resp


def _token_error(error: str, description: str, status: int = 400) -> tuple[Response, int]:
    resp = jsonify({"error": error, "error_description": description})
    resp.headers["Cache-Control"] = "no-store"
    return resp, status


@bp.post("/token")
def token() -> Any:
    """OAuth 2 client credentials grant with a JWT client assertion (1EdTech Security §4.1)."""
    platform = current_platform()
    form = request.form
    if form.get("grant_type") != "client_credentials":
        return _token_error("unsupported_grant_type", "grant_type must be client_credentials")
    if form.get("client_assertion_type") != JWT_BEARER:
        return _token_error("invalid_request", f"client_assertion_type must be {JWT_BEARER}")
    client_id = platform.config.client_id
    try:
        claims = verify_tool_jwt(
            form.get("client_assertion", ""),
            platform.tool_jwks,
            audience=platform.token_url,
            issuer=client_id,
        )
    except ToolJwtError as err:
        return _token_error("invalid_client", str(err))
    if claims.get("sub") != client_id:
        return _token_error("invalid_client", "sub must be the client_id")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        return _token_error("invalid_client", "jti is missing")
    with platform.state.lock:
        if jti in platform.state.used_jtis:
            return _token_error("invalid_client", "jti was already used")
        platform.state.used_jtis.add(jti)
    if platform.token_refusal is not None:
        status, error = platform.token_refusal
        return _token_error(error, "refused by the demo platform's test hook", status)
    requested = set(form.get("scope", "").split())
    granted = frozenset(requested & platform.granted_scopes & ALL_SCOPES)
    if not granted:
        return _token_error("invalid_scope", "none of the requested scopes is enabled")
    issued = platform.state.issue_token(granted, platform.config.token_ttl)
    resp = jsonify(
        {
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": platform.config.token_ttl,
            "scope": " ".join(sorted(granted)),
        }
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp
