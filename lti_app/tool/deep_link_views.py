"""Deep linking: the teacher's picker and the signed LtiDeepLinkingResponse it returns (split
from `views`, whose blueprint it shares)."""

from __future__ import annotations

import html
import re
import time
import uuid
from typing import Any

import jwt
from flask import current_app, render_template, request
from pylti1p3.deep_link_resource import DeepLinkResource

from lti_app.addresses import external_url
from lti_app.errors import PermissionDeniedError
from lti_app.tool.keys import ISSUED_AT_SKEW_SECONDS
from lti_app.tool.messages import (
    CLAIM,
    CLAIM_DL,
    accepts_line_items,
    check_deep_linking_settings,
    lms_title,
)
from lti_app.tool.models import Deployment, Platform
from lti_app.tool.roles import DEEP_LINKING_ROLES
from lti_app.tool.services import LaunchContext
from lti_app.tool.views import _keyring, bp
from lti_app.web import current_launch, db_session, require_role


def _accepts_multiple(settings: dict[str, Any]) -> bool:
    """Whether the platform said it takes several items. The claim is optional and the spec
    gives it no default, so only its word (true, or Moodle 4.0's "true") allows several."""
    value = settings.get("accept_multiple")
    return value is True or (isinstance(value, str) and value.lower() == "true")


_MARKUP = re.compile(r"<[^>]*>")


def _plain(text: str) -> str:
    """Text as a form field gives it back: without markup (Moodle's description editor wraps
    it in a paragraph) and with its spaces collapsed."""
    return " ".join(html.unescape(_MARKUP.sub(" ", text)).split())


def _offered_text(settings: dict[str, Any], name: str, ours: set[str]) -> str | None:
    """The platform's default `title` or `text` for the returned item, when it offers one
    that is not one of Pathways' own (`ours`, plain): an earlier pick's, written into the
    LMS's form, is no name the teacher gave."""
    value = settings.get(name)
    if not isinstance(value, str) or not value.strip() or _plain(value) in ours:
        return None
    return value


def deep_link_picker(ctx: LaunchContext) -> str:
    if ctx.launch.role not in DEEP_LINKING_ROLES:
        raise PermissionDeniedError("Only a teacher of this course can add Pathways to it.")
    dl = ctx.launch.deep_linking_settings or {}
    items = deep_link_choices(ctx)
    return render_template(
        "tool/deep_link_picker.html", ctx=ctx, items=items, accept_multiple=_accepts_multiple(dl)
    )


PICKS_EXTENSION = "lti_app.deep_link_pick_handlers"
"""Callables (session, launch, picked choices, whether the LMS makes their columns) that a
feature registers to act on its own picks in the deep-linking response's transaction."""


def deep_link_choices(ctx: LaunchContext) -> list[dict[str, Any]]:
    """What a teacher can place in the course. Later features register more choices.

    A choice has a `key` (sent as the custom `pathways_item`), `title`, `text` and `custom`
    parameters; it may name a `group` (a heading, with its `group_note`), a `note` shown beside
    it, and a `line_item`, the gradebook column the LMS should make with the link.
    """
    choices: list[dict[str, Any]] = [
        {
            "key": "home",
            "title": "Pathways",
            "text": "The Pathways home for this course.",
            "custom": {},
        }
    ]
    for provider in current_app.extensions.get("lti_app.deep_link_providers", []):
        choices.extend(provider(db_session(), ctx))
    # Plain links first, grouped choices under their headings after them (a stable sort).
    choices.sort(key=lambda c: bool(c.get("group")))
    return choices


