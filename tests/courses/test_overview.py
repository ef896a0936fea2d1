"""The teacher's course overview: the landing page and the queue of pending choices."""

from __future__ import annotations

import re
from decimal import Decimal

from sqlalchemy import select

from lti_app.courses.queries import person_names
from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from lti_app.mastery.levels import current_levels
from lti_app.mastery.models import Evidence, EvidenceSource
from lti_app.pathways.choices import choose_option, start_choice, submit_choice
from lti_app.pathways.models import Choice, ChoiceStatus
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.services import create_pathway, create_step
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Frame, Ids, ensure_launched, frame, make_competency, unique


def _offer(
    db: Database, ids: Ids, students: list[str], *, approval: bool, submit: bool = False
) -> tuple[int, str, list[int]]:
    """A pathway step with one option, picked (and maybe submitted) by these students."""
    cid = ids.context()
    person_ids = [ids.person(s) for s in students]
    option_title = unique("Build a model cell ")
    with db.begin() as s:
        competency = make_competency(s, cid, unique("OV"))
        pathway = create_pathway(s, context_id=cid, title=unique("Cells "))
        step = create_step(
            s, context_id=cid, pathway_id=pathway.id, title="Make it", competency_id=competency
        )
        option = create_option(
            s,
            context_id=cid,
            step_id=step.id,
            data=OptionInput(title=option_title, requires_approval=approval),
        )
        choice_ids = []
        for person_id in person_ids:
            choice = choose_option(s, context_id=cid, person_id=person_id, option_id=option.id)
            if submit:
                start_choice(s, context_id=cid, person_id=person_id, choice_id=choice.id)
                submit_choice(
                    s,
                    context_id=cid,
                    person_id=person_id,
                    choice_id=choice.id,
                    note="Done <i>it</i>",
                )
            choice_ids.append(choice.id)
    return competency, option_title, choice_ids


def _statuses(db: Database, choice_ids: list[int]) -> list[ChoiceStatus]:
    with db.begin() as s:
        rows = s.scalars(select(Choice).where(Choice.id.in_(choice_ids)).order_by(Choice.id))
        return [c.status for c in rows]


def test_overview_lists_pending_approvals_and_approves_two_at_once(
    teacher: Frame, db: Database, ids: Ids, bio_students: tuple[str, ...]
) -> None:
    students = ["user-s01", "user-s02", "user-s10"]
    _, option_title, choice_ids = _offer(db, ids, students, approval=True)
    page = teacher.get("/course/").text
    assert option_title in page
    assert "Needs your attention" in page
    # The LMS's HTML in a name is shown as text.
    assert "Bobby &lt;b&gt;Tables&lt;/b&gt;" in page
    assert "<b>Tables</b>" not in page

    response = teacher.post(
        "/course/pending", {"action": "approve", "choice": [str(i) for i in choice_ids[:2]]}
    )
    after = teacher.follow(response)
    assert "Approved 2 choice(s)." in after.text
    assert _statuses(db, choice_ids) == [
        ChoiceStatus.APPROVED,
        ChoiceStatus.APPROVED,
        ChoiceStatus.CHOSEN,
    ]


def test_send_back_needs_a_note_then_returns_the_choices(
    teacher: Frame, db: Database, ids: Ids, bio_students: tuple[str, ...]
) -> None:
    _, _, choice_ids = _offer(db, ids, ["user-s02", "user-s03"], approval=True)
    picked = [str(i) for i in choice_ids]
    refused = teacher.post("/course/pending", {"action": "return", "choice": picked, "note": ""})
    assert refused.status_code == 400
    assert "Write a note" in refused.text
    assert _statuses(db, choice_ids) == [ChoiceStatus.CHOSEN, ChoiceStatus.CHOSEN]
    done = teacher.post(
        "/course/pending", {"action": "return", "choice": picked, "note": "Pick a lab option"}
    )
    assert "Sent 2 choice(s) back" in teacher.follow(done).text
    assert _statuses(db, choice_ids) == [ChoiceStatus.REJECTED, ChoiceStatus.REJECTED]


def test_mark_done_with_a_level_records_evidence_on_the_steps_competency(
    teacher: Frame, db: Database, ids: Ids, bio_students: tuple[str, ...]
) -> None:
    competency, _, choice_ids = _offer(
        db, ids, ["user-s01", "user-s03"], approval=False, submit=True
    )
    page = teacher.get("/course/").text
    assert "Done &lt;i&gt;it&lt;/i&gt;" in page  # the submission note, escaped
    response = teacher.post(
        "/course/pending",
        {"action": "done", "choice": [str(i) for i in choice_ids], "level": "3.00", "note": ""},
    )
    assert "recorded evidence" in teacher.follow(response).text
    assert _statuses(db, choice_ids) == [ChoiceStatus.DONE, ChoiceStatus.DONE]
    cid, s01 = ids.context(), ids.person("user-s01")
    with db.begin() as s:
        evidence = s.scalars(select(Evidence).where(Evidence.competency_id == competency)).all()
        assert {e.source for e in evidence} == {EvidenceSource.PATHWAY_WORK}
        assert len(evidence) == 2
        level = current_levels(s, context_id=cid, person_id=s01)[competency]
        assert (level.level_name, level.is_mastered) == ("Proficient", True)
        assert level.score == Decimal("3.00")


def test_pending_action_needs_a_ticked_item(teacher: Frame, bio_students: tuple[str, ...]) -> None:
    response = teacher.post("/course/pending", {"action": "approve"})
    assert response.status_code == 400
    assert "Tick at least one item" in response.text


