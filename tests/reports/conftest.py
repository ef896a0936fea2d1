"""The reports tests use the insights tests' courses: a seeded one on each test module's own
LMS (reports read the whole course, which in the run's shared one grows with every test) and
fresh ones."""

from tests.courses.frames import lms_of_the_module
from tests.insights.conftest import FreshCourse, Seeded, fresh_course, seeded

__all__ = ["FreshCourse", "Seeded", "fresh_course", "lms_of_the_module", "seeded"]
