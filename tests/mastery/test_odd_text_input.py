"""The scale page meeting text that looks ordinary but is not: a hidden field nested past what
Python's json reads, level names that differ only in how their letters are composed, and names
made of invisible characters only.

Page tests run on the scale of an LMS of the module's own (tests/mastery/conftest.py).
"""

from __future__ import annotations

import html
import unicodedata

from sqlalchemy import select, update

from lti_app.db import Database
from lti_app.mastery.models import MasteryLevel, MasteryScale
from tests.courses.frames import Frame, Ids
from tests.mastery.conftest import DEFAULT_SPECS
from tests.mastery.test_settings_crafted import _browser_fields, _form, _scale

NAMES = [name for name, *_ in DEFAULT_SPECS]


def test_a_scale_save_whose_hidden_field_is_nested_past_reading_is_refused_as_unreadable(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """A script or a broken extension posts "[[[[…" as what the page showed: like any value
    that is not a page's settings, the save is refused as from an out-of-date page, with the
    form to check and save again (it was a 500)."""
    fields = _browser_fields(teacher.get("/mastery/scale").text)
    fields["shown"] = "[" * 5000
    fields["level-1-name"] = "Approaching"

    answer = teacher.post("/mastery/scale", fields)

    assert answer.status_code == 409, answer.status_code
    assert "changed" in html.unescape(answer.text)
    assert [name for name, *_ in _scale(db, own_ids.context())[0]] == NAMES
    again = teacher.post("/mastery/scale", _browser_fields(answer.text))
    assert again.status_code == 200, again.status_code
    assert _scale(db, own_ids.context())[0][1][0] == "Approaching"  # what was typed, kept


def test_two_level_names_differing_only_in_how_their_accent_is_written_are_one_name(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    levels = list(DEFAULT_SPECS)
    levels[0] = (unicodedata.normalize("NFC", "Émergent"), *levels[0][1:])
    levels[1] = (unicodedata.normalize("NFD", "Émergent"), *levels[1][1:])

    answer = teacher.post("/mastery/scale", _form(levels))

    assert answer.status_code == 400, answer.status_code
    assert "every level needs a name of its own" in html.unescape(answer.text).lower()
    assert [name for name, *_ in _scale(db, own_ids.context())[0]] == NAMES


def test_a_level_name_of_invisible_characters_only_is_no_name(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    levels = list(DEFAULT_SPECS)
    levels[1] = ("\u200b\u200b", *levels[1][1:])

    answer = teacher.post("/mastery/scale", _form(levels))

    assert answer.status_code == 400, answer.status_code
    assert "every level needs a name of its own" in html.unescape(answer.text).lower()


def test_a_scale_whose_level_name_was_saved_decomposed_saves_from_its_own_page(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """A name stored before names were normalised: the page and the stored scale compare in
    one form, so saving the page is not taken for a save over someone else's change."""
    with db.begin() as s:
        scale_id = s.scalar(
            select(MasteryScale.id).where(MasteryScale.context_id == own_ids.context())
        )
        s.execute(
            update(MasteryLevel)
            .where(MasteryLevel.scale_id == scale_id, MasteryLevel.name == "Emerging")
            .values(name=unicodedata.normalize("NFD", "Émergent"))
        )
    fields = _browser_fields(teacher.get("/mastery/scale").text)
    fields["weight"] = "50"

    answer = teacher.post("/mastery/scale", fields)

    assert answer.status_code == 200, answer.status_code
    levels, _ = _scale(db, own_ids.context())
    assert levels[0][0] == unicodedata.normalize("NFC", "Émergent")
