"""A new prerequisite locks a step for students part-way through it: the step's page names them
and asks first, and its "Save and lock the step for them" confirms that, and no more. Between
the warning and the confirm another student can start the step, and the teacher can tick a
further prerequisite on the warning page: the confirm then asks again, naming everyone it now
locks out, and saves nothing (as "Save it anyway" does for mastery, test_confirm_checks_the_warning
in tests/mastery)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.pathways import choices as ch
from lti_app.pathways import options, services
from lti_app.pathways.models import StepPrerequisite
from lti_app.pathways.options import OptionInput
from lti_app.tool.models import Person
from tests.conftest import ToolServer
from tests.courses.frames import Frame, frame
from tests.insights.conftest import TEACHER, FreshCourse, fresh_course  # noqa: F401
from tests.mastery.confirming import confirm_of
from tests.progress.pages import person_id, unique, unit_of_work

MORE_THAN_ASKED = "This is more than you were asked about"


@dataclass(frozen=True)
class Explore:
    """An open step, "Explore", that user-s01 (José Núñez) has started, and two competencies
    the teacher may make it wait for; user-s11 (Chidi Anagonye) launched after, not started:
    the class list, and so every warning, names him first."""

    step_id: int
    option_id: int
    transport: int
    ecosystems: int
    first: str
    second_id: int
    second: str


def _explore(database_url: str, c: FreshCourse) -> Explore:
    c.lti.launch("user-s11")
    with unit_of_work(database_url) as s:
        second_id = person_id(s, c.lti.lms, "user-s11")
        transport = create_competency(
            s, context_id=c.context_id, code=unique("CT"), title="Cell transport"
        ).id
        ecosystems = create_competency(
            s, context_id=c.context_id, code=unique("EC"), title="Ecosystems"
        ).id
        pathway = services.create_pathway(s, context_id=c.context_id, title="Cells")
        step = services.create_step(
            s, context_id=c.context_id, pathway_id=pathway.id, title="Explore"
        )
        option = options.create_option(
            s, context_id=c.context_id, step_id=step.id, data=OptionInput("Read chapter 3")
        )
        names = {p.id: p.name for p in s.scalars(select(Person))}
        built = Explore(
            step.id,
            option.id,
            transport,
            ecosystems,
            names[c.student_id],
            second_id,
            names[second_id],
        )
    _start(database_url, c, c.student_id, built)
    return built


def _start(database_url: str, c: FreshCourse, student: int, e: Explore) -> None:
    with unit_of_work(database_url) as s:
        choice = ch.choose_option(
            s, context_id=c.context_id, person_id=student, option_id=e.option_id
        )
        ch.start_choice(s, context_id=c.context_id, person_id=student, choice_id=choice.id)


def _masters(database_url: str, c: FreshCourse, student: int, competency: int) -> None:
    with unit_of_work(database_url) as s:
        record_evidence(
            s,
            context_id=c.context_id,
            competency_id=competency,
            student_ids=[student],
            points=Decimal(3),  # Proficient: mastery on the course's scale
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=c.teacher_id,
        )


def _prerequisites(database_url: str, e: Explore) -> set[int]:
    with unit_of_work(database_url) as s:
        return set(
            s.scalars(
                select(StepPrerequisite.competency_id).where(StepPrerequisite.step_id == e.step_id)
            )
        )


def _typed(e: Explore, *prerequisites: int) -> dict[str, str | list[str]]:
    return {
        "title": "Explore",
        "description": "",
        "competency_id": "",
        "prerequisite_ids": [str(p) for p in prerequisites],
    }


def _shown(page: str) -> dict[str, str]:
    """The step form's record of what it showed (the editor refuses a save over a colleague's)."""
    found = re.search(r'name="shown" value="([^"]*)"', page)
    assert found is not None
    return {"shown": html.unescape(found.group(1))}


def _locking(page: str) -> str:
    """The page's "Not saved yet" warning, in words."""
    assert 'id="locking-students"' in page, page[:3000]
    block = page.split('id="locking-students"', 1)[1].split("</div>", 1)[0]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", block)).split())


