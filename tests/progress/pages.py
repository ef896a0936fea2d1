"""Helpers for driving the student and teacher pages through real launches: find the course
and people a launch created, follow in-frame links and submit forms with their tokens."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.db import Database
from lti_app.demo.browser import HtmlForm, parse_forms
from lti_app.demo.server import RunningPlatform
from lti_app.tool.models import Context, Person, Platform

_HREF = re.compile(r'href="([^"]+)"')


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


@contextmanager
def unit_of_work(database_url: str) -> Iterator[Session]:
    """A committed unit of work, as another request would make it."""
    db = Database(database_url)
    try:
        with db.begin() as session:
            yield session
    finally:
        db.dispose()


def _platform_id(session: Session, lms: RunningPlatform) -> int:
    config = lms.platform.config
    platform_id = session.scalar(
        select(Platform.id).where(
            Platform.issuer == config.issuer, Platform.client_id == config.client_id
        )
    )
    assert platform_id is not None
    return platform_id


def context_id(session: Session, lms: RunningPlatform, course: str = "course-bio9") -> int:
    """The Context row a launch of `course` from this LMS created."""
    row = session.scalar(
        select(Context.id).where(
            Context.platform_id == _platform_id(session, lms), Context.context_id == course
        )
    )
    assert row is not None, f"launch into {course} first"
    return row


def person_id(session: Session, lms: RunningPlatform, sub: str) -> int:
    row = session.scalar(
        select(Person.id).where(Person.platform_id == _platform_id(session, lms), Person.sub == sub)
    )
    assert row is not None, f"launch as {sub} first"
    return row


def link(response: httpx.Response, contains: str) -> str:
    """The absolute URL of the first link whose href contains `contains`."""
    for href in _HREF.findall(response.text):
        href = html.unescape(href)
        if contains in href:
            return str(response.url.join(href))
    raise AssertionError(f"no link with {contains!r} in {response.url}")


def form(response: httpx.Response, action_contains: str) -> HtmlForm:
    """The first form whose action contains `action_contains`."""
    for found in parse_forms(response.text, str(response.url)):
        if action_contains in html.unescape(found.action):
            found.action = html.unescape(found.action)
            return found
    raise AssertionError(f"no form posting to {action_contains!r} in {response.url}")


def has_form(response: httpx.Response, action_contains: str) -> bool:
    return any(
        action_contains in html.unescape(f.action)
        for f in parse_forms(response.text, str(response.url))
    )


def post(
    client: httpx.Client,
    found: HtmlForm,
    data: Mapping[str, str | Sequence[str]] | None = None,
    *,
    follow: bool = True,
) -> httpx.Response:
    """Submit a form with its hidden fields (lt, csrf_token) and the given values."""
    fields: dict[str, Any] = {
        k: v for k, v in found.fields.items() if k in {"lt", "csrf_token"} or data is None
    }
    fields.update(data or {})
    response = client.post(found.action, data=fields)
    if follow and response.is_redirect:
        response = client.get(response.url.join(response.headers["location"]))
    return response


def token_of(response: httpx.Response) -> str:
    """The launch token carried by the page's links."""
    match = re.search(r"[?&](?:amp;)?lt=([A-Za-z0-9_.\-]+)", response.text)
    assert match, "no launch token in the page"
    return match.group(1)


def csrf_of(response: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert match, "no CSRF token in the page"
    return match.group(1)


def url(response: httpx.Response, path: str) -> str:
    """An in-frame URL for `path`, carrying the page's launch token (as a crafted link would)."""
    return str(response.url.join(path)) + f"?lt={token_of(response)}"
