"""The admin console, for an LMS administrator's launch or the Pathways operator.

An LMS administrator (system or institution Administrator) sees only the registration they
launched from: a Platform is (issuer, client_id), and Canvas Cloud's issuer is shared by every
institution, so the issuer alone never widens the view. The operator (admin secret from the
settings) sees every registration and alone may rotate the tool's keys, which every
registration shares.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import cast

from flask import (
    Blueprint,
    Flask,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from lti_app.addresses import client_address
from lti_app.admin.models import SecretPurpose
from lti_app.admin.services import (
    SIGN_IN_MAX_FAILURES,
    SIGN_IN_WINDOW,
    forget_sign_in_failures,
    load_console,
    record_sign_in_failure,
    secret_matches,
    set_deployment_status,
    sign_in_locked,
)
from lti_app.db import DATABASE_ID_MAX
from lti_app.errors import AppError, PermissionDeniedError, SessionExpiredError
from lti_app.launch_tokens import LAUNCH_TOKEN_FIELD, LAUNCH_TOKEN_HEADER
from lti_app.tool.key_rotation import rotate_keys
from lti_app.tool.keys import KeyRing
from lti_app.tool.models import DeploymentStatus
from lti_app.tool.roles import CourseRole, is_lms_admin
from lti_app.tool.services import LaunchContext
from lti_app.web import add_nav_item, current_launch, db_session, launch_url, settings

LOG = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin")

OPERATOR_KEY = "pathways_operator_at"
OPERATOR_FINGERPRINT_KEY = "pathways_operator_fp"
"""A fingerprint of the admin secret the operator signed in with: changing the secret (say,
after it leaked) signs out every operator session made with the old one."""
OPERATOR_SEEN_KEY = "pathways_operator_seen"
"""When the operator last used the console; idle longer than settings.admin_idle_minutes and
the session ends (a console left open on a shared or unlocked computer)."""
OPERATOR_SESSION_SECONDS = 8 * 3600
ACTIONS = {"approve": DeploymentStatus.ACTIVE, "disable": DeploymentStatus.DISABLED}
NOTICES = {
    "approve": "The deployment is approved: launches from it now open Pathways.",
    "disable": "The deployment is disabled: launches from it are refused.",
    "rotated": "A new key is published; it signs in about 6 minutes, once every LMS can "
    "have seen it. The old one stays published for its grace period.",
}


@dataclass(frozen=True)
class Viewer:
    """Who is looking at the console, and which registrations they may see."""

    is_operator: bool
    platform_ids: tuple[int, ...] | None
    """None: every registration (the operator)."""
    launch: LaunchContext | None = None


def _has_launch_token() -> bool:
    return bool(
        request.headers.get(LAUNCH_TOKEN_HEADER)
        or request.form.get(LAUNCH_TOKEN_FIELD)
        or request.args.get(LAUNCH_TOKEN_FIELD)
    )


OPERATOR_ONLY_ENDPOINTS = frozenset({"admin.login", "admin.logout"})


def may_be_framed() -> bool:
    """Whether this admin page may show in the LMS frame: a console request that carries a
    launch token, valid or not. An expired one is answered with "open Pathways again", which
    the frame must show rather than the browser's "refused to connect"; with a token, the
    launch and never an operator cookie decides (current_viewer), so no operator authority is
    on such a page. The operator's sign-in, and any page without a token, are framed by no
    one."""
    if request.endpoint in OPERATOR_ONLY_ENDPOINTS:
        return False
    try:
        return _has_launch_token()
    except HTTPException:  # a body too large (or malformed) to read names no launch
        return False


def _secret_fingerprint(secret: str) -> str:
    # Keyed with the app's secret key: the cookie is signed, not encrypted, so it must not
    # carry anything that helps guess the admin secret.
    key = str(current_app.secret_key or "").encode()
    return hmac.new(key, b"operator:" + secret.encode(), hashlib.sha256).hexdigest()


def _operator_signed_in() -> bool:
    """Whether this browser holds a signed-in operator session (expired or idle: no)."""
    secret = settings().admin_secret
    started = session.get(OPERATOR_KEY)
    fingerprint = session.get(OPERATOR_FINGERPRINT_KEY)
    return (
        bool(secret)
        and isinstance(started, int | float)
        and 0 <= time.time() - started < OPERATOR_SESSION_SECONDS
        and isinstance(fingerprint, str)
        and hmac.compare_digest(fingerprint, _secret_fingerprint(secret))
        and not _operator_idle()
    )


def _operator_idle() -> bool:
    """Whether an operator session here went unused longer than the idle limit."""
    if OPERATOR_KEY not in session:
        return False
    # A cookie from before idle times were kept counts from its sign-in.
    seen = session.get(OPERATOR_SEEN_KEY, session.get(OPERATOR_KEY))
    idle = settings().admin_idle_minutes * 60
    return not (isinstance(seen, int | float) and 0 <= time.time() - seen < idle)


def _is_operator() -> bool:
    """An operator session in this request; using it extends its idle limit."""
    if not _operator_signed_in():
        return False
    now = int(time.time())
    if session.get(OPERATOR_SEEN_KEY) != now:
        session[OPERATOR_SEEN_KEY] = now
    return True


def _end_operator_session() -> None:
    for key in (OPERATOR_KEY, OPERATOR_FINGERPRINT_KEY, OPERATOR_SEEN_KEY):
        session.pop(key, None)


def _idle_message() -> str:
    return (
        f"You were signed out of the admin console after {settings().admin_idle_minutes} "
        "minutes without activity. Sign in again to go on."
    )


def viewer_for_launch(ctx: LaunchContext) -> Viewer:
    """An LMS administrator's launch sees its own registration; anyone else is refused."""
    if ctx.launch.role != CourseRole.ADMIN.value and not is_lms_admin(ctx.launch.roles):
        raise PermissionDeniedError(
            "The Pathways admin console is for LMS administrators.",
            hint="Open it from the LMS's admin menu (in Canvas: the account's navigation).",
        )
    return Viewer(is_operator=False, platform_ids=(ctx.launch.platform_id,), launch=ctx)


