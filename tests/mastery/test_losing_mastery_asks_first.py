"""A stricter mastery scale, a withdrawn piece of evidence or a correction downwards can take
mastery from a student and lock a step they started: the page names them and the step and
asks first, keeping what was typed, and saves nothing until the teacher confirms. A change
nobody loses by saves at once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.mastery.models import Evidence, EvidenceSource, MasteryScale, StudentCompetencyLevel
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices as ch
from lti_app.pathways import options, services
from lti_app.pathways.options import OptionInput
from lti_app.tool.models import Person
from tests.conftest import ToolServer
from tests.courses.frames import Frame, frame
from tests.insights.conftest import TEACHER, FreshCourse, fresh_course  # noqa: F401
from tests.mastery.confirming import confirm_of
from tests.mastery.test_settings_crafted import _browser_fields
from tests.progress.pages import unique, unit_of_work


@dataclass(frozen=True)
class Started:
    """A student who masters SAFE with one piece of evidence at Proficient, and has started
    work on "Lab work", a step waiting for SAFE."""

    code: str
    safe: int
    evidence_id: int
    name: str


def _started(database_url: str, c: FreshCourse) -> Started:
    code = unique("SAFE")
    with unit_of_work(database_url) as s:
        safe = create_competency(s, context_id=c.context_id, code=code, title="Lab safety").id
        lab = create_competency(s, context_id=c.context_id, code=unique("LAB"), title="Lab")
        pathway = services.create_pathway(s, context_id=c.context_id, title="Chemistry")
        step = services.create_step(
            s,
            context_id=c.context_id,
            pathway_id=pathway.id,
            title="Lab work",
            competency_id=lab.id,
            prerequisite_ids=[safe],
        )
        option = options.create_option(
            s, context_id=c.context_id, step_id=step.id, data=OptionInput("Titration")
        )
        record_evidence(
            s,
            context_id=c.context_id,
            competency_id=safe,
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
        evidence_id = s.scalars(select(Evidence.id).where(Evidence.competency_id == safe)).one()
        student = s.get(Person, c.student_id)
        assert student is not None
        return Started(code, safe, evidence_id, student.name)


def _masters(database_url: str, c: FreshCourse, competency_id: int) -> bool | None:
    with unit_of_work(database_url) as s:
        return s.scalar(
            select(StudentCompetencyLevel.is_mastered).where(
                StudentCompetencyLevel.person_id == c.student_id,
                StudentCompetencyLevel.competency_id == competency_id,
            )
        )


def _mastery_level(database_url: str, c: FreshCourse) -> str:
    with unit_of_work(database_url) as s:
        scale = s.scalars(select(MasteryScale).where(MasteryScale.context_id == c.context_id))
        return next(lv.name for lv in scale.one().levels if lv.is_mastery)


def _evidence(database_url: str, evidence_id: int) -> tuple[Decimal, str, bool]:
    with unit_of_work(database_url) as s:
        found = s.get(Evidence, evidence_id)
        assert found is not None
        return found.points, found.note or "", found.withdrawn_at is not None


def _asks_first(page: str, started: Started, confirm: str, main: str | None) -> None:
    """The warning names the student, the step and the competency, and takes focus (frame.js
    focuses #losing-mastery); Enter in a field presses the form's own button, not `confirm`."""
    assert 'id="losing-mastery"' in page
    assert "Not saved yet" in page
    assert f"“Lab work” locks for {started.name}, with work in it." in page
    assert f"{started.name} no longer masters {started.code} Lab safety." in page
    buttons = re.findall(r"<button[^>]*>([^<]*)</button>", page)
    assert confirm in buttons
    if main is not None:
        assert buttons.index(main) < buttons.index(confirm), buttons


def _post_scale(teacher: Frame, fields: dict[str, str]) -> str:
    answer = teacher.post("/mastery/scale", fields)
    assert answer.status_code == 200, answer.text[:2000]
    return answer.text


def test_a_stricter_scale_names_who_loses_mastery_and_saves_only_when_confirmed(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    c = fresh_course
    started = _started(database_url, c)
    teacher = frame(c.lti.launch(TEACHER), tool_server.url)
    fields = _browser_fields(teacher.get("/mastery/scale").text)
    fields["mastery"] = "3"  # Advanced: a 3 is no longer mastery
    fields["level-3-name"] = "Expert"

    asked = _post_scale(teacher, fields)
    _asks_first(asked, started, "Save it anyway", "Save and recompute levels")
    # Nothing is saved yet, and the form holds what was typed.
    assert _mastery_level(database_url, c) == "Proficient"
    assert _masters(database_url, c, started.safe) is True
    again = _browser_fields(asked)
    assert (again["mastery"], again["level-3-name"]) == ("3", "Expert")

    # Saving the form as it stands (Enter in a field) asks again; confirming saves.
    assert "Not saved yet" in _post_scale(teacher, again)
    assert _mastery_level(database_url, c) == "Proficient"
    saved = _post_scale(teacher, {**again, "confirm_locks": "yes"})
    assert "The mastery scale is saved" in saved
    assert _mastery_level(database_url, c) == "Expert"
    assert _masters(database_url, c, started.safe) is False

    # Mastery back at Proficient takes nothing from anyone: saved at once, as before.
    fields = _browser_fields(teacher.get("/mastery/scale").text)
    fields["mastery"] = "2"
    saved = _post_scale(teacher, fields)
    assert "Not saved yet" not in saved
    assert "The mastery scale is saved" in saved
    assert _mastery_level(database_url, c) == "Proficient"


def test_withdrawing_evidence_names_who_loses_mastery_and_withdraws_only_when_confirmed(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    c = fresh_course
    started = _started(database_url, c)
    teacher = frame(c.lti.launch(TEACHER), tool_server.url)
    withdraw = f"/mastery/evidence/{started.evidence_id}/withdraw"

    asked = teacher.post(withdraw)
    assert asked.status_code == 200, asked.text[:2000]
    _asks_first(asked.text, started, "Withdraw it anyway", None)
    assert "Withdraw this evidence" not in asked.text  # the form's only button confirms
    assert _evidence(database_url, started.evidence_id)[2] is False
    assert _masters(database_url, c, started.safe) is True

    done = teacher.follow(teacher.post(withdraw, confirm_of(asked.text)))
    assert "The evidence is withdrawn" in done.text
    assert _evidence(database_url, started.evidence_id)[2] is True
    assert not _masters(database_url, c, started.safe)


def test_correcting_evidence_below_mastery_asks_first_and_keeps_what_was_typed(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    c = fresh_course
    started = _started(database_url, c)
    teacher = frame(c.lti.launch(TEACHER), tool_server.url)
    page = teacher.get(f"/mastery/evidence/{started.evidence_id}").text
    day = re.search(r'id="cor-date" name="observed_on" value="([^"]+)"', page)
    assert day is not None
    correct = f"/mastery/evidence/{started.evidence_id}/correct"
    typed = {"points": "2", "observed_on": day.group(1), "note": "Misread the rubric"}

    # A new note alone takes nothing: saved at once.
    noted = teacher.post(correct, {"points": "3", "observed_on": day.group(1), "note": "Seen"})
    assert "The evidence is corrected" in teacher.follow(noted).text

    asked = teacher.post(correct, typed)
    assert asked.status_code == 200, asked.text[:2000]
    _asks_first(asked.text, started, "Save it anyway", "Save correction")
    assert _evidence(database_url, started.evidence_id) == (Decimal(3), "Seen", False)
    assert re.search(r'<option value="2(\.00)?" selected>', asked.text), "the level typed"
    assert ">Misread the rubric</textarea>" in asked.text

    done = teacher.follow(teacher.post(correct, {**typed, **confirm_of(asked.text)}))
    assert "The evidence is corrected" in done.text
    assert _evidence(database_url, started.evidence_id) == (Decimal(2), typed["note"], False)
    assert _masters(database_url, c, started.safe) is False
