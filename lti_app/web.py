"""Flask glue shared by every feature's views: the request's database session and the
launch session carried by a signed token (so the frame does not depend on cookies).

The token itself is made and read in `launch_tokens`; the CSRF secret it brings is made in
`csrf_binding`; the course's time zone and the other template filters for values on a page
are in `display`."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlencode

from flask import Flask, current_app, g, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from lti_app.csrf_binding import SEALED_FORMS, _bind_csrf_secret, _bind_csrf_to_sealed_field
from lti_app.db import Database
from lti_app.errors import PermissionDeniedError, SessionExpiredError
from lti_app.form_once import form_shown_field
from lti_app.launch_tokens import (
    LAUNCH_TOKEN_FIELD,
    launch_history_key,
    launch_session_id_from_request,
    make_launch_token,
)
from lti_app.mastery.scales import store_default_scale
from lti_app.settings import Settings
from lti_app.tool.services import LaunchContext, load_launch_context

P = ParamSpec("P")
R = TypeVar("R")

LOG = logging.getLogger(__name__)


def settings() -> Settings:
    value: Settings = current_app.extensions["lti_app.settings"]
    return value


def database() -> Database:
    value: Database = current_app.extensions["lti_app.db"]
    return value


def db_session() -> Session:
    """The request's session; rolled back at teardown unless the view committed."""
    sess: Session | None = g.get("_db_session")
    if sess is None:
        sess = database().session_factory()
        g._db_session = sess
    return sess


def _close_session(_exc: BaseException | None) -> None:
    sess: Session | None = g.pop("_db_session", None)
    if sess is not None:
        sess.close()


class MembershipEndedError(PermissionDeniedError):
    title = "No longer in this course"


def current_launch() -> LaunchContext:
    """The launch this request belongs to, or a 401 page that says to open Pathways again."""
    ctx: LaunchContext | None = g.get("_launch_ctx")
    if ctx is not None:
        return ctx
    session_id = launch_session_id_from_request()
    if session_id is not None:
        ctx = load_launch_context(db_session(), session_id)
    if ctx is None:
        if g.get("_launch_token_from_outside"):
            raise SessionExpiredError(
                "Pathways does not open from a copied link, so that nobody else can open it "
                "as you.",
                hint="Open Pathways from your course in the LMS, then go to this page from there.",
            )
        raise SessionExpiredError(
            "Your Pathways session has ended or this link is not valid any more. "
            "Open Pathways again from your course."
        )
    if ctx.left_course:
        # Not kept in g: the error page must not show this course's navigation either.
        LOG.info("launch session refused: membership ended person=%s", ctx.launch.person_id)
        raise MembershipEndedError(
            "You are no longer a member of this course in the LMS, so Pathways cannot open "
            "it for you.",
            hint="Open Pathways again from the LMS. If the LMS still lists you in this "
            "course, that opens it again.",
        )
    if ctx.no_longer_teaches:
        LOG.info("launch session refused: teaching role ended person=%s", ctx.launch.person_id)
        raise PermissionDeniedError(
            "Your role in this course has changed in the LMS: you no longer teach it, so this "
            "Pathways session cannot go on.",
            hint="Open Pathways again from the LMS to use it with the role you have now.",
        )
    if ctx.course_lacks_scale and ctx.context is not None:
        _store_course_scale(ctx.context.id)
    g._launch_ctx = ctx
    return ctx


def _store_course_scale(context_id: int) -> None:
    """Store and commit the default mastery scale of a course that has none, before the page.

    Pages (a GET among them) read the course's scale and name its levels' ids in their forms;
    a scale made inside a GET is rolled back with it, and on PostgreSQL comes back with other
    ids at the form's POST, which then refuses the level it was sent. Committed here, at the
    start of the request (views call current_launch first, through require_role), this commit
    holds only the scale. A course Pathways already knows pays nothing: whether it has a scale
    comes with the launch session's own query.
    """
    session = db_session()
    store_default_scale(session, context_id=context_id)
    session.commit()


def current_launch_or_none() -> LaunchContext | None:
    """The launch already loaded for this request, for templates (no query, no error)."""
    ctx: LaunchContext | None = g.get("_launch_ctx")
    return ctx


def set_current_launch(ctx: LaunchContext) -> None:
    """Used by the launch view, which has just created the session."""
    g._launch_ctx = ctx
    g._launch_session_id = ctx.launch.id
    _bind_csrf_secret(session, ctx.launch.id)


