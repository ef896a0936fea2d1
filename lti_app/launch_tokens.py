"""The launch token: a signed launch session id that every in-frame link, form and fetch
carries, so the frame does not depend on cookies (the LMS's iframe may drop them). Made for
each page by `web.launch_url`; read once a request by `launch_session_id_from_request`."""

from __future__ import annotations

import functools
import hashlib
import logging

from flask import current_app, g, request
from itsdangerous import BadPayload, BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.exceptions import RequestEntityTooLarge

from lti_app.settings import Settings

LAUNCH_TOKEN_FIELD = "lt"  # noqa: S105 - a field name
LAUNCH_TOKEN_HEADER = "X-Launch-Token"  # noqa: S105 - a header name
FROM_A_PATHWAYS_PAGE = "same-origin"
"""The only `Sec-Fetch-Site` a launch token is taken with: every link, form and fetch that
carries one is made by a Pathways page (the LMS's own launch carries none). Not `same-site`: an
LMS on the school's domain (moodle.school.edu beside pathways.school.edu) is same-site, and a
link copied out of the frame into one of its pages would open Pathways as whoever copied it."""
LOG = logging.getLogger(__name__)


def _settings() -> Settings:
    value: Settings = current_app.extensions["lti_app.settings"]
    return value


def _serializer() -> URLSafeTimedSerializer:
    return _launch_token_serializer(_settings().secret_key)


@functools.lru_cache(maxsize=8)
def _launch_token_serializer(secret_key: str) -> URLSafeTimedSerializer:
    # Built once per key: a serializer is immutable, and building one costs ~15 µs a request.
    return URLSafeTimedSerializer(secret_key, salt="pathways-launch")


def make_launch_token(launch_session_id: str) -> str:
    return _serializer().dumps(launch_session_id)


def _posted_token() -> str | None:
    try:
        return request.form.get(LAUNCH_TOKEN_FIELD)
    except RequestEntityTooLarge:
        # Read while the session opens, where no error handler runs: leave the answer to the
        # next read of the form (CSRF, the view), which gets the app's 413 page.
        return None


def _token_from_request() -> str | None:
    return (
        request.headers.get(LAUNCH_TOKEN_HEADER)
        or _posted_token()
        or request.args.get(LAUNCH_TOKEN_FIELD)
    )


def came_from_a_pathways_page() -> bool:
    """Whether this request carries a launch token Pathways signed (expired or not), sent from
    a Pathways page: only then did a Pathways page render the form it posts."""
    # A token sent from another site is never read (launch_session_id_from_request): only a
    # valid one or an expired one of ours is left.
    return launch_session_id_from_request() is not None or bool(g.get("_launch_token_expired"))


def launch_session_id_from_request() -> str | None:
    """The launch session named by a valid, unexpired token in this request, if any."""
    if "_launch_session_id" in g:
        value: str | None = g._launch_session_id
        return value
    token = _token_from_request()
    session_id: str | None = None
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if token and fetch_site is not None and fetch_site.lower() != FROM_A_PATHWAYS_PAGE:
        # The browser says this address was typed, pasted or bookmarked (none), or followed
        # from a page that is not Pathways' own: a launch token copied out of the frame (shared
        # with a classmate, posted in the LMS) opens nothing. A browser without Fetch Metadata
        # sends no such header at all.
        LOG.info("launch token refused: request from Sec-Fetch-Site=%s", fetch_site[:40])
        g._launch_token_from_outside = True
        token = None
    if token:
        try:
            session_id = _serializer().loads(token, max_age=_settings().launch_token_ttl)
        except SignatureExpired as expired:
            # Only checked once the signature holds: an expired token is still ours.
            g._launch_token_expired = True
            _offer_the_newest_token(expired)
        except BadSignature:
            session_id = None
    g._launch_session_id = session_id
    return session_id


def launch_history_key(launch_session_id: str) -> str:
    """The name under which frame.js keeps a launch session's newest token in the tab
    (sessionStorage, or its partitioned cookie): one per launch session, so no page ever takes
    another course's or person's token."""
    return hashlib.sha256(b"pathways-launch:" + launch_session_id.encode()).hexdigest()[:32]


def _offer_the_newest_token(expired: SignatureExpired) -> None:
    """Let the refusal page of an expired token retry with its launch session's newest one.

    Back to a page opened longer ago than a token lives brings its expired token back, while
    the page just left kept renewing its own (frame.js) and the launch session lives on: the
    refusal page then tries once more with the newest token this tab kept for that launch
    session. Only for a page the browser opens (not a form or fetch): only a GET can simply be
    tried again.
    """
    if request.method != "GET" or request.headers.get("Sec-Fetch-Mode", "navigate") != "navigate":
        return
    if not isinstance(expired.payload, bytes):
        return
    try:
        # The signature checked out before the age did: this launch session id is our own.
        launch_id = _serializer().load_payload(expired.payload)
    except BadPayload:
        return
    if isinstance(launch_id, str):
        g.expired_launch_key = launch_history_key(launch_id)
