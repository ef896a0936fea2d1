"""A course's default mastery scale is stored before a page of the course shows it.

A GET is rolled back at its end: a scale made inside one came back at the form's POST with other
ids on PostgreSQL, so a student's first self-assessment named a level that no longer existed.
Each page here is opened as a GET on a course that has no scale yet, then a form from it is
posted with what the GET gave.
"""

from __future__ import annotations

import html
import uuid

import httpx
import pytest
from sqlalchemy import delete, select

from lti_app.competencies.services import create_competency
from lti_app.demo import seed
from lti_app.demo.browser import HtmlForm
from lti_app.demo.seed import STUDENTS, TEACHER, Course, Enrollment, Role
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.models import Evidence, EvidenceSource, MasteryLevel, MasteryScale
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import frame
from tests.progress.pages import context_id, form, person_id, unique, unit_of_work, url
from tests.progress.test_views import _level_id

STUDENT = STUDENTS[0].user_id
DEFAULT_METHOD = CalculationMethod.DECAYING_AVERAGE


@pytest.fixture
def new_course(monkeypatch: pytest.MonkeyPatch) -> str:
    """A course Pathways has never seen, with a teacher and one student."""
    lms_context_id = f"course-first-use-{uuid.uuid4().hex[:8]}"
    course = Course(
        lms_context_id,
        "FU",
        "First use",
        (Enrollment(TEACHER.user_id, Role.INSTRUCTOR), Enrollment(STUDENT, Role.LEARNER)),
    )
    monkeypatch.setitem(seed.COURSES, lms_context_id, course)
    return lms_context_id


