"""Addresses: the tool's own origin as the LMS sees it, and the one a request came from."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import request, url_for

from lti_app.web import settings


def client_address() -> str:
    """The address a request came from, as lockouts count it."""
    # request.remote_addr is the client's own address only behind a configured proxy
    # (TrustedProxyFix); otherwise the peer's, which a client cannot forge.
    return (request.remote_addr or "-")[:64]


def tool_origin() -> str:
    """The tool's origin as the LMS sees it (public_url, or this request's host)."""
    configured = settings().public_url
    if configured:
        parts = urlsplit(configured)
        return f"{parts.scheme}://{parts.netloc}"
    return request.host_url.rstrip("/")


def external_url(endpoint: str, **values: Any) -> str:
    return tool_origin() + url_for(endpoint, **values)
