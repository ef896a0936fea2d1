"""What the pathway pages' forms send, checked and turned into service arguments.

Each form is a dataclass of the raw strings the page shows, so a refused form can be shown
again as the teacher typed it. ``to_*`` methods raise ValueError with a message for the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape

from werkzeug.datastructures import MultiDict

from lti_app.db import DATABASE_ID_MAX
from lti_app.learners.vocab import CareerCluster, Modality
from lti_app.page_edits import SHOWN, shown_token
from lti_app.pathways.editing import option_values, pathway_values, step_values
from lti_app.pathways.models import ChallengeLevel, Option, Pathway, Step
from lti_app.pathways.options import OptionInput

"""Ids are 32-bit integers; a longer number would overflow SQLite's integers and is no id."""

FormData = MultiDict[str, str]
"""request.form (an ImmutableMultiDict) or any MultiDict, e.g. in tests."""


def parse_id(value: str | None, what: str = "item") -> int:
    """An id from a form or URL; anything else is refused in words."""
    try:
        number = int((value or "").strip())
    except ValueError:
        raise ValueError(f"Choose a {what}.") from None
    if not 0 < number <= DATABASE_ID_MAX:
        raise ValueError(f"Choose a {what}.")
    return number


def parse_ids(values: Iterable[str], what: str = "item") -> list[int]:
    return list(dict.fromkeys(parse_id(v, what) for v in values if v.strip()))


def _lenient_id(value: str) -> int:
    # An id that is not a number matches nothing: the service refuses it in words.
    try:
        number = int(value.strip())
    except ValueError:
        return -1
    return number if 0 < number <= DATABASE_ID_MAX else -1


def _lenient_ids(values: Iterable[str]) -> list[int]:
    return list(dict.fromkeys(_lenient_id(v) for v in values if v.strip()))


def text_to_html(text: str) -> str:
    """Let teachers type plain paragraphs; text with tags is kept for clean_html to filter."""
    text = text.strip()
    if not text or "<" in text:
        return text
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(
        "<p>" + "<br>".join(escape(line) for line in p.split("\n")) + "</p>" for p in paragraphs
    )


def _words(value: str) -> str:
    return " ".join(value.split())


@dataclass
class PathwayForm:
    title: str = ""
    description: str = ""
    competency_ids: list[int] = field(default_factory=list)
    shown: str = ""
    """What the editor's page showed (lti_app.page_edits); empty on a new pathway's form."""

    @classmethod
    def from_request(cls, form: FormData) -> PathwayForm:
        return cls(
            title=form.get("title", ""),
            description=form.get("description", ""),
            competency_ids=_lenient_ids(form.getlist("competency_ids")),
            shown=form.get(SHOWN, ""),
        )

    @classmethod
    def from_pathway(cls, pathway: Pathway, competency_ids: list[int]) -> PathwayForm:
        return cls(
            pathway.title,
            pathway.description,
            list(competency_ids),
            shown_token(pathway_values(pathway, competency_ids)),
        )

    @property
    def description_html(self) -> str:
        return text_to_html(self.description)


@dataclass
class StepForm:
    title: str = ""
    description: str = ""
    competency_id: int | None = None
    prerequisite_ids: list[int] = field(default_factory=list)
    shown: str = ""
    """What the editor's page showed (lti_app.page_edits); empty on a new step's form."""

    @classmethod
    def from_request(cls, form: FormData) -> StepForm:
        raw = form.get("competency_id", "").strip()
        return cls(
            title=form.get("title", ""),
            description=form.get("description", ""),
            competency_id=_lenient_id(raw) if raw else None,
            prerequisite_ids=_lenient_ids(form.getlist("prerequisite_ids")),
            shown=form.get(SHOWN, ""),
        )

    @classmethod
    def from_step(cls, step: Step, prerequisite_ids: list[int]) -> StepForm:
        return cls(
            step.title,
            step.description,
            step.competency_id,
            list(prerequisite_ids),
            shown_token(step_values(step, prerequisite_ids)),
        )

    @property
    def description_html(self) -> str:
        return text_to_html(self.description)


@dataclass
class OptionForm:
    title: str = ""
    description: str = ""
    links_text: str = ""
    """One link a line: ``Label | https://...`` or just the URL."""
    modality: str = Modality.ONLINE.value
    interest_tags_text: str = ""
    """Comma-separated."""
    career_clusters: list[str] = field(default_factory=list)
    challenge: str = str(ChallengeLevel.CORE.value)
    expected_minutes: str = ""
    requires_approval: bool = False
    shown: str = ""
    """What the editor's page showed (lti_app.page_edits); empty on a new option's form."""

    @classmethod
    def from_request(cls, form: FormData) -> OptionForm:
        return cls(
            title=form.get("title", ""),
            description=form.get("description", ""),
            links_text=form.get("links", ""),
            modality=form.get("modality", ""),
            interest_tags_text=form.get("interest_tags", ""),
            career_clusters=form.getlist("career_clusters"),
            challenge=form.get("challenge", ""),
            expected_minutes=form.get("expected_minutes", ""),
            requires_approval=form.get("requires_approval", "") == "1",
            shown=form.get(SHOWN, ""),
        )

    @classmethod
    def from_option(cls, option: Option) -> OptionForm:
        return cls(
            title=option.title,
            description=option.description,
            links_text="\n".join(_link_line(link) for link in option.links),
            modality=option.modality.value,
            interest_tags_text=", ".join(option.interest_tags),
            career_clusters=list(option.career_clusters),
            challenge=str(option.challenge),
            expected_minutes=""
            if option.expected_minutes is None
            else str(option.expected_minutes),
            requires_approval=option.requires_approval,
            shown=shown_token(option_values(option)),
        )

    def to_input(self) -> OptionInput:
        minutes_text = self.expected_minutes.strip()
        try:
            minutes = int(minutes_text) if minutes_text else None
        except ValueError:
            raise ValueError("Expected time must be a whole number of minutes.") from None
        try:
            challenge = int(self.challenge)
        except ValueError:
            raise ValueError("Choose a challenge level.") from None
        return OptionInput(
            title=self.title,
            modality=self.modality,
            description=text_to_html(self.description),
            links=parse_links(self.links_text),
            interest_tags=[t for t in (_words(t) for t in self.interest_tags_text.split(",")) if t],
            career_clusters=self.career_clusters,
            challenge=challenge,
            expected_minutes=minutes,
            requires_approval=self.requires_approval,
        )


def _link_line(link: Mapping[str, str]) -> str:
    label, url = link.get("label", ""), link.get("url", "")
    return url if not label or label == url else f"{label} | {url}"


def parse_links(text: str) -> list[dict[str, str]]:
    """Read ``Label | URL`` lines (the label is optional); clean_links checks the URLs."""
    links = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        label, sep, url = line.rpartition("|")
        if not sep:
            label, url = "", line
        links.append({"label": label.strip(), "url": url.strip()})
    return links


CAREER_CLUSTERS = tuple(CareerCluster)
MODALITIES = tuple(Modality)
CHALLENGE_LEVELS = tuple(ChallengeLevel)


def minutes_label(minutes: int | None) -> str:
    """ "45 minutes", "2 hours", "1 hour 30 minutes"; empty when unknown."""
    if not minutes:
        return ""
    hours, rest = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if rest:
        parts.append(f"{rest} minute{'s' if rest != 1 else ''}")
    return " ".join(parts)
