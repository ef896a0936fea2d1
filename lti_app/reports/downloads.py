"""Names of downloaded files made from names people wrote (a student's, a course's): readable
in any script, safe on every file system, and sent as RFC 6266 asks."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

NAME_IN_FILE_MAX = 60
"""Characters of a name in a file name: with the rest, well under the 255 bytes file systems
allow, even in a script of three bytes a letter."""


def file_name_part(name: str, *, ascii_only: bool, fallback: str) -> str:
    """The name as part of a file name: letters, marks and digits of any script (or, for
    clients that read only ASCII, the Latin letters without their accents); every other run of
    characters, path separators and quotes among them, becomes one hyphen. `fallback` when
    nothing is left."""
    if ascii_only:
        decomposed = unicodedata.normalize("NFKD", name)
        name = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        kept = re.sub(r"[^A-Za-z0-9]+", "-", name).lower()
    else:
        letters = (
            ch if unicodedata.category(ch)[0] in "LMN" else "-"
            for ch in unicodedata.normalize("NFC", name)
        )
        kept = re.sub(r"-+", "-", "".join(letters))
    return kept.strip("-")[:NAME_IN_FILE_MAX].strip("-") or fallback


def attachment(plain: str, written: str) -> str:
    """Content-Disposition for a download: `plain` (ASCII) for old clients, `written` (the
    name as people wrote it) in filename*, which every current browser uses."""
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(written, safe='')}"
