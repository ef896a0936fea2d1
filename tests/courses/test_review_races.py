"""Two teachers answering the same student's handed-in work at once (PostgreSQL row locks).

Each test holds a lock from its own transaction, lets a real request run into it, and lets go
once the request waits, so the interleaving that used to fail happens on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import httpx
from sqlalchemy import select, text

from lti_app.db import Database
from lti_app.mastery.models import Evidence
from lti_app.mastery.scales import get_or_create_scale
from lti_app.pathways.choices import choose_option, submit_choice
from lti_app.pathways.models import Choice, ChoiceStatus
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.reviewing import return_choices
from lti_app.pathways.services import create_pathway, create_step
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Frame, Ids, frame, make_competency, unique
from tests.lock_waits import in_thread, needs_row_locks, until_waiting

pytestmark = needs_row_locks


@dataclass(frozen=True)
class Work:
    """A student's submitted work on a step that assesses one competency."""

    context_id: int
    student_id: int
    competency_id: int
    choice_id: int


def _submitted_work(db: Database, ids: Ids, sub: str) -> Work:
    context_id, student_id = ids.context(), ids.person(sub)
    with db.begin() as s:
        competency_id = make_competency(s, context_id, unique("RACE"))
        get_or_create_scale(s, context_id=context_id)
        pathway = create_pathway(s, context_id=context_id, title=unique("Races "))
        step = create_step(
            s,
            context_id=context_id,
            pathway_id=pathway.id,
            title="Observe",
            competency_id=competency_id,
        )
        option = create_option(s, context_id=context_id, step_id=step.id, data=OptionInput("Lab"))
        choice = choose_option(s, context_id=context_id, person_id=student_id, option_id=option.id)
        submit_choice(s, context_id=context_id, person_id=student_id, choice_id=choice.id, note="")
        return Work(context_id, student_id, competency_id, choice.id)


def _evidence_form(points: str) -> dict[str, str]:
    return {"points": points, "note": "observed", "observed_on": ""}


def test_marking_work_done_with_a_level_while_a_colleague_records_evidence_does_not_deadlock(
    teacher: Frame,
    bio_students: tuple[str, ...],
    ids: Ids,
    db: Database,
    lti: LtiActions,
    tool_server: ToolServer,
) -> None:
    """Teacher 1 records a 2 on the student's page while teacher 2 marks the same work done at
    3 from the overview. Recording locks the competency and then closes the work; marking done
    used to lock the work and then the competency, so each waited for the other until
    PostgreSQL killed one (a 500, and the mark-done lost). Now both take the competency first:
    the evidence closes the work, and marking done finds it done, as if one came after the
    other."""
    work = _submitted_work(db, ids, "user-s03")
    colleague = frame(lti.launch("user-t01"), tool_server.url)
    results: dict[str, httpx.Response] = {}
    with db.begin() as hold:
        # Recording evidence reads the course's scale once it holds the competency: holding the
        # scale stops it right there.
        hold.execute(
            text("SELECT id FROM mastery_scale WHERE context_id = :c FOR UPDATE"),
            {"c": work.context_id},
        )
        evidence = in_thread(
            lambda: colleague.post(
                f"/mastery/students/{work.student_id}/evidence",
                {"competency_id": str(work.competency_id), **_evidence_form("2")},
            ),
            results,
            "evidence",
        )
        until_waiting(db, 1, [evidence])
        done = in_thread(
            lambda: teacher.post(
                "/course/pending",
                {"action": "done", "choice": str(work.choice_id), "level": "3", "note": ""},
            ),
            results,
            "done",
        )
        until_waiting(db, 2, [evidence, done])
    evidence.join(30)
    done.join(30)
    codes = {name: response.status_code for name, response in results.items()}
    failed = {name: r.text[:400] for name, r in results.items() if r.status_code >= 500}
    assert codes == {"evidence": 303, "done": 303}, failed
    with db.begin() as s:
        choice = s.get(Choice, work.choice_id)
        assert choice is not None
        assert choice.status is ChoiceStatus.DONE
        points = s.scalars(
            select(Evidence.points).where(
                Evidence.person_id == work.student_id,
                Evidence.competency_id == work.competency_id,
            )
        ).all()
        assert points == [Decimal(2)]


def test_work_sent_back_while_a_colleague_records_evidence_stays_sent_back(
    teacher: Frame, bio_students: tuple[str, ...], ids: Ids, db: Database
) -> None:
    """Teacher 2 sends the work back ("add a diagram") while teacher 1 records evidence on its
    competency. Recording used to read the work as submitted before the send-back was saved,
    then mark it done over it: the student saw it done, with the note asking for changes. Now
    recording waits for the send-back and leaves returned work alone."""
    work = _submitted_work(db, ids, "user-s02")
    teacher_id = ids.person("user-t01")
    results: dict[str, httpx.Response] = {}
    with db.begin() as send_back:
        return_choices(
            send_back,
            context_id=work.context_id,
            choice_ids=[work.choice_id],
            decided_by_id=teacher_id,
            note="Add a diagram",
        )
        evidence = in_thread(
            lambda: teacher.post(
                f"/mastery/students/{work.student_id}/evidence",
                {"competency_id": str(work.competency_id), **_evidence_form("3")},
            ),
            results,
            "evidence",
        )
        until_waiting(db, 1, [evidence])
    evidence.join(30)
    assert results["evidence"].status_code == 303, results["evidence"].text[:400]
    with db.begin() as s:
        choice = s.get(Choice, work.choice_id)
        assert choice is not None
        assert (choice.status, choice.teacher_feedback) == (ChoiceStatus.RETURNED, "Add a diagram")
