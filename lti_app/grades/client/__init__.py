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
`errors`; which scopes the service token asks for, and what a refusal of some does, in `tokens`.
"""

from __future__ import annotations

import json
import logging
import math
import re
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
from lti_app.grades.client.tokens import AGS_SCOPES as AGS_SCOPES
from lti_app.grades.client.tokens import READ_COLUMNS as READ_COLUMNS
from lti_app.grades.client.tokens import SCORE_ONLY as SCORE_ONLY
from lti_app.grades.client.tokens import SEND_SCORES as SEND_SCORES
from lti_app.grades.client.tokens import USED_SCOPES as USED_SCOPES
from lti_app.grades.client.tokens import WRITE_COLUMNS as WRITE_COLUMNS
from lti_app.grades.client.tokens import GradebookTokens
from lti_app.grades.client.tokens import token_scopes as token_scopes
from lti_app.http import same_origin
from lti_app.roster.client import parse_links, with_query
from lti_app.tool.client import TokenClient
from lti_app.tool.models import Platform

LOG = logging.getLogger(__name__)

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


class AgsClient(GradebookTokens):
    """Line items and scores for one platform registration, with a cached service token
    (`GradebookTokens`: which scopes it asks for, and what a refusal of some does)."""

    def __init__(self, pool: urllib3.PoolManager, tokens: TokenClient) -> None:
        super().__init__(tokens)
        self._pool = pool
        # Headers given to a request replace the pool's: keep its User-Agent on every request.
        self._headers = dict(pool.headers)

    def close(self) -> None:
        self._pool.clear()

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
