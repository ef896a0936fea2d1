"""What a student sees of a pathway, and how many queries it takes."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from lti_app.learners import services as learners
from lti_app.learners.vocab import CareerCluster, Modality
from lti_app.pathways import choices as ch
from lti_app.pathways import options, reviewing, services
from lti_app.pathways import unlocking as ul
from lti_app.pathways.errors import ChoiceNotAllowedError, PathwayNotFoundError
from lti_app.pathways.options import OptionInput
from lti_app.pathways.student import student_pathway_view
from lti_app.pathways.views.student import _step_actions
from lti_app.progress.services import next_actions, pathway_overview
from tests.pathways.conftest import CountQueries, MakeCompetency


def build_pathway(
    session: Session, course: int, make_competency: MakeCompetency, steps: int
) -> int:
    """A pathway whose every step after the first waits for the previous step's competency."""
    pathway = services.create_pathway(session, context_id=course, title=f"{steps} steps")
    previous: int | None = None
    for n in range(steps):
        competency = make_competency(course, f"C{steps}-{n}", f"Topic {n}")
        step = services.create_step(
            session,
            context_id=course,
            pathway_id=pathway.id,
            title=f"Step {n}",
            competency_id=competency,
            prerequisite_ids=[] if previous is None else [previous],
        )
        for modality, tags in ((Modality.VIDEO, ["animals"]), (Modality.PROJECT, ["music"])):
            options.create_option(
                session,
                context_id=course,
                step_id=step.id,
                data=OptionInput(
                    f"{modality} {n}",
                    modality,
                    interest_tags=tags,
                    career_clusters=[CareerCluster.HEALTH_SCIENCE],
                ),
            )
        previous = competency
    return pathway.id


def test_view_shows_locks_choices_and_recommendations(
    session: Session, course: int, student: int, teacher: int, make_competency: MakeCompetency
) -> None:
    pathway_id = build_pathway(session, course, make_competency, 3)
    learners.update_profile(
        session,
        context_id=course,
        person_id=student,
        editor_is_teacher=False,
        interests=["Animals"],
    )
    first_steps = services.list_steps(session, context_id=course, pathway_id=pathway_id)
    video = options.list_options(session, context_id=course, step_id=first_steps[0].id)[0]
    choice = ch.choose_option(
        session, context_id=course, person_id=student, option_id=video.id, mastered_ids=set()
    )
    ul.unlock_step_for_students(
        session,
        context_id=course,
        step_id=first_steps[2].id,
        student_ids=[student],
        unlocked_by_id=teacher,
    )

    view = student_pathway_view(
        session, context_id=course, pathway_id=pathway_id, person_id=student, mastered_ids=set()
    )

    assert [s.step.title for s in view.steps] == ["Step 0", "Step 1", "Step 2"]
    assert [s.unlock.is_unlocked for s in view.steps] == [True, False, True]
    assert view.steps[1].unlock.reason == "Unlocks when you master C3-0 Topic 0"
    assert view.steps[2].unlock.reason == "Unlocked by your teacher"
    assert view.steps[0].choice == choice
    assert [o.is_chosen for o in view.steps[0].options] == [True, False]
    first, second = view.steps[0].options
    assert first.recommendation.reasons == ("Matches your interest in Animals",)
    assert not second.recommendation.is_recommended
    assert len(view.recommended_option_ids) == 3


def test_career_cluster_recommendation(
    session: Session, course: int, student: int, make_competency: MakeCompetency
) -> None:
    pathway_id = build_pathway(session, course, make_competency, 1)
    learners.update_profile(
        session,
        context_id=course,
        person_id=student,
        editor_is_teacher=False,
        career_clusters=[CareerCluster.HEALTH_SCIENCE],
    )
    view = student_pathway_view(
        session, context_id=course, pathway_id=pathway_id, person_id=student, mastered_ids=set()
    )
    for option in view.steps[0].options:
        assert option.recommendation.reasons == ("Fits your career goal: Health Science",)


def test_archived_rows_show_only_when_chosen(
    session: Session, course: int, student: int, make_competency: MakeCompetency
) -> None:
    pathway_id = build_pathway(session, course, make_competency, 2)
    step0, step1 = services.list_steps(session, context_id=course, pathway_id=pathway_id)
    chosen, other = options.list_options(session, context_id=course, step_id=step0.id)
    ch.choose_option(
        session, context_id=course, person_id=student, option_id=chosen.id, mastered_ids=set()
    )
    for option in (chosen, other):
        options.archive_option(session, context_id=course, option_id=option.id)
    services.archive_step(session, context_id=course, step_id=step0.id)
    services.archive_step(session, context_id=course, step_id=step1.id)

    view = student_pathway_view(
        session, context_id=course, pathway_id=pathway_id, person_id=student, mastered_ids=set()
    )
    assert [s.step.id for s in view.steps] == [step0.id]
    assert [o.option.id for o in view.steps[0].options] == [chosen.id]


