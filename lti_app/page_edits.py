"""A form saved from a page that may be out of date: a colleague, a second tab, a check-in.

The page carries what it showed in a hidden field (`shown`: each field's value as the save
compares it, in JSON). Holding the row's lock, the save compares field by field what was typed,
what the page showed and what is stored now, and so knows what the editor changed and what
someone else changed meanwhile. Each form decides what to do about the latter: the learner
profile writes only the editor's changes and refuses a field both sides changed
(learners.profile_form); the pathway editor refuses to write back over any of them
(pathways.editing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SHOWN = "shown"
"""The hidden field holding what the page showed."""
MAX_SHOWN_LENGTH = 200_000
"""Far beyond any page's fields; a longer posted value is not read at all."""


def shown_token(values: Mapping[str, Any]) -> str:
    """The values (JSON-able, lists not tuples) as text for the page to carry and post back."""
    return json.dumps(values, ensure_ascii=False, sort_keys=True)


def read_shown(text: str | None) -> dict[str, Any] | None:
    """What a page says it showed; None when it does not say (an older page, a script)."""
    if not text or len(text) > MAX_SHOWN_LENGTH:
        return None
    try:
        shown = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested beyond json's reach
        return None
    return shown if isinstance(shown, dict) else None


@dataclass(frozen=True)
class PageEdit:
    """A posted form compared with its page and with what is stored now."""

    changed: list[str]
    """Fields the editor changed on the page (all of them when the page did not say)."""
    changed_elsewhere: list[str]
    """Fields someone else changed since the page was shown."""
    overwritten: list[str]
    """Of those, the ones the posted value would replace with something else: writing them
    would undo someone else's change."""


def compare_page(
    typed: Mapping[str, Any], stored: Mapping[str, Any], shown: Mapping[str, Any] | None
) -> PageEdit:
    """Compare, field by field, the typed, stored and shown values (each as compared: e.g.
    cleaned as the save stores it, ticks sorted)."""
    if shown is None:
        return PageEdit(list(typed), [], [])
    changed = [name for name in typed if name not in shown or shown[name] != typed[name]]
    elsewhere = [name for name in typed if name in shown and stored[name] != shown[name]]
    return PageEdit(changed, elsewhere, [name for name in elsewhere if stored[name] != typed[name]])