def _ticked(page: str) -> set[int]:
    return {int(v) for v in re.findall(r'name="prerequisite_ids" value="(\d+)" checked', page)}


def _teacher(c: FreshCourse, tool_server: ToolServer, e: Explore) -> tuple[Frame, str]:
    """The teacher's launch, and the path of the step's page."""
    return frame(c.lti.launch(TEACHER), tool_server.url), f"/pathways/manage/steps/{e.step_id}"


def test_a_student_who_starts_the_step_after_the_warning_is_named_before_it_locks(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    c = fresh_course
    e = _explore(database_url, c)
    teacher, path = _teacher(c, tool_server, e)
    typed = _typed(e, e.transport)
    asked = teacher.post(path, {**_shown(teacher.get(path).text), **typed})
    assert f"locks for 1 student with work in it: {e.first}." in _locking(asked.text)

    # Meanwhile the second student starts the step: the warning did not name them.
    _start(database_url, c, e.second_id, e)

    again = teacher.post(path, {**_shown(asked.text), **typed, **confirm_of(asked.text)})
    assert again.status_code == 200, again.text[:2000]
    words = _locking(again.text)
    assert MORE_THAN_ASKED in words
    assert f"locks for 2 students with work in it: {e.second}, {e.first}." in words
    assert _prerequisites(database_url, e) == set()

    # Confirming the warning that names them both saves.
    saved = teacher.post(path, {**_shown(again.text), **typed, **confirm_of(again.text)})
    assert saved.status_code == 302, saved.text[:2000]
    assert _prerequisites(database_url, e) == {e.transport}


def test_a_prerequisite_ticked_on_the_warning_page_names_whom_it_locks_out_too(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    c = fresh_course
    e = _explore(database_url, c)
    # The second student is part-way through too, and masters Cell transport already: that
    # prerequisite leaves the step open to them; Ecosystems would not.
    _masters(database_url, c, e.second_id, e.transport)
    _start(database_url, c, e.second_id, e)
    teacher, path = _teacher(c, tool_server, e)
    asked = teacher.post(path, {**_shown(teacher.get(path).text), **_typed(e, e.transport)})
    assert f"locks for 1 student with work in it: {e.first}." in _locking(asked.text)

    more = _typed(e, e.transport, e.ecosystems)  # ticked on the warning page, then confirmed
    again = teacher.post(path, {**_shown(asked.text), **more, **confirm_of(asked.text)})
    assert again.status_code == 200, again.text[:2000]
    words = _locking(again.text)
    assert MORE_THAN_ASKED in words
    assert f"locks for 2 students with work in it: {e.second}, {e.first}." in words
    assert _prerequisites(database_url, e) == set()
    assert _ticked(again.text) == {e.transport, e.ecosystems}  # what was typed stays

    saved = teacher.post(path, {**_shown(again.text), **more, **confirm_of(again.text)})
    assert saved.status_code == 302, saved.text[:2000]
    assert _prerequisites(database_url, e) == {e.transport, e.ecosystems}


def test_a_confirm_without_the_warning_it_answers_asks_first(
    fresh_course: FreshCourse,  # noqa: F811
    tool_server: ToolServer,
    database_url: str,
) -> None:
    """A page from before warnings were signed, or a crafted post: nothing says whom the
    teacher agreed to lock out, so the page asks."""
    c = fresh_course
    e = _explore(database_url, c)
    teacher, path = _teacher(c, tool_server, e)
    shown = _shown(teacher.get(path).text)
    typed = _typed(e, e.transport)
    for forged in ("", "not-a-signed-warning"):
        asked = teacher.post(
            path, {**shown, **typed, "confirm_locks": "yes", "warned_loss": forged}
        )
        assert f"locks for 1 student with work in it: {e.first}." in _locking(asked.text)
        assert _prerequisites(database_url, e) == set()
