"""What a refused launch leaves behind: one log line and a record for the admin console (no
token, no secret), and for an LMS's own refusal of the login, a hint per OIDC error."""

from __future__ import annotations

import logging
import re
import secrets
from typing import NoReturn

from flask import request
from sqlalchemy.exc import SQLAlchemyError

from lti_app.errors import LaunchError, request_id
from lti_app.tool.login import PURGE_ONE_IN, load_login_state, purge_launch_failures
from lti_app.tool.models import LaunchFailure, Platform
from lti_app.web import database, db_session, settings

LOG = logging.getLogger(__name__)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def printable(value: str) -> str:
    """What a refused launch claimed, fit for one log line and a database row: control
    characters (a forged second log line, a NUL PostgreSQL cannot store) and lone surrogates
    (valid JSON escapes that no database or log file can encode as UTF-8) become '?'."""
    return _CONTROL_CHARACTERS.sub("?", value)


def log_failure(
    err: LaunchError,
    issuer: str = "",
    client_id: str = "",
    deployment_id: str = "",
    platform_id: int | None = None,
) -> None:
    issuer, client_id, deployment_id = (
        printable(issuer),
        printable(client_id),
        printable(deployment_id),
    )
    reason = printable(err.user_message)
    LOG.warning(
        "launch rejected iss=%s client_id=%s deployment=%s reason=%s",
        issuer,
        client_id,
        deployment_id,
        reason,
    )
    # End the request's transaction first: on SQLite it holds the write lock we need here.
    db_session().rollback()
    try:
        # Its own transaction: the request's is rolled back with the failed launch.
        with database().begin() as own:
            own.add(
                LaunchFailure(
                    platform_id=platform_id,
                    issuer=issuer[:255],
                    client_id=client_id[:255],
                    deployment_id=deployment_id[:255],
                    reason=reason[:2000],
                    request_id=request_id(),
                )
            )
            if secrets.randbelow(PURGE_ONE_IN) == 0:
                purge_launch_failures(own)
    except Exception:  # the launch error must still be shown if logging it fails
        LOG.exception("could not store launch failure")


LMS_REFUSAL_HINTS = {
    # Moodle's mod/lti/auth.php posts these back with the state instead of an id_token.
    "unauthorized_client": "The client ID registered in Pathways is not the one the LMS gave "
    "this tool: an LMS administrator can compare the two (lti-app platform show).",
    "access_denied": "The person signed in to the LMS changed during the launch: open "
    "Pathways again from the course.",
    "invalid_request": "The LMS lost track of this launch (its session may have ended): open "
    "Pathways again from the course. If it keeps happening, an LMS administrator can check "
    "the tool's redirect URI and login URL in the LMS.",
}


def refused_by_the_lms(state: str) -> NoReturn:
    """The LMS answered the login with an OIDC error (OIDC Core §3.1.2.6) instead of an
    id_token: say so, and log it under the registration the state names, for the admin."""
    error = printable(request.form.get("error", ""))[:100]
    description = printable(request.form.get("error_description", ""))[:500]
    err = LaunchError(
        f"The LMS refused the login: {error} {description}".strip(),
        hint=LMS_REFUSAL_HINTS.get(error, ""),
    )
    platform: Platform | None = None
    try:
        platform_id = load_login_state(state, secret_key=settings().secret_key).platform_id
        platform = db_session().get(Platform, platform_id)
    except (LaunchError, SQLAlchemyError):  # nothing to name it by; it is logged all the same
        platform = None
    if platform is None:
        log_failure(err)
    else:
        log_failure(err, platform.issuer, platform.client_id, platform_id=platform.id)
    raise err
