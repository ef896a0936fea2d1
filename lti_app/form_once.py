"""An "add" form stores what it carries once, however often the very same page sends it.

Each add form (a check-in, evidence, a self-assessment) carries when its page was shown,
signed. The add then counts as a repeat any identical row stored since that moment, not only in
the last few seconds (a double click): Back to the page after saving, a browser that restores
the page with its text, then Add again minutes later, stores nothing new. A page shown after the
first save carries a later time, so adding the same words again on purpose still works.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from flask import current_app, request
from itsdangerous import BadSignature, Signer
from markupsafe import Markup
from werkzeug.exceptions import RequestEntityTooLarge

from lti_app.db import utcnow

FORM_SHOWN_FIELD = "form_shown"
OLDEST = timedelta(hours=12)
"""A launch session's life: no page of one is older."""


@functools.lru_cache(maxsize=8)
def _signer(secret_key: str) -> Signer:
    return Signer(secret_key, salt="pathways-form-shown")


def _secret() -> str:
    return str(current_app.config["SECRET_KEY"])


def form_shown_field() -> Markup:
    """The hidden field an add form carries (a template global)."""
    # Milliseconds, not itsdangerous's whole seconds: the page shown right after a save would
    # otherwise count as shown before it, and the same words added again on purpose from it
    # would be taken for that save sent again.
    shown = str(int(utcnow().timestamp() * 1000)).encode()
    token = _signer(_secret()).sign(shown).decode()
    return Markup('<input type="hidden" name="{}" value="{}">').format(FORM_SHOWN_FIELD, token)


def form_shown_at() -> datetime | None:
    """When the page whose add form sent this request was shown, if the form says."""
    try:
        token = request.form.get(FORM_SHOWN_FIELD, "")
    except RequestEntityTooLarge:
        return None
    try:
        millis = int(_signer(_secret()).unsign(token))
        shown = datetime.fromtimestamp(millis / 1000, UTC)
    except (BadSignature, ValueError, OverflowError, OSError):
        return None
    now = utcnow()
    return shown if now - OLDEST <= shown <= now else None
