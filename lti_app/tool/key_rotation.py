"""`lti-app keys rotate` and the console's Rotate: a new key published beside the old ones,
which stay published for their grace."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.tool.keys import JWKS_MAX_AGE_SECONDS, PUBLISH_BEFORE_SIGNING, generate_key
from lti_app.tool.models import KeyStatus, ToolKey

# A replaced key signs until its successor has been published PUBLISH_BEFORE_SIGNING, and a
# worker that has not refreshed since, or an LMS checking what it signed a little later, still
# needs it published after that: this long at least, whatever the grace (with 0 days it left
# the key set at once, while it still signed).
MIN_PUBLISHED_AFTER_ROTATION = PUBLISH_BEFORE_SIGNING + timedelta(seconds=JWKS_MAX_AGE_SECONDS)


def rotate_keys(
    session: Session, *, secret: str, grace_days: int, leaked: bool = False
) -> tuple[ToolKey, list[str]]:
    """Publish a new key beside the old ones, sign with the new, retire those past their grace.

    :param leaked: the keys there may sign for someone else: retire them all now, so the new
        key signs at once (an LMS holding the key set it cached refuses Pathways' signatures
        until it fetches it again, at most JWKS_MAX_AGE_SECONDS later).
    :returns: the new key and the kids retired by this call.
    """
    now = utcnow()
    retired: list[str] = []
    grace = max(timedelta(days=grace_days), MIN_PUBLISHED_AFTER_ROTATION)
    for key in session.scalars(select(ToolKey).where(ToolKey.status != KeyStatus.RETIRED)):
        if leaked:
            key.status, key.retire_after = KeyStatus.RETIRED, now
            retired.append(key.kid)
        elif key.status is KeyStatus.ACTIVE:
            key.status = KeyStatus.RETIRING
            key.retire_after = now + grace
        elif key.retire_after is not None and key.retire_after <= now:
            key.status = KeyStatus.RETIRED
            retired.append(key.kid)
    new_key = generate_key(session, secret=secret)
    return new_key, retired
