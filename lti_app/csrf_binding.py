"""Flask-WTF's CSRF secret without a cookie: derived from the launch (lti_app.web) or, for a
form with no launch behind it, from a sealed value the form carries (SEALED_FORMS)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import Flask, current_app, g, session
from flask.sessions import SecureCookieSession
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge


def _csrf_secret(launch_id: str) -> str:
    key = current_app.secret_key
    return hmac.new(
        key.encode() if isinstance(key, str) else bytes(key or b""),
        b"csrf:" + launch_id.encode(),
        hashlib.sha256,
    ).hexdigest()


def _bind_csrf_secret(sess: Any, launch_id: str) -> None:
    """Make Flask-WTF's CSRF secret the one derived from this launch, without a cookie write."""
    was_modified = sess.modified
    sess["csrf_token"] = _csrf_secret(launch_id)
    sess.modified = was_modified
    g.pop("csrf_token", None)  # Flask-WTF caches the signed token per request


SEALED_FORMS = "lti_app.sealed_forms"
"""{endpoint: field}: forms with no launch behind them that must work without a cookie (the
LMS's registration frame in Safari); their CSRF token is bound to the sealed value the form
carries in `field` instead of to the cookie session. That token is no secret from whoever can
open the form's page: such a view checks where the POST came from itself."""


def bind_csrf_to_form(sealed: str) -> None:
    """Derive Flask-WTF's CSRF secret from `sealed`, for the page that renders such a form."""
    _bind_csrf_secret(session, "form:" + sealed)


def seal_forms_of(app: Flask, endpoint: str, field: str) -> None:
    """Bind the CSRF token of `endpoint`'s POSTs to their sealed `field` (SEALED_FORMS)."""
    app.extensions.setdefault(SEALED_FORMS, {})[endpoint] = field


def _bind_csrf_to_sealed_field(app: Flask, req: Any, sess: SecureCookieSession) -> None:
    sealed_forms: dict[str, str] = app.extensions[SEALED_FORMS]
    try:
        if not any(field in req.form for field in sealed_forms.values()):
            return  # the launch's own POST, say: no second URL match for it
    except RequestEntityTooLarge:
        return  # as in launch_tokens._posted_token: the next read of the form answers 413
    adapter = app.create_url_adapter(req)
    if adapter is None:
        return
    try:
        endpoint, _args = adapter.match(method="POST")
    except HTTPException:  # not found, not allowed: Flask answers that itself
        return
    field = sealed_forms.get(str(endpoint))
    sealed = req.form.get(field) if field else None
    if sealed:
        _bind_csrf_secret(sess, "form:" + sealed)