def current_viewer() -> Viewer:
    """The launch in this request wins over an operator cookie; without either, refuse."""
    if _has_launch_token():
        return viewer_for_launch(current_launch())
    if _is_operator():
        return Viewer(is_operator=True, platform_ids=None)
    if settings().admin_secret and _operator_idle():
        _end_operator_session()
        raise SessionExpiredError(_idle_message(), hint="Operators sign in at /admin/login.")
    raise SessionExpiredError(
        "Please open the admin console from your LMS, or sign in as the Pathways operator.",
        hint="Operators sign in at /admin/login with the admin secret.",
    )


def _render_console(viewer: Viewer) -> str:
    selected: int | None = None
    platform_ids = viewer.platform_ids
    if viewer.is_operator:
        selected = request.args.get("platform", type=int)
        if selected is not None:
            # A number no row can have (too big for the database) matches nothing.
            platform_ids = (selected,) if 0 < selected <= DATABASE_ID_MAX else ()
    data = load_console(db_session(), platform_ids=platform_ids)
    notice = NOTICES.get(request.args.get("notice", ""))
    return render_template(
        "admin/console.html",
        console=data,
        viewer=viewer,
        ctx=viewer.launch,
        selected=selected,
        notice=notice,
        key_file=bool(settings().tool_key_file),
    )


def render_admin_home(ctx: LaunchContext) -> str:
    """Home renderer for the 'admin' role: an admin-placement launch lands on the console."""
    return _render_console(viewer_for_launch(ctx))


@bp.record_once
def _register_home(state: BlueprintSetupState) -> None:
    state.app.extensions.setdefault("lti_app.home_renderers", {})[CourseRole.ADMIN.value] = (
        render_admin_home
    )
    app = cast(Flask, state.app)  # a Flask app registers this blueprint
    add_nav_item(app, "admin.console", "Admin console", (CourseRole.ADMIN.value,))


@bp.get("/")
def console() -> Response | str:
    """The console: registrations, deployments, keys, services, recent errors."""
    if not _has_launch_token() and not _is_operator():
        if settings().admin_secret and _operator_idle():
            _end_operator_session()
            return redirect(url_for("admin.login", signed_out="idle"))
        return redirect(url_for("admin.login"))
    return _render_console(current_viewer())


