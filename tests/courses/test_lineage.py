"""Reading last term's ids in a course copied from it (courses.lineage)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.importing import copy_framework
from lti_app.competencies.models import Competency
from lti_app.competencies.services import create_competency
from lti_app.courses.lineage import copied_from_ids, own_or_copy
from lti_app.pathways.copying import copy_pathways
from lti_app.pathways.models import Pathway
from lti_app.pathways.services import create_pathway
from lti_app.tool.models import Platform
from tests.domain_fixtures import make_course, make_platform


def _copy(session: Session, from_context_id: int, to_context_id: int) -> dict[int, int]:
    id_map = copy_framework(session, from_context_id=from_context_id, to_context_id=to_context_id)
    copy_pathways(
        session,
        from_context_id=from_context_id,
        to_context_id=to_context_id,
        competency_id_map=id_map,
    )
    return id_map


def _term(session: Session, platform: Platform) -> int:
    return make_course(session, platform, students=0).context_id


def test_an_id_of_a_course_two_copies_back_names_this_courses_copy(session: Session) -> None:
    platform = make_platform(session)
    first, second, third = (_term(session, platform) for _ in range(3))
    cells = create_competency(session, context_id=first, code="BIO.1", title="Cells")
    path = create_pathway(session, context_id=first, title="Cells", competency_ids=[cells.id])
    _copy(session, first, second)
    third_map = _copy(session, second, third)
    [third_path] = session.scalars(select(Pathway).where(Pathway.context_id == third)).all()
    third_cells = session.scalars(select(Competency).where(Competency.context_id == third)).one()

    assert own_or_copy(session, Competency, context_id=third, item_id=cells.id) == third_cells.id
    assert own_or_copy(session, Pathway, context_id=third, item_id=path.id) == third_path.id
    second_cells = next(iter(third_map))
    assert copied_from_ids(session, Competency, item_id=third_cells.id) == [second_cells, cells.id]
    # The course's own id reads as itself.
    assert own_or_copy(session, Pathway, context_id=third, item_id=third_path.id) == third_path.id


def test_an_id_of_a_course_this_one_was_not_copied_from_names_nothing(session: Session) -> None:
    platform = make_platform(session)
    original, copied, unrelated = (_term(session, platform) for _ in range(3))
    cells = create_competency(session, context_id=original, code="BIO.1", title="Cells")
    path = create_pathway(session, context_id=original, title="Cells", competency_ids=[cells.id])
    _copy(session, original, copied)
    # The same code in a course made on its own is not a copy of it.
    create_competency(session, context_id=unrelated, code="BIO.1", title="Cells")

    assert own_or_copy(session, Competency, context_id=unrelated, item_id=cells.id) is None
    assert own_or_copy(session, Pathway, context_id=unrelated, item_id=path.id) is None
    assert own_or_copy(session, Pathway, context_id=unrelated, item_id=10**9) is None


def test_a_copy_on_another_platform_is_never_followed(session: Session) -> None:
    here, elsewhere = make_platform(session), make_platform(session)
    theirs, mine = _term(session, elsewhere), _term(session, here)
    cells = create_competency(session, context_id=theirs, code="BIO.1", title="Cells")
    # Copies are made only between courses of one teacher on one LMS; even so, a row saying
    # otherwise must not let an id of another LMS's course name anything here.
    copy = create_competency(session, context_id=mine, code="BIO.1", title="Cells")
    copy.copied_from_id = cells.id
    session.flush()

    assert own_or_copy(session, Competency, context_id=mine, item_id=cells.id) is None
    assert copied_from_ids(session, Competency, item_id=copy.id) == []


def test_copying_back_and_forth_keeps_each_origin_and_ends(session: Session) -> None:
    platform = make_platform(session)
    first, second = _term(session, platform), _term(session, platform)
    cells = create_competency(session, context_id=first, code="BIO.1", title="Cells")
    _copy(session, first, second)
    _copy(session, second, first)  # the teacher copies the new term's changes back

    assert cells.copied_from_id is None
    copy = session.scalars(select(Competency).where(Competency.context_id == second)).one()
    assert copied_from_ids(session, Competency, item_id=copy.id) == [cells.id]
