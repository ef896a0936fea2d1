"""What Pathways registers with an LMS, from one description of the tool.

Both the LTI Dynamic Registration body and Canvas's developer-key JSON are generated from
`MESSAGES`, `SCOPES`, `CLAIMS`, `CUSTOM_FIELDS` and `PRIVACY_LEVEL` below, with the URLs in
`ToolUrls`, so the two can never disagree (redirect URIs especially). The platform's OpenID
configuration is read and checked in registration.platform_configuration. Pure data: no
database, no HTTP.
Spec: https://www.imsglobal.org/spec/lti-dr/v1p0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lti_app.registration.platform_configuration import RESOURCE_LINK, PlatformConfiguration
from lti_app.tool.client import (
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READ,
    SCOPE_NAMES,
    SCOPE_NRPS,
    SCOPE_RESULT_READ,
    SCOPE_SCORE,
)

TOOL_CONFIG = "https://purl.imsglobal.org/spec/lti-tool-configuration"
CANVAS_PRIVACY = "https://canvas.instructure.com/lti/privacy_level"
CANVAS_VISIBILITY = "https://canvas.instructure.com/lti/visibility"
CLOSE_MESSAGE = {"subject": "org.imsglobal.lti.close"}

TOOL_NAME = "Pathways"
TOOL_DESCRIPTION = (
    "Personalized learning pathways: competencies, mastery, student choice and progress."
)
DEEP_LINKING = "LtiDeepLinkingRequest"

SCOPES: tuple[str, ...] = (
    SCOPE_NRPS,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READ,
    SCOPE_RESULT_READ,
    SCOPE_SCORE,
)
# Teachers see their students' names; Pathways needs no e-mail address or picture.
PRIVACY_LEVEL = "name_only"
PRIVACY_TEXT = "Names of the people who open Pathways (no e-mail addresses, no pictures)."
CLAIMS: tuple[str, ...] = ("iss", "sub", "name", "given_name", "family_name")
CUSTOM_FIELDS: dict[str, str] = {
    "canvas_user_id": "$Canvas.user.id",
    "canvas_course_id": "$Canvas.course.id",
    "canvas_account_id": "$Canvas.account.id",
    # The launching user's IANA zone (Canvas's variable substitutions): a teacher's launch
    # sets the course's dates' zone unless the teacher chose one (tool.services).
    "timezone": "$Person.address.timezone",
}
"""Custom parameters sent only to platforms that list the variable (Canvas does)."""

ROLE = "http://purl.imsglobal.org/vocab/lis/v2/"
TEACHER_ROLES = (
    ROLE + "membership#Instructor",
    ROLE + "membership#TeachingAssistant",
    ROLE + "membership#ContentDeveloper",
)
ADMIN_ROLES = (ROLE + "institution/person#Administrator", ROLE + "system/person#Administrator")


@dataclass(frozen=True)
class ToolMessage:
    """One LTI message Pathways accepts, and where the LMS should offer it."""

    type: str
    label: str
    placements: tuple[str, ...]
    purpose: str
    roles: tuple[str, ...] = ()
    canvas_visibility: str | None = None


MESSAGES: tuple[ToolMessage, ...] = (
    ToolMessage(
        DEEP_LINKING,
        TOOL_NAME,
        ("link_selection", "assignment_selection"),
        "Teachers add Pathways activities to modules and assignments.",
    ),
    ToolMessage(
        RESOURCE_LINK,
        TOOL_NAME,
        ("course_navigation",),
        "Teachers open the Pathways dashboard from the course menu.",
        roles=TEACHER_ROLES,
        canvas_visibility="admins",  # Canvas: course admins are teachers, TAs and designers
    ),
    ToolMessage(
        RESOURCE_LINK,
        "Pathways administration",
        ("account_navigation",),
        "LMS administrators open the Pathways admin console.",
        roles=ADMIN_ROLES,
        canvas_visibility="admins",
    ),
)


@dataclass(frozen=True)
class ToolUrls:
    """The tool's public URLs; the views build them from the request or public_url."""

    login: str
    launch: str
    jwks: str
    logo: str = ""

    @property
    def domain(self) -> str:
        return urlsplit(self.launch).netloc

    @property
    def redirect_uris(self) -> list[str]:
        return [self.launch]


@dataclass
class Summary:
    """What the admin is asked to confirm."""

    lms: str
    messages: list[tuple[ToolMessage, tuple[str, ...]]]
    services: list[str]
    privacy: str
    warnings: list[str] = field(default_factory=list)


