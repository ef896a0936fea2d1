"""Saving a pathway, step or option from an editor page that may be out of date.

A course's teachers share its pathways, and a teacher keeps tabs open. The editor's page
carries what it showed (lti_app.page_edits); a save that would write back over a change someone
else made since then is refused, nothing saved, so that a colleague's new title or ticks are
never silently undone. Unlike a learner profile, nothing is merged on the quiet: a pathway's
title, competencies and steps are read together, so the teacher sees the colleague's version
before saving theirs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import nh3

from lti_app.learners.vocab import Modality
from lti_app.page_edits import PageEdit, compare_page, read_shown
from lti_app.pathways.models import ChallengeLevel, Option, Pathway, Step

ID_FIELDS = frozenset({"competency_ids", "competency_id", "prerequisite_ids"})
"""Fields holding competency ids, named by the caller's `names` in a message."""


class StalePageError(Exception):
    """Someone else saved the item after this page was shown, and saving would undo that.
    Nothing was saved."""

    def __init__(self, edit: PageEdit) -> None:
        super().__init__("changed by someone else since the page was shown")
        self.edit = edit


def pathway_values(pathway: Pathway, competency_ids: Collection[int]) -> dict[str, Any]:
    """A pathway's fields as a save compares them."""
    return {
        "title": pathway.title,
        "description": pathway.description,
        "competency_ids": sorted(set(competency_ids)),
    }


def step_values(step: Step, prerequisite_ids: Collection[int]) -> dict[str, Any]:
    """A step's fields as a save compares them."""
    return {
        "title": step.title,
        "description": step.description,
        "competency_id": step.competency_id,
        "prerequisite_ids": sorted(set(prerequisite_ids)),
    }


def option_values(option: Option) -> dict[str, Any]:
    """An option's fields as a save compares them."""
    return {
        "title": option.title,
        "description": option.description,
        "links": [dict(link) for link in option.links or []],
        "modality": Modality(option.modality).value,
        "interest_tags": list(option.interest_tags or []),
        "career_clusters": sorted(option.career_clusters or []),
        "challenge": option.challenge,
        "expected_minutes": option.expected_minutes,
        "requires_approval": bool(option.requires_approval),
    }


def check_page(typed: Mapping[str, Any], stored: Mapping[str, Any], shown: str | None) -> None:
    """Let the save go ahead unless it would undo someone else's change.

    :param typed: the fields as the save would store them.
    :param stored: the fields as stored now, read under the row's lock.
    :param shown: what the page showed (None, or not readable: an older page, saved as asked).
    :raises StalePageError: someone else changed a field since, and the save would replace it.
    """
    edit = compare_page(typed, stored, read_shown(shown))
    if edit.overwritten:
        raise StalePageError(edit)


def stale_message(
    what: str,
    edit: PageEdit,
    labels: Mapping[str, str],
    now: Mapping[str, Any],
    names: Mapping[int, str],
) -> str:
    """Say that a colleague changed the item meanwhile, what, and what to do.

    :param what: "pathway", "step" or "option".
    :param labels: each field's name on the page ("the title").
    :param now: the fields as stored now (as `*_values` return them).
    :param names: competency names by id.
    """
    changed = [labels[name] for name in edit.changed_elsewhere]
    message = [
        f"someone else (a colleague, or you in another tab) saved this {what} after you "
        f"opened this page, and changed {_and(changed)}."
    ]
    for name in edit.changed_elsewhere:
        if name in edit.changed:
            text = _text(name, now[name], names)
            theirs = f"theirs reads “{text}”" if text else "theirs is empty"
            message.append(f"You changed {labels[name]} too: {theirs}.")
    message.append(
        "Below, what you changed is as you typed it and the rest is their version: "
        "check it, then save again."
    )
    return " ".join(message)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _text(name: str, value: Any, names: Mapping[int, str]) -> str:
    """A stored value in words."""
    if name in ID_FIELDS:
        ids = value if isinstance(value, list) else [] if value is None else [value]
        return ", ".join(names.get(i, "a competency") for i in ids)
    if name == "description":
        # Stored as cleaned HTML; the message is escaped text, so only the words are quoted.
        spaced = re.sub(r"</p>|</li>|<br\s*/?>", " ", value)
        return " ".join(html.unescape(nh3.clean(spaced, tags=set())).split())
    if name == "links":
        return ", ".join(link.get("url", "") for link in value)
    if name == "modality":
        return Modality(value).label
    if name == "challenge":
        return ChallengeLevel(value).label
    if name == "requires_approval":
        return "needs approval" if value else "no approval needed"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


PATHWAY_LABELS = {
    "title": "the title",
    "description": "the description",
    "competency_ids": "the competencies it leads to",
}
STEP_LABELS = {
    "title": "the title",
    "description": "the description",
    "competency_id": "the competency its work is evidence for",
    "prerequisite_ids": "the prerequisites",
}
OPTION_LABELS = {
    "title": "the title",
    "description": "the description",
    "links": "the links",
    "modality": "the kind of option",
    "interest_tags": "the interest tags",
    "career_clusters": "the career clusters",
    "challenge": "the challenge level",
    "expected_minutes": "the expected time",
    "requires_approval": "whether it needs your approval",
}
OPTION_FORM_FIELDS = {"links": "links_text", "interest_tags": "interest_tags_text"}
"""The option form's names for fields it shows as text."""

_F = TypeVar("_F")


def redo_form(
    typed: _F, now: _F, edit: PageEdit, form_fields: Mapping[str, str] | None = None
) -> _F:
    """The form to show again after a refusal: the fields changed on the page as typed, the
    rest (and what the page showed) as stored now, so that saving it again undoes nothing.

    :param form_fields: the form's name for a field when it is not the field's own.
    """
    names = [(form_fields or {}).get(name, name) for name in edit.changed]
    return replace(now, **{name: getattr(typed, name) for name in names})  # type: ignore[type-var]
