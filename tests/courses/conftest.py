"""Fixtures for the teacher pages (helpers live in frames.py, shared with other folders)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lti_app.demo.server import RunningPlatform
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import (
    BIO_STUDENTS,
    Frame,
    ensure_launched,
    frame,
    lms_of_the_module,  # noqa: F401  (each module: an LMS of its own, see frames.py)
    second_lms,
)


@pytest.fixture
def teacher(lti: LtiActions, tool_server: ToolServer) -> Frame:
    """The teacher of Biology 9, launched."""
    return frame(lti.launch("user-t01"), tool_server.url)


@pytest.fixture
def bio_students(lms: RunningPlatform, tool_server: ToolServer) -> tuple[str, ...]:
    """Students of Biology 9 who have opened Pathways (so the roster knows them)."""
    ensure_launched(lms, tool_server, BIO_STUDENTS)
    return BIO_STUDENTS


@pytest.fixture
def fresh_lms(tool_server: ToolServer, database_url: str) -> Iterator[RunningPlatform]:
    """A second registered LMS: same user and course ids, different people and courses."""
    with second_lms(tool_server, database_url) as running:
        yield running