def test_pathway_of_another_course_or_archived_is_not_found(
    session: Session, course: int, other_course: int, student: int, make_competency: MakeCompetency
) -> None:
    pathway_id = build_pathway(session, course, make_competency, 1)
    with pytest.raises(PathwayNotFoundError):
        student_pathway_view(
            session,
            context_id=other_course,
            pathway_id=pathway_id,
            person_id=student,
            mastered_ids=set(),
        )
    services.archive_pathway(session, context_id=course, pathway_id=pathway_id)
    with pytest.raises(PathwayNotFoundError):
        student_pathway_view(
            session, context_id=course, pathway_id=pathway_id, person_id=student, mastered_ids=set()
        )


@pytest.mark.parametrize("ask_mastery", [False, True])
def test_query_count_does_not_grow_with_steps(
    session: Session,
    course: int,
    student: int,
    teacher: int,
    make_competency: MakeCompetency,
    count_queries: CountQueries,
    ask_mastery: bool,
) -> None:
    learners.update_profile(
        session, context_id=course, person_id=student, editor_is_teacher=False, interests=["music"]
    )
    counts = []
    for size in (2, 10):
        pathway_id = build_pathway(session, course, make_competency, size)
        for step in services.list_steps(session, context_id=course, pathway_id=pathway_id):
            ul.unlock_step_for_students(
                session,
                context_id=course,
                step_id=step.id,
                student_ids=[student],
                unlocked_by_id=teacher,
            )
            option = options.list_options(session, context_id=course, step_id=step.id)[0]
            ch.choose_option(
                session,
                context_id=course,
                person_id=student,
                option_id=option.id,
                mastered_ids=set(),
            )
        session.flush()
        session.expire_all()
        with count_queries() as counter:
            view = student_pathway_view(
                session,
                context_id=course,
                pathway_id=pathway_id,
                person_id=student,
                mastered_ids=None if ask_mastery else set(),
            )
            # Touch everything a page would render: no lazy loads may hide here.
            for step_view in view.steps:
                assert step_view.choice is not None
                for option_view in step_view.options:
                    _ = (option_view.option.title, option_view.option.links, step_view.step.title)
        assert len(view.steps) == size
        counts.append(counter.count)
    assert counts[0] == counts[1]
    assert counts[0] <= 9, counts  # 8, and one for the earlier tries at the steps


def test_a_rejected_pick_on_a_retired_step_can_be_withdrawn_and_is_not_urged(
    session: Session, course: int, student: int, teacher: int
) -> None:
    pathway = services.create_pathway(session, context_id=course, title="P")
    retired = services.create_step(session, context_id=course, pathway_id=pathway.id, title="One")
    services.create_step(session, context_id=course, pathway_id=pathway.id, title="Two")
    big, small = (
        options.create_option(
            session, context_id=course, step_id=retired.id, data=OptionInput(title, **kw)
        )
        for title, kw in (("Big", {"requires_approval": True}), ("Small", {}))
    )
    pick = ch.choose_option(
        session, context_id=course, person_id=student, option_id=big.id, mastered_ids=set()
    )
    reviewing.return_choices(
        session, context_id=course, choice_ids=[pick.id], decided_by_id=teacher, note="No"
    )
    services.archive_step(session, context_id=course, step_id=retired.id)

    view = student_pathway_view(
        session, context_id=course, pathway_id=pathway.id, person_id=student, mastered_ids=set()
    )
    actions = _step_actions(next(s for s in view.steps if s.step.id == retired.id))
    assert actions["can_withdraw"]
    assert not actions["can_choose"]
    assert "choose an option again" not in str(actions["status"])
    assert "withdraw your choice" in str(actions["status"])
    # Nothing urges choosing again where nothing is on offer; the next step is suggested.
    suggested = [
        a.text
        for a in next_actions(pathway_overview(session, context_id=course, person_id=student))
    ]
    assert suggested == ["Choose an option for “Two”."]
    with pytest.raises(ChoiceNotAllowedError, match="taken this step off offer"):
        ch.choose_option(
            session, context_id=course, person_id=student, option_id=small.id, mastered_ids=set()
        )
    ch.withdraw_choice(session, context_id=course, person_id=student, choice_id=pick.id)
    view = student_pathway_view(
        session, context_id=course, pathway_id=pathway.id, person_id=student, mastered_ids=set()
    )
    assert [s.step.title for s in view.steps] == ["Two"]
