"""What the demo platform remembers, in memory, for one process: gradebook, links, faults."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

EndpointKind = Literal["auth", "jwks", "token", "nrps", "ags", "deep_link"]


@dataclass(frozen=True)
class Fault:
    """A scripted bad answer: a status with headers, or a dropped connection."""

    status: int = 503
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = "injected fault"
    drop_connection: bool = False
    """Close the socket without answering: what a tool sees when the platform is down."""

    @classmethod
    def drop(cls) -> Fault:
        """A fault that closes the connection without an HTTP answer."""
        return cls(status=0, drop_connection=True)


@dataclass
class Counters:
    """What the platform was asked, for tests that check caching and retries."""

    scores_received: int = 0
    """Score POSTs that reached the score handler, accepted or not."""
    id_tokens_issued: int = 0
    tool_jwks_fetches: int = 0
    """Fetches of the tool's JWKS by this platform."""
    requests: Counter[str] = field(default_factory=Counter)
    """Requests per endpoint kind, faulted ones included."""

    @property
    def jwks_fetches(self) -> int:
        """GET /jwks requests, faulted ones included."""
        return self.requests["jwks"]

    @property
    def token_requests(self) -> int:
        """POST /token requests, faulted ones included."""
        return self.requests["token"]


@dataclass
class LineItem:
    """An AGS line item (a gradebook column)."""

    id: int
    context_id: str
    label: str
    score_maximum: float
    resource_link_id: str | None = None
    resource_id: str | None = None
    tag: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Other members the tool sent (startDateTime, endDateTime, gradesReleased, extensions)."""


@dataclass(frozen=True)
class ScoreRecord:
    """One score POST as received, accepted or not; `status` is what the platform answered."""

    line_item_id: int
    user_id: str
    body: dict[str, Any]
    status: int
    received_at: datetime


@dataclass
class ResourceLink:
    """A placement of the tool in a course (seeded, or created by deep linking)."""

    id: str
    context_id: str
    title: str
    url: str | None = None
    custom: dict[str, str] = field(default_factory=dict)
    line_item_id: int | None = None


@dataclass(frozen=True)
class AccessToken:
    """A bearer token the token endpoint issued."""

    token: str
    scopes: frozenset[str]
    expires_at: float


@dataclass(frozen=True)
class DeepLinkReturn:
    """One LtiDeepLinkingResponse the tool posted back."""

    context_id: str | None
    items: list[dict[str, Any]]
    message: str | None
    error_message: str | None
    received_at: datetime


class ScoreRejectedError(Exception):
    """The platform refuses a score; `status` says how (400, 404, 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_timestamp(value: object) -> datetime:
    """Parse an ISO 8601 timestamp with offset, as AGS requires; ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError("timestamp must be a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp needs a UTC offset")
    return parsed


class PlatformState:
    """All mutable platform data behind one lock (the demo server is threaded)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.counters = Counters()
        self.line_items: dict[int, LineItem] = {}
        self.scores: list[ScoreRecord] = []
        self.resource_links: dict[str, ResourceLink] = {}
        self.deep_link_returns: list[DeepLinkReturn] = []
        self.tokens: dict[str, AccessToken] = {}
        self.used_jtis: set[str] = set()
        self._next_line_item_id = 1
        self._next_link_number = 1
        self._faults: dict[str, deque[Fault]] = {}
        self._outages: dict[str, Fault] = {}

    # -- faults ------------------------------------------------------------------------------
    def queue_faults(self, kind: EndpointKind, *faults: Fault) -> None:
        """Answer the next requests of `kind` with these faults, one each, in order."""
        with self.lock:
            self._faults.setdefault(kind, deque()).extend(faults)

    def set_outage(self, kind: EndpointKind, fault: Fault | None) -> None:
        """Answer every request of `kind` with `fault` until called again with None."""
        with self.lock:
            if fault is None:
                self._outages.pop(kind, None)
            else:
                self._outages[kind] = fault

    def clear_faults(self) -> None:
        """Forget queued faults and outages."""
        with self.lock:
            self._faults.clear()
            self._outages.clear()

    def take_fault(self, kind: EndpointKind) -> Fault | None:
        """Count a request of `kind` and return the fault to answer it with, if any."""
        with self.lock:
            self.counters.requests[kind] += 1
            queue = self._faults.get(kind)
            if queue:
                return queue.popleft()
            return self._outages.get(kind)

    # -- tokens ------------------------------------------------------------------------------
    def issue_token(self, scopes: frozenset[str], ttl: int) -> AccessToken:
        """Create an opaque bearer token for `scopes`, valid `ttl` seconds."""
        token = AccessToken(secrets.token_urlsafe(32), scopes, time.time() + ttl)
        with self.lock:
            self.tokens[token.token] = token
        return token

    def find_token(self, token: str) -> AccessToken | None:
        """The unexpired token with this value, or None."""
        with self.lock:
            found = self.tokens.get(token)
        if found is None or found.expires_at < time.time():
            return None
        return found

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (the tool's next service call gets a 401)."""
        with self.lock:
            self.tokens.clear()

    def next_resource_link_id(self) -> str:
        """A fresh id for a resource link created by deep linking."""
        with self.lock:
            number, self._next_link_number = self._next_link_number, self._next_link_number + 1
        return f"rl-dl-{number}"

    # -- line items --------------------------------------------------------------------------
    def add_line_item(
        self, context_id: str, label: str, score_maximum: float, **kwargs: Any
    ) -> LineItem:
        """Create a line item in `context_id`."""
        with self.lock:
            item = LineItem(self._next_line_item_id, context_id, label, score_maximum, **kwargs)
            self._next_line_item_id += 1
            self.line_items[item.id] = item
            return item

    def line_items_in(self, context_id: str) -> list[LineItem]:
        """The context's line items, oldest first."""
        with self.lock:
            return [li for li in self.line_items.values() if li.context_id == context_id]

    def get_line_item(self, context_id: str, item_id: int) -> LineItem | None:
        """The line item, when it exists in this context."""
        with self.lock:
            item = self.line_items.get(item_id)
        return item if item is not None and item.context_id == context_id else None

    def delete_line_item(self, item_id: int) -> None:
        """Remove a line item and keep its scores in the log."""
        with self.lock:
            self.line_items.pop(item_id, None)

    # -- scores ------------------------------------------------------------------------------
    def record_score(self, item: LineItem, user_id: str, body: dict[str, Any]) -> None:
        """Store a score; raise ScoreRejectedError when its timestamp is older than the last one.

        Canvas answers 400 for an older timestamp; the score is still logged as received.
        """
        now = datetime.now(UTC)
        with self.lock:
            self.counters.scores_received += 1
            latest = self.latest_score(item.id, user_id)
            try:
                stamp = parse_timestamp(body.get("timestamp"))
                if latest is not None and stamp < parse_timestamp(latest.body["timestamp"]):
                    raise ScoreRejectedError(400, "score timestamp is older than the stored one")
            except ScoreRejectedError as err:
                self.scores.append(ScoreRecord(item.id, user_id, body, err.status, now))
                raise
            except ValueError as err:
                self.scores.append(ScoreRecord(item.id, user_id, body, 400, now))
                raise ScoreRejectedError(400, f"bad timestamp: {err}") from err
            self.scores.append(ScoreRecord(item.id, user_id, body, 200, now))

    def log_rejected_score(
        self, item_id: int, user_id: str, body: dict[str, Any], status: int
    ) -> None:
        """Log a score refused before ordering was checked (unknown user, bad fields)."""
        with self.lock:
            self.counters.scores_received += 1
            self.scores.append(ScoreRecord(item_id, user_id, body, status, datetime.now(UTC)))

    def latest_score(self, item_id: int, user_id: str) -> ScoreRecord | None:
        """The last accepted score for (line item, user)."""
        with self.lock:
            for record in reversed(self.scores):
                if (record.line_item_id, record.user_id, record.status) == (item_id, user_id, 200):
                    return record
        return None

    def accepted_scores(self, item_id: int | None = None) -> list[ScoreRecord]:
        """Accepted scores in the order received, optionally for one line item."""
        with self.lock:
            return [
                s
                for s in self.scores
                if s.status == 200 and (item_id is None or s.line_item_id == item_id)
            ]

    def results(self, item_id: int) -> dict[str, ScoreRecord]:
        """The current (latest accepted) score per user for a line item."""
        out: dict[str, ScoreRecord] = {}
        for record in self.accepted_scores(item_id):
            out[record.user_id] = record
        return out
