"""Mark an add form saved in the save's own transaction (no Flask here)."""

from __future__ import annotations

import secrets

from sqlalchemy import delete
from sqlalchemy.orm import Session

from lti_app.db import upsert_insert, utcnow
from lti_app.form_once.models import FORM_LIFE, SavedForm

# Now and then a save also drops marks no form can still match, as launches do: no cron job.
PURGE_ONE_IN = 200


def first_save(session: Session, nonce: str) -> bool:
    """Mark the form `nonce` saved in the caller's transaction; False if a save already did
    (the same form sent again: store nothing).

    A save that is refused or rolled back takes the mark back with it, so the form fixed and
    sent again still saves. Two sends of one form at once (a double click) wait on each other
    here on PostgreSQL: the second finds the first's mark once that commits.
    """
    now = utcnow()
    marked = session.execute(
        upsert_insert(session, SavedForm)
        .values(nonce=nonce, saved_at=now)
        .on_conflict_do_nothing(index_elements=["nonce"])
        # rowcount is not reliable here (psycopg reports -1): the returned row is.
        .returning(SavedForm.nonce)
    ).first()
    if marked is not None and secrets.randbelow(PURGE_ONE_IN) == 0:
        session.execute(delete(SavedForm).where(SavedForm.saved_at < now - FORM_LIFE))
    return marked is not None
