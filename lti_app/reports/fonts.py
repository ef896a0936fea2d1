"""Which letters this server's fonts can print: a PDF shows the others as empty boxes.

WeasyPrint draws with the fonts fontconfig knows. A student named 李小龍 on a server with only
DejaVu gets a report of boxes, and nobody would know before the family opened it; the teacher's
report page says so instead (README: which font packages to install).
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import logging
import subprocess
import unicodedata
from collections.abc import Iterator
from typing import Any

LOG = logging.getLogger(__name__)


@functools.cache
def _covered() -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Sorted, merged code point ranges (starts, ends) of every installed font; None: unknown."""
    try:
        listing = subprocess.run(
            ["fc-list", "--format", "%{charset}\n"],  # noqa: S607 - fontconfig's own tool
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        LOG.warning("fc-list did not answer: cannot tell which letters the fonts print")
        return None
    ranges: list[tuple[int, int]] = []
    for part in listing.split():
        low, _, high = part.partition("-")
        try:
            ranges.append((int(low, 16), int(high or low, 16)))
        except ValueError:
            continue
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return tuple(r[0] for r in merged), tuple(r[1] for r in merged)


def unprintable(text: str) -> str:
    """The letters of `text` no installed font has, each once, in order ("" when unknown)."""
    covered = _covered()
    if covered is None:
        return ""
    starts, ends = covered
    missing: dict[str, None] = {}
    for char in text:
        if char in missing or unicodedata.category(char)[0] in "CZ":
            continue  # spaces and invisible marks print as nothing anyway
        code = ord(char)
        i = bisect.bisect_right(starts, code) - 1
        if i < 0 or ends[i] < code:
            missing[char] = None
    return "".join(missing)


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside a report's dataclasses, tuples and dicts."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from strings_in(getattr(value, field.name))
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