def test_work_on_a_step_whose_competency_has_sub_competencies_is_marked_done_without_a_level(
    fresh_lms: RunningPlatform, tool_server: ToolServer, db: Database
) -> None:
    """A step saved with a competency that gained sub-competencies since (or saved before the
    editor stopped offering such competencies): a level cannot go on it. The overview says so
    next to the work, before the teacher clicks; clicking says which step, which competency and
    what to do, in words, and marking it done without a level still works."""
    # A course of its own (a second LMS), so only this work waits.
    ensure_launched(fresh_lms, tool_server, ("user-s01",))
    teacher = frame(LtiActions(fresh_lms, tool_server).launch("user-t01"), tool_server.url)
    ids = Ids.of(db, fresh_lms)
    cid, student = ids.context(), ids.person("user-s01")
    with db.begin() as s:
        unit = make_competency(s, cid, "U1", title="Cells")
        pathway = create_pathway(s, context_id=cid, title="Cells")
        step = create_step(
            s, context_id=cid, pathway_id=pathway.id, title="Virtual cell tour", competency_id=unit
        )
        option = create_option(s, context_id=cid, step_id=step.id, data=OptionInput("Tour"))
        choice = choose_option(s, context_id=cid, person_id=student, option_id=option.id).id
        start_choice(s, context_id=cid, person_id=student, choice_id=choice)
        submit_choice(s, context_id=cid, person_id=student, choice_id=choice, note="")
        make_competency(s, cid, "U1.1", title="Cell parts", parent_id=unit)
    overview = teacher.get("/course/").text
    assert "Mark done without a level: its competency, U1 Cells, has sub-competencies." in overview

    ticked = {"choice": str(choice), f"option-{option.id}": str(option.id), "note": ""}
    refused = teacher.post("/course/pending", {**ticked, "action": "done", "level": "3"})
    assert refused.status_code == 400
    assert (
        "No level can be recorded for “Virtual cell tour”: its competency, U1 Cells, has "
        "sub-competencies. Mark it done without a level"
    ) in refused.text
    assert _statuses(db, [choice]) == [ChoiceStatus.SUBMITTED]
    done = teacher.post("/course/pending", {**ticked, "action": "done", "level": ""})
    assert done.status_code == 303, done.text[-2000:]
    assert _statuses(db, [choice]) == [ChoiceStatus.DONE]


def test_marking_one_hand_in_done_with_a_level_says_it_closes_the_others_on_that_competency(
    fresh_lms: RunningPlatform, tool_server: ToolServer, db: Database
) -> None:
    """A level closes all of a student's submitted work on its competency (one level per
    competency). The overview says so next to the work before the click, and the flash after
    says how many other hand-ins went with it."""
    ensure_launched(fresh_lms, tool_server, ("user-s01",))
    teacher = frame(LtiActions(fresh_lms, tool_server).launch("user-t01"), tool_server.url)
    ids = Ids.of(db, fresh_lms)
    cid, student = ids.context(), ids.person("user-s01")
    with db.begin() as s:
        photosynthesis = make_competency(s, cid, "P1", title="Photosynthesis")
        pathway = create_pathway(s, context_id=cid, title="Light")
        choices = []
        for title in ("Leaf lab", "Light poster", "Sugar quiz"):
            step = create_step(
                s, context_id=cid, pathway_id=pathway.id, title=title, competency_id=photosynthesis
            )
            option = create_option(s, context_id=cid, step_id=step.id, data=OptionInput(title))
            choice = choose_option(s, context_id=cid, person_id=student, option_id=option.id).id
            start_choice(s, context_id=cid, person_id=student, choice_id=choice)
            submit_choice(s, context_id=cid, person_id=student, choice_id=choice, note="")
            choices.append((choice, option.id))
    overview = teacher.get("/course/").text
    with db.begin() as s:
        name = person_names(s, person_ids=[student])[student]
    assert (
        f"Marked done with a level, this also closes 2 other hand-ins by <bdi>{name}</bdi> "
        "on <bdi>Photosynthesis</bdi>: one level per competency."
    ) in overview
    assert 'aria-describedby="pending-level-hint"' in overview
    # Names and titles in attributes and the page title are direction-isolated (FSI ... PDI):
    # there is no <bdi> there, and a Hebrew or Arabic name would run into the text after it.
    assert f'aria-label="Select: \u2068{name}\u2069, \u2068Leaf lab\u2069"' in overview
    student_page = teacher.get(f"/course/students/{student}").text
    assert f"<title>\u2068{name}\u2069 · Pathways</title>" in student_page

    choice, option = choices[0]
    ticked = {"choice": str(choice), f"option-{choice}": str(option), "note": ""}
    done = teacher.post("/course/pending", {**ticked, "action": "done", "level": "3"})
    assert (
        "Marked 1 choice(s) done and recorded evidence. This also closed 2 other hand-in(s) by "
        "the same students on the same competencies"
    ) in teacher.follow(done).text
    assert _statuses(db, [c for c, _ in choices]) == [ChoiceStatus.DONE] * 3


def test_the_student_list_is_one_unindented_line_per_student(
    teacher: Frame, bio_students: tuple[str, ...]
) -> None:
    """At 300 students the list's indentation was a seventh of the page; each row still names
    the student with a link, their count of competencies mastered and when they last came."""
    page = teacher.get("/course/").text
    start = page.index('<h2 id="students">')
    table = page[start : page.index("</table>", start)]
    rows = re.findall(r"\n *<tr>.*</tr>", table)  # the heading row follows <thead>
    assert len(rows) >= len(bio_students)
    for row in rows:
        assert row.startswith('\n  <tr><th scope="row"><a href=')
        assert re.search(r"<td>\d+ of \d+</td><td>(<time datetime=|Not yet)", row)
