"""Errors users can see, and the one place that renders them."""

from __future__ import annotations

import contextlib
import logging
import re
import secrets

from flask import (
    Flask,
    current_app,
    g,
    has_request_context,
    make_response,
    render_template,
    request,
)
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from lti_app.launch_tokens import came_from_a_pathways_page
from lti_app.tool.keys import ToolKeyError
from lti_app.typed_back import Typed, typed_into_the_form

LOG = logging.getLogger(__name__)


class AppError(Exception):
    """An error whose message is safe and useful to show to the person who caused it."""

    status_code = 400
    title = "Something is not right"

    def __init__(self, user_message: str, *, hint: str = "") -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.hint = hint


class NotFoundError(AppError):
    status_code = 404
    title = "Not found"


class PermissionDeniedError(AppError):
    status_code = 403
    title = "Not allowed"


class LaunchError(AppError):
    """A launch Pathways refused; the hint says what an LMS admin can check."""

    status_code = 400
    title = "Pathways could not start"


class LaunchForbiddenError(LaunchError):
    status_code = 403


class SessionExpiredError(AppError):
    status_code = 401
    title = "Please open Pathways again"


REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id() -> str:
    """The id of this request, for logs and error pages (taken from a proxy if it set one)."""
    if not has_request_context():
        return "-"
    rid = g.get("request_id")
    if rid is None:
        incoming = request.headers.get("X-Request-Id", "")
        # Only an id that looks like one: it goes into every log line of the request, where a
        # line break or control character would let a client write log lines of its own.
        rid = incoming if REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
        g.request_id = rid
    return str(rid)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id()
        return True


def render_error(
    err: AppError, *, title: str | None = None, typed: Typed | None = None
) -> tuple[str, int]:
    """The error page for err, with its status; blueprints that translate their own
    exceptions use this too, so every error page looks and says the same."""
    return (
        render_template(
            "errors/error.html",
            error=err,
            title=title or err.title,
            request_id=request_id(),
            typed=typed,
        ),
        err.status_code,
    )


def _typed_back() -> Typed | None:
    """What a refused form had typed into it, shown back only for a form a Pathways page
    rendered: any other site could post its own words and labels ("Sign in again at...") and
    have Pathways show them on its own address."""
    if request.method != "POST" or not came_from_a_pathways_page():
        return None
    return typed_into_the_form()


def register_error_handlers(app: Flask) -> None:
    """Map AppError to a page with its status; anything unexpected to a 500 with the request id."""

    @app.errorhandler(AppError)
    def _app_error(err: AppError) -> tuple[str, int]:
        # A refused form (the session ended meanwhile, the student left the course) keeps
        # what was typed into it on the page.
        return render_error(err, typed=_typed_back())

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Response | tuple[str, int]:
        if err.code is None or err.code < 400:
            return err.get_response()
        description = err.description or err.name
        if err.code == 413:
            limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
            description = (
                f"What was sent is larger than {limit // 2**20} MB, the most Pathways accepts "
                "at once, so nothing was saved. Choose a smaller file or split it into parts."
            )
        return (
            render_template(
                "errors/error.html",
                error=AppError(description),
                title=err.name,
                request_id=request_id(),
            ),
            err.code,
        )

    @app.errorhandler(CSRFError)
    def _csrf_error(err: CSRFError) -> Response | tuple[str, int]:
        # The CSRF secret comes from the launch token (lti_app.web): once the token has
        # expired, every form fails its CSRF check before any view can say why.
        if g.get("_launch_token_expired"):
            return render_error(
                SessionExpiredError(
                    "Your Pathways session has ended or this link is not valid any more. "
                    "Open Pathways again from your course."
                ),
                typed=_typed_back(),
            )
        # Flask-WTF's own words ("The CSRF token is invalid.") tell a teacher nothing.
        return render_error(
            AppError(
                "This form could not be accepted: it was opened in another Pathways session or "
                "too long ago. Nothing was saved.",
                hint="Reload the page and send the form again.",
            ),
            typed=_typed_back(),
        )

    @app.errorhandler(ToolKeyError)
    def _tool_key_error(err: ToolKeyError) -> tuple[str, int]:
        # A server setting, not the request: "unexpected error" sent teachers to retry, and
        # the operator to the traceback to learn which setting. The page names no file path.
        LOG.error("tool key unusable rid=%s: %s", request_id(), err)
        return (
            render_template(
                "errors/error.html",
                error=AppError(
                    f"{err.for_people} Nothing was sent to the LMS.",
                    hint="Give whoever runs Pathways the request id below.",
                ),
                title="Pathways is not set up right",
                request_id=request_id(),
            ),
            503,
        )

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response | tuple[str, int]:
        # The page below may read through the request's session (the navigation, the launch);
        # after a database error that session refuses to until it is rolled back.
        failed_session = g.get("_db_session")
        if failed_session is not None:
            # With the database gone there is nothing to roll back.
            with contextlib.suppress(SQLAlchemyError):
                failed_session.rollback()
        if _database_unavailable(err):
            # Down, restarting, or out of connections: the request was fine and will work
            # again, so say so (503 and Retry-After, as /healthz does) instead of "unexpected".
            LOG.error("database unavailable rid=%s: %s", request_id(), err.__class__.__name__)
            response = make_response(
                render_template(
                    "errors/error.html",
                    error=AppError(
                        "Pathways cannot reach its database just now, so nothing was read or "
                        "saved. Please try again in a minute.",
                        hint="If it lasts, give your administrator the request id below.",
                    ),
                    title="Try again in a minute",
                    request_id=request_id(),
                ),
                503,
            )
            response.headers["Retry-After"] = "30"
            return response
        LOG.error("unexpected error rid=%s", request_id(), exc_info=err)
        return (
            render_template(
                "errors/error.html",
                error=AppError(
                    "Pathways hit an unexpected problem. Please try again; if it keeps "
                    "happening, give your administrator the request id below."
                ),
                title="Unexpected error",
                request_id=request_id(),
            ),
            500,
        )

    @app.after_request
    def _add_request_id(response: Response) -> Response:
        # gunicorn's access line prints this header (config/gunicorn.conf.py): one id joins
        # the page a teacher reports, the app's log lines and the access line of a request.
        response.headers["X-Request-Id"] = request_id()
        return response


def _database_unavailable(err: BaseException) -> bool:
    """Whether the database could not be reached (refused, dropped, or no pooled connection
    free in time), as opposed to a statement it refused."""
    if isinstance(err, PoolTimeoutError):
        return True
    if not isinstance(err, DBAPIError):
        return False
    if err.connection_invalidated:
        return True
    if not isinstance(err, OperationalError | InterfaceError):
        return False
    # psycopg: a failure to connect has no SQLSTATE; class 08 is a lost connection, 57P0x a
    # server shutting down or starting, 53300 no connection slot left.
    sqlstate = getattr(err.orig, "sqlstate", None)
    if hasattr(err.orig, "sqlstate"):
        return sqlstate is None or sqlstate.startswith(("08", "57P0", "53300"))
    # SQLite: the file cannot be opened, or another process holds the write lock too long.
    message = str(err.orig).lower()
    return "unable to open" in message or "locked" in message
