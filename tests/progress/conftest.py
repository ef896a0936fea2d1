"""The progress tests record evidence and groups in Biology 9: on an LMS of each module's own."""

from tests.courses.frames import lms_of_the_module  # noqa: F401  (see frames.py)
