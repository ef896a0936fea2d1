"""The address the frame's history keeps for a page that answered a form.

A page sent in answer to a POST (a refused form shown again with its errors, an editor's
conflict, a report of what a save did) is a form submission in the browser's history: Back to
it from the next page showed Chromium's "Confirm Form Resubmission" in the LMS frame. frame.js
puts a GET address in its place (`data-history-url`): the one the view named
(`web.set_history_url`), else the page the form was sent from, which is what such a page shows.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Flask, current_app, g, request
from werkzeug.exceptions import HTTPException

from lti_app.launch_tokens import LAUNCH_TOKEN_FIELD
from lti_app.web import current_launch_token

NOT_KEPT = frozenset({LAUNCH_TOKEN_FIELD, "notice", "saved"})
"""Not carried over: the page's token (a fresh one is), and a success message of earlier
("notice", or "saved" on the group and reflection pages)."""


def history_url() -> str | None:
    """The GET address for this page's history entry, if it needs one (a template global)."""
    named: str | None = g.get("history_url")
    if named or request.method != "POST":
        return named
    return page_the_form_was_on()


def page_the_form_was_on() -> str | None:
    """The GET address of the Pathways page that sent this form, with this request's launch
    token; None without a valid token (the session ended: the page would not open) or for a
    form sent from anywhere else."""
    token = current_launch_token()
    referrer = request.referrer
    if not token or not referrer:
        return None
    page = urlsplit(referrer)
    here = urlsplit(request.host_url)
    if (page.scheme, page.netloc) != (here.scheme, here.netloc):
        return None  # the LMS's own launch POST: its pages set their address themselves
    root = request.script_root
    if not page.path.startswith(root + "/"):
        return None
    try:
        # Only a page that opens with a GET: never the address of a form.
        current_app.url_map.bind(here.netloc, script_name=root or "/").match(
            page.path[len(root) :], method="GET"
        )
    except HTTPException:
        return None
    query = [(k, v) for k, v in parse_qsl(page.query) if k not in NOT_KEPT]
    query.append((LAUNCH_TOKEN_FIELD, token))
    return f"{page.path}?{urlencode(query)}"


def init_history(app: Flask) -> None:
    app.jinja_env.globals["history_url"] = history_url
    app.jinja_env.globals["page_the_form_was_on"] = page_the_form_was_on
