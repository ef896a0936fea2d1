"""The scale-edit and renamed-competency listeners (`grades.scale_edits`) are registered by any
import of the grades feature, as they were when they lived in `grades.services`."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import importlib, sys
from sqlalchemy import event
from sqlalchemy.orm import Session
importlib.import_module(sys.argv[1])
from lti_app.grades import scale_edits as s
registered = [
    event.contains(Session, "before_flush", s._note_scale_edits),
    event.contains(Session, "before_commit", s._rescore_edited_scales),
    event.contains(Session, "after_rollback", s._forget_scale_edits),
]
assert all(registered), registered
"""


@pytest.mark.parametrize(
    "module",
    [
        "lti_app.grades.services",
        "lti_app.grades.models",
        "lti_app.grades.jobs",
        "lti_app.grades.views",
        "lti_app.grades.worker",
        "lti_app.grades.claiming",
        "lti_app.grades.line_item_sync",
        "lti_app.grades.outcomes",
        "lti_app.grades.cli",
        "lti_app.models",
    ],
)
def test_importing_the_grades_feature_registers_the_session_listeners(module: str) -> None:
    # A fresh interpreter: in this one, some earlier test has imported everything already.
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", CHECK, module], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
