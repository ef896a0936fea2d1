"""Words shared by learner profiles and pathway options: career clusters and ways of learning."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable

from lti_app.unicode_text import is_blank, nfc

_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_control_characters(text: str) -> str:
    """Drop invisible control characters (NUL among them, which PostgreSQL refuses to store);
    tabs and line breaks stay."""
    return _CONTROL_CHARACTERS.sub("", text)


class CareerCluster(enum.StrEnum):
    """The 16 National Career Clusters (Advance CTE, 2008 framework)."""

    AGRICULTURE = "Agriculture, Food & Natural Resources"
    ARCHITECTURE = "Architecture & Construction"
    ARTS = "Arts, A/V Technology & Communications"
    BUSINESS = "Business Management & Administration"
    EDUCATION = "Education & Training"
    FINANCE = "Finance"
    GOVERNMENT = "Government & Public Administration"
    HEALTH_SCIENCE = "Health Science"
    HOSPITALITY = "Hospitality & Tourism"
    HUMAN_SERVICES = "Human Services"
    INFORMATION_TECHNOLOGY = "Information Technology"
    LAW = "Law, Public Safety, Corrections & Security"
    MANUFACTURING = "Manufacturing"
    MARKETING = "Marketing"
    STEM = "Science, Technology, Engineering & Mathematics"
    TRANSPORTATION = "Transportation, Distribution & Logistics"


class Modality(enum.StrEnum):
    """A way of learning: how an option is done, and how a student likes to learn."""

    ONLINE = "online"
    OFFLINE_HANDS_ON = "offline_hands_on"
    PROJECT = "project"
    READING = "reading"
    VIDEO = "video"
    DISCUSSION = "discussion"
    REAL_WORLD_TASK = "real_world_task"

    @property
    def label(self) -> str:
        return _MODALITY_LABELS[self]


_MODALITY_LABELS = {
    Modality.ONLINE: "Online",
    Modality.OFFLINE_HANDS_ON: "Offline, hands-on",
    Modality.PROJECT: "Project",
    Modality.READING: "Reading",
    Modality.VIDEO: "Video",
    Modality.DISCUSSION: "Discussion",
    Modality.REAL_WORLD_TASK: "Real-world task",
}

MAX_TAG_LENGTH = 64
MAX_TAGS = 30


def tag_as_kept(raw: str) -> str:
    """One tag as clean_tags keeps it: spaces collapsed, in NFC; "" when nothing of it shows."""
    tag = nfc(" ".join(strip_control_characters(raw).split()))
    return "" if is_blank(tag) else tag


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Trim, drop empties and case-insensitive duplicates, keeping the first spelling and order.

    Tags compare in NFC, so "café" typed and "café" pasted decomposed are one tag.
    """
    seen: set[str] = set()
    cleaned: list[str] = []
    for raw in tags:
        tag = tag_as_kept(str(raw))
        if not tag or tag.casefold() in seen:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise ValueError(
                f"“{tag[:20]}…” is too long; keep tags under {MAX_TAG_LENGTH} characters."
            )
        seen.add(tag.casefold())
        cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise ValueError(f"Use at most {MAX_TAGS} tags.")
    return cleaned


def parse_career_clusters(values: Iterable[str | CareerCluster]) -> list[str]:
    """Validate career clusters and return their stored values, without duplicates."""
    result: list[str] = []
    for value in values:
        try:
            cluster = CareerCluster(value)
        except ValueError:
            raise ValueError(f"“{value}” is not one of the National Career Clusters.") from None
        if cluster.value not in result:
            result.append(cluster.value)
    return result


def parse_modalities(values: Iterable[str | Modality]) -> list[str]:
    """Validate ways of learning and return their stored values, without duplicates."""
    result: list[str] = []
    for value in values:
        try:
            modality = Modality(value)
        except ValueError:
            raise ValueError(f"“{value}” is not a known way of learning.") from None
        if modality.value not in result:
            result.append(modality.value)
    return result
