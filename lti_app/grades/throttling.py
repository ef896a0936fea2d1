"""Sending to an LMS that throttles: how many scores go at once, and pauses.

Canvas answers a throttled request 403 "Rate Limit Exceeded" (lti_app.http.is_throttled) from
one bucket per developer key shared by every LTI Advantage service
(instructure/canvas-lms app/middleware/request_throttle.rb).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from lti_app.db import utcnow
from lti_app.grades.client import LmsRequestError

LOG = logging.getLogger(__name__)


class SendingSlots:
    """How many scores go to one LMS at once: the configured number until it throttles.

    Canvas charges every request in flight a pre-flight share of the developer key's quota
    (instructure/canvas-lms app/middleware/request_throttle.rb; doc/api/throttling.md:
    "Parallel requests are subject to an additional pre-flight penalty"), so past about a
    dozen at once it refuses whatever more are sent, however long the pauses between. Each
    throttle halves the number; each run of that many accepted scores adds one back, up to
    the configured number (additive increase, multiplicative decrease).
    """

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self._in_use = 0
        self._accepted_in_a_row = 0
        self._changed = threading.Condition()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._changed:
            while self._in_use >= self.limit:
                self._changed.wait()
            self._in_use += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_use -= 1
                self._changed.notify()

    def throttled(self) -> None:
        with self._changed:
            self.limit = max(1, self.limit // 2)
            self._accepted_in_a_row = 0

    def accepted(self) -> None:
        if self.limit >= self.ceiling:
            return
        with self._changed:
            self._accepted_in_a_row += 1
            if self._accepted_in_a_row >= self.limit and self.limit < self.ceiling:
                self.limit += 1
                self._accepted_in_a_row = 0
                self._changed.notify()


class Throttles:
    """Per platform: its sending slots, and until when nothing is sent to it after a throttle.

    :param backoff: seconds of the pause after this many pauses in a row (and a Retry-After).
    """

    def __init__(self, concurrency: int, backoff: Callable[[int, float | None], float]) -> None:
        self._concurrency = concurrency
        self._backoff = backoff
        self._slots: dict[int, SendingSlots] = {}
        self._paused: dict[int, tuple[datetime, LmsRequestError]] = {}
        self._streak: dict[int, int] = {}
        """Pauses in a row with no score accepted in between: each pause is twice as long."""
        self._guard = threading.Lock()

    def _slots_of(self, platform_id: int) -> SendingSlots:
        with self._guard:
            return self._slots.setdefault(platform_id, SendingSlots(self._concurrency))

    @contextmanager
    def slot(self, platform_id: int) -> Iterator[None]:
        with self._slots_of(platform_id).held():
            yield

    def pause(self, platform_id: int) -> LmsRequestError | None:
        """Why sending to this platform is paused now, or None."""
        paused = self._paused.get(platform_id)
        return paused[1] if paused is not None and paused[0] > utcnow() else None

    def pause_end(self, platform_id: int) -> datetime | None:
        paused = self._paused.get(platform_id)
        return paused[0] if paused is not None else None

    def accepted(self, platform_id: int) -> None:
        self._slots_of(platform_id).accepted()
        if self._streak.get(platform_id):
            with self._guard:
                self._streak.pop(platform_id, None)

    def throttled(self, platform_id: int, err: LmsRequestError) -> None:
        """Pause sending to a platform that throttles us; its scores wait for the pause's end.

        Each further score sent meanwhile would only be refused too, and would use up the
        quota the teacher's roster sync needs.
        """
        self._pause(platform_id, err, fewer_at_once=True)

    def unavailable(self, platform_id: int, err: LmsRequestError) -> None:
        """Pause sending to a platform whose token endpoint is down, hung or unreachable.

        Every request needs a token: each score asking for its own meanwhile waited out its own
        timeout (or refusal) in turn, and a struggling LMS got a request per score. Sending
        fewer at once would not help an endpoint that is down, so only the pause applies.
        """
        self._pause(platform_id, err, fewer_at_once=False)

    def _pause(self, platform_id: int, err: LmsRequestError, *, fewer_at_once: bool) -> None:
        slots = self._slots_of(platform_id)
        with self._guard:
            paused = self._paused.get(platform_id)
            now = utcnow()
            if paused is not None and paused[0] > now:
                return  # one of the requests already in flight when the pause began
            if fewer_at_once:
                slots.throttled()
            streak = self._streak.get(platform_id, 0) + 1
            self._streak[platform_id] = streak
            until = now + timedelta(seconds=self._backoff(streak, err.retry_after))
            self._paused[platform_id] = (until, err)
        LOG.warning(
            "LMS %s platform=%s status=%s: scores paused until %s (pause %d in a row),"
            " then %d at once",
            "throttling scores" if fewer_at_once else "token endpoint unavailable",
            platform_id,
            err.status,
            until.isoformat(),
            streak,
            slots.limit,
        )
