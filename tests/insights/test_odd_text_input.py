"""Group names that look ordinary but are not: invisible characters only, or letters written
decomposed (pasted from a PDF). Runs on an LMS of the module's own (tests/courses/frames.py)."""

from __future__ import annotations

import unicodedata

import pytest

from lti_app.insights.groups import InvalidGroupError, create_group
from tests.courses.frames import lms_of_the_module  # noqa: F401  (the module's own LMS)
from tests.insights.conftest import Seeded
from tests.progress.pages import unit_of_work


def test_a_group_name_of_invisible_characters_only_is_no_name(
    seeded: Seeded, database_url: str
) -> None:
    with unit_of_work(database_url) as s, pytest.raises(InvalidGroupError, match="needs a name"):
        create_group(
            s,
            context_id=seeded.context_id,
            name="\u200b\u202e\u2060",
            person_ids=[seeded.students["user-s01"]],
            created_by_id=seeded.teacher_id,
        )


def test_a_group_name_pasted_decomposed_is_kept_composed(seeded: Seeded, database_url: str) -> None:
    with unit_of_work(database_url) as s:
        group = create_group(
            s,
            context_id=seeded.context_id,
            name=unicodedata.normalize("NFD", "Équipe"),
            person_ids=[seeded.students["user-s01"]],
            created_by_id=seeded.teacher_id,
        )
        assert group.name == unicodedata.normalize("NFC", "Équipe")
