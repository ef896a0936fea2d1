"""The reports tests use the insights tests' seeded course."""

from tests.insights.conftest import Seeded, seeded

__all__ = ["Seeded", "seeded"]