def _stored_levels(database_url: str, course_id: int) -> dict[int, str]:
    """The course's stored level ids and names, as another request reads them after this one."""
    with unit_of_work(database_url) as s:
        rows = s.execute(
            select(MasteryLevel.id, MasteryLevel.name)
            .join(MasteryScale, MasteryScale.id == MasteryLevel.scale_id)
            .where(MasteryScale.context_id == course_id)
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def _without_scale(database_url: str, course_id: int) -> None:
    """Take the course back to having no scale, as a course recorded before Pathways stored one
    for each course (or whose first pages never needed one) is."""
    with unit_of_work(database_url) as s:
        scale_ids = select(MasteryScale.id).where(MasteryScale.context_id == course_id)
        s.execute(delete(MasteryLevel).where(MasteryLevel.scale_id.in_(scale_ids)))
        s.execute(delete(MasteryScale).where(MasteryScale.context_id == course_id))


def _post(client: httpx.Client, found: HtmlForm, **changes: str) -> httpx.Response:
    """Submit the form as the page filled it in, with `changes`, following a redirect."""
    response = client.post(found.action, data={**found.fields, **changes})
    if response.is_redirect:
        response = client.get(response.url.join(response.headers["location"]))
    return response


def test_a_students_first_self_assessment_in_a_new_course_takes_the_level_the_page_offered(
    lti: LtiActions, database_url: str, new_course: str
) -> None:
    home = lti.launch(STUDENT, context_id=new_course)  # lands on the pathways: no scale needed
    with unit_of_work(database_url) as s:
        course_id = context_id(s, lti.lms, new_course)
        comp_id = create_competency(s, context_id=course_id, code=unique("FU"), title="Cells").id
    _without_scale(database_url, course_id)

    page = home.client.get(url(home.response, "/progress/"))
    assert page.status_code == 200
    advanced = _level_id(page.text, comp_id, "Advanced")
    # The level the page offers outlives the GET that showed it.
    assert _stored_levels(database_url, course_id).get(int(advanced)) == "Advanced"

    saved = _post(
        home.client,
        form(page, "/progress/self-assessment"),
        competency_id=str(comp_id),
        level_id=advanced,
        note="I can explain it",
    )
    assert "your self-assessment is saved" in saved.text
    with unit_of_work(database_url) as s:
        mine = s.scalars(select(Evidence).where(Evidence.competency_id == comp_id)).all()
    assert [(e.source, e.points) for e in mine] == [(EvidenceSource.SELF_ASSESSMENT, 4)]


TEACHER_PAGES = [
    "/course/",
    "/course/students/{student}",
    "/mastery/scale",
    "/mastery/evidence/bulk",
    "/insights/",
    "/insights/students/{student}/progress",
    "/grades/",
    "/grades/sync",
]


@pytest.mark.parametrize("path", TEACHER_PAGES)
def test_a_teacher_page_keeps_the_scale_it_shows_on_a_course_that_had_none(
    lti: LtiActions, tool_server: ToolServer, database_url: str, new_course: str, path: str
) -> None:
    lti.launch(STUDENT, context_id=new_course)
    teacher = frame(lti.launch(TEACHER.user_id, context_id=new_course), tool_server.url)
    with unit_of_work(database_url) as s:
        course_id = context_id(s, lti.lms, new_course)
        student_id = person_id(s, lti.lms, STUDENT)
    _without_scale(database_url, course_id)

    page = teacher.get(path.format(student=student_id))
    assert page.status_code == 200, page.text[:2000]
    shown = _stored_levels(database_url, course_id)
    assert sorted(shown.values()) == ["Advanced", "Developing", "Emerging", "Proficient"]
    # A second page reads the same rows, not another scale made for it.
    assert teacher.get(path.format(student=student_id)).status_code == 200
    assert _stored_levels(database_url, course_id) == shown


def test_the_scale_page_of_a_course_that_had_no_scale_saves_over_the_levels_it_showed(
    lti: LtiActions, tool_server: ToolServer, database_url: str, new_course: str
) -> None:
    teacher = frame(lti.launch(TEACHER.user_id, context_id=new_course), tool_server.url)
    with unit_of_work(database_url) as s:
        course_id = context_id(s, lti.lms, new_course)
    _without_scale(database_url, course_id)

    page = teacher.get("/mastery/scale")
    shown = _stored_levels(database_url, course_id)
    # The parser keeps each radio group's last value: name the page's checked ones.
    saved = _post(
        teacher.client,
        form(page, "/mastery/scale"),
        **{"level-3-name": "Exceeding", "mastery": "2", "method": DEFAULT_METHOD.value},
    )
    assert saved.status_code == 200, saved.text[:2000]
    assert "The mastery scale is saved" in saved.text
    # Renaming keeps each level's row: the ids are the ones the page was shown with.
    after = _stored_levels(database_url, course_id)
    assert after.keys() == shown.keys()
    assert sorted(after.values()) == ["Developing", "Emerging", "Exceeding", "Proficient"]


def test_evidence_from_the_student_page_of_a_course_that_had_no_scale_is_recorded(
    lti: LtiActions, tool_server: ToolServer, database_url: str, new_course: str
) -> None:
    lti.launch(STUDENT, context_id=new_course)
    teacher = frame(lti.launch(TEACHER.user_id, context_id=new_course), tool_server.url)
    with unit_of_work(database_url) as s:
        course_id = context_id(s, lti.lms, new_course)
        student_id = person_id(s, lti.lms, STUDENT)
        comp_id = create_competency(s, context_id=course_id, code=unique("FU"), title="Cells").id
    _without_scale(database_url, course_id)

    page = teacher.get(f"/course/students/{student_id}")
    record = form(page, f"/mastery/students/{student_id}/evidence")
    options = html.unescape(page.text.split('id="rec-points"', 1)[1].split("</select>", 1)[0])
    advanced = options.split(">Advanced", 1)[0].rsplit('value="', 1)[1].split('"', 1)[0]
    saved = _post(teacher.client, record, competency_id=str(comp_id), points=advanced)
    assert saved.status_code == 200, saved.text[:2000]
    with unit_of_work(database_url) as s:
        stored = s.scalars(select(Evidence.points).where(Evidence.competency_id == comp_id)).all()
    assert stored == [4]
