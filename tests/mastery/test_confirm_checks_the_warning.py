"""A "Not saved yet" warning names who would lose mastery; its "… it anyway" button confirms
that, and no more. Between the warning and the confirm the form can be changed (a stricter
level typed on the warning page), and other students can come to master what the change takes
away and start a step waiting for it: the confirm then asks again, naming them, and saves
nothing. Scale saves, corrections, withdrawals and archiving a competency share this.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal

from sqlalchemy import select

from lti_app.competencies.models import Competency
from lti_app.mastery.models import Evidence, EvidenceSource, MasteryScale
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices as ch
from lti_app.pathways import options, services
from lti_app.pathways.models import Option, Step
from lti_app.pathways.options import OptionInput
from lti_app.tool.models import Person
from tests.competencies.test_new_parts_and_mastery import _masters as _masters_parent
from tests.competencies.test_new_parts_and_mastery import _part_mastered_course
from tests.conftest import ToolServer
from tests.courses.frames import frame
from tests.insights.conftest import TEACHER, FreshCourse, fresh_course  # noqa: F401
from tests.mastery.confirming import confirm_of
from tests.mastery.test_losing_mastery_asks_first import _asks_first, _masters, _started
from tests.mastery.test_settings_crafted import _browser_fields
from tests.progress.pages import person_id, unit_of_work

MORE_THAN_ASKED = "This is more than you were asked about"


def _second_student(database_url: str, c: FreshCourse) -> tuple[int, str]:
    """user-s02, launched: (their id, their name)."""
    c.lti.launch("user-s02")
    with unit_of_work(database_url) as s:
        other = person_id(s, c.lti.lms, "user-s02")
        person = s.get(Person, other)
        assert person is not None
        return other, person.name


def _warned(page: str) -> list[str]:
    """The lines of the page's "Not saved yet" warning: whom it names, losing what."""
    assert "Not saved yet" in page
    block = page.split('id="losing-mastery"', 1)[1].split("</ul>", 1)[0]
    return [html.unescape(line) for line in re.findall(r"<li>(.*?)</li>", block, re.S)]


def _record(database_url: str, c: FreshCourse, student: int, competency: int, points: int) -> None:
    with unit_of_work(database_url) as s:
        record_evidence(
            s,
            context_id=c.context_id,
            competency_id=competency,
            student_ids=[student],
            points=Decimal(points),
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=c.teacher_id,
        )


def _start(database_url: str, c: FreshCourse, student: int, step_title: str) -> None:
    with unit_of_work(database_url) as s:
        option = s.scalars(
            select(Option)
            .join(Step, Step.id == Option.step_id)
            .where(Step.context_id == c.context_id, Step.title == step_title)
        ).one()
        choice = ch.choose_option(
            s, context_id=c.context_id, person_id=student, option_id=option.id
        )
        ch.start_choice(s, context_id=c.context_id, person_id=student, choice_id=choice.id)


def _levels(database_url: str, c: FreshCourse) -> list[tuple[str, Decimal, bool]]:
    with unit_of_work(database_url) as s:
        scale = s.scalars(select(MasteryScale).where(MasteryScale.context_id == c.context_id))
        return [(lv.name, lv.points, lv.is_mastery) for lv in scale.one().levels]


