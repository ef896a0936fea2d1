"""Why a registration could not go on, in words an LMS administrator can act on."""

from __future__ import annotations

from lti_app.errors import AppError

NOTHING_SAVED = (
    "Nothing was saved in Pathways. Remove the new Pathways tool in the LMS if it appears "
    "there, then start the registration again from the LMS."
)
"""The hint when the LMS may have created the tool but Pathways kept nothing."""


class RegistrationError(AppError):
    """A registration that cannot go on; the message says why in words an admin can act on."""

    status_code = 400
    title = "Pathways could not be registered"


class PlatformRefusedError(RegistrationError):
    """The LMS answered, but not with something we can use."""

    status_code = 502


class RegistrationRefusedError(PlatformRefusedError):
    """The LMS answered the registration with an error status: it registered nothing, so the
    same registration may be sent again."""


class RegistrationNotSavedError(RegistrationError):
    """The LMS registered Pathways but Pathways could not store it."""

    status_code = 500


class AlreadySubmittedError(RegistrationError):
    """This confirm form was sent to the LMS before."""

    status_code = 409
