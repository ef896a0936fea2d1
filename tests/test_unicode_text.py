"""The text helpers the cleaners share: one form for a letter, blank names, half characters."""

from __future__ import annotations

import unicodedata

import pytest

from lti_app.unicode_text import has_half_character, is_blank, nfc, shown_whole


def test_a_letter_composed_or_decomposed_comes_out_the_same() -> None:
    assert nfc(unicodedata.normalize("NFD", "Énergie")) == nfc("Énergie") == "\u00c9nergie"


@pytest.mark.parametrize(
    "text",
    ["", " \t\n", "\u200b", "\u202e\u202c", "\ufeff", "\u2060\u00a0", "\u3164", "\u2800"],
)
def test_text_that_shows_nothing_is_blank(text: str) -> None:
    assert is_blank(text)


@pytest.mark.parametrize("text", ["a", "\u200ba", "É", "🙂", "-", "\u05d0"])
def test_text_with_one_visible_character_is_not_blank(text: str) -> None:
    assert not is_blank(text)


def test_half_a_character_is_found_and_shown_as_a_replacement_character() -> None:
    half = "X" + chr(0xD83D)
    assert has_half_character(half)
    assert not has_half_character("X🙂")
    assert shown_whole(half) == "X\ufffd"
    shown_whole(half).encode()  # a page can send it
