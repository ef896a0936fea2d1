"""What an LTI message must carry, by message type: the claims pylti1p3's message validators
check, and what they do not (text ids of at most 255 characters, objects where they assume one,
a usable deep-linking return address, the submission review claims as Moodle really sends them).
The id_token around the message is checked in tool.launch.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pylti1p3.exception import LtiException
from pylti1p3.message_validators import get_validators
from pylti1p3.message_validators.submission_review import SubmissionReviewLaunchValidator

from lti_app.errors import LaunchError
from lti_app.tool.registrations import ADMIN_HINT

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
CLAIM_DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
CLAIM_AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
CLAIM_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
SUBMISSION_REVIEW_REQUEST = "LtiSubmissionReviewRequest"
"""A teacher (or the student) opening a student's work from a gradebook column
(https://www.imsglobal.org/spec/lti-sr/v1p0). Moodle 4.1+ sends it from every link of its
gradebook to an LTI activity's grade item, whether or not the line item asked for it
(moodle/moodle mod/lti/grade.php redirects to the `gradeReport` action, which launches an
LtiSubmissionReviewRequest)."""
SUPPORTED_MESSAGES = frozenset(
    {RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST, SUBMISSION_REVIEW_REQUEST}
)


MAX_ID_LENGTH = 255
"""The spec's limit for sub, and what Pathways stores for deployment, course and link ids."""


def id_claim(value: Any, what: str) -> str:
    """An identifier claim as text: numbers are taken as their digits; anything else that is
    not 1-255 characters of text is refused rather than stored as something else."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        raise LaunchError(f"The launch has no {what}.", hint=ADMIN_HINT)
    if not isinstance(value, str):
        raise LaunchError(f"The launch's {what} is not text.", hint=ADMIN_HINT)
    if len(value) > MAX_ID_LENGTH:
        raise LaunchError(
            f"The launch's {what} is longer than {MAX_ID_LENGTH} characters.", hint=ADMIN_HINT
        )
    if "\x00" in value:
        raise LaunchError(f"The launch's {what} contains a NUL character.", hint=ADMIN_HINT)
    return value


def check_deep_linking_settings(settings: Any) -> None:
    if not isinstance(settings, dict) or not settings:
        raise LaunchError("The deep linking request has no deep linking settings.", hint=ADMIN_HINT)
    url = settings.get("deep_link_return_url")
    parts = urlsplit(url) if isinstance(url, str) and len(url) <= 2048 else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        # Never an action for the form that posts the signed response (javascript:, data:,
        # a path on Pathways itself).
        raise LaunchError(
            "The deep linking request has no usable return address (deep_link_return_url).",
            hint=ADMIN_HINT,
        )
    types = settings.get("accept_types")
    if isinstance(types, list) and "ltiResourceLink" not in types:
        # Canvas's conference_selection asks for link/html and migration_selection for file
        # (lib/lti/messages/deep_linking_request.rb): the teacher opened Pathways from a place
        # that cannot take what Pathways adds. Nothing is wrong with the registration.
        asked = ", ".join(str(t)[:40] for t in types[:6]) or "nothing"
        raise LaunchError(
            f"This part of the LMS accepts only other content ({asked}), not activity links "
            "(LTI resource links), and activity links are what Pathways adds.",
            hint="Add Pathways from the course's modules or assignments instead, where the LMS "
            "accepts activity links.",
        )


def reviewed_user_id(claims: dict[str, Any]) -> str | None:
    """The LMS user id (sub) whose work a submission review launch is about; None when it names
    no one (see `_check_submission_review`)."""
    for_user = claims.get(CLAIM + "for_user")
    if for_user is None:
        return None
    return id_claim(for_user.get("user_id"), "reviewed student's id (for_user.user_id)")


def reviewed_line_item(claims: dict[str, Any]) -> str | None:
    """The gradebook column a submission review launch came from (the AGS claim's lineitem)."""
    ags = claims.get(CLAIM_AGS)
    line_item = ags.get("lineitem") if isinstance(ags, dict) else None
    return line_item if isinstance(line_item, str) and line_item else None


def _check_submission_review(claims: dict[str, Any]) -> None:
    """A review launch's student, when it names one, must be readable.

    Moodle leaves out both claims the spec requires (for_user and the AGS claim's lineitem) in
    review launches it really sends, so neither is required here, and pylti1p3's validator,
    which requires them, is not run (`validate_message`):
    - for_user, when the grade item's own name is clicked rather than a student's grade:
      moodle/moodle grade/lib.php `get_activity_link` links it to mod/lti/grade.php without a
      userid, grade.php passes user 0 to the gradeReport action, and mod/lti/locallib.php
      `lti_build_request` adds for_user_id only when it is not 0. Pathways then opens as the
      link does (tool.views).
    - lineitem, when the activity has no single column (two ltiservice_gradebookservices rows
      for it) or the course's LMS administrator turned the gradebook service off
      (gradebookservices.php `get_launch_parameters`): the student's page opens without a
      column pointed out, or with the link's own (tool.review).
    """
    for_user = claims.get(CLAIM + "for_user")
    if for_user is not None and not isinstance(for_user, dict):
        raise LaunchError(
            "The submission review launch does not say whose work it is about (for_user).",
            hint=ADMIN_HINT,
        )
    reviewed_user_id(claims)


def accepts_line_items(settings: dict[str, Any]) -> bool:
    """Whether the platform makes a gradebook column from a returned item's `lineItem`.

    Only `accept_lineitem: false` says it ignores them
    (https://www.imsglobal.org/spec/lti-dl/v2p0#deep-linking-settings); Moodle sends booleans
    as strings.
    """
    return str(settings.get("accept_lineitem", "true")).lower() != "false"


LMS_TITLE_MAX_LENGTH = 255
"""The longest name an LMS takes for what a deep link or an AGS line item makes: Canvas
refuses a longer assignment name (instructure/canvas-lms app/models/assignment.rb validates
title against maximum_string_length, 255), so the placement or the column fails; Moodle keeps
activity and grade item names in 255-character fields (mod/lti/db/install.xml `name`,
lib/db/install.xml grade_items `itemname`)."""


def lms_title(text: str, suffix: str = "") -> str:
    """`text`, then `suffix`, in at most `LMS_TITLE_MAX_LENGTH` characters: a longer `text` is
    cut and ends with "…", so the LMS shows that the name goes on, and the suffix is kept."""
    room = LMS_TITLE_MAX_LENGTH - len(suffix)
    if len(text) > room:
        text = text[: room - 1].rstrip() + "\N{HORIZONTAL ELLIPSIS}"
    return text + suffix


def validate_message(claims: dict[str, Any]) -> None:
    if claims.get(CLAIM + "version") != "1.3.0":
        raise LaunchError("The launch is not an LTI 1.3.0 message (version).", hint=ADMIN_HINT)
    message_type = claims.get(CLAIM + "message_type")
    if not message_type:
        raise LaunchError("The launch does not say what it is (message_type).", hint=ADMIN_HINT)
    if not isinstance(message_type, str):
        raise LaunchError("The launch's message_type is not text.", hint=ADMIN_HINT)
    if message_type not in SUPPORTED_MESSAGES:
        raise LaunchError(f"Pathways does not handle {message_type!r} messages.", hint=ADMIN_HINT)
    id_claim(claims.get(CLAIM + "deployment_id"), "deployment_id")
    roles = claims.get(CLAIM + "roles")
    if roles is not None and not isinstance(roles, list):
        raise LaunchError("The launch's roles claim is not a list.", hint=ADMIN_HINT)
    link = claims.get(CLAIM + "resource_link")
    # pylti1p3's validators assume these claims are objects (a 500 otherwise).
    if message_type == RESOURCE_LINK_REQUEST and not isinstance(link, dict):
        raise LaunchError(
            "The launch's resource link claim is not an object with an id.", hint=ADMIN_HINT
        )
    if message_type == DEEP_LINKING_REQUEST:
        check_deep_linking_settings(claims.get(CLAIM_DL + "deep_linking_settings"))
    if message_type == SUBMISSION_REVIEW_REQUEST:
        _check_submission_review(claims)
    for validator in get_validators():  # type: ignore[no-untyped-call]
        if validator.can_validate(claims):
            try:
                if isinstance(validator, SubmissionReviewLaunchValidator):
                    validator.run_common_validators(claims)  # the rest: see above
                else:
                    validator.validate(claims)
            except LtiException as err:
                raise LaunchError(
                    f"The launch message is incomplete: {err}.", hint=ADMIN_HINT
                ) from err
    context = claims.get(CLAIM + "context")
    if context is not None and (not isinstance(context, dict) or not context.get("id")):
        raise LaunchError("The launch's course (context) claim has no id.", hint=ADMIN_HINT)
    if isinstance(context, dict):
        id_claim(context["id"], "course (context) id")
    if isinstance(link, dict) and link.get("id") is not None:
        id_claim(link["id"], "resource link id")
    id_claim(claims.get("sub"), "user id (sub)")
