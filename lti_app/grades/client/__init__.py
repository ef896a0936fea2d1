"""The Assignment and Grade Services client: the only grades code that speaks HTTP.

Quirks (shared PLATFORMS.md): Moodle wants the score media type and `/scores` inserted in
the line item URL's *path* (its URLs carry `?type_id=`); Canvas throttles with 429 (older:
403 "Rate Limit Exceeded") and answers 422 for non-students; a 401 drops the cached token and
retries once, and a second 401 is reported as a web-server configuration problem.

It speaks through urllib3 rather than httpx: a score is one small POST, and on a small
machine the client's CPU per request is what caps the score rate (httpx spends about twice
urllib3's; bench/RESULTS.md). The pool does no retries or redirects of its own: the worker
decides what to retry, with backoff.

How a refusal becomes an `LmsRequestError` (status, Retry-After, the LMS's own words) lives in
`errors`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
import urllib3
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import NameResolutionError, NewConnectionError
from urllib3.exceptions import TimeoutError as TransportTimeout

from lti_app.grades.client.errors import LmsRequestError as LmsRequestError  # what callers catch
from lti_app.grades.client.errors import error_for
from lti_app.http import same_origin
from lti_app.roster.client import parse_links, with_query
from lti_app.tool.client import (
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READ,
    SCOPE_SCORE,
    AccessToken,
    ServiceTokenError,
    TokenClient,
    missing_scopes_message,
)
from lti_app.tool.models import Platform

LOG = logging.getLogger(__name__)

AGS_SCOPES = frozenset({SCOPE_LINEITEM, SCOPE_SCORE})
"""What the gradebook token asks for when the course's launches named no AGS scope."""
USED_SCOPES = frozenset({SCOPE_LINEITEM, SCOPE_LINEITEM_READ, SCOPE_SCORE})
"""The AGS scopes Pathways has a use for."""
SCORE_ONLY = frozenset({SCOPE_SCORE})
"""Asked when the LMS refuses the whole request (see `AgsClient`)."""
READ_COLUMNS = frozenset({SCOPE_LINEITEM, SCOPE_LINEITEM_READ})
"""Either lets Pathways read the gradebook's columns: lineitem is full management, reading
included (Canvas's and Moodle's line item GETs take either)."""
WRITE_COLUMNS = frozenset({SCOPE_LINEITEM})
SEND_SCORES = frozenset({SCOPE_SCORE})


def token_scopes(offered: Collection[str] | None) -> frozenset[str]:
    """The scopes to ask a gradebook token for: those the launch claim offered that Pathways
    uses.

    An LMS grants only what its admin allowed, and the claim says what that is (Moodle lists
    its tool's permitted scopes, Canvas its developer key's). Canvas refuses the whole request
    when one asked scope is not on the key (canvas-lms lib/canvas/oauth/provider.rb
    `valid_scopes?`): asking for a scope the claim did not offer cost every score.
    """
    asked = frozenset(s for s in offered or () if isinstance(s, str)) & USED_SCOPES
    return asked or AGS_SCOPES


SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
CANVAS_SUBMISSION = "https://canvas.instructure.com/lti/submission"
CANVAS_LINE_ITEM = re.compile(r"/api/lti/courses/[^/]+/line_items/[^/]+/?")
"""Canvas's line item address (config/routes.rb, scope lti/ims/line_items), every install."""


def adds_every_comment(line_item_url: str) -> bool:
    """Whether the LMS adds each score's comment beside the earlier ones instead of replacing
    the last: Canvas posts it as a new submission comment every time (scores_controller.rb,
    `add_comment` when a comment is present), while Moodle replaces its feedback and clears it
    for a score without a comment (gradebookservices `save_grade_item`)."""
    return CANVAS_LINE_ITEM.fullmatch(urlsplit(line_item_url).path) is not None


@dataclass(frozen=True)
class RemoteLineItem:
    """A line item as the LMS lists it (AGS line item container)."""

    url: str
    label: str
    score_maximum: float
    resource_id: str | None
    tag: str | None


