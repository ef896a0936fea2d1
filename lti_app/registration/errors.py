"""Why a registration could not go on, in words an LMS administrator can act on."""

from __future__ import annotations

from lti_app.errors import AppError


class RegistrationError(AppError):
    """A registration that cannot go on; the message says why in words an admin can act on."""

    status_code = 400
    title = "Pathways could not be registered"


class PlatformRefusedError(RegistrationError):
    """The LMS answered, but not with something we can use."""

    status_code = 502


class RegistrationNotSavedError(RegistrationError):
    """The LMS registered Pathways but Pathways could not store it."""

    status_code = 500
