"""Creating, changing, ordering, archiving and copying pathways, steps and options."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.db import utcnow
from lti_app.learners.vocab import CareerCluster, Modality
from lti_app.pathways import options, services
from lti_app.pathways.choices import choose_option
from lti_app.pathways.copying import copy_pathways
from lti_app.pathways.errors import (
    CopyError,
    OptionNotFoundError,
    ParentCompetencyError,
    PathwayInUseError,
    PathwayNotFoundError,
    StepNotFoundError,
)
from lti_app.pathways.models import Attempt, Option, Step
from lti_app.pathways.options import OptionInput
from lti_app.pathways.text import InvalidUrlError
from tests.pathways.conftest import MakeCompetency


def test_pathway_round_trip_with_competencies(
    session: Session, course: int, make_competency: MakeCompetency
) -> None:
    c1, c2 = make_competency(course, "C1"), make_competency(course, "C2")
    pathway = services.create_pathway(
        session,
        context_id=course,
        title="  Cells   and transport ",
        description="<p>Go<script>x</script></p>",
        competency_ids=[c2, c1],
    )
    assert pathway.title == "Cells and transport"
    assert pathway.description == "<p>Go</p>"
    ids = services.pathway_competency_ids(session, context_id=course, pathway_id=pathway.id)
    assert ids == sorted([c1, c2])

    services.update_pathway(
        session,
        context_id=course,
        pathway_id=pathway.id,
        title="Cells",
        description="",
        competency_ids=[c1],
    )
    assert services.pathway_competency_ids(session, context_id=course, pathway_id=pathway.id) == [
        c1
    ]


def test_pathway_refuses_a_competency_of_another_course(
    session: Session, course: int, other_course: int, make_competency: MakeCompetency
) -> None:
    foreign = make_competency(other_course, "C1")
    with pytest.raises(ValueError, match="not part of this course"):
        services.create_pathway(session, context_id=course, title="P", competency_ids=[foreign])


def test_a_step_cannot_be_evidence_for_a_competency_with_sub_competencies(
    session: Session, course: int, make_competency: MakeCompetency
) -> None:
    """A parent's level is rolled up from its sub-competencies and takes no evidence, so
    marking such a step's work done with a level could only fail."""
    unit, part = make_competency(course, "U1", "Cells"), make_competency(course, "U1.1")
    session.get_one(Competency, part).parent_id = unit
    session.flush()
    pathway = services.create_pathway(session, context_id=course, title="Cells")
    with pytest.raises(ParentCompetencyError, match="“U1 Cells” has sub-competencies"):
        services.create_step(
            session, context_id=course, pathway_id=pathway.id, title="Tour", competency_id=unit
        )
    step = services.create_step(
        session, context_id=course, pathway_id=pathway.id, title="Tour", competency_id=part
    )
    with pytest.raises(ParentCompetencyError, match="competency this step's work is evidence"):
        services.update_step(
            session,
            context_id=course,
            step_id=step.id,
            title="Tour",
            description="",
            competency_id=unit,
            prerequisite_ids=[],
        )
    assert step.competency_id == part
    session.get_one(Competency, part).archived_at = utcnow()  # no sub-competency left
    session.flush()
    services.update_step(
        session,
        context_id=course,
        step_id=step.id,
        title="Tour",
        description="",
        competency_id=unit,
        prerequisite_ids=[],
    )
    assert step.competency_id == unit


def test_empty_title_is_refused(session: Session, course: int) -> None:
    with pytest.raises(ValueError, match="title"):
        services.create_pathway(session, context_id=course, title="   ")


def test_new_pathways_steps_and_options_go_last(session: Session, course: int) -> None:
    first = services.create_pathway(session, context_id=course, title="A")
    second = services.create_pathway(session, context_id=course, title="B")
    assert (first.position, second.position) == (0, 1)
    s1 = services.create_step(session, context_id=course, pathway_id=first.id, title="1")
    s2 = services.create_step(session, context_id=course, pathway_id=first.id, title="2")
    assert (s1.position, s2.position) == (0, 1)
    o1 = options.create_option(session, context_id=course, step_id=s1.id, data=OptionInput("x"))
    o2 = options.create_option(session, context_id=course, step_id=s1.id, data=OptionInput("y"))
    assert (o1.position, o2.position) == (0, 1)


def test_reorder_puts_named_rows_first(session: Session, course: int) -> None:
    a, _b, c = (services.create_pathway(session, context_id=course, title=t) for t in "ABC")
    services.reorder_pathways(session, context_id=course, pathway_ids=[c.id, a.id])
    listed = services.list_pathways(session, context_id=course)
    assert [p.title for p in listed] == ["C", "A", "B"]


