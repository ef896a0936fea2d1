"""LmsRequestError, and how an LMS's refusal (status, Retry-After, error body) becomes one."""

from __future__ import annotations

import json
import re
from typing import Any

import urllib3

from lti_app.http import MAX_RETRY_AFTER as MAX_RETRY_AFTER  # what the worker caps waits at
from lti_app.http import is_throttled
from lti_app.http import retry_after_seconds as retry_after_seconds
from lti_app.roster.client import UNAUTHORIZED_HINT


class LmsRequestError(Exception):
    """A request to the LMS failed; `retryable` says whether trying later can help.

    `config` marks problems only an LMS admin can fix (token refused, scope not granted):
    nothing is lost, the work waits for them.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        config: bool = False,
        scope: bool = False,
        throttled: bool = False,
        unavailable: bool = False,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.config = config
        self.scope = scope
        """A `config` problem of the scopes asked (not granted, or refused as a set): the token
        is per scope set, and a course whose launch offered other scopes is not held up by it
        (see grades.worker)."""
        self.throttled = throttled
        """The LMS asked Pathways to slow down: the worker pauses the platform, and the
        score keeps its attempts (not the score's fault; see grades.worker)."""
        self.unavailable = unavailable
        """The LMS's token endpoint failed for a while (5xx, no answer, no connection): every
        request to the platform needs a token, so the worker pauses the platform as for a
        throttle, and the score keeps its attempts."""
        if transient is None:
            transient = status is not None and (status >= 500 or status in (408, 425, 429))
        self.transient = retryable and (transient or throttled or unavailable)
        """The LMS is down or struggling (5xx, no answer, no connection, throttling): worth
        trying again for days, not only for the score's tries (see grades.worker)."""


RETRY_PROMISE = re.compile(r"[;,]?\s*(?:Pathways|it) will retry\.?\s*$")


def without_retry_promise(text: str) -> str:
    """The message without its closing "Pathways will retry", for a score that will not be."""
    return RETRY_PROMISE.sub(".", text)


def without_nul(text: str) -> str:
    """PostgreSQL text columns refuse NUL, and an LMS error body may hold one."""
    return text.replace("\x00", "\ufffd")


def error_for(response: urllib3.BaseHTTPResponse, what: str) -> LmsRequestError:
    """The LmsRequestError for an LMS answer of 300 or more to a request for `what`."""
    status = response.status
    data = response.data or b""
    text = without_nul(data[:300].decode("utf-8", errors="replace"))
    retry_after = retry_after_seconds(response.headers.get("retry-after"))
    if is_throttled(status, data):
        return LmsRequestError(
            f"The LMS is throttling Pathways ({status}); it will retry.",
            retryable=True,
            status=status,
            retry_after=retry_after,
            throttled=True,
        )
    if status in (408, 425) or status >= 500:
        return LmsRequestError(
            f"The LMS could not take the {what} ({status}); Pathways will retry.",
            retryable=True,
            status=status,
            retry_after=retry_after,
        )
    if 300 <= status < 400:
        # The pool follows no redirects: the bearer token would go with the request to wherever
        # the LMS points. A redirect says the LMS's address changed (to https, to a new host),
        # which no retry fixes and no score is to blame for: the scores wait for an admin.
        location = without_nul(str(response.headers.get("location", ""))).strip()[:300]
        where = f" to {location}" if location else " without saying where to"
        return LmsRequestError(
            f"The LMS answered the {what} with a redirect ({status}){where}: its address has "
            "probably changed. Pathways does not follow redirects, which would send its access "
            "token elsewhere. An LMS administrator can check the LMS's address in the Pathways "
            "registration and the LMS's own settings; the scores wait until then.",
            retryable=False,
            status=status,
            config=True,
        )
    if status == 401:
        return LmsRequestError(UNAUTHORIZED_HINT, retryable=False, status=401, config=True)
    if status == 403:
        return LmsRequestError(
            "The LMS refused the gradebook request (403). An LMS administrator can check "
            "that Assignment and Grade Services are enabled for Pathways.",
            retryable=False,
            status=status,
            config=True,
        )
    if status == 404:
        # The worker finds out whether the column itself is gone (and re-creates it).
        return LmsRequestError(
            f"The LMS did not find the address of the {what} (404).",
            retryable=False,
            status=status,
        )
    if status == 409:
        return LmsRequestError(
            "The LMS already has a score with this time (409).",
            retryable=True,
            status=status,
        )
    words = _lms_words(data)
    if status == 422:
        # Canvas also answers 422 for an attempt limit or a bad maximum (scores_controller.rb):
        # its own words tell the teacher which.
        said = f' It says: "{words}".' if words else ""
        return LmsRequestError(
            "The LMS does not accept grades for this person: usually they are not an active "
            f"student of the course (422).{said}",
            retryable=False,
            status=status,
        )
    return LmsRequestError(
        f"The LMS refused the {what} ({status}): {words or text}", retryable=False, status=status
    )


def _lms_words(data: bytes) -> str:
    """The message in an LMS's JSON error body (Canvas `errors.message` or a list of them,
    Moodle `reason`, OAuth-style `error_description`), so a teacher reads words, not JSON."""
    try:
        body = json.loads(data[:4000])
    except (ValueError, RecursionError):  # "[[[[…": deeper than the parser goes
        return ""
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors")
    candidates: list[Any] = []
    if isinstance(errors, dict):
        candidates.append(errors.get("message"))
    elif isinstance(errors, list):
        candidates.extend(e.get("message") for e in errors if isinstance(e, dict))
    candidates += [body.get(k) for k in ("reason", "error_description", "message", "error")]
    said = [c.strip() for c in candidates if isinstance(c, str) and c.strip()]
    return without_nul("; ".join(dict.fromkeys(said)))[:300]
