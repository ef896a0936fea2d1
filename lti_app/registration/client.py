"""The two HTTP calls of Dynamic Registration: fetch the platform's configuration, POST ours.

Neither the registration token nor a response body is ever logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from lti_app.registration.errors import PlatformRefusedError

LOG = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
START_AGAIN = "Start the registration again from the LMS."


def _read_json(response: httpx.Response, what: str) -> Any:
    chunks = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PlatformRefusedError(f"The LMS's {what} is too large to be real (over 1 MB).")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError as err:
        raise PlatformRefusedError(
            f"The LMS's {what} is not JSON, so Pathways cannot read it.",
            hint="The address may point at a login page or an error page. " + START_AGAIN,
        ) from err


def _error_detail(response: httpx.Response) -> str:
    """The platform's own error words, when it gave some (OAuth style or plain)."""
    try:
        body = json.loads(response.read()[:20000])
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [body.get(k) for k in ("error", "error_description", "message", "errors")]
    text = " ".join(p if isinstance(p, str) else json.dumps(p) for p in parts if p)
    return text[:300]


def _host(url: str) -> str:
    return urlsplit(url).netloc


def fetch_platform_configuration(http: httpx.Client, url: str, registration_token: str) -> Any:
    """GET the platform's OpenID configuration (with the token as bearer: Canvas needs it)."""
    headers = {"Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
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
            return _read_json(response, "configuration")
    except httpx.HTTPError as err:
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
    try:
        with http.stream("POST", endpoint, headers=headers, content=json.dumps(body)) as response:
            if response.status_code in (200, 201):
                return _read_json(response, "answer to the registration")
            detail = _error_detail(response)
            status = response.status_code
    except httpx.HTTPError as err:
        LOG.warning("registration post failed host=%s error=%s", _host(endpoint), type(err))
        raise PlatformRefusedError(
            f"Pathways could not reach the LMS at {_host(endpoint)} to register.",
            hint="Nothing was saved in Pathways. Check in the LMS whether a Pathways tool was "
            "created; remove it if so, then " + START_AGAIN[0].lower() + START_AGAIN[1:],
        ) from err
    LOG.warning("registration refused host=%s status=%s", _host(endpoint), status)
    said = f' The LMS said: "{detail}".' if detail else ""
    if status in (401, 403):
        raise PlatformRefusedError(
            f"The LMS refused the registration ({status}).{said}",
            hint="The registration link may have expired or been used already. " + START_AGAIN,
        )
    if 400 <= status < 500:
        raise PlatformRefusedError(
            f"The LMS did not accept what Pathways sent ({status}).{said}",
            hint="Nothing was saved in Pathways. Please tell the Pathways operator this message.",
        )
    raise PlatformRefusedError(
        f"The LMS had a problem while registering Pathways ({status}).{said}",
        hint="Nothing was saved in Pathways. Try again in a few minutes.",
    )