def offered_messages(
    platform: PlatformConfiguration | None,
) -> list[tuple[ToolMessage, tuple[str, ...]]]:
    """Our messages the platform supports, each with our placements it offers.

    An empty placement tuple means: let the platform choose (it listed placements, none of
    ours; Moodle lists only `ContentArea`). A platform that lists no placements gets ours.
    """
    result = []
    for message in MESSAGES:
        if platform is None:
            result.append((message, message.placements))
            continue
        if message.type not in platform.messages:
            continue
        offered = platform.messages[message.type]
        placements = (
            message.placements
            if offered is None
            else tuple(p for p in message.placements if p in offered)
        )
        result.append((message, placements))
    return result


def requested_scopes(platform: PlatformConfiguration | None) -> tuple[str, ...]:
    if platform is None or not platform.scopes_supported:
        return SCOPES
    return tuple(s for s in SCOPES if s in platform.scopes_supported)


def summarize(platform: PlatformConfiguration) -> Summary:
    """What will be registered with this platform, for the confirm page."""
    messages = offered_messages(platform)
    warnings = [
        f"This LMS does not offer {m.type}, so this is left out: {m.purpose}"
        for m in MESSAGES
        if m.type not in platform.messages
    ]
    scopes = requested_scopes(platform)
    for missing in (s for s in SCOPES if s not in scopes):
        warnings.append(f"This LMS does not offer {SCOPE_NAMES.get(missing, missing)}.")
    lms = platform.product_family_code or urlsplit(platform.issuer).netloc
    return Summary(
        lms=lms,
        messages=messages,
        services=[SCOPE_NAMES.get(s, s) for s in scopes],
        privacy=PRIVACY_TEXT,
        warnings=warnings,
    )


def tool_configuration(urls: ToolUrls, platform: PlatformConfiguration | None) -> dict[str, Any]:
    """The `lti-tool-configuration` object of the registration request."""
    messages: list[dict[str, Any]] = []
    for message, placements in offered_messages(platform):
        item: dict[str, Any] = {
            "type": message.type,
            "target_link_uri": urls.launch,
            "label": message.label,
        }
        if placements:
            item["placements"] = list(placements)
        if message.roles:
            item["roles"] = list(message.roles)
        if message.canvas_visibility:
            item[CANVAS_VISIBILITY] = message.canvas_visibility
        messages.append(item)
    custom = {
        name: value
        for name, value in CUSTOM_FIELDS.items()
        if platform is not None and value.lstrip("$") in platform.variables
    }
    config: dict[str, Any] = {
        "domain": urls.domain,
        "target_link_uri": urls.launch,
        "description": TOOL_DESCRIPTION,
        "claims": list(CLAIMS),
        "messages": messages,
        CANVAS_PRIVACY: PRIVACY_LEVEL,
    }
    if custom:
        config["custom_parameters"] = custom
    return config


def client_registration(urls: ToolUrls, platform: PlatformConfiguration) -> dict[str, Any]:
    """The OpenID client registration Pathways POSTs to the platform (LTI-DR 3.3)."""
    body: dict[str, Any] = {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": urls.login,
        "redirect_uris": urls.redirect_uris,
        "client_name": TOOL_NAME,
        "jwks_uri": urls.jwks,
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(requested_scopes(platform)),
        TOOL_CONFIG: tool_configuration(urls, platform),
    }
    if urls.logo:
        body["logo_uri"] = urls.logo
    return body


def canvas_configuration(urls: ToolUrls) -> dict[str, Any]:
    """Canvas's developer-key JSON, from the same description as Dynamic Registration."""
    placements: list[dict[str, Any]] = []
    for message in MESSAGES:
        for placement in message.placements:
            item: dict[str, Any] = {
                "placement": placement,
                "message_type": message.type,
                "target_link_uri": urls.launch,
                "text": message.label,
            }
            if message.canvas_visibility:
                item["visibility"] = message.canvas_visibility
            placements.append(item)
    settings: dict[str, Any] = {"text": TOOL_NAME, "placements": placements}
    if urls.logo:
        settings["icon_url"] = urls.logo
    return {
        "title": TOOL_NAME,
        "description": TOOL_DESCRIPTION,
        "oidc_initiation_url": urls.login,
        "target_link_uri": urls.launch,
        "redirect_uris": urls.redirect_uris,
        "public_jwk_url": urls.jwks,
        "scopes": list(SCOPES),
        "extensions": [
            {
                "platform": "canvas.instructure.com",
                "domain": urls.domain,
                "tool_id": "pathways",
                "privacy_level": PRIVACY_LEVEL,
                "settings": settings,
            }
        ],
        "custom_fields": dict(CUSTOM_FIELDS),
    }