def test_reorder_steps_and_options(session: Session, course: int) -> None:
    pathway = services.create_pathway(session, context_id=course, title="P")
    s1, s2 = (
        services.create_step(session, context_id=course, pathway_id=pathway.id, title=t)
        for t in ("one", "two")
    )
    services.reorder_steps(
        session, context_id=course, pathway_id=pathway.id, step_ids=[s2.id, s1.id]
    )
    steps = services.list_steps(session, context_id=course, pathway_id=pathway.id)
    assert [s.title for s in steps] == ["two", "one"]

    o1, o2 = (
        options.create_option(session, context_id=course, step_id=s1.id, data=OptionInput(t))
        for t in ("x", "y")
    )
    options.reorder_options(session, context_id=course, step_id=s1.id, option_ids=[o2.id, o1.id])
    assert [o.title for o in options.list_options(session, context_id=course, step_id=s1.id)] == [
        "y",
        "x",
    ]


def test_reorder_refuses_a_step_of_another_pathway(session: Session, course: int) -> None:
    p1 = services.create_pathway(session, context_id=course, title="P1")
    p2 = services.create_pathway(session, context_id=course, title="P2")
    foreign = services.create_step(session, context_id=course, pathway_id=p2.id, title="x")
    with pytest.raises(StepNotFoundError):
        services.reorder_steps(session, context_id=course, pathway_id=p1.id, step_ids=[foreign.id])


def test_archive_hides_and_restore_shows(session: Session, course: int) -> None:
    pathway = services.create_pathway(session, context_id=course, title="P")
    step = services.create_step(session, context_id=course, pathway_id=pathway.id, title="S")
    option = options.create_option(
        session, context_id=course, step_id=step.id, data=OptionInput("O")
    )
    services.archive_pathway(session, context_id=course, pathway_id=pathway.id)
    services.archive_step(session, context_id=course, step_id=step.id)
    options.archive_option(session, context_id=course, option_id=option.id)
    assert services.list_pathways(session, context_id=course) == []
    assert services.list_steps(session, context_id=course, pathway_id=pathway.id) == []
    assert options.list_options(session, context_id=course, step_id=step.id) == []
    assert services.list_pathways(session, context_id=course, include_archived=True) == [pathway]

    services.restore_pathway(session, context_id=course, pathway_id=pathway.id)
    services.restore_step(session, context_id=course, step_id=step.id)
    options.restore_option(session, context_id=course, option_id=option.id)
    assert not pathway.is_archived
    assert options.list_options(session, context_id=course, step_id=step.id) == [option]


def test_option_fields_are_validated_and_cleaned(session: Session, course: int) -> None:
    pathway = services.create_pathway(session, context_id=course, title="P")
    step = services.create_step(session, context_id=course, pathway_id=pathway.id, title="S")
    option = options.create_option(
        session,
        context_id=course,
        step_id=step.id,
        data=OptionInput(
            title="Build a model cell",
            modality="offline_hands_on",
            description='<p onmouseover="x()">Use <a href="javascript:alert(1)">clay</a></p>',
            links=[{"label": "Guide", "url": "https://example.org/guide"}],
            interest_tags=["Art", " art ", "Animals"],
            career_clusters=[CareerCluster.HEALTH_SCIENCE, "Finance"],
            challenge=3,
            expected_minutes=90,
            requires_approval=True,
        ),
    )
    assert option.modality is Modality.OFFLINE_HANDS_ON
    assert option.description == '<p>Use <a rel="noopener">clay</a></p>'
    assert option.interest_tags == ["Art", "Animals"]
    assert option.career_clusters == ["Health Science", "Finance"]
    assert option.challenge_level.label == "Stretch"
    session.expire_all()
    reloaded = session.get(Option, option.id)
    assert reloaded is not None
    assert reloaded.links == [{"label": "Guide", "url": "https://example.org/guide"}]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (OptionInput("x", modality="podcast"), ValueError),
        (OptionInput("x", challenge=4), ValueError),
        (OptionInput("x", expected_minutes=0), ValueError),
        (OptionInput("x", career_clusters=["Astronaut"]), ValueError),
        (OptionInput("x", links=[{"label": "x", "url": "javascript:alert(1)"}]), InvalidUrlError),
    ],
)
def test_bad_option_input_is_refused(
    session: Session, course: int, data: OptionInput, error: type[Exception]
) -> None:
    pathway = services.create_pathway(session, context_id=course, title="P")
    step = services.create_step(session, context_id=course, pathway_id=pathway.id, title="S")
    with pytest.raises(error):
        options.create_option(session, context_id=course, step_id=step.id, data=data)


