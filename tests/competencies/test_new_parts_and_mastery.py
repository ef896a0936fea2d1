"""Giving a parent a new sub-competency mid-term (adding one, moving one under it, or
unarchiving one) takes mastery from students who mastered the parent through its parts, and
relocks the steps waiting for it: the editor names them and asks first. So does archiving a
parent's last sub-competency in use: the parent is then judged on its own evidence (usually
none)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from lti_app.competencies.models import Competency
from lti_app.competencies.services import create_competency
from lti_app.mastery.models import EvidenceSource, StudentCompetencyLevel
from lti_app.mastery.scales import recompute_course
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices as ch
from lti_app.pathways import options, services
from lti_app.pathways.options import OptionInput
from lti_app.tool.models import Person
from tests.conftest import ToolServer
from tests.courses.frames import frame
from tests.insights.conftest import TEACHER, FreshCourse, fresh_course  # noqa: F401
from tests.mastery.confirming import confirm_of
from tests.progress.pages import unique, unit_of_work


def _codes(database_url: str, context_id: int, prefix: str) -> dict[str, Competency]:
    with unit_of_work(database_url) as s:
        found = s.scalars(
            select(Competency).where(
                Competency.context_id == context_id, Competency.code.startswith(prefix)
            )
        )
        return {c.code: c for c in found}


def _part_mastered_course(database_url: str, c: FreshCourse) -> tuple[str, int, list[int], str]:
    """A parent mastered through its two parts, and a step waiting for it with the student's
    work started: (the parent's code, its id, the parts' ids, the student's name)."""
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
    return ev, parent, parts, name


def _masters(database_url: str, person_id: int, competency_id: int) -> bool | None:
    with unit_of_work(database_url) as s:
        return s.scalar(
            select(StudentCompetencyLevel.is_mastered).where(
                StudentCompetencyLevel.person_id == person_id,
                StudentCompetencyLevel.competency_id == competency_id,
            )
        )


def test_a_new_part_names_the_students_and_steps_it_would_lock_and_asks_first(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    c = fresh_course
    ev, parent, _, name = _part_mastered_course(database_url, c)
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
        in teacher.follow(
            teacher.post("/competencies/", {**new_part, **confirm_of(asked.text)})
        ).text
    )
    added = _codes(database_url, c.context_id, ev)[f"{ev}.3"]

    # Archiving the new part gives mastery back and asks nothing; unarchiving it asks again.
    teacher.follow(teacher.post(f"/competencies/{added.id}/archive"))
    asked = teacher.post(f"/competencies/{added.id}/unarchive")
    assert asked.status_code == 200
    assert f"“Field study” locks for {name}, with work in it." in asked.text
    assert "Unarchive it anyway" in asked.text
    assert _codes(database_url, c.context_id, ev)[f"{ev}.3"].is_archived
    teacher.follow(teacher.post(f"/competencies/{added.id}/unarchive", confirm_of(asked.text)))
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


def test_a_new_part_names_no_step_locking_in_an_archived_pathway(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    """The student's page shows an archived pathway's work read-only, open or locked: the
    teacher is told of the mastery lost, not of a step locking there."""
    c = fresh_course
    ev, parent, _, name = _part_mastered_course(database_url, c)
    with unit_of_work(database_url) as s:
        (pathway,) = services.list_pathways(s, context_id=c.context_id)
        services.archive_pathway(s, context_id=c.context_id, pathway_id=pathway.id)
    teacher = frame(c.lti.launch(TEACHER), tool_server.url)
    new_part = {"code": f"{ev}.3", "title": "Part 3", "kind": "academic", "parent_id": parent}
    asked = teacher.post("/competencies/", new_part)
    assert asked.status_code == 200
    assert f"{name} no longer masters {ev} Evolution." in asked.text
    assert "“Field study” locks" not in asked.text


def test_archiving_the_last_part_names_the_students_and_steps_it_would_lock_and_asks_first(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    c = fresh_course
    ev, parent, parts, name = _part_mastered_course(database_url, c)
    teacher = frame(c.lti.launch(TEACHER), tool_server.url)

    # One part archived, one left: the parent is still mastered through it, nothing asked.
    page = teacher.follow(teacher.post(f"/competencies/{parts[0]}/archive"))
    assert "The competency (and any sub-competencies) is archived." in page.text
    assert _masters(database_url, c.student_id, parent)

    # The last part: the parent would count only its own evidence (none), so ask first.
    asked = teacher.post(f"/competencies/{parts[1]}/archive")
    assert asked.status_code == 200
    assert "Not saved yet" in asked.text
    assert "no sub-competency left in use" in asked.text
    assert f"“Field study” locks for {name}, with work in it." in asked.text
    assert f"{name} no longer masters {ev} Evolution." in asked.text
    assert "Archive it anyway" in asked.text
    assert not _codes(database_url, c.context_id, ev)[f"{ev}.2"].is_archived
    assert _masters(database_url, c.student_id, parent)

    teacher.follow(teacher.post(f"/competencies/{parts[1]}/archive", confirm_of(asked.text)))
    assert _codes(database_url, c.context_id, ev)[f"{ev}.2"].is_archived
    assert not _masters(database_url, c.student_id, parent)

    # Unarchiving a part gives mastery back: nothing to ask.
    page = teacher.follow(teacher.post(f"/competencies/{parts[1]}/unarchive"))
    assert "The competency is back in the framework." in page.text
    assert _masters(database_url, c.student_id, parent)


def test_archiving_a_whole_branch_or_a_part_that_held_mastery_back_asks_nothing(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    c = fresh_course
    ev, parent, _, _ = _part_mastered_course(database_url, c)
    with unit_of_work(database_url) as s:
        unmet = create_competency(
            s, context_id=c.context_id, code=f"{ev}.3", title="Part 3", parent_id=parent
        ).id
    with unit_of_work(database_url) as s:
        recompute_course(s, context_id=c.context_id)
    assert not _masters(database_url, c.student_id, parent), "setup: part 3 not mastered yet"
    teacher = frame(c.lti.launch(TEACHER), tool_server.url)

    # The part the student had not mastered goes: the parent becomes mastered, unasked.
    page = teacher.follow(teacher.post(f"/competencies/{unmet}/archive"))
    assert "The competency (and any sub-competencies) is archived." in page.text
    assert _masters(database_url, c.student_id, parent)

    # The parent archived with its parts: no step waits for an archived competency, so
    # nothing is taken from anyone that matters, and nothing is asked.
    page = teacher.follow(teacher.post(f"/competencies/{parent}/archive"))
    assert "The competency (and any sub-competencies) is archived." in page.text
    assert _codes(database_url, c.context_id, ev)[ev].is_archived