def score_url(line_item_url: str) -> str:
    """`<line item>/scores`, inserted before the query string (Moodle's `?type_id=`)."""
    parts = urlsplit(line_item_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


def same_service_url(url: str, base: str, lineitems_url: str) -> str | None:
    """`url` resolved against `base`; None unless on the host of the launch's lineitems URL.

    The bearer token goes with every request: an id or link the LMS names on another host
    (or scheme) must not get it.
    """
    try:
        resolved = urljoin(base, url.strip())
    except ValueError:  # an address no request could go to ("http://[oops/1")
        return None
    return resolved if same_origin(resolved, lineitems_url) else None


def _container_base(lineitems_url: str) -> str:
    """The container as a directory: a bare id such as "1" names an item inside it."""
    parts = urlsplit(lineitems_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/", query="", fragment=""))


class AgsClient:
    """Line items and scores for one platform registration, with a cached service token.

    The token asks for the scopes the course's launch claim offered (`token_scopes`): one
    token per registration and scope set. When the LMS refuses that request whole
    (invalid_scope), the client asks for the score scope alone and keeps to it: scores still
    reach the columns the LMS made itself, and only a request needing more asks again. A scope
    the claim did not offer is asked for with the claim's once a pass when a request needs it:
    the claim is only as new as the course's last launch.
    """

    def __init__(self, pool: urllib3.PoolManager, tokens: TokenClient) -> None:
        self._pool = pool
        self._tokens = tokens
        # Headers given to a request replace the pool's: keep its User-Agent on every request.
        self._headers = dict(pool.headers)
        self._guard = threading.Lock()
        self._narrowed: set[tuple[int, str, frozenset[str]]] = set()
        """(registration, token URL, scopes wanted) the LMS refused whole: SCORE_ONLY is
        asked instead."""
        self._asked_again: set[tuple[int, str, frozenset[str]]] = set()
        """Scope sets asked again in this pass for a scope their token lacked (`new_pass`)."""
        self._added: dict[tuple[int, str, frozenset[str]], frozenset[str]] = {}
        """Scopes beyond the launch claim's that the LMS granted when asked (`_may_ask_again`):
        asked along with the claim's from then on."""

    def close(self) -> None:
        self._pool.clear()

    def new_pass(self) -> None:
        """A new worker pass: a scope the token lacks may be asked for again, once. An admin
        may have allowed it since; asking on every request that needs it fetched a token per
        column and per score, and Canvas throttles token requests."""
        with self._guard:
            self._asked_again.clear()

    def grants(
        self, platform: Platform, needed: frozenset[str], *, offered: Collection[str] | None = None
    ) -> bool:
        """Whether the LMS granted Pathways' gradebook token one of these scopes (the token is
        cached).

        :param offered: the scopes of the course's launch claim (`Gradebook.scopes`).
        :raises LmsRequestError: no token could be had at all.
        """
        return bool(needed & self._access_token(platform, offered, needed)[0].granted)

    def _token(
        self, platform: Platform, offered: Collection[str] | None, needed: frozenset[str]
    ) -> tuple[str, frozenset[str]]:
        """A token holding one of `needed`, and the scopes it was asked for."""
        token, asked = self._access_token(platform, offered, needed)
        if needed & token.granted:
            return token.value, asked
        wanted = token_scopes(offered)
        more = self._may_ask_again(platform, wanted, asked, needed, token)
        if more is not None:
            token, asked = self._access_token(platform, offered, needed, more)
            if needed & token.granted:
                if more & token.granted:
                    with self._guard:
                        key = (platform.id, platform.token_url, wanted)
                        self._added[key] = self._added.get(key, frozenset()) | (
                            more & token.granted
                        )
                return token.value, asked
        raise LmsRequestError(
            missing_scopes_message(_to_name(needed, wanted)),
            retryable=False,
            config=True,
            scope=True,
        )

    def _may_ask_again(
        self,
        platform: Platform,
        wanted: frozenset[str],
        asked: frozenset[str],
        needed: frozenset[str],
        token: AccessToken,
    ) -> frozenset[str] | None:
        """Forget the token (or the narrowing) that lacks `needed`, once a pass; None, or the
        scopes to ask the LMS for beyond the launch's now.

        A scope the launch claim did not offer is asked for along with the claim's: the claim
        is as old as the course's last launch, and an admin may have allowed the scope since
        (a refusal falls back as any other, see `_access_token`). Only the token that lacked
        it is dropped: another thread may hold a newer one.
        """
        key = (platform.id, platform.token_url, wanted)
        with self._guard:
            if key in self._asked_again:
                return None
            self._asked_again.add(key)
            base = wanted | self._added.get(key, frozenset())
            more = frozenset() if needed & base else frozenset(_to_name(needed, wanted))
            narrowed = asked != base
            self._narrowed.discard(key)
        if not narrowed and not more:
            self._tokens.drop(platform, asked, refused=token.value)
        # A narrowed token stays: it still sends the scores if the wider set is refused again.
        # So does the claim's own token when a scope beyond it is asked for.
        return more

    def _access_token(
        self,
        platform: Platform,
        offered: Collection[str] | None,
        needed: frozenset[str],
        more: frozenset[str] = frozenset(),
    ) -> tuple[AccessToken, frozenset[str]]:
        wanted = token_scopes(offered)
        key = (platform.id, platform.token_url, wanted)
        with self._guard:
            if key in self._narrowed and not more:
                asked = SCORE_ONLY
            else:
                asked = wanted | self._added.get(key, frozenset()) | more
        try:
            return self._tokens.token(platform, asked), asked
        except ServiceTokenError as err:
            if err.error == "invalid_scope" and asked - wanted:
                with self._guard:  # the LMS no longer allows what it granted beyond the claim
                    self._added.pop(key, None)
            if (
                err.error != "invalid_scope"
                or SCOPE_SCORE not in asked | needed
                or asked == SCORE_ONLY
            ):
                # With `more`, the claim's own scopes were granted a moment ago: the rest is
                # what the LMS refuses.
                raise _token_refused(err, more or asked) from err
            # Canvas refuses every scope when one is not on the developer key (the claim
            # lists the key's scopes, but the key may have changed since the launch): the
            # score scope alone still fills the columns the LMS made from its links.
            LOG.warning(
                "gradebook token: the LMS refused scopes %s; asking for the score scope alone "
                "iss=%s",
                " ".join(sorted(asked)),
                platform.issuer,
            )
            try:
                token = self._tokens.token(platform, SCORE_ONLY)
            except ServiceTokenError as narrow_err:
                # Scores are refused; what this request needs may be too. The course keeps
                # asking for its own scopes: they may still be granted without the score
                # scope (an ask beyond the claim was refused, not the claim).
                refused = SCORE_ONLY | _to_name(needed, wanted)
                raise _token_refused(narrow_err, refused) from narrow_err
            with self._guard:
                self._narrowed.add(key)
            return token, SCORE_ONLY

    def request(
        self,
        platform: Platform,
        method: str,
        url: str,
        *,
        needed: frozenset[str],
        what: str,
        offered: Collection[str] | None = None,
        accept: str = "application/json",
        content_type: str | None = None,
        json_body: Any = None,
    ) -> urllib3.BaseHTTPResponse:
        """One AGS call; a 401 drops the token and retries once; errors become LmsRequestError.

        :param needed: the scopes of which the token must hold one.
        :param offered: the scopes of the course's launch claim (`Gradebook.scopes`).
        """
        content = None
        if json_body is not None:
            content = json.dumps(json_body, ensure_ascii=False).encode()
        for attempt in (1, 2):
            token, asked = self._token(platform, offered, needed)
            headers = {**self._headers, "Authorization": f"Bearer {token}", "Accept": accept}
            if content is not None:
                headers["Content-Type"] = content_type or "application/json"
            try:
                response = self._pool.request(method, url, headers=headers, body=content)
            except NewConnectionError as err:
                # urllib3 counts a refused connection or an unknown name as a connect timeout:
                # "did not answer in time" sent IT looking for a slow LMS, not an unreachable one.
                raise LmsRequestError(
                    f"Pathways could not connect to the LMS for the {what} ({_reason(err)}); "
                    "Pathways will retry.",
                    retryable=True,
                    transient=True,
                ) from err
            except TransportTimeout as err:
                raise LmsRequestError(
                    f"The LMS did not answer the {what} in time; Pathways will retry.",
                    retryable=True,
                    transient=True,
                ) from err
            except TransportError as err:
                raise LmsRequestError(
                    f"The connection to the LMS failed ({type(err).__name__}); "
                    "Pathways will retry.",
                    retryable=True,
                    transient=True,
                ) from err
            if response.status == 401 and attempt == 1:
                # Only this token: the other scores in flight answer 401 too (one refresh).
                self._tokens.drop(platform, asked, refused=token)
                continue
            if response.status >= 300:
                raise error_for(response, what)
            return response
        raise error_for(response, what)  # pragma: no cover - the loop always returns

    def post_score(
        self,
        platform: Platform,
        line_item_url: str,
        score: dict[str, Any],
        *,
        offered: Collection[str] | None = None,
    ) -> None:
        """POST one score (no batch endpoint exists).

        :param offered: the scopes of the course's launch claim, here and below: what the
            token asks for (`token_scopes`).
        """
        self.request(
            platform,
            "POST",
            score_url(line_item_url),
            needed=SEND_SCORES,
            offered=offered,
            what="score",
            content_type=SCORE_TYPE,
            json_body=score,
        )

    def find_line_items(
        self,
        platform: Platform,
        lineitems_url: str,
        *,
        resource_id: str,
        tag: str,
        offered: Collection[str] | None = None,
    ) -> Iterator[RemoteLineItem]:
        """Line items with this resourceId and tag, following every `next` page."""
        url: str | None = with_query(lineitems_url, resource_id=resource_id, tag=tag)
        seen: set[str] = set()
        while url and url not in seen and len(seen) < 1000:
            seen.add(url)
            response = self.request(
                platform,
                "GET",
                url,
                needed=READ_COLUMNS,
                offered=offered,
                what="gradebook columns",
                accept=LINEITEMS_TYPE,
            )
            body = _json(response)
            for data in body if isinstance(body, list) else []:
                item = _line_item(data, lineitems_url)
                # Some platforms ignore the filters: check them ourselves.
                if item and item.resource_id == resource_id and item.tag == tag:
                    yield item
            # urllib3 reads header bytes as latin-1; Moodle's curly quotes are UTF-8 bytes,
            # which httpx.Headers decodes only when given the bytes themselves.
            headers = httpx.Headers(
                [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
            )
            next_url = parse_links(headers).get("next")
            url = same_service_url(next_url, url, lineitems_url) if next_url else None
            if next_url and url is None:
                LOG.warning(
                    "gradebook columns: not following next link %r iss=%s",
                    next_url,
                    platform.issuer,
                )

    def line_item_exists(
        self, platform: Platform, url: str, *, offered: Collection[str] | None = None
    ) -> bool:
        """False only when the LMS answers 404 for the line item (deleted in the LMS)."""
        try:
            self.request(
                platform,
                "GET",
                url,
                needed=READ_COLUMNS,
                offered=offered,
                what="gradebook column",
                accept=LINEITEM_TYPE,
            )
        except LmsRequestError as err:
            if err.status == 404:
                return False
            raise
        return True

    def create_line_item(
        self,
        platform: Platform,
        lineitems_url: str,
        body: dict[str, Any],
        *,
        offered: Collection[str] | None = None,
    ) -> RemoteLineItem:
        response = self.request(
            platform,
            "POST",
            lineitems_url,
            needed=WRITE_COLUMNS,
            offered=offered,
            what="new gradebook column",
            accept=LINEITEM_TYPE,
            content_type=LINEITEM_TYPE,
            json_body=body,
        )
        item = _line_item(_json(response), lineitems_url)
        if item is None:
            item = next(
                self.find_line_items(
                    platform,
                    lineitems_url,
                    resource_id=body["resourceId"],
                    tag=body["tag"],
                    offered=offered,
                ),
                None,
            )
        if item is None:
            # Creating it again would add a column on every pass: stop and tell the teacher.
            raise LmsRequestError(
                "The LMS created a gradebook column but did not say its address, nor list "
                "it; check the LMS gradebook for a duplicate column, then press Retry.",
                retryable=False,
            )
        return item

    def update_line_item(
        self,
        platform: Platform,
        url: str,
        body: dict[str, Any],
        *,
        offered: Collection[str] | None = None,
    ) -> RemoteLineItem | None:
        response = self.request(
            platform,
            "PUT",
            url,
            needed=WRITE_COLUMNS,
            offered=offered,
            what="gradebook column update",
            accept=LINEITEM_TYPE,
            content_type=LINEITEM_TYPE,
            json_body={**body, "id": url},
        )
        return _line_item(_json(response), url) if response.data else None


def _to_name(needed: frozenset[str], wanted: frozenset[str]) -> set[str]:
    """The scope to name to the admin for a request needing one of `needed`."""
    if needed == READ_COLUMNS:
        # Column management when the launch offered it (Pathways makes columns with it too),
        # else reading, the least that lets Pathways find the LMS's own column.
        return {SCOPE_LINEITEM if SCOPE_LINEITEM in wanted else SCOPE_LINEITEM_READ}
    return set(needed)


def _token_refused(err: ServiceTokenError, asked: frozenset[str]) -> LmsRequestError:
    """The LmsRequestError for a token request the LMS refused or did not answer."""
    if err.error == "invalid_scope":  # none of these (or, on Canvas, not all) is allowed
        return LmsRequestError(
            missing_scopes_message(set(asked)), retryable=False, config=True, scope=True
        )
    return LmsRequestError(
        str(err),
        retryable=err.retryable,
        status=err.status,
        retry_after=err.retry_after,
        config=not err.retryable,
        throttled=err.throttled,
        # Down, hung or unreachable: no request to this LMS can go until it answers.
        unavailable=err.retryable and not err.throttled,
    )


def _json(response: urllib3.BaseHTTPResponse) -> Any:
    try:
        return json.loads(response.data)
    except (ValueError, RecursionError) as err:  # not JSON, or nested past Python's limit
        raise LmsRequestError(
            "The LMS answered with something other than JSON; Pathways will retry.",
            retryable=True,
            status=response.status,
        ) from err


def _line_item(data: Any, lineitems_url: str) -> RemoteLineItem | None:
    """The line item in `data`; None without an id we may send the token to."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None
    url = same_service_url(data["id"], _container_base(lineitems_url), lineitems_url)
    if url is None:
        LOG.warning("gradebook column id %r refused: not on the LMS's gradebook host", data["id"])
        return None
    return RemoteLineItem(
        url=url,
        label=str(data.get("label", "")),
        score_maximum=_score_maximum(data.get("scoreMaximum")),
        resource_id=data.get("resourceId") if isinstance(data.get("resourceId"), str) else None,
        tag=data.get("tag") if isinstance(data.get("tag"), str) else None,
    )


def _score_maximum(value: Any) -> float:
    """The LMS's scoreMaximum as a float; 0.0 (not ours: the column is updated) when unusable."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        return float(value)
    except OverflowError:
        # A JSON integer past float range: float() raises, and raising here stopped the line
        # item sync, which runs before every drain, so no course's scores were sent.
        return math.inf


def utc_iso(value: datetime) -> str:
    """ISO 8601 with microseconds and an explicit offset, as AGS timestamps need."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _reason(err: NewConnectionError) -> str:
    if isinstance(err, NameResolutionError):
        return "its host name was not found"
    return "the connection was refused or no address answered"
