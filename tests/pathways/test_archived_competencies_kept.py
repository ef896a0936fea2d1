"""A teacher retires a competency for a while (archives it) and meanwhile edits a step or a
pathway that uses it. Saving the form as it shows must keep what the step assesses and waits
for, and what the pathway leads to: the editor offers the archived competency, marked and
still chosen, instead of silently dropping it.

The pathway folder's tests run on an LMS of their own module (tests.pathways.conftest), so the
shared demo course is left alone."""

from __future__ import annotations

import re

import pytest

from lti_app.db import Database
from lti_app.pathways import services
from lti_app.pathways.options import OptionInput, create_option
from tests.competencies.test_editor_crafted import browser_form, submit
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Frame, Ids, frame, make_competency, unique


@pytest.fixture
def teacher(lti: LtiActions, tool_server: ToolServer) -> Frame:
    """The teacher of Biology 9 on this module's LMS, launched."""
    return frame(lti.launch("user-t01"), tool_server.url)


def archive(teacher: Frame, *competency_ids: int, undo: bool = False) -> None:
    for competency_id in competency_ids:
        answer = teacher.post(f"/competencies/{competency_id}/{'unarchive' if undo else 'archive'}")
        assert answer.status_code == 303, answer.text[:1500]


def shown_as_archived(page: str, code: str) -> bool:
    """Whether the page names the competency with its archived mark."""
    return re.search(rf"{code}(?:</strong>)? Title {code} \(archived\)", page) is not None


def test_saving_a_steps_title_keeps_its_archived_competency_and_prerequisite(
    teacher: Frame, ids: Ids, db: Database
) -> None:
    """A step assesses LAB and waits for SAFE; the teacher archives both, fixes the step's
    title and saves the form as shown, then restores them. The step still assesses LAB (its
    work still counts there) and is still locked until SAFE is mastered."""
    course = ids.context()
    safe, lab = unique("SAFE"), unique("LAB")
    with db.begin() as s:
        safe_id = make_competency(s, course, safe)
        lab_id = make_competency(s, course, lab)
        pathway = services.create_pathway(s, context_id=course, title=unique("Chemistry "))
        step = services.create_step(
            s,
            context_id=course,
            pathway_id=pathway.id,
            title="Lab work",
            competency_id=lab_id,
            prerequisite_ids=[safe_id],
        )
        create_option(s, context_id=course, step_id=step.id, data=OptionInput("Do the lab"))
        path = f"/pathways/manage/steps/{step.id}"
    archive(teacher, safe_id, lab_id)

    page = teacher.get(path).text
    assert shown_as_archived(page, lab), "the step's archived competency is not offered"
    assert shown_as_archived(page, safe), "the step's archived prerequisite is not offered"
    saved = submit(teacher, browser_form(page, path), title="Lab work (Tuesday)")
    assert saved.is_redirect, saved.text[:3000]
    archive(teacher, safe_id, lab_id, undo=True)

    with db.begin() as s:
        step_now = services.get_step(s, context_id=course, step_id=step.id)
        waits_for = services.step_prerequisite_ids(s, context_id=course, step_id=step.id)
        assert step_now.title == "Lab work (Tuesday)"
        assert step_now.competency_id == lab_id, "the step no longer assesses LAB"
        assert waits_for == [safe_id], "the step is open to everyone: it no longer waits for SAFE"


def test_saving_a_pathways_title_keeps_an_archived_competency_it_leads_to(
    teacher: Frame, ids: Ids, db: Database
) -> None:
    """A pathway leads to CELLS and GENES; GENES is archived for the term. Renaming the pathway
    keeps it leading to both, while the new-step form on the same page does not offer GENES."""
    course = ids.context()
    cells, genes = unique("CELLS"), unique("GENES")
    with db.begin() as s:
        cells_id = make_competency(s, course, cells)
        genes_id = make_competency(s, course, genes)
        pathway = services.create_pathway(
            s, context_id=course, title="Cells", competency_ids=[cells_id, genes_id]
        )
        path = f"/pathways/manage/{pathway.id}"
    archive(teacher, genes_id)

    page = teacher.get(path).text
    details = browser_form(page, path)
    assert ("competency_ids", str(genes_id)) in details.fields, "GENES is not ticked any more"
    assert shown_as_archived(page, genes)
    new_step = browser_form(page, f"{path}/steps")
    assert str(genes_id) not in dict(new_step.options["competency_id"]), (
        "a new step is offered an archived competency"
    )
    saved = submit(teacher, details, title="Cells and genes")
    assert saved.is_redirect, saved.text[:3000]
    archive(teacher, genes_id, undo=True)

    with db.begin() as s:
        leads_to = services.pathway_competency_ids(s, context_id=course, pathway_id=pathway.id)
        assert services.get_pathway(s, context_id=course, pathway_id=pathway.id).title == (
            "Cells and genes"
        )
        assert sorted(leads_to) == sorted([cells_id, genes_id]), "the pathway lost GENES"
