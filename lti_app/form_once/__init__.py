"""An "add" form stores what it carries once, however often the very same form is sent.

Each add form (a check-in, evidence, a self-assessment) carries, signed, a random nonce of its
own and when its page was shown. The save marks the nonce used (`services.first_save`), in its
own transaction: Back to the page after saving, a browser that restores the page with its
text, then Add again minutes later, stores nothing new and says so. Only that very form is a
repeat: the same words sent from another page (a tab left open, the bulk page) are new work.
A send without the field (a page from before it existed) keeps the double-click window.
"""

from __future__ import annotations

import functools
import secrets
from datetime import UTC, datetime

from flask import current_app, request
from itsdangerous import BadSignature, Signer
from markupsafe import Markup
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from lti_app.db import utcnow
from lti_app.form_once.models import FORM_LIFE, NONCE_LENGTH
from lti_app.form_once.services import first_save

FORM_SHOWN_FIELD = "form_shown"
ALREADY_SAVED = "This form was already saved; nothing new was recorded."
"""What a page says when the very same form was sent again."""


@functools.lru_cache(maxsize=8)
def _signer(secret_key: str) -> Signer:
    return Signer(secret_key, salt="pathways-form-shown")


def _secret() -> str:
    return str(current_app.config["SECRET_KEY"])


def form_shown_field() -> Markup:
    """The hidden field an add form carries (a template global)."""
    shown = int(utcnow().timestamp() * 1000)
    value = f"{shown}:{secrets.token_urlsafe(16)}".encode()
    token = _signer(_secret()).sign(value).decode()
    return Markup('<input type="hidden" name="{}" value="{}">').format(FORM_SHOWN_FIELD, token)


def form_nonce() -> str | None:
    """The nonce of the add form that sent this request, if it carries a valid one that is
    not older than any page can be."""
    try:
        token = request.form.get(FORM_SHOWN_FIELD, "")
    except RequestEntityTooLarge:
        return None
    try:
        millis, _, nonce = _signer(_secret()).unsign(token).decode().partition(":")
        shown = datetime.fromtimestamp(int(millis) / 1000, UTC)
    except (BadSignature, UnicodeDecodeError, ValueError, OverflowError, OSError):
        return None
    now = utcnow()
    # Past its life the form's mark may be gone: the double-click window answers for it.
    if not now - FORM_LIFE <= shown <= now or not 0 < len(nonce) <= NONCE_LENGTH:
        return None
    return nonce


def form_sent_again(session: Session) -> bool:
    """Whether this request's add form was saved before (store nothing); otherwise mark it
    saved in the caller's transaction. A form without a valid nonce is never "again" here:
    the caller's double-click window answers for it."""
    nonce = form_nonce()
    return nonce is not None and not first_save(session, nonce)
