"""Recommendations and their reasons, without a database."""

from __future__ import annotations

from lti_app.learners.vocab import CareerCluster, Modality
from lti_app.pathways.recommend import LearnerTraits, recommend_option


def test_interest_match_ignores_case_and_says_why() -> None:
    rec = recommend_option(
        interest_tags=["Animals", "drawing"],
        career_clusters=[],
        modality=Modality.READING,
        learner=LearnerTraits(interests=("animals",)),
    )
    assert rec.is_recommended
    assert rec.reasons == ("Matches your interest in animals",)


def test_career_cluster_match_names_the_cluster() -> None:
    rec = recommend_option(
        interest_tags=[],
        career_clusters=[CareerCluster.HEALTH_SCIENCE.value, CareerCluster.FINANCE.value],
        modality=Modality.PROJECT,
        learner=LearnerTraits(career_clusters=(CareerCluster.HEALTH_SCIENCE.value,)),
    )
    assert rec.reasons == ("Fits your career goal: Health Science",)


def test_preferred_way_of_learning_is_a_reason_too() -> None:
    rec = recommend_option(
        interest_tags=["animals"],
        career_clusters=[],
        modality=Modality.OFFLINE_HANDS_ON,
        learner=LearnerTraits(
            interests=("Animals",), preferred_modalities=(Modality.OFFLINE_HANDS_ON.value,)
        ),
    )
    assert rec.reasons == (
        "Matches your interest in Animals",
        "A way you like to learn: offline, hands-on",
    )


def test_no_match_is_not_recommended() -> None:
    rec = recommend_option(
        interest_tags=["music"],
        career_clusters=[CareerCluster.FINANCE.value],
        modality=Modality.VIDEO,
        learner=LearnerTraits(interests=("animals",), career_clusters=("Health Science",)),
    )
    assert not rec.is_recommended
    assert rec.reasons == ()


def test_empty_profile_recommends_nothing() -> None:
    rec = recommend_option(
        interest_tags=["animals"], career_clusters=[], modality="video", learner=LearnerTraits()
    )
    assert not rec.is_recommended
