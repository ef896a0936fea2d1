"""CSV cells a spreadsheet will not run as formulas (OWASP's CSV injection advice), for every
export, and the way back for files Pathways itself wrote and a teacher imports again."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

EXCEL_UTF8 = "\ufeff"
"""Put first in a download, so that Excel reads it as UTF-8 (else "José" shows as "JosÃ©")."""

# A cell that starts with = + - @, a tab or a carriage return is a formula to a spreadsheet.
# Where ";" is the list separator (German, French, Dutch... locales), Excel opens a .csv by
# splitting at ";", and past the first cell quoting does not hold it together: "a;=cmd" can
# become a cell "=cmd"; read that way, a line break inside a quoted cell (a note typed in a
# text box) ends the row, and the next line's text starts a cell. The text after each ";" and
# each line break gets the same guard as a cell's start. Text that already has quotes there
# gets one more, so that unsafe_cell can take exactly one away again and a title typed as
# "'=x" comes back as typed.
_GUARD_AT_START = re.compile(r"(?=^'*[=+\-@\t\r])")
_GUARD_AFTER_BREAK = re.compile(r"([;\r\n])(?='*[=+\-@\t\r])")
_GUARD_FIRST = frozenset("'=+-@\t\r")
_BREAKS = frozenset(";\r\n")
_GUARDED_START = re.compile(r"^'(?='*[=+\-@\t\r])")
_GUARDED_AFTER_BREAK = re.compile(r"([;\r\n])'(?='*[=+\-@\t\r])")


def safe_cell(value: object) -> str:
    """The cell's text; text a spreadsheet would read as a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    text = str(value)
    # Most cells (names, levels, dates) hold none of the characters a guard starts at: two
    # regular expressions per cell were a third of a 36,000-row export's time.
    if not text or (text[0] not in _GUARD_FIRST and not _BREAKS.intersection(text)):
        return text
    text = _GUARD_AFTER_BREAK.sub(r"\1'", text)
    return _GUARD_AT_START.sub("'", text, count=1)


def unsafe_cell(text: str) -> str:
    """What safe_cell was given: an export imported again keeps its codes and titles."""
    text = _GUARDED_START.sub("", text, count=1)
    return _GUARDED_AFTER_BREAK.sub(r"\1", text)
