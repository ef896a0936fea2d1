"""A refused save of the mastery scale names the field it is about: the field says it is
invalid and is described by the message, and the message links to it ("Go to the field")."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from tests.courses.frames import Frame, field_marks
from tests.mastery.conftest import DEFAULT_SPECS, LevelRow

MARKED = (True, True, True)


def _form(levels: list[LevelRow], **settings: str) -> dict[str, Any]:
    form: dict[str, Any] = {
        "rows": str(len(levels) + 2),
        "method": "decaying_average",
        "weight": "65",
        "n": "3",
        **settings,
    }
    for i, (name, points, colour, mastery) in enumerate(levels):
        form |= {f"level-{i}-name": name, f"level-{i}-points": str(points)}
        form[f"level-{i}-colour"] = colour
        if mastery:
            form["mastery"] = str(i)
    return form


TWICE = [*DEFAULT_SPECS[:2], ("developing", Decimal(3), "#067647", True), DEFAULT_SPECS[3]]
"""The default scale with its third level named as the second (in other letter case)."""


def test_two_levels_of_one_name_mark_and_link_the_second(teacher: Frame) -> None:
    refused = teacher.post("/mastery/scale", _form(TWICE))
    assert refused.status_code == 400
    assert "Every level needs a name of its own." in refused.text
    assert field_marks(refused.text, "level-2-name") == MARKED
    assert [field_marks(refused.text, f"level-{i}-name")[0] for i in (0, 1, 3)] == [False] * 3


def test_a_refused_level_after_an_emptied_row_marks_its_own_row(teacher: Frame) -> None:
    # The emptied row is no level: the scale's second level is the form's third row.
    form = {**_form(TWICE), "level-1-name": "", "level-1-points": "", "level-2-name": "Emerging"}
    refused = teacher.post("/mastery/scale", form)
    assert refused.status_code == 400
    assert field_marks(refused.text, "level-2-name") == MARKED
    assert field_marks(refused.text, "level-0-name")[0] is False


def test_a_nameless_level_and_a_weight_out_of_range_mark_their_fields(teacher: Frame) -> None:
    unnamed = teacher.post("/mastery/scale", {**_form(DEFAULT_SPECS), "level-1-name": ""})
    assert unnamed.status_code == 400
    assert field_marks(unnamed.text, "level-1-name") == MARKED
    heavy = teacher.post("/mastery/scale", _form(DEFAULT_SPECS, weight="150"))
    assert heavy.status_code == 400
    assert field_marks(heavy.text, "weight") == MARKED


def test_the_refusal_is_a_sentence_of_its_own_before_its_link(teacher: Frame) -> None:
    # A screen reader read "exactly one level marks mastery Go to the field": one run-on line.
    no_mastery = [(name, points, colour, False) for name, points, colour, _ in DEFAULT_SPECS]
    refused = teacher.post("/mastery/scale", _form(no_mastery))
    assert refused.status_code == 400
    items = re.findall(r"<li>([^<]*) <a href=\"#([^\"]+)\">Go to the field</a></li>", refused.text)
    assert items == [("Exactly one level marks mastery.", "level-0-mastery")]
