"""Text as people type, paste and export it, made comparable and safe to store and show.

The same "É" arrives composed (one character, NFC: what keyboards type) or decomposed ("E" and a
combining accent, NFD: files saved on a Mac, text copied out of a PDF). They look identical, so
names that must be unique are kept in NFC and compared in NFC, stored values included (a value
saved before the app normalised may still be NFD).
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
"""Control and format characters (zero-width space, direction marks and overrides, the byte-order
mark...) and white space: a name made only of these shows nothing."""
_BLANK_LETTERS = frozenset("\u034f\u115f\u1160\u2800\u3164\uffa0") | frozenset(
    chr(c) for c in range(0xFE00, 0xFE10)
)
"""Letters and marks that draw nothing: the grapheme joiner, Hangul fillers, the blank Braille
pattern, variation selectors."""
_SURROGATE = re.compile("[\ud800-\udfff]")

HALF_CHARACTER = (
    "holds half of a character (a cut emoji or symbol, as some exporters leave it); fix or "
    "retype that text"
)


def nfc(text: str) -> str:
    """The text in the composed form (NFC) that names are stored and compared in."""
    return unicodedata.normalize("NFC", text)


def is_blank(text: str) -> bool:
    """True when nothing of the text would show: only spaces and invisible characters."""
    return all(
        ch in _BLANK_LETTERS or unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in text
    )


def has_half_character(text: str) -> bool:
    """True when the text holds a lone UTF-16 surrogate (JSON's "\\ud83d" without its pair),
    which no database or page can encode."""
    return _SURROGATE.search(text) is not None


def shown_whole(text: str) -> str:
    """The text with any half character replaced by "�", so it can be shown on a page."""
    return _SURROGATE.sub("\ufffd", text)