def test_update_option_replaces_fields(session: Session, course: int) -> None:
    pathway = services.create_pathway(session, context_id=course, title="P")
    step = services.create_step(session, context_id=course, pathway_id=pathway.id, title="S")
    option = options.create_option(
        session, context_id=course, step_id=step.id, data=OptionInput("x", interest_tags=["a"])
    )
    options.update_option(
        session, context_id=course, option_id=option.id, data=OptionInput("y", Modality.VIDEO)
    )
    assert (option.title, option.modality, option.interest_tags) == ("y", Modality.VIDEO, [])


def test_step_prerequisites_and_assessed_competency(
    session: Session, course: int, make_competency: MakeCompetency
) -> None:
    c1, c2, c3 = (make_competency(course, c) for c in ("C1", "C2", "C3"))
    pathway = services.create_pathway(session, context_id=course, title="P")
    step = services.create_step(
        session,
        context_id=course,
        pathway_id=pathway.id,
        title="S",
        competency_id=c3,
        prerequisite_ids=[c1, c2],
    )
    assert services.step_prerequisite_ids(session, context_id=course, step_id=step.id) == [c1, c2]
    services.update_step(
        session,
        context_id=course,
        step_id=step.id,
        title="S",
        description="",
        competency_id=None,
        prerequisite_ids=[c2],
    )
    assert step.competency_id is None
    assert services.step_prerequisite_ids(session, context_id=course, step_id=step.id) == [c2]


def test_ids_of_another_course_are_not_found(
    session: Session, course: int, other_course: int
) -> None:
    pathway = services.create_pathway(session, context_id=other_course, title="B's")
    step = services.create_step(session, context_id=other_course, pathway_id=pathway.id, title="S")
    option = options.create_option(
        session, context_id=other_course, step_id=step.id, data=OptionInput("O")
    )
    with pytest.raises(PathwayNotFoundError):
        services.get_pathway(session, context_id=course, pathway_id=pathway.id)
    with pytest.raises(PathwayNotFoundError):
        services.create_step(session, context_id=course, pathway_id=pathway.id, title="x")
    with pytest.raises(StepNotFoundError):
        options.create_option(session, context_id=course, step_id=step.id, data=OptionInput("x"))
    with pytest.raises(OptionNotFoundError):
        options.get_option(session, context_id=course, option_id=option.id)
    with pytest.raises(OptionNotFoundError):
        options.archive_option(session, context_id=course, option_id=option.id)
    assert services.list_pathways(session, context_id=course) == []


def test_delete_refuses_when_students_chose(session: Session, course: int, student: int) -> None:
    pathway = services.create_pathway(session, context_id=course, title="P")
    step = services.create_step(session, context_id=course, pathway_id=pathway.id, title="S")
    option = options.create_option(
        session, context_id=course, step_id=step.id, data=OptionInput("O")
    )
    spare = options.create_option(
        session, context_id=course, step_id=step.id, data=OptionInput("spare")
    )
    choose_option(
        session, context_id=course, person_id=student, option_id=option.id, mastered_ids=set()
    )
    deletions: list[Callable[[], None]] = [
        lambda: options.delete_option(session, context_id=course, option_id=option.id),
        lambda: services.delete_step(session, context_id=course, step_id=step.id),
        lambda: services.delete_pathway(session, context_id=course, pathway_id=pathway.id),
    ]
    for delete in deletions:
        with pytest.raises(PathwayInUseError):
            delete()
    options.delete_option(session, context_id=course, option_id=spare.id)
    assert options.list_options(session, context_id=course, step_id=step.id) == [option]


def test_a_students_earlier_try_keeps_its_step_option_and_pathway_from_deletion(
    session: Session, course: int, student: int
) -> None:
    """A student who tried a step again and then withdrew the new pick has no choice left in
    the pathway, only the earlier try: their work all the same, which a delete would take."""
    pathway = services.create_pathway(session, context_id=course, title="P")
    step = services.create_step(session, context_id=course, pathway_id=pathway.id, title="S")
    option = options.create_option(
        session, context_id=course, step_id=step.id, data=OptionInput("O")
    )
    session.add(
        Attempt(
            context_id=course,
            person_id=student,
            step_id=step.id,
            option_id=option.id,
            number=1,
            submission_note="first try",
            chosen_at=utcnow(),
        )
    )
    session.flush()
    for delete in (
        lambda: options.delete_option(session, context_id=course, option_id=option.id),
        lambda: services.delete_step(session, context_id=course, step_id=step.id),
        lambda: services.delete_pathway(session, context_id=course, pathway_id=pathway.id),
    ):
        with pytest.raises(PathwayInUseError):
            delete()
    session.expire_all()
    kept = select(Attempt.submission_note).where(Attempt.person_id == student)
    assert session.scalars(kept).all() == ["first try"]


