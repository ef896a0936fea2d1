"""Giving a parent a new sub-competency mid-term (adding one, moving one under it, or
unarchiving one) takes mastery from students who mastered the parent through its parts, and
relocks the steps waiting for it: the editor names them and asks first."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from lti_app.competencies.models import Competency
from lti_app.competencies.services import create_competency
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices as ch
from lti_app.pathways import options, services
from lti_app.pathways.options import OptionInput
from lti_app.tool.models import Person
from tests.conftest import ToolServer
from tests.courses.frames import frame
from tests.insights.conftest import TEACHER, FreshCourse, fresh_course  # noqa: F401
from tests.progress.pages import unique, unit_of_work


def _codes(database_url: str, context_id: int, prefix: str) -> dict[str, Competency]:
    with unit_of_work(database_url) as s:
        found = s.scalars(
            select(Competency).where(
                Competency.context_id == context_id, Competency.code.startswith(prefix)
            )
        )
        return {c.code: c for c in found}


def test_a_new_part_names_the_students_and_steps_it_would_lock_and_asks_first(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    c = fresh_course
    ev = unique("EV")
    with unit_of_work(database_url) as s:
        parent = create_competency(s, context_id=c.context_id, code=ev, title="Evolution").id
        parts = [
            create_competency(
                s, context_id=c.context_id, code=f"{ev}.{i}", title=f"Part {i}", parent_id=parent
            ).id
            for i in (1, 2)
        ]
        field = create_competency(s, context_id=c.context_id, code=unique("F"), title="Field")
        pathway = services.create_pathway(s, context_id=c.context_id, title="Evolution")
        step = services.create_step(
            s,
            context_id=c.context_id,
            pathway_id=pathway.id,
            title="Field study",
            competency_id=field.id,
            prerequisite_ids=[parent],
        )
        option = options.create_option(
            s, context_id=c.context_id, step_id=step.id, data=OptionInput("Pond survey")
        )
        for part in parts:
            record_evidence(
                s,
                context_id=c.context_id,
                competency_id=part,
                student_ids=[c.student_id],
                points=Decimal(3),
                source=EvidenceSource.TEACHER,
                note="",
                recorded_by_id=c.teacher_id,
            )
        choice = ch.choose_option(
            s, context_id=c.context_id, person_id=c.student_id, option_id=option.id
        )
        ch.start_choice(s, context_id=c.context_id, person_id=c.student_id, choice_id=choice.id)
        student = s.get(Person, c.student_id)
        assert student is not None
        name = student.name
    teacher = frame(c.lti.launch(TEACHER), tool_server.url)
    new_part = {"code": f"{ev}.3", "title": "Part 3", "kind": "academic", "parent_id": parent}

    asked = teacher.post("/competencies/", new_part)
    assert asked.status_code == 200
    assert "Not saved yet" in asked.text
    assert f"“Field study” locks for {name}, with work in it." in asked.text
    assert f"{name} no longer masters {ev} Evolution." in asked.text
    assert "Add it anyway" in asked.text
    assert f"{ev}.3" not in _codes(database_url, c.context_id, ev)
    assert (
        "The competency is added."
        in teacher.follow(teacher.post("/competencies/", {**new_part, "confirm_locks": "yes"})).text
    )
    added = _codes(database_url, c.context_id, ev)[f"{ev}.3"]

    # Archiving the new part gives mastery back and asks nothing; unarchiving it asks again.
    teacher.follow(teacher.post(f"/competencies/{added.id}/archive"))
    asked = teacher.post(f"/competencies/{added.id}/unarchive")
    assert asked.status_code == 200
    assert f"“Field study” locks for {name}, with work in it." in asked.text
    assert "Unarchive it anyway" in asked.text
    assert _codes(database_url, c.context_id, ev)[f"{ev}.3"].is_archived
    teacher.follow(teacher.post(f"/competencies/{added.id}/unarchive", {"confirm_locks": "yes"}))
    assert not _codes(database_url, c.context_id, ev)[f"{ev}.3"].is_archived

    # Moving a competency under the parent (from the top level) is the same change.
    teacher.follow(teacher.post(f"/competencies/{added.id}/archive"))
    loose = {"code": f"{ev}.4", "title": "Part 4", "kind": "academic"}
    teacher.follow(teacher.post("/competencies/", loose))
    moved = _codes(database_url, c.context_id, ev)[f"{ev}.4"]
    asked = teacher.post(f"/competencies/{moved.id}/edit", {**loose, "parent_id": parent})
    assert asked.status_code == 200
    assert f"{name} no longer masters {ev} Evolution." in asked.text
    assert "Save it anyway" in asked.text
    assert _codes(database_url, c.context_id, ev)[f"{ev}.4"].parent_id is None
