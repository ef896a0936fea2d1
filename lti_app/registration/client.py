"""The two HTTP calls of Dynamic Registration: fetch the platform's configuration, POST ours.

Neither the registration token nor a response body is ever logged. Every answer is bounded in
size and in time: the read timeout bounds each wait for a byte, not an answer dripped byte by
byte, so the body is read against a deadline for the whole exchange (which says "too slow"),
and the connection itself ends a moment later (lti_app.http.GuardedBackend: headers too).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from lti_app.registration.errors import (
    NOTHING_SAVED,
    PlatformRefusedError,
    RegistrationRefusedError,
)
from lti_app.registration.platform_configuration import plain_text

LOG = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_ERROR_BYTES = 20_000
START_AGAIN = "Start the registration again from the LMS."


def _deadline(http: httpx.Client) -> float:
    """When an exchange with the LMS must be over: one connect plus one read timeout."""
    timeout = http.timeout
    return time.monotonic() + (timeout.connect or 5.0) + (timeout.read or 15.0)


class _BodyTooLargeError(Exception):
    pass


class _BodyTooSlowError(Exception):
    pass


def _read_body(response: httpx.Response, *, limit: int, deadline: float) -> bytes:
    chunks = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLargeError
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise _BodyTooSlowError
    return b"".join(chunks)


def _read_json(response: httpx.Response, what: str, deadline: float, hint: str = "") -> Any:
    try:
        body = _read_body(response, limit=MAX_BODY_BYTES, deadline=deadline)
    except _BodyTooLargeError:
        raise PlatformRefusedError(
            f"The LMS's {what} is too large to be real (over 1 MB).", hint=hint
        ) from None
    except _BodyTooSlowError:
        raise PlatformRefusedError(
            f"The LMS took too long to send its {what}, so Pathways stopped waiting.",
            hint=hint or "The LMS may be overloaded. " + START_AGAIN,
        ) from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as err:  # RecursionError: absurdly deep nesting
        raise PlatformRefusedError(
            f"The LMS's {what} is not JSON, so Pathways cannot read it.",
            hint=hint or "The address may point at a login page or an error page. " + START_AGAIN,
        ) from err


def _words(value: Any, depth: int = 0) -> list[str]:
    """The strings in an error field: OAuth's strings, Canvas's lists of messages or objects."""
    if isinstance(value, str):
        return [value]
    if depth > 3:
        return []
    if isinstance(value, list):
        return [word for item in value[:10] for word in _words(item, depth + 1)]
    if isinstance(value, dict):
        if "message" in value:
            return _words(value["message"], depth + 1)
        return [
            f"{key}: {word}"
            for key, item in list(value.items())[:10]
            for word in _words(item, depth + 1)
        ]
    return []


def _error_detail(response: httpx.Response, token: str, deadline: float) -> str:
    """The platform's own error words, when it gave some; never the registration token."""
    chunks = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_ERROR_BYTES or time.monotonic() > deadline:
                break
    except httpx.HTTPError:
        return ""
    raw = b"".join(chunks)[:MAX_ERROR_BYTES]
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        # Moodle answers its refusals as a few plain words ("missing_registration_token");
        # anything longer or with markup is an error page, not a message.
        words = raw.decode("utf-8", "replace").strip()
        body = {"message": words} if 0 < len(words) <= 300 and "<" not in words else None
    if not isinstance(body, dict):
        return ""
    parts = [
        "; ".join(_words(body.get(key)))
        for key in ("error", "error_description", "message", "errorMessage", "errors")
    ]
    text = plain_text(" ".join(p for p in parts if p), 300)
    if token and len(token) >= 4:
        text = text.replace(token, "[registration token]")
    return text


def _host(url: str) -> str:
    return urlsplit(url).netloc


def fetch_platform_configuration(http: httpx.Client, url: str, registration_token: str) -> Any:
    """GET the platform's OpenID configuration (with the token as bearer: Canvas needs it)."""
    headers = {"Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    deadline = _deadline(http)
    try:
        with http.stream("GET", url, headers=headers) as response:
            if response.status_code in (401, 403):
                raise PlatformRefusedError(
                    f"The LMS refused to show its configuration ({response.status_code}).",
                    hint="The registration link may have expired or been used already. "
                    + START_AGAIN,
                )
            if response.status_code != 200:
                raise PlatformRefusedError(
                    f"The LMS answered {response.status_code} when Pathways asked for its "
                    f"configuration at {_host(url)}.",
                    hint=START_AGAIN,
                )
            return _read_json(response, "configuration", deadline)
    except (httpx.HTTPError, httpx.InvalidURL) as err:
        LOG.warning("registration config fetch failed host=%s error=%s", _host(url), type(err))
        raise PlatformRefusedError(
            f"Pathways could not reach the LMS at {_host(url)} to read its configuration.",
            hint="The LMS must be reachable from the Pathways server. " + START_AGAIN,
        ) from err


def post_client_registration(
    http: httpx.Client, endpoint: str, registration_token: str, body: dict[str, Any]
) -> Any:
    """POST our client registration; return the platform's parsed answer."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    deadline = _deadline(http)
    try:
        with http.stream("POST", endpoint, headers=headers, content=json.dumps(body)) as response:
            if response.status_code in (200, 201):
                return _read_json(
                    response, "answer to the registration", deadline, hint=NOTHING_SAVED
                )
            detail = _error_detail(response, registration_token, deadline)
            status = response.status_code
    except (httpx.HTTPError, httpx.InvalidURL) as err:
        LOG.warning("registration post failed host=%s error=%s", _host(endpoint), type(err))
        raise PlatformRefusedError(
            f"Pathways could not reach the LMS at {_host(endpoint)} to register.",
            hint="Nothing was saved in Pathways. Check in the LMS whether a Pathways tool was "
            "created; remove it if so, then " + START_AGAIN[0].lower() + START_AGAIN[1:],
        ) from err
    LOG.warning("registration refused host=%s status=%s", _host(endpoint), status)
    said = f' The LMS said: "{detail}".' if detail else ""
    if status == 504:
        # A gateway that stopped waiting: the LMS behind it may have registered Pathways.
        raise PlatformRefusedError(
            f"The LMS took too long to answer the registration ({status}).{said}",
            hint="Nothing was saved in Pathways. Check in the LMS whether a Pathways tool was "
            "created; remove it if so, then " + START_AGAIN[0].lower() + START_AGAIN[1:],
        )
    if status in (401, 403):
        raise RegistrationRefusedError(
            f"The LMS refused the registration ({status}).{said}",
            hint="The registration link may have expired or been used already. " + START_AGAIN,
        )
    if 400 <= status < 500:
        raise RegistrationRefusedError(
            f"The LMS did not accept what Pathways sent ({status}).{said}",
            hint="Nothing was saved in Pathways. Please tell the Pathways operator this message.",
        )
    raise RegistrationRefusedError(
        f"The LMS had a problem while registering Pathways ({status}).{said}",
        hint="Nothing was saved in Pathways. Try again in a few minutes: go back and press "
        "Register Pathways again.",
    )
