"""CSV cells a spreadsheet will not run as formulas (OWASP's CSV injection advice), for every
export, and the way back for files Pathways itself wrote and a teacher imports again."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

EXCEL_UTF8 = "\ufeff"
"""Put first in a download, so that Excel reads it as UTF-8 (else "José" shows as "JosÃ©")."""

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell's text; text a spreadsheet would read as a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    text = str(value)
    if text.startswith(FORMULA_START):
        return "'" + text
    return text


def unsafe_cell(text: str) -> str:
    """What safe_cell was given: an export imported again keeps its codes and titles."""
    if text[:1] == "'" and text[1:2] != "" and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text