def test_a_student_who_masters_and_starts_after_the_warning_is_named_before_the_scale_saves(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    c = fresh_course
    started = _started(database_url, c)
    other, other_name = _second_student(database_url, c)
    teacher = frame(c.lti.launch(TEACHER), tool_server.url)
    fields = _browser_fields(teacher.get("/mastery/scale").text)
    fields["mastery"] = "3"  # Advanced: a 3 is no longer mastery
    asked = teacher.post("/mastery/scale", fields)
    _asks_first(asked.text, started, "Save it anyway", "Save and recompute levels")
    assert other_name not in html.unescape(asked.text)
    stored = _levels(database_url, c)

    # Meanwhile (another tab, another teacher): the second student masters SAFE at 3 and
    # starts the step waiting for it.
    _record(database_url, c, other, started.safe, 3)
    _start(database_url, c, other, "Lab work")

    again = teacher.post("/mastery/scale", {**_browser_fields(asked.text), "confirm_locks": "yes"})
    assert again.status_code == 200, again.text[:2000]
    assert MORE_THAN_ASKED in again.text
    assert _warned(again.text) == [
        f"“Lab work” locks for {started.name}, {other_name}, with work in it.",
        f"{started.name}, {other_name} no longer master {started.code} Lab safety.",
    ]
    assert _levels(database_url, c) == stored
    assert _masters(database_url, c, started.safe) is True

    # Confirming the warning that names them saves.
    saved = teacher.post("/mastery/scale", {**_browser_fields(again.text), "confirm_locks": "yes"})
    assert "The mastery scale is saved" in saved.text
    assert _masters(database_url, c, started.safe) is False


def test_a_stricter_level_typed_on_the_warning_page_is_asked_about_before_it_saves(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    """The warning names the student at 3; on that page the teacher also raises Advanced to 5
    points and presses "Save it anyway": the student at 4 would lose mastery too."""
    c = fresh_course
    started = _started(database_url, c)
    other, other_name = _second_student(database_url, c)
    _record(database_url, c, other, started.safe, 4)
    teacher = frame(c.lti.launch(TEACHER), tool_server.url)
    fields = _browser_fields(teacher.get("/mastery/scale").text)
    fields["mastery"] = "3"
    asked = teacher.post("/mastery/scale", fields)
    _asks_first(asked.text, started, "Save it anyway", "Save and recompute levels")
    assert other_name not in html.unescape(asked.text)
    stored = _levels(database_url, c)

    confirmed = {**_browser_fields(asked.text), "level-3-points": "5", "confirm_locks": "yes"}
    again = teacher.post("/mastery/scale", confirmed)
    assert again.status_code == 200, again.text[:2000]
    assert f"{started.name}, {other_name} no longer master {started.code} Lab safety." in (
        _warned(again.text)
    )
    assert 'value="5"' in again.text  # what was typed is kept
    assert _levels(database_url, c) == stored
    assert _masters(database_url, c, started.safe) is True


def test_a_step_started_after_the_warning_is_named_before_the_evidence_is_withdrawn(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    c = fresh_course
    started = _started(database_url, c)
    with unit_of_work(database_url) as s:
        lab = s.scalars(select(Step).where(Step.context_id == c.context_id)).one()
        notes = services.create_step(
            s,
            context_id=c.context_id,
            pathway_id=lab.pathway_id,
            title="Field notes",
            competency_id=lab.competency_id,
            prerequisite_ids=[started.safe],
        )
        options.create_option(
            s, context_id=c.context_id, step_id=notes.id, data=OptionInput("Pond notes")
        )
    teacher = frame(c.lti.launch(TEACHER), tool_server.url)
    withdraw = f"/mastery/evidence/{started.evidence_id}/withdraw"
    asked = teacher.post(withdraw)
    _asks_first(asked.text, started, "Withdraw it anyway", None)
    assert "“Field notes” locks" not in asked.text

    _start(database_url, c, c.student_id, "Field notes")  # meanwhile, on the student's page

    again = teacher.post(withdraw, confirm_of(asked.text))
    assert again.status_code == 200, again.text[:2000]
    assert f"“Field notes” locks for {started.name}, with work in it." in _warned(again.text)
    assert MORE_THAN_ASKED in again.text
    with unit_of_work(database_url) as s:
        evidence = s.get(Evidence, started.evidence_id)
        assert evidence is not None
        assert evidence.withdrawn_at is None

    # A confirm carrying no warning the app gave (a forged or garbled one) asks too.
    forged = teacher.post(withdraw, {"confirm_locks": "yes", "warned_loss": "[]"})
    assert "Not saved yet" in forged.text
    done = teacher.follow(teacher.post(withdraw, confirm_of(again.text)))
    assert "The evidence is withdrawn" in done.text


def test_a_student_who_masters_the_parent_after_the_warning_is_named_before_archiving(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    c = fresh_course
    ev, parent, parts, name = _part_mastered_course(database_url, c)
    other, other_name = _second_student(database_url, c)
    teacher = frame(c.lti.launch(TEACHER), tool_server.url)
    teacher.follow(teacher.post(f"/competencies/{parts[0]}/archive"))  # asks nothing
    asked = teacher.post(f"/competencies/{parts[1]}/archive")
    assert f"{name} no longer masters {ev} Evolution." in _warned(asked.text)
    assert other_name not in html.unescape(asked.text)

    # Meanwhile: the second student masters the parent through its one part left in use.
    _record(database_url, c, other, parts[1], 3)
    assert _masters_parent(database_url, other, parent)

    again = teacher.post(f"/competencies/{parts[1]}/archive", confirm_of(asked.text))
    assert again.status_code == 200, again.text[:2000]
    assert "Archive it anyway" in again.text
    assert MORE_THAN_ASKED in again.text
    assert f"{name}, {other_name} no longer master {ev} Evolution." in _warned(again.text)
    with unit_of_work(database_url) as s:
        part = s.get(Competency, parts[1])
        assert part is not None
        assert not part.is_archived
    assert _masters_parent(database_url, other, parent)

    teacher.follow(teacher.post(f"/competencies/{parts[1]}/archive", confirm_of(again.text)))
    assert not _masters_parent(database_url, other, parent)
