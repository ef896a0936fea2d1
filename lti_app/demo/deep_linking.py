"""The deep-linking return endpoint: check the tool's response, place its content items."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, render_template, request

from lti_app.demo.launches import (
    DEPLOYMENT_ID,
    DL_CONTENT_ITEMS,
    DL_DATA,
    DL_ERRORMSG,
    DL_MSG,
    MESSAGE_TYPE,
    VERSION,
    MessageType,
)
from lti_app.demo.oauth import error_page
from lti_app.demo.platform import DemoPlatform, current_platform
from lti_app.demo.state import DeepLinkReturn, ResourceLink
from lti_app.demo.tool_keys import ToolJwtError, verify_tool_jwt

LOG = logging.getLogger(__name__)
bp = Blueprint("deep_linking", __name__)


class DeepLinkError(Exception):
    """The tool's deep-linking response is not acceptable."""


def check_response(platform: DemoPlatform, token: str) -> tuple[dict[str, Any], str | None]:
    """Verify an LtiDeepLinkingResponse; return its claims and the originating context id."""
    try:
        claims = verify_tool_jwt(
            token,
            platform.tool_jwks,
            audience=platform.config.issuer,
            issuer=platform.config.client_id,
        )
    except ToolJwtError as err:
        raise DeepLinkError(str(err)) from err
    if claims.get(MESSAGE_TYPE) != "LtiDeepLinkingResponse":
        raise DeepLinkError("message_type must be LtiDeepLinkingResponse")
    if claims.get(VERSION) != "1.3.0":
        raise DeepLinkError("version must be 1.3.0")
    if claims.get(DEPLOYMENT_ID) != platform.config.deployment_id:
        raise DeepLinkError("deployment_id does not match this registration")
    # The request carried `data`; the spec requires the response to return it unchanged.
    spec = platform.get_launch(str(claims.get(DL_DATA, "")))
    if spec is None or spec.message_type is not MessageType.DEEP_LINKING:
        raise DeepLinkError("data does not echo the deep-linking request's data")
    items = claims.get(DL_CONTENT_ITEMS, [])
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and isinstance(i.get("type"), str) for i in items
    ):
        raise DeepLinkError("content_items must be a list of objects with a type")
    return claims, spec.context_id


def place_items(
    platform: DemoPlatform, context_id: str | None, items: list[dict[str, Any]]
) -> None:
    """Add resource links (and their line items) for the items, as Canvas does on return."""
    if context_id is None:
        return
    for item in items:
        if item["type"] != "ltiResourceLink":
            continue
        link = ResourceLink(
            id=platform.state.next_resource_link_id(),
            context_id=context_id,
            title=str(item.get("title") or "Pathways activity"),
            url=item.get("url") if isinstance(item.get("url"), str) else None,
            custom={str(k): str(v) for k, v in (item.get("custom") or {}).items()},
        )
        line_item = item.get("lineItem")
        # Canvas makes a gradebook column only for a lineItem with a scoreMaximum.
        if isinstance(line_item, dict) and isinstance(line_item.get("scoreMaximum"), int | float):
            created = platform.state.add_line_item(
                context_id,
                str(line_item.get("label") or link.title),
                float(line_item["scoreMaximum"]),
                resource_link_id=link.id,
                resource_id=line_item.get("resourceId"),
                tag=line_item.get("tag"),
                # Moodle keeps it to link each score to a review launch (mod/lti/locallib.php).
                extra={
                    k: line_item[k]
                    for k in ("submissionReview",)
                    if isinstance(line_item.get(k), dict)
                },
            )
            link.line_item_id = created.id
        with platform.state.lock:
            platform.state.resource_links[link.id] = link


@bp.post("/deep_link_return")
def deep_link_return() -> Any:
    """Accept the tool's deep-linking response (form field JWT) and show what was added."""
    platform = current_platform()
    try:
        claims, context_id = check_response(platform, request.form.get("JWT", ""))
    except DeepLinkError as err:
        LOG.info("deep-linking response refused: %s", err)
        return error_page(f"Deep-linking response refused: {err}")
    items: list[dict[str, Any]] = claims.get(DL_CONTENT_ITEMS, [])
    place_items(platform, context_id, items)
    record = DeepLinkReturn(
        context_id, items, claims.get(DL_MSG), claims.get(DL_ERRORMSG), datetime.now(UTC)
    )
    with platform.state.lock:
        platform.state.deep_link_returns.append(record)
    return render_template("demo/deep_link_result.html", record=record)
