"""The gradebook's service token: which scopes it asks for, and what to do when the LMS
refuses some of them. Kept apart from the line item and score calls (`grades.client`), which
only ask `GradebookTokens` for a token holding the scope each call needs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection

from lti_app.grades.client.errors import LmsRequestError
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

LOG = logging.getLogger("lti_app.grades.client")
"""The client's logger, as before the token code had a module of its own."""

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


class GradebookTokens:
    """Service tokens for the gradebook, per platform registration and scope set, cached.

    The token asks for the scopes the course's launch claim offered (`token_scopes`): one
    token per registration and scope set. When the LMS refuses that request whole
    (invalid_scope), the client asks for the score scope alone and keeps to it: scores still
    reach the columns the LMS made itself, and only a request needing more asks again. A scope
    the claim did not offer is asked for with the claim's once a pass when a request needs it:
    the claim is only as new as the course's last launch.
    """

    def __init__(self, tokens: TokenClient) -> None:
        self._tokens = tokens
        self._guard = threading.Lock()
        self._narrowed: set[tuple[int, str, frozenset[str]]] = set()
        """(registration, token URL, scopes wanted) the LMS refused whole: SCORE_ONLY is
        asked instead."""
        self._asked_again: set[tuple[int, str, frozenset[str]]] = set()
        """Scope sets asked again in this pass for a scope their token lacked (`new_pass`)."""
        self._added: dict[tuple[int, str, frozenset[str]], frozenset[str]] = {}
        """Scopes beyond the launch claim's that the LMS granted when asked (`_may_ask_again`):
        asked along with the claim's from then on."""

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
