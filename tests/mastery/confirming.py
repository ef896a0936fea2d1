"""Confirming a "Not saved yet" warning as its "… it anyway" button does: the form sends back
the loss the warning named, and the save goes through only if it takes no more than that."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import httpx

WARNED_LOSS = re.compile(r'name="warned_loss" value="([^"]*)"')


def confirm_of(page: str) -> dict[str, str]:
    """What the warning's confirm button sends besides the form's own fields."""
    found = WARNED_LOSS.search(page)
    assert found is not None, "the page asks nothing to confirm"
    return {"confirm_locks": "yes", "warned_loss": found.group(1)}


def save_anyway(
    post: Callable[[dict[str, str]], httpx.Response], fields: Mapping[str, str]
) -> httpx.Response:
    """Send `fields`, and when the answer asks first, confirm what it names: for tests of what
    a save does (test_losing_mastery_asks_first tests the asking)."""
    answer = post(dict(fields))
    if "Not saved yet" not in answer.text:
        return answer
    return post({**fields, **confirm_of(answer.text)})
