"""The reports tests use the insights tests' courses: the shared seeded one and fresh ones."""

from tests.insights.conftest import FreshCourse, Seeded, fresh_course, seeded

__all__ = ["FreshCourse", "Seeded", "fresh_course", "seeded"]