def test_delete_unused_pathway_removes_its_steps(session: Session, course: int) -> None:
    pathway = services.create_pathway(session, context_id=course, title="P")
    services.create_step(session, context_id=course, pathway_id=pathway.id, title="S")
    services.delete_pathway(session, context_id=course, pathway_id=pathway.id)
    session.expire_all()
    assert session.scalars(select(Step).where(Step.context_id == course)).all() == []


def test_copy_pathways_translates_competencies(
    session: Session, course: int, other_course: int, make_competency: MakeCompetency
) -> None:
    a1, a2 = make_competency(course, "C1"), make_competency(course, "C2")
    b1, b2 = make_competency(other_course, "C1"), make_competency(other_course, "C2")
    services.create_pathway(session, context_id=other_course, title="Already there")
    pathway = services.create_pathway(
        session, context_id=course, title="Cells", description="<p>d</p>", competency_ids=[a2]
    )
    step = services.create_step(
        session,
        context_id=course,
        pathway_id=pathway.id,
        title="S",
        competency_id=a2,
        prerequisite_ids=[a1],
    )
    options.create_option(
        session,
        context_id=course,
        step_id=step.id,
        data=OptionInput("O", Modality.VIDEO, interest_tags=["x"], requires_approval=True),
    )
    gone = options.create_option(
        session, context_id=course, step_id=step.id, data=OptionInput("archived")
    )
    options.archive_option(session, context_id=course, option_id=gone.id)
    archived = services.create_pathway(session, context_id=course, title="Old")
    services.archive_pathway(session, context_id=course, pathway_id=archived.id)

    copies = copy_pathways(
        session,
        from_context_id=course,
        to_context_id=other_course,
        competency_id_map={a1: b1, a2: b2},
    )

    assert [p.title for p in copies] == ["Cells"]
    copy = copies[0]
    assert copy.context_id == other_course
    assert copy.position == 1
    assert services.pathway_competency_ids(
        session, context_id=other_course, pathway_id=copy.id
    ) == [b2]
    [new_step] = services.list_steps(session, context_id=other_course, pathway_id=copy.id)
    assert new_step.competency_id == b2
    assert services.step_prerequisite_ids(
        session, context_id=other_course, step_id=new_step.id
    ) == [b1]
    [new_option] = options.list_options(session, context_id=other_course, step_id=new_step.id)
    assert (new_option.title, new_option.modality, new_option.interest_tags) == (
        "O",
        Modality.VIDEO,
        ["x"],
    )
    assert new_option.requires_approval
    assert new_option.context_id == other_course


def test_copy_refuses_unmapped_competencies(
    session: Session, course: int, other_course: int, make_competency: MakeCompetency
) -> None:
    a1 = make_competency(course, "C1")
    pathway = services.create_pathway(session, context_id=course, title="P")
    services.create_step(
        session, context_id=course, pathway_id=pathway.id, title="S", prerequisite_ids=[a1]
    )
    with pytest.raises(CopyError, match="C1"):
        copy_pathways(
            session, from_context_id=course, to_context_id=other_course, competency_id_map={}
        )


def test_copy_refuses_to_make_a_step_evidence_for_a_parent_competency(
    session: Session, course: int, other_course: int, make_competency: MakeCompetency
) -> None:
    source = make_competency(course, "C1", "Cells")
    pathway = services.create_pathway(session, context_id=course, title="P")
    services.create_step(
        session, context_id=course, pathway_id=pathway.id, title="Lab", competency_id=source
    )
    # In the target course C1 has a sub-competency, which the step editor would not allow.
    target = make_competency(other_course, "C1", "Cells")
    session.add(Competency(context_id=other_course, code="C1.1", title="Part", parent_id=target))
    session.flush()
    with pytest.raises(CopyError, match="“Lab” is evidence for C1 Cells"):
        copy_pathways(
            session,
            from_context_id=course,
            to_context_id=other_course,
            competency_id_map={source: target},
        )
    assert services.list_pathways(session, context_id=other_course) == []


def test_copy_refuses_a_map_into_a_third_course(
    session: Session, course: int, other_course: int, make_competency: MakeCompetency
) -> None:
    a1 = make_competency(course, "C1")
    also_a = make_competency(course, "C9")
    services.create_pathway(session, context_id=course, title="P", competency_ids=[a1])
    with pytest.raises(CopyError, match="target course"):
        copy_pathways(
            session,
            from_context_id=course,
            to_context_id=other_course,
            competency_id_map={a1: also_a},
        )
