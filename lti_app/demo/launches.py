"""Launch specifications: who launches, where, with which message, bent how (for tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from lti_app.demo.keys import HeaderTweak

CLAIM = "https://purl.imsglobal.org/spec/lti/claim"
MESSAGE_TYPE = f"{CLAIM}/message_type"
VERSION = f"{CLAIM}/version"
DEPLOYMENT_ID = f"{CLAIM}/deployment_id"
ROLES = f"{CLAIM}/roles"
CONTEXT = f"{CLAIM}/context"
RESOURCE_LINK = f"{CLAIM}/resource_link"
TARGET_LINK_URI = f"{CLAIM}/target_link_uri"
CUSTOM = f"{CLAIM}/custom"
FOR_USER = f"{CLAIM}/for_user"
ROLE_SCOPE_MENTOR = f"{CLAIM}/role_scope_mentor"
LAUNCH_PRESENTATION = f"{CLAIM}/launch_presentation"
AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
DL_CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DL_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
DL_MSG = "https://purl.imsglobal.org/spec/lti-dl/claim/msg"
DL_ERRORMSG = "https://purl.imsglobal.org/spec/lti-dl/claim/errormsg"
COURSE_OFFERING = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
ALL_SCOPES: Final = frozenset(
    {SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE, SCOPE_NRPS}
)


class _Delete:
    """Marker type for DELETE."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE: Final = _Delete()
"""Use as a claim override value to remove the claim from the id_token."""


class MessageType(StrEnum):
    """The LTI messages the demo platform sends."""

    RESOURCE_LINK = "LtiResourceLinkRequest"
    DEEP_LINKING = "LtiDeepLinkingRequest"
    SUBMISSION_REVIEW = "LtiSubmissionReviewRequest"
    """A score's review link in the gradebook (LTI Submission Review 1.0, as Moodle sends it)."""


@dataclass
class LaunchTweaks:
    """Deliberate defects for one launch's id_token (defaults: a correct token)."""

    claims: dict[str, Any] = field(default_factory=dict)
    """Top-level claims to set after the message is built; the value DELETE removes one."""
    header: HeaderTweak = HeaderTweak.NONE
    extra_headers: dict[str, Any] = field(default_factory=dict)
    foreign_key: bool = False
    """Sign with a key the JWKS never published, keeping the current kid in the header."""
    iat_shift: int = 0
    """Seconds added to `iat` (positive: issued in the future)."""
    exp_shift: int = 0
    """Seconds added to `exp` (e.g. -600 puts it in the past)."""
    lifetime: int = 300


@dataclass
class LaunchSpec:
    """Everything the platform needs to answer the tool's authentication request for a launch.

    The tool echoes `hint` back as `lti_message_hint`; the platform finds the spec by it.
    """

    hint: str
    user_id: str
    context_id: str | None
    message_type: MessageType = MessageType.RESOURCE_LINK
    resource_link_id: str | None = None
    resource_link_title: str | None = None
    roles: list[str] | None = None
    """None: the seeded roles of the user in the context."""
    custom: dict[str, str] = field(default_factory=dict)
    target_link_uri: str | None = None
    """None: the tool's launch URL."""
    return_url: str | None = None
    include_nrps: bool = True
    include_ags: bool = True
    line_item_id: int | None = None
    """Sent as the AGS claim's `lineitem` (the link's own gradebook column)."""
    deployment_id: str | None = None
    """None: the registered deployment."""
    storage_target: str | None = None
    """Sent as `lti_storage_target` at login initiation (e.g. "_parent")."""
    for_user_id: str | None = None
    """The student whose work a submission review is about (`for_user`)."""
    tweaks: LaunchTweaks = field(default_factory=LaunchTweaks)


def apply_claim_overrides(message: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Set or (with DELETE) remove top-level claims in place."""
    for name, value in overrides.items():
        if value is DELETE:
            message.pop(name, None)
        else:
            message[name] = value
