"""The LMS-facing endpoints: launch, JWKS; and the two homes (login: `login_views`; deep linking:
`deep_link_views`)."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import urlsplit

import jwt
from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    render_template,
    request,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from lti_app.addresses import tool_origin
from lti_app.errors import AppError, LaunchError
from lti_app.http import origin_of
from lti_app.tool.cache import clear_all
from lti_app.tool.jwks import JwksCache
from lti_app.tool.keys import JWKS_MAX_AGE_SECONDS, KeyRing
from lti_app.tool.launch import (
    STARTED_ELSEWHERE,
    STARTED_ELSEWHERE_HINT,
    ValidatedLaunch,
    validate_launch,
)
from lti_app.tool.login import (
    PLAIN_HTTP,
    PLAIN_HTTP_HINT,
    LoginState,
    load_login_state,
    login_was_used,
    state_cookie_name,
    storage_key,
)
from lti_app.tool.messages import CLAIM, DEEP_LINKING_REQUEST, SUBMISSION_REVIEW_REQUEST
from lti_app.tool.models import Platform
from lti_app.tool.refusals import log_failure, refused_by_the_lms
from lti_app.tool.registrations import PendingDeploymentError
from lti_app.tool.review import review_page
from lti_app.tool.roles import CourseRole
from lti_app.tool.services import LaunchContext, sync_launch
from lti_app.web import (
    current_launch,
    current_launch_token,
    db_session,
    set_current_launch,
    set_history_url,
    settings,
)

LOG = logging.getLogger(__name__)
bp = Blueprint("tool", __name__)

STORAGE_SECRET_FIELD = "lti_storage_secret"  # noqa: S105 - a field name
LAUNCH_HANDLERS = "lti_app.launch_handlers"
"""Callables (session, launch context, platform) that a feature registers to act on a
successful launch in its transaction. Every launch runs them: each returns at once, without a
statement, for a launch that is none of its business."""
LINK_PAGES = "lti_app.link_pages"
"""[page(session, ctx) -> str or None]: where a resource link's launch lands instead of the
role's home (say, a student opening a competency's link lands on that competency). Every
launch asks them too, so the same rule holds."""
LAUNCH_SESSION_SECONDS = 12 * 3600


def _keyring() -> KeyRing:
    ring: KeyRing = current_app.extensions["lti_app.keyring"]
    return ring


def _jwks_cache() -> JwksCache:
    cache: JwksCache = current_app.extensions["lti_app.jwks"]
    return cache


def _cookies_partitioned() -> bool:
    """Whether the cookies this response sets should be Partitioned (CHIPS).

    In the LMS's cross-site frame a browser that blocks third-party cookies keeps ours only when
    they are Partitioned (Chrome when set to block them; Safari 26.2 and later). A page in a
    window of its own (`Sec-Fetch-Dest: document`) is first-party, where partitioning protects
    nothing, and where Safari 26.2 was seen to lose partitioned cookies across the cross-site
    hops of a sign-in (WebKit bugs 292975, 306194; pretix/pretix#5843): a launch is exactly
    that, Pathways → LMS → Pathways.
    """
    return settings().secure_cookies and request.headers.get("Sec-Fetch-Dest") != "document"


def set_frame_cookie(response: Response, name: str, value: str, max_age: int, path: str) -> None:
    secure = settings().secure_cookies
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        secure=secure,
        # The LMS embeds us cross-site: only SameSite=None cookies are sent in its frame, and
        # only Partitioned ones where the browser blocks third-party cookies.
        samesite="None" if secure else "Lax",
        partitioned=_cookies_partitioned(),
    )


def delete_frame_cookie(response: Response, name: str, path: str) -> None:
    # With the attributes it was set with: in the LMS's cross-site frame a browser ignores a
    # Set-Cookie that is not SameSite=None; Secure (RFC 6265bis, SameSite), and only a Partitioned
    # one reaches a partitioned cookie (CHIPS, https://github.com/privacycg/CHIPS). A bare
    # delete_cookie() left every login's state cookie in the browser until it expired.
    set_frame_cookie(response, name, "", 0, path)


def served_over_plain_http() -> bool:
    """Whether the browser reached Pathways over plain HTTP at another computer's address while
    its cookies are Secure: browsers then drop every cookie it sets, and no login can be bound to
    its browser by a cookie. Localhost and loopback addresses count as secure to browsers, and a
    browser sends Fetch Metadata (`Sec-Fetch-*`) only to an address it counts as secure (say,
    HTTPS at a proxy whose forwarded scheme we are not told)."""
    if not settings().secure_cookies or "Sec-Fetch-Site" in request.headers:
        return False
    parts = urlsplit(tool_origin())
    if parts.scheme != "http":
        return False
    host = (parts.hostname or "").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    mapped = getattr(address, "ipv4_mapped", None)
    return not (address.is_loopback or (mapped is not None and mapped.is_loopback))


def plain_http_refusal() -> LaunchError:
    return LaunchError(PLAIN_HTTP.format(origin=tool_origin()), hint=PLAIN_HTTP_HINT)


@bp.route("/lti/launch", methods=["POST"])
def launch() -> Response | str:
    """Validate the platform's id_token and open Pathways for this person and course."""
    id_token = request.form.get("id_token", "")
    state = request.form.get("state", "")
    if request.form.get("error"):
        refused_by_the_lms(state)
    if not id_token or not state:
        err = LaunchError("The launch is missing its id_token or state. Open Pathways again.")
        log_failure(err)
        raise err
    session = db_session()
    login_platform_id: int | None = None
    login_state: LoginState | None = None
    from_cookie: str | None = None
    try:
        login_state = load_login_state(state, secret_key=settings().secret_key)
        login_platform_id = login_state.platform_id
        # None until the storage page has asked the platform; "" when the platform had nothing.
        from_storage = request.form.get(STORAGE_SECRET_FIELD)
        if from_storage is not None and request.headers.get("Origin") != tool_origin():
            # Only Pathways' own storage page posts this field, with what the platform's
            # storage answered (it takes answers from the platform's origin only). Posted from
            # another site, it is a secret someone read in their own browser and sends along
            # with their own id_token: another person's browser would open Pathways as them
            # (login CSRF, RFC 6749 §10.12; the state must be bound to the browser, OIDC Core
            # §3.1.2.1). Browsers send Origin on every form POST.
            raise LaunchError(STARTED_ELSEWHERE, hint=STARTED_ELSEWHERE_HINT)
        from_cookie = request.cookies.get(state_cookie_name(state))
        secret = from_cookie or from_storage
        if (
            not secret
            and from_storage is None
            and login_state.storage_target
            and not login_was_used(session, login_state)
        ):
            # No cookie reached us: fetch the secret from the platform's storage, post again.
            auth = session.get(Platform, login_state.platform_id)
            platform_origin = origin_of(auth.auth_login_url) if auth else None
            if platform_origin is not None:
                return render_template(
                    "tool/launch_storage.html",
                    id_token=id_token,
                    state=state,
                    storage_key=storage_key(state),
                    storage_target=login_state.storage_target,
                    platform_origin=platform_origin,
                    secret_field=STORAGE_SECRET_FIELD,
                )
        if not secret and served_over_plain_http():
            raise plain_http_refusal()
        validated, ctx = _validate_and_record(session, id_token, login_state, secret)
    except LaunchError as err:
        if isinstance(err, PendingDeploymentError):
            session.commit()  # keep the pending deployment for the admin to approve
        else:
            session.rollback()
        # Only a refused launch needs the claims unverified, to say where it came from.
        try:
            unverified = jwt.decode(id_token, options={"verify_signature": False})
        except (jwt.InvalidTokenError, RecursionError, ValueError):  # only for the log line
            unverified = {}
        log_failure(
            err,
            str(unverified.get("iss", ""))[:255],
            str(unverified.get("azp") or unverified.get("aud") or "")[:255],
            str(unverified.get(CLAIM + "deployment_id", ""))[:255],
            platform_id=login_platform_id,
        )
        if from_cookie:
            # Refused or not, this login is over: its state cookie goes with the error page
            # (otherwise each retry of a refused launch added one for ten minutes).
            g.state_cookie_to_delete = state_cookie_name(state)
        if login_state is not None and login_state.storage_target and from_cookie:
            # A refused launch needs its stored copy no more than a successful one does.
            try:
                auth = session.get(Platform, login_state.platform_id)
            except SQLAlchemyError:  # the refusal itself matters more than the clean-up
                auth = None
            if auth is not None:
                _clear_stored_login(state, login_state, auth.auth_login_url)
        raise
    set_current_launch(ctx)
    for on_launch in current_app.extensions.get(LAUNCH_HANDLERS, []):
        on_launch(session, ctx, validated.platform)
    if login_state.storage_target and from_cookie:
        _clear_stored_login(state, login_state, validated.platform.auth_login_url)
    LOG.info(
        "launch ok iss=%s client_id=%s deployment=%s role=%s message=%s",
        validated.platform.issuer,
        validated.platform.client_id,
        validated.deployment.deployment_id,
        ctx.launch.role,
        ctx.launch.message_type,
    )
    # Pages it may land on other than the home name their own address.
    set_history_url("tool.home")
    try:
        page = _first_page(session, ctx, validated.claims)
    except AppError:
        # The launch was good; only what it asked for is refused (a student's deep-linking
        # request, a review of a student Pathways has not met). The refusal page offers the
        # menu of this launch, whose links need the launch session kept. (First pages refuse
        # before they write: what is committed here is the launch.)
        session.commit()
        g.state_cookie_to_delete = state_cookie_name(state)
        raise
    # One transaction for the launch and its first page: a page that fails keeps no half
    # launch, and the database sees one commit instead of a commit and a second read.
    session.commit()
    response = make_response(page)
    delete_frame_cookie(response, state_cookie_name(state), "/lti/")
    _forget_unsaved_typing(response)
    return response


UNSAVED_TYPING_COOKIE = "pathways_unsaved_"
"""unsaved_forms.js keeps a form's unsaved typing in a cookie named so, where the frame has no
sessionStorage."""


def _forget_unsaved_typing(response: Response) -> None:
    # A launch is someone starting afresh, maybe the next student at a shared computer: typing
    # kept from an earlier launch (set for the whole site by earlier versions of the script)
    # must not travel with their requests.
    for name in request.cookies:
        if name.startswith(UNSAVED_TYPING_COOKIE):
            delete_frame_cookie(response, name, "/")


def _first_page(session: Session, ctx: LaunchContext, claims: dict[str, Any]) -> str:
    if ctx.launch.message_type == DEEP_LINKING_REQUEST:
        return deep_link_views.deep_link_picker(ctx)
    if ctx.launch.message_type == SUBMISSION_REVIEW_REQUEST:
        # Without a student named (Moodle: the column's heading) it lands as the link does.
        return review_page(session, ctx, claims) or _link_page(session, ctx) or render_home(ctx)
    return _link_page(session, ctx) or render_home(ctx)


@bp.get("/lti/launch/started")
def launch_started() -> str:
    """Where a launch through platform storage began, as the browser's history keeps it
    (platform_storage.js): Back from Pathways lands here instead of resending a form."""
    return render_template("tool/launch_started.html")


@bp.after_request
def _delete_refused_state_cookie(response: Response) -> Response:
    name = g.pop("state_cookie_to_delete", None)
    if name:
        delete_frame_cookie(response, name, "/lti/")
    return response


def _clear_stored_login(state: str, login_state: LoginState, auth_login_url: str) -> None:
    """Have the page take the login's copy out of the platform's storage again.

    The cookie carried the login, so the copy put in the platform's storage is not needed:
    Canvas keeps it in the browser's localStorage for good unless we clear it. (The storage
    page clears the key itself when it was the storage that carried it.)
    """
    origin = origin_of(auth_login_url)
    if origin is not None:
        g.lti_storage_to_clear = {
            "key": storage_key(state),
            "target": login_state.storage_target,
            "origin": origin,
        }


def _validate_and_record(
    session: Session, id_token: str, login_state: LoginState, secret: str | None
) -> tuple[ValidatedLaunch, LaunchContext]:
    for attempt in (1, 2):
        validated = validate_launch(
            session,
            id_token=id_token,
            login=login_state,
            presented_secret=secret,
            jwks=_jwks_cache(),
            leeway=settings().clock_skew_seconds,
        )
        try:
            return validated, sync_launch(session, validated, ttl_seconds=LAUNCH_SESSION_SECONDS)
        except IntegrityError:
            # A row this process remembered (tool.cache) was deleted meanwhile: forget them
            # all and run the launch again from the database; its login was rolled back too.
            session.rollback()
            clear_all()
            if attempt == 2:
                raise
            LOG.info("launch met a deleted row; retrying without cached rows")
    raise AssertionError("unreachable")  # pragma: no cover


def _link_page(session: Session, ctx: LaunchContext) -> str | None:
    for page in current_app.extensions.get(LINK_PAGES, []):
        rendered: str | None = page(session, ctx)
        if rendered is not None:
            return rendered
    return None


def render_home(ctx: LaunchContext) -> str:
    """The landing page for this person's role in this course."""
    role = ctx.launch.role
    home = current_app.extensions.get("lti_app.home_renderers", {}).get(role)
    # An LMS admin's console works without a course (Canvas's account navigation).
    if home is not None and (ctx.context is not None or role == CourseRole.ADMIN.value):
        rendered: str = home(ctx)
        return rendered
    if ctx.context is None:
        return render_template("tool/no_context.html", ctx=ctx)
    # Teachers' and learners' homes come from their features; any other role lands here.
    return render_template("tool/guest_home.html", ctx=ctx)


@bp.route("/home")
def home() -> str:
    ctx = current_launch()
    if ctx.is_placing_content:
        # The address the dialog's history keeps for the picker (set_history_url at launch):
        # Back and a reload must find the picker again, not the teacher's dashboard.
        return deep_link_views.deep_link_picker(ctx)
    return render_home(ctx)


@bp.get("/lti/session/token")
def renew_launch_token() -> Response:
    """A fresh launch token for a page left open: frame.js asks every few minutes, so a form
    filled in over a lesson can still be sent once the token it came with has expired."""
    current_launch()
    response = jsonify(token=current_launch_token())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/.well-known/jwks.json")
@bp.route("/lti/jwks")
def jwks() -> Response:
    """The tool's public keys (kid, alg, use on each), for client assertions and deep links."""
    session = db_session()
    snapshot = _keyring().snapshot(session)
    session.commit()  # a key made on first use must be kept
    response = jsonify(snapshot.jwks)
    # Short enough that a rotation reaches platforms well within the grace period; a new key
    # signs only after this has run out (keys.PUBLISH_BEFORE_SIGNING).
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE_SECONDS}"
    return response


# The login and the deep-linking picker share this blueprint (endpoints stay `tool.*`).
from lti_app.tool import deep_link_views, login_views  # noqa: E402, F401 - need `bp` above