def require_role(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Allow the view only for launches whose course role is one of roles."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            ctx = current_launch()
            if ctx.launch.role not in roles:
                raise PermissionDeniedError("This page is not available to you in this course.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def _request_launch_token() -> str:
    """One signed token per request: every link on a page carries the same one."""
    ctx: LaunchContext | None = g.get("_launch_ctx")
    if ctx is None:
        return ""
    cached: tuple[str, str] | None = g.get("_launch_token")
    if cached is None or cached[0] != ctx.launch.id:
        cached = (ctx.launch.id, make_launch_token(ctx.launch.id))
        g._launch_token = cached
    return cached[1]


def launch_url(endpoint: str, **values: Any) -> str:
    """url_for that carries a fresh launch token, so in-frame links need no cookie."""
    token = _request_launch_token()
    if token:
        values[LAUNCH_TOKEN_FIELD] = token
    return url_for(endpoint, **values)


_ID_SLOT = 987654321987


def path_of(endpoint: str) -> str:
    """url_for(endpoint) of a route without arguments, built once (every launch's page asks)."""
    return _path_of(request.script_root, endpoint)


@functools.lru_cache(maxsize=64)
def _path_of(_script_root: str, endpoint: str) -> str:
    return url_for(endpoint)


def token_renewal_seconds(token_ttl: int) -> int:
    """How often a page left open trades its launch token for a fresh one (frame.js): three
    tries within the token's life, at most every ten minutes."""
    return max(15, min(600, token_ttl // 3))


def _renewal_seconds() -> int:
    return token_renewal_seconds(settings().launch_token_ttl)


def set_history_url(endpoint: str, **values: Any) -> None:
    """The address the browser keeps for a page answered to the launch's POST.

    Without it the frame's history holds a form submission: after a click to another page,
    the browser's Back button showed its "Confirm form resubmission" error in the frame
    (ERR_CACHE_MISS). frame.js puts this GET address in the history entry instead.
    """
    if values:
        g.history_url = launch_url(endpoint, **values)
    else:  # the launch's home: no url_for on the hot path (tokens are URL-safe)
        g.history_url = f"{path_of(endpoint)}?{LAUNCH_TOKEN_FIELD}={_request_launch_token()}"


def launch_url_by_id(endpoint: str, key: str) -> Callable[[int], str]:
    """A fast builder of launch_url(endpoint, **{key: id}) for long lists of links.

    Building a URL costs ~20 µs; a class list of 300 students has hundreds of links.
    """
    template = launch_url(endpoint, **{key: _ID_SLOT})
    slot = str(_ID_SLOT)
    return lambda item_id: template.replace(slot, str(int(item_id)), 1)


def current_launch_token() -> str:
    return _request_launch_token()


def _current_launch_history_key() -> str:
    ctx: LaunchContext | None = g.get("_launch_ctx")
    return launch_history_key(ctx.launch.id) if ctx is not None else ""


class LaunchAwareSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie session, plus a CSRF secret derived from the launch token.

    Inside an LMS frame the browser may drop our cookie; Flask-WTF keeps its CSRF secret in
    the session, so we derive that secret from the launch session instead. Forms then
    validate whether or not the cookie arrived, and no write is needed to keep it.
    """

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        # Flask builds a new serializer for every request; one per key set is enough.
        keys = (app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached: tuple[tuple[Any, ...], URLSafeTimedSerializer | None] | None = getattr(
            self, "_serializer", None
        )
        if cached is None or cached[0] != keys:
            cached = (keys, super().get_signing_serializer(app))
            self._serializer = cached
        return cached[1]

    def open_session(self, app: Flask, req: Any) -> SecureCookieSession | None:
        sess = super().open_session(app, req)
        if sess is None:
            return None
        launch_id = launch_session_id_from_request()
        if launch_id:
            _bind_csrf_secret(sess, launch_id)
        elif req.method == "POST" and app.extensions.get(SEALED_FORMS):
            # Before Flask-WTF's check runs (a before_request hook), which then needs no cookie;
            # Flask matches the URL only after opening the session.
            _bind_csrf_to_sealed_field(app, req, sess)
        return sess


def add_nav_item(
    app: Flask, endpoint: str, label: str, roles: tuple[str, ...], order: int = 50
) -> None:
    """Put a link in the in-frame navigation for launches with one of these course roles.

    Features call this when their blueprint is registered (``bp.record_once``), so no shared
    template lists every page.
    """
    items: list[tuple[int, str, str, tuple[str, ...]]] = app.extensions.setdefault(
        "lti_app.nav", []
    )
    items.append((order, endpoint, label, roles))
    items.sort()


def nav_items() -> list[tuple[str, str, bool]]:
    """(url, label, is_current) for the current launch's role, in order."""
    ctx: LaunchContext | None = g.get("_launch_ctx")
    if ctx is None or ctx.context is None:
        return []
    if ctx.is_placing_content:
        # The LMS's "add content" dialog: a page left the picker with no way back to it, and
        # only the picker's answer closes the dialog.
        return []
    current = request.endpoint
    token = _request_launch_token()
    query = "?" + urlencode({LAUNCH_TOKEN_FIELD: token}) if token else ""
    return [
        (_nav_path(endpoint) + query, label, endpoint == current)
        for _order, endpoint, label, roles in current_app.extensions.get("lti_app.nav", [])
        if ctx.launch.role in roles
    ]


def _nav_path(endpoint: str) -> str:
    """The path of a page without parameters, built once per mount point: every page (the
    launch's first included) shows the navigation, and url_for costs ~20 µs a link."""
    paths: dict[tuple[str, str], str] = current_app.extensions.setdefault("lti_app.nav_paths", {})
    key = (request.script_root, endpoint)
    path = paths.get(key)
    if path is None:
        path = paths[key] = url_for(endpoint)
    return path


def _not_stored_by_default(response: Response) -> Response:
    # Pages name students, their levels and notes: no browser or shared cache may keep them
    # (a school's shared computers, a proxy). Responses that choose their own caching keep it.
    if "Cache-Control" not in response.headers and request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def init_web(app: Flask) -> None:
    app.teardown_appcontext(_close_session)
    app.after_request(_not_stored_by_default)
    app.session_interface = LaunchAwareSessionInterface()
    app.jinja_env.globals.update(
        launch_url=launch_url,
        launch_token=current_launch_token,
        launch_history_key=_current_launch_history_key,
        nav_items=nav_items,
        launch_url_by_id=launch_url_by_id,
        path_of=path_of,
        token_renewal_seconds=_renewal_seconds,
        current_launch_or_none=current_launch_or_none,
        LAUNCH_TOKEN_FIELD=LAUNCH_TOKEN_FIELD,
        form_shown_field=form_shown_field,
    )
