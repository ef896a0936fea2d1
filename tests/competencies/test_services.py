"""Building a course's framework: scoping, hierarchy, prerequisites, order, archiving."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy.orm import Session

from lti_app.competencies import queries, services
from lti_app.competencies.errors import (
    CompetencyCycleError,
    CompetencyError,
    CompetencyNotFound,
    CompetencyNotFoundError,
    InvalidCompetencyError,
)
from lti_app.competencies.models import Competency, CompetencyKind
from tests.domain_fixtures import Course


def make(
    session: Session,
    course: Course,
    code: str,
    parent_id: int | None = None,
    prerequisite_ids: Sequence[int] = (),
) -> Competency:
    return services.create_competency(
        session,
        context_id=course.context_id,
        code=code,
        title=f"Title {code}",
        parent_id=parent_id,
        prerequisite_ids=prerequisite_ids,
    )


def test_create_and_get_competency(session: Session, course: Course) -> None:
    created = services.create_competency(
        session,
        context_id=course.context_id,
        code="  SCI.1 ",
        title=" Observe ",
        description="Make careful observations",
        kind=CompetencyKind.NON_ACADEMIC,
    )
    got = queries.get_competency(session, context_id=course.context_id, competency_id=created.id)
    assert got is created
    assert (got.code, got.title, got.kind) == ("SCI.1", "Observe", CompetencyKind.NON_ACADEMIC)
    assert (
        queries.get_competency_by_code(session, context_id=course.context_id, code="SCI.1") is got
    )


def test_competency_of_another_course_is_not_found(
    session: Session, course: Course, other_course: Course
) -> None:
    theirs = make(session, other_course, "B.1")
    with pytest.raises(CompetencyNotFoundError):
        queries.get_competency(session, context_id=course.context_id, competency_id=theirs.id)
    with pytest.raises(CompetencyNotFound):  # the name for the same error
        services.edit_competency(
            session, context_id=course.context_id, competency_id=theirs.id, title="Mine now"
        )
    with pytest.raises(LookupError):
        services.create_competency(
            session, context_id=course.context_id, code="A.1", title="A", parent_id=theirs.id
        )
    mine = make(session, course, "A.2")
    with pytest.raises(CompetencyNotFoundError):
        services.set_prerequisites(
            session,
            context_id=course.context_id,
            competency_id=mine.id,
            prerequisite_ids=[theirs.id],
        )


def test_codes_are_unique_per_course_only(
    session: Session, course: Course, other_course: Course
) -> None:
    make(session, course, "X")
    make(session, other_course, "X")
    with pytest.raises(InvalidCompetencyError, match="already used"):
        make(session, course, "X")
    with pytest.raises(InvalidCompetencyError):
        make(session, course, "a;b")
    with pytest.raises(InvalidCompetencyError):
        make(session, course, "   ")


def test_list_is_tree_ordered_and_hides_archived(session: Session, course: Course) -> None:
    root_b = make(session, course, "B")
    root_a = make(session, course, "A")
    a1 = make(session, course, "A.1", parent_id=root_a.id)
    a2 = make(session, course, "A.2", parent_id=root_a.id)
    services.reorder_competencies(
        session, context_id=course.context_id, parent_id=None, ordered_ids=[root_a.id]
    )
    codes = [c.code for c in queries.list_competencies(session, context_id=course.context_id)]
    assert codes == ["A", "A.1", "A.2", "B"]

    services.reorder_competencies(
        session, context_id=course.context_id, parent_id=root_a.id, ordered_ids=[a2.id, a1.id]
    )
    tree = queries.competency_tree(session, context_id=course.context_id)
    assert [n.competency.code for n in tree] == ["A", "B"]
    assert [(n.competency.code, n.depth) for n in tree[0].children] == [("A.2", 1), ("A.1", 1)]

    services.archive_competency(session, context_id=course.context_id, competency_id=root_a.id)
    assert a1.is_archived
    assert a2.is_archived
    visible = queries.list_competencies(session, context_id=course.context_id)
    assert [c.code for c in visible] == ["B"]
    everything = queries.list_competencies(
        session, context_id=course.context_id, include_archived=True
    )
    assert len(everything) == 4
    assert root_b.archived_at is None


def test_reorder_rejects_ids_that_are_not_siblings(
    session: Session, course: Course, other_course: Course
) -> None:
    parent = make(session, course, "P")
    child = make(session, course, "P.1", parent_id=parent.id)
    theirs = make(session, other_course, "T")
    for ids in ([child.id], [theirs.id]):
        with pytest.raises(CompetencyNotFoundError):
            services.reorder_competencies(
                session, context_id=course.context_id, parent_id=None, ordered_ids=ids
            )
    with pytest.raises(InvalidCompetencyError):
        services.reorder_competencies(
            session, context_id=course.context_id, parent_id=None, ordered_ids=[parent.id] * 2
        )


def test_unarchive_needs_the_parent_back_first(session: Session, course: Course) -> None:
    parent = make(session, course, "P")
    child = make(session, course, "P.1", parent_id=parent.id)
    services.archive_competency(session, context_id=course.context_id, competency_id=parent.id)
    with pytest.raises(CompetencyError, match="parent"):
        services.unarchive_competency(session, context_id=course.context_id, competency_id=child.id)
    services.unarchive_competency(session, context_id=course.context_id, competency_id=parent.id)
    assert not parent.is_archived
    assert not child.is_archived
    services.archive_competency(session, context_id=course.context_id, competency_id=child.id)
    with pytest.raises(InvalidCompetencyError, match="archived"):
        make(session, course, "P.1.1", parent_id=child.id)


def test_edit_moves_under_a_new_parent_and_keeps_parent_by_default(
    session: Session, course: Course
) -> None:
    a = make(session, course, "A")
    b = make(session, course, "B")
    make(session, course, "B.1", parent_id=b.id)
    services.edit_competency(
        session, context_id=course.context_id, competency_id=a.id, parent_id=b.id
    )
    assert (a.parent_id, a.position) == (b.id, 1)
    services.edit_competency(session, context_id=course.context_id, competency_id=a.id, code="A2")
    assert (a.code, a.parent_id) == ("A2", b.id)
    services.edit_competency(
        session, context_id=course.context_id, competency_id=a.id, parent_id=None
    )
    assert a.parent_id is None


def test_parent_cycles_are_rejected(session: Session, course: Course) -> None:
    a = make(session, course, "A")
    b = make(session, course, "B", parent_id=a.id)
    c = make(session, course, "C", parent_id=b.id)
    for new_parent in (c.id, a.id):
        with pytest.raises(CompetencyCycleError):
            services.edit_competency(
                session, context_id=course.context_id, competency_id=a.id, parent_id=new_parent
            )
    assert a.parent_id is None


def test_prerequisite_cycles_are_rejected(session: Session, course: Course) -> None:
    a = make(session, course, "A")
    b = make(session, course, "B", prerequisite_ids=[a.id])
    c = make(session, course, "C", prerequisite_ids=[b.id])
    with pytest.raises(CompetencyCycleError):
        services.set_prerequisites(
            session, context_id=course.context_id, competency_id=a.id, prerequisite_ids=[c.id]
        )
    with pytest.raises(CompetencyCycleError):
        services.set_prerequisites(
            session, context_id=course.context_id, competency_id=a.id, prerequisite_ids=[a.id]
        )
    services.set_prerequisites(
        session, context_id=course.context_id, competency_id=c.id, prerequisite_ids=[a.id, b.id]
    )
    assert queries.prerequisite_map(session, context_id=course.context_id) == {
        b.id: {a.id},
        c.id: {a.id, b.id},
    }
    services.set_prerequisites(
        session, context_id=course.context_id, competency_id=c.id, prerequisite_ids=[]
    )
    assert c.id not in queries.prerequisite_map(session, context_id=course.context_id)
