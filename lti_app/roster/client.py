"""The Names and Role Provisioning Services client: the only roster code that speaks HTTP.

Quirks handled here (see shared PLATFORMS.md): follow `Link: <...>; rel="next"` until it is
gone (Canvas gives at most 50 members a page), read header names in any case and Moodle's
curly quotes, never change the case of a URL the LMS gave us, offer the `role` filter, keep
the `differences` link, and explain refusals in words an LMS admin can act on.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import httpx

from lti_app.http import is_throttled, retry_after_seconds, same_origin
from lti_app.tool.client import (
    SCOPE_NRPS,
    ServiceTokenError,
    TokenClient,
)
from lti_app.tool.models import Platform

LOG = logging.getLogger(__name__)

MEMBERSHIPS_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
NRPS_SCOPES = frozenset({SCOPE_NRPS})
# Canvas sends at most 50 members a page and Moodle every member in one: even a 10,000-student
# Moodle course with long names stays far below this.
MAX_PAGE_BYTES = 32 * 1024 * 1024

_LINK = re.compile(r"<([^>]*)>([^<]*)")
_REL = re.compile(r"""rel\s*=\s*["'\u201c\u201d]?([^"'\u201c\u201d;,]*)""", re.IGNORECASE)

UNAUTHORIZED_HINT = (
    "The LMS answered 401 (unauthorized) to a valid access token. This is usually the LMS's "
    "web server dropping the Authorization header (Moodle on Apache: add `CGIPassAuth On` or "
    "a `SetEnvIf Authorization` rule). An LMS administrator should check the web server "
    "configuration."
)

ACCESS_WITHDRAWN = (
    "The LMS withdrew Pathways' access part-way through the roster (401 after the first page "
    "was sent), so Pathways kept the class as it was and will try again later. If this "
    "persists, an LMS administrator can check that Pathways is still enabled (Canvas: its "
    "developer key is on)."
)


SCOPE_REFUSED_HOLD = timedelta(minutes=10)
"""How long a course's launches leave the roster alone after the LMS refused its scope."""
SCOPE_REFUSED = (
    "The LMS has not allowed Pathways to read this course's class list: the course roster "
    "(Names and Role Provisioning) service is not enabled for Pathways, so the roster was not "
    "updated (sending grades does not need it). An LMS administrator can enable it: in "
    f"Canvas, add the scope {SCOPE_NRPS} to Pathways' developer key; in Moodle, set the tool's "
    "'Services' > 'IMS LTI Names and Role Provisioning' to use this service. Until then, "
    f"opening Pathways asks the LMS again at most every {SCOPE_REFUSED_HOLD.seconds // 60} "
    "minutes; “Refresh roster” asks at once."
)
"""Said whenever the token endpoint refuses the roster scope; `sync_lease.begin_sync` reads it
back as the course's last error to hold the course's launch syncs."""


class RosterError(Exception):
    """The roster could not be fetched; the message says what an LMS admin should check."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        scope_refused: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        """Seconds the LMS asked Pathways to wait (Retry-After), if it said."""
        self.scope_refused = scope_refused
        """The LMS does not allow Pathways the roster scope: only its admin can change that."""


@dataclass(frozen=True)
class Member:
    """One member as the LMS sent it; None means the LMS did not send that field."""

    user_id: str
    roles: tuple[str, ...]
    status: str
    name: str | None
    given_name: str | None
    family_name: str | None
    email: str | None
    picture: str | None


@dataclass(frozen=True)
class MembersPage:
    members: list[Member]
    next_url: str | None
    differences_url: str | None


def parse_links(headers: httpx.Headers) -> dict[str, str]:
    """rel -> URL from every Link header (any header case, curly or missing quotes)."""
    links: dict[str, str] = {}
    for value in headers.get_list("link"):
        for url, params in _LINK.findall(value):
            match = _REL.search(params)
            if match:
                for rel in match.group(1).split():
                    links.setdefault(rel.lower(), url.strip())
    return links


def with_query(url: str, **params: str) -> str:
    """Add query parameters without touching the rest of the URL (its case included)."""
    parts = urlsplit(url)
    extra = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    # PostgreSQL refuses NUL in text: one such name would fail the whole sync, every time.
    return value.replace("\x00", "") if isinstance(value, str) else None


# A complete character reference, as Moodle's replace_ampersands_not_followed_by_entity
# (lib/weblib.php) leaves one alone: `&` then 1-8 of [A-Za-z0-9#], then `;`.
_CHARACTER_REFERENCE = re.compile(r"&[A-Za-z0-9#]{1,8};")


def _plain_text(data: dict[str, Any], key: str) -> str | None:
    """A person's name or email as plain text, the way launches carry it.

    Moodle's NRPS runs every name and email through format_string (moodle/moodle
    mod/lti/service/memberships/classes/local/service/memberships.php `users_to_json`;
    lib/classes/formatting.php), which writes `&` as `&amp;` and a stray `<` as `&lt;`,
    while its launches send the raw text. Stored as sent, "Tom & Jerry" read "Tom &amp;
    Jerry" on every page after a roster sync, and flipped back at the next launch. Only
    complete references are decoded, so a bare `&` (or "&copy" with no `;`) stays as it is.
    """
    value = _text(data, key)
    if value is None or "&" not in value:
        return value
    # html.unescape never yields NUL or a lone surrogate (&#0; and &#xD800; become U+FFFD).
    return _CHARACTER_REFERENCE.sub(lambda m: html.unescape(m.group()), value)


def _roles(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # some LMSs send one comma- or space-separated string
        value = re.split(r"[\s,]+", value)
    if not isinstance(value, list):
        return ()
    roles = (r.replace("\x00", "") for r in value if isinstance(r, str))
    return tuple(r for r in roles if r)


def parse_member(data: Any) -> Member | None:
    """A Member from one `members` entry; None for an entry without a usable user_id."""
    if not isinstance(data, dict):
        return None
    raw_id = data.get("user_id")
    # bool is an int subclass: `true` must not become the person "True".
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        return None
    user_id = str(raw_id)
    # NUL is not stripped from an id: "a\x00b" and "ab" would then be one person.
    if not user_id.strip() or "\x00" in user_id:
        return None
    return Member(
        user_id=user_id,
        roles=_roles(data.get("roles")),
        status=_text(data, "status") or "Active",
        name=_plain_text(data, "name"),
        given_name=_plain_text(data, "given_name"),
        family_name=_plain_text(data, "family_name"),
        email=_plain_text(data, "email"),
        picture=_text(data, "picture"),
    )


class NrpsClient:
    """Fetch a course's members page by page with a cached service token."""

    def __init__(self, http: httpx.Client, tokens: TokenClient) -> None:
        self._http = http
        self._tokens = tokens

    def _token(self, platform: Platform) -> str:
        try:
            token = self._tokens.token(platform, NRPS_SCOPES)
        except ServiceTokenError as err:
            if err.error == "invalid_scope":  # none of the scopes is enabled (OAuth 2 error)
                raise RosterError(SCOPE_REFUSED, retryable=False, scope_refused=True) from err
            raise RosterError(
                str(err), retryable=err.retryable, status=err.status, retry_after=err.retry_after
            ) from err
        if SCOPE_NRPS not in token.granted:
            # Only this token: a newer one another sync fetched may hold the scope.
            self._tokens.drop(platform, NRPS_SCOPES, refused=token.value)
            raise RosterError(SCOPE_REFUSED, retryable=False, scope_refused=True)
        return token.value

    def _get(self, platform: Platform, url: str) -> tuple[httpx.Response, bytes]:
        """The answer and, for a 200, its body (other statuses are not read)."""
        for attempt in (1, 2):
            token = self._token(platform)
            headers = {"Authorization": f"Bearer {token}", "Accept": MEMBERSHIPS_TYPE}
            try:
                with self._http.stream("GET", url, headers=headers) as response:
                    if response.status_code == 401 and attempt == 1:
                        # Only this token: a newer one another sync fetched stays (one refresh).
                        self._tokens.drop(platform, NRPS_SCOPES, refused=token)
                        continue
                    # A 403's body tells Canvas's throttle from a refusal (lti_app.http).
                    read = response.status_code in (200, 403)
                    body = self._read(response) if read else b""
                    return response, body
            except httpx.HTTPError as err:
                raise RosterError(
                    f"The LMS roster service did not answer ({type(err).__name__}). "
                    "Pathways will try again later.",
                    retryable=True,
                ) from err
        raise AssertionError("unreachable: the second attempt always returns")  # pragma: no cover

    def _read(self, response: httpx.Response) -> bytes:
        # httpx's read timeout is per read: a page that drips a byte at a time would hold the
        # sync (and a teacher's Refresh) for as long as the LMS likes, so bound the whole body.
        limit = self._http.timeout.read or 15.0
        deadline = time.monotonic() + limit
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_PAGE_BYTES:
                raise RosterError(
                    f"The LMS roster page was larger than {MAX_PAGE_BYTES // (1024 * 1024)} MB, "
                    "so Pathways did not read it. An LMS administrator can check that the "
                    "roster service address reaches the LMS's roster service.",
                    retryable=False,
                    status=response.status_code,
                )
            if time.monotonic() > deadline:
                raise RosterError(
                    f"The LMS roster service took more than {limit:g} s to send a page. "
                    "Pathways will try again later.",
                    retryable=True,
                    status=response.status_code,
                )
        return bytes(body)

    def fetch_page(self, platform: Platform, url: str) -> MembersPage:
        """One page of members, with its `next` and `differences` links."""
        response, content = self._get(platform, url)
        status = response.status_code
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        if status == 401:
            raise RosterError(UNAUTHORIZED_HINT, retryable=False, status=status)
        if status == 403 and is_throttled(status, content):
            raise RosterError(
                "The LMS roster service is busy (403 Rate Limit Exceeded: it limits how many "
                "requests Pathways makes). Pathways will try again later; nothing needs "
                "changing in the LMS.",
                retryable=True,
                status=status,
                retry_after=retry_after,
            )
        if status == 403:
            raise RosterError(
                "The LMS refused the course roster (403). An LMS administrator can check that "
                "the Names and Role Provisioning service is enabled for Pathways and that "
                "Pathways may see names and emails (Canvas: the developer key's scopes and "
                "privacy level; Moodle: the tool's 'Services' and 'Privacy' settings).",
                retryable=False,
                status=status,
            )
        if status == 404:
            raise RosterError(
                "The LMS says this course's roster address does not exist (404). Open "
                "Pathways again from the course so it learns the current address.",
                retryable=False,
                status=status,
            )
        if status == 429 or status >= 500:
            raise RosterError(
                f"The LMS roster service is busy or unavailable ({status}). "
                "Pathways will try again later.",
                retryable=True,
                status=status,
                retry_after=retry_after,
            )
        if status != 200:
            raise RosterError(
                f"The LMS answered {status} to the roster request.",
                retryable=False,
                status=status,
            )
        try:
            body = json.loads(content)
        except (ValueError, RecursionError) as err:  # not JSON, or nested past Python's limit
            raise RosterError(
                "The LMS roster answer was not JSON. An LMS administrator can check that the "
                "roster service address reaches the LMS and not a login or error page.",
                retryable=False,
                status=status,
            ) from err
        raw = body.get("members") if isinstance(body, dict) else None
        if not isinstance(raw, list):
            # Read as an empty page, this would mark the whole class inactive.
            raise RosterError(
                "The LMS roster answer had no member list, so Pathways kept the class as it "
                "was. Pathways will try again later; if this persists, an LMS administrator "
                "can check the LMS's roster service.",
                retryable=True,
                status=status,
            )
        members = [m for m in map(parse_member, raw) if m]
        links = parse_links(response.headers)
        # Link URLs may be relative (RFC 8288 §3.2): resolve them against this page.
        try:
            next_url = urljoin(url, links["next"]) if links.get("next") else None
        except ValueError as err:  # "http://[oops/p2": no request could go there
            raise RosterError(
                "The LMS named the roster's next page with an address that is not valid, so "
                "Pathways could not fetch the rest of the class. An LMS administrator can check "
                "the LMS's configured web address.",
                retryable=False,
            ) from err
        try:
            differences_url = (
                urljoin(url, links["differences"]) if links.get("differences") else None
            )
        except ValueError:
            differences_url = None  # a full sync works without it
        if differences_url and not same_origin(differences_url, url):
            # Kept, it would later be requested with our token; a full sync works without it.
            LOG.warning("roster differences link to another site ignored iss=%s", platform.issuer)
            differences_url = None
        return MembersPage(members, next_url, differences_url)

    def pages(self, platform: Platform, url: str) -> Iterator[MembersPage]:
        """Every page from `url`, following `next` links (at most 10,000 pages)."""
        seen: set[str] = set()
        next_url: str | None = url
        while next_url and next_url not in seen and len(seen) < 10_000:
            if not same_origin(next_url, url):
                raise RosterError(
                    "The LMS pointed the roster's next page to another site, so Pathways did "
                    "not follow it (that would hand the site Pathways' access to the LMS). An "
                    "LMS administrator can check the LMS's configured web address.",
                    retryable=False,
                )
            seen.add(next_url)
            try:
                page = self.fetch_page(platform, next_url)
            except RosterError as err:
                # The web server passed the first page's Authorization header: a later 401 is
                # the LMS itself refusing the token (a key switched off, a token revoked).
                if err.status == 401 and len(seen) > 1:
                    raise RosterError(ACCESS_WITHDRAWN, retryable=True, status=401) from err
                raise
            yield page
            next_url = page.next_url