@bp.post("/deployments/<int:deployment_id>/<action>")
def deployment_action(deployment_id: int, action: str) -> Response:
    """Approve or disable a deployment of one of the viewer's registrations."""
    viewer = current_viewer()
    status = ACTIONS.get(action)
    if status is None:
        raise AppError("Unknown action.")
    if (
        status is DeploymentStatus.DISABLED
        and viewer.launch is not None
        and viewer.launch.launch.deployment_id == deployment_id
    ):
        # Disabling it would end this very session, and no launch from it could undo that.
        raise AppError(
            "You opened Pathways through this deployment, so disabling it here would lock "
            "you out of this console.",
            hint="Disable it from a launch through another deployment, or ask the Pathways "
            "operator.",
        )
    deployment = set_deployment_status(
        db_session(), deployment_id=deployment_id, status=status, platform_ids=viewer.platform_ids
    )
    db_session().commit()
    LOG.info(
        "deployment %s platform=%s deployment=%s by=%s",
        action,
        deployment.platform_id,
        deployment.deployment_id,
        "operator" if viewer.is_operator else "lms-admin",
    )
    return redirect(launch_url("admin.console", notice=action))


@bp.post("/keys/rotate")
def rotate() -> Response:
    """Make a new signing key (operator only: every registration shares the tool's keys)."""
    viewer = current_viewer()
    if not viewer.is_operator:
        raise PermissionDeniedError(
            "Only the Pathways operator can rotate the tool's keys, because every LMS that "
            "uses Pathways shares them."
        )
    if settings().tool_key_file:
        raise AppError(
            "The tool's key comes from a file (LTI_APP_TOOL_KEY_FILE), so it cannot be "
            "rotated here.",
            hint="Rotate it as the README says: the new file in LTI_APP_TOOL_NEXT_KEY_FILE "
            "first, so that LMSs know it before it signs.",
        )
    key, retired = rotate_keys(
        db_session(),
        secret=settings().effective_key_secret,
        grace_days=settings().key_rotation_grace_days,
    )
    db_session().commit()
    keyring: KeyRing = current_app.extensions["lti_app.keyring"]
    keyring.invalidate()
    LOG.info("tool key rotated kid=%s retired=%d", key.kid, len(retired))
    return redirect(url_for("admin.console", notice="rotated"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """The operator signs in with the admin secret from the settings."""
    secret = settings().admin_secret
    error = ""
    if request.method == "POST":
        given = request.form.get("admin_secret", "")
        address = client_address()
        if secret and sign_in_locked(
            db_session(),
            purpose=SecretPurpose.OPERATOR,
            address=address,
            window=SIGN_IN_WINDOW,
            max_failures=SIGN_IN_MAX_FAILURES,
        ):
            # Checked before the secret: a locked-out address learns nothing from its guesses.
            LOG.warning("operator sign-in refused: too many wrong secrets from %s", address)
            page = render_template(
                "admin/login.html",
                error="Too many wrong secrets from this address. Try again in 15 minutes.",
                enabled=True,
                title="Operator sign-in",
            )
            retry_after = str(int(SIGN_IN_WINDOW.total_seconds()))
            return Response(page, 429, {"Retry-After": retry_after})
        if secret and secret_matches(given, secret):
            forget_sign_in_failures(db_session(), purpose=SecretPurpose.OPERATOR, address=address)
            db_session().commit()
            session.clear()
            session[OPERATOR_KEY] = session[OPERATOR_SEEN_KEY] = int(time.time())
            session[OPERATOR_FINGERPRINT_KEY] = _secret_fingerprint(secret)
            LOG.info("operator signed in to the admin console")
            return redirect(url_for("admin.console"))
        LOG.warning("operator sign-in refused from %s", address)
        if secret:
            record_sign_in_failure(
                db_session(), purpose=SecretPurpose.OPERATOR, address=address, window=SIGN_IN_WINDOW
            )
            db_session().commit()
        error = "That is not the admin secret."
    notice = _idle_message() if request.args.get("signed_out") == "idle" and secret else ""
    page = render_template(
        "admin/login.html",
        error=error,
        notice=notice,
        enabled=bool(secret),
        title="Operator sign-in",
    )
    return (page, 403) if error else page


@bp.post("/logout")
def logout() -> Response:
    _end_operator_session()
    return redirect(url_for("admin.login"))
