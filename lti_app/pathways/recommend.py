"""Which options suit a student, and why: a pure function of the option and the profile."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from lti_app.learners.vocab import CareerCluster, Modality


@dataclass(frozen=True)
class LearnerTraits:
    """What recommendations look at in a learner profile."""

    interests: tuple[str, ...] = ()
    career_clusters: tuple[str, ...] = ()
    preferred_modalities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recommendation:
    is_recommended: bool
    reasons: tuple[str, ...]
    """Sentences for the student, e.g. "Matches your interest in animals"."""


NOT_RECOMMENDED = Recommendation(is_recommended=False, reasons=())


def recommend_option(
    *,
    interest_tags: Iterable[str],
    career_clusters: Iterable[str],
    modality: str,
    learner: LearnerTraits,
) -> Recommendation:
    """Recommend an option that matches an interest (any case), a career cluster or a preferred
    way of learning, giving one reason per match."""
    wanted = {_key(i): i for i in learner.interests}
    reasons = [
        f"Matches your interest in {wanted[_key(tag)]}"
        for tag in _unique_casefold(interest_tags)
        if _key(tag) in wanted
    ]
    learner_clusters = set(learner.career_clusters)
    reasons += [
        f"Fits your career goal: {CareerCluster(c).value}"
        for c in dict.fromkeys(career_clusters)
        if c in learner_clusters and c in CareerCluster._value2member_map_
    ]
    if modality in learner.preferred_modalities and modality in Modality._value2member_map_:
        reasons.append(f"A way you like to learn: {Modality(modality).label.lower()}")
    if not reasons:
        return NOT_RECOMMENDED
    return Recommendation(is_recommended=True, reasons=tuple(reasons))


def _key(tag: str) -> str:
    """Compare tags as people read them: "Écologie" typed with a composed or a decomposed
    accent, in any case, is the same interest."""
    return unicodedata.normalize("NFKC", tag).casefold()


def _unique_casefold(tags: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for tag in tags:
        if _key(tag) not in seen:
            seen.add(_key(tag))
            result.append(tag)
    return result