@bp.route("/lti/deep-link", methods=["POST"])
@require_role(*DEEP_LINKING_ROLES)
def deep_link_submit() -> str:
    """Return the teacher's picks to the LMS as a signed LtiDeepLinkingResponse."""
    ctx = current_launch()
    dl = ctx.launch.deep_linking_settings
    if ctx.launch.message_type != "LtiDeepLinkingRequest" or not dl:
        raise PermissionDeniedError("This session was not opened to add content to the course.")
    check_deep_linking_settings(dl)  # sessions stored before launches were checked for it
    wanted = list(dict.fromkeys(request.form.getlist("item")))  # each item once
    choices = {c["key"]: c for c in deep_link_choices(ctx)}
    picked = [choices[k] for k in wanted if k in choices]
    if not _accepts_multiple(dl):
        picked = picked[:1]
    # A returned lineItem becomes a gradebook column (Canvas: an assignment, instructure/
    # canvas-lms app/controllers/lti/ims/concerns/deep_linking_modules.rb; Moodle: the
    # activity's grade item, mod/lti/locallib.php), so only choices whose feature then scores
    # it carry one; a column nobody fills would stay empty in the gradebook for good.
    lms_makes_columns = accepts_line_items(dl)
    # The settings' title and text are the defaults for the returned item's title and text
    # (https://www.imsglobal.org/spec/lti-dl/v2p0#deep-linking-settings). Moodle's "Select
    # content" button sends the activity name and description the teacher has already typed,
    # and writes a single returned item's title and text back over them (moodle/moodle
    # mod/lti/amd/src/contentitem.js): ignoring the defaults erased what the teacher typed.
    # Several items (Moodle adds one activity each) keep their own titles. Once a pick has
    # been written over them, pressing "Select content" again sends that pick's title and
    # text: they are Pathways' own, not the teacher's, and the new pick takes its own (else a
    # column labelled ECO.1 holds ECO.2).
    ours_titles = {_plain(lms_title(c["title"])) for c in choices.values()}
    ours_texts = {_plain(c["text"]) for c in choices.values() if c.get("text")}
    single = len(picked) == 1
    offered_title = _offered_text(dl, "title", ours_titles) if single else None
    offered_text = _offered_text(dl, "text", ours_texts) if single else None
    items = []
    for choice in picked:
        title = lms_title(offered_title or choice["title"])
        resource = (
            DeepLinkResource()
            .set_url(external_url("tool.launch"))
            .set_title(title)
            .set_custom_params({"pathways_item": choice["key"], **choice["custom"]})
        )
        item = resource.to_dict()
        text = offered_text or choice.get("text")
        if text:
            item["text"] = text
        if lms_makes_columns and choice.get("line_item"):
            item["lineItem"] = dict(choice["line_item"])
        items.append(item)
    for on_picks in current_app.extensions.get(PICKS_EXTENSION, []):
        on_picks(db_session(), ctx, picked, lms_makes_columns)
    platform = db_session().get(Platform, ctx.launch.platform_id)
    if platform is None:  # pragma: no cover - FK
        raise PermissionDeniedError("Unknown platform.")
    deployment_row = ctx.launch.deployment_id

    deployment = db_session().get(Deployment, deployment_row)
    now = int(time.time())
    message: dict[str, Any] = {
        "iss": platform.client_id,
        "aud": [platform.issuer],
        "azp": platform.client_id,
        "iat": now - ISSUED_AT_SKEW_SECONDS,
        "exp": now + 600,
        "nonce": uuid.uuid4().hex,
        CLAIM + "deployment_id": deployment.deployment_id if deployment else "",
        CLAIM + "message_type": "LtiDeepLinkingResponse",
        CLAIM + "version": "1.3.0",
        CLAIM_DL + "content_items": items,
    }
    if "data" in dl:
        message[CLAIM_DL + "data"] = dl["data"]
    if not items:
        message[CLAIM_DL + "msg"] = "Nothing was added."
    signing = _keyring().snapshot(db_session()).signing
    db_session().commit()  # a key made on first use must be kept
    token = jwt.encode(
        message, signing.private_key, algorithm="RS256", headers={"kid": signing.kid}
    )
    return render_template(
        "tool/autopost.html",
        action=dl["deep_link_return_url"],
        fields={"JWT": token},
        title="Adding Pathways to your course",
        relay=True,
    )
