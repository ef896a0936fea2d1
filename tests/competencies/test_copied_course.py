"""A new term: last term's course copied into a new course (an LMS's course copy, then
Pathways' "Copy from another course"). The LMS copies links and gradebook columns with last
term's ids; the new course reads them as its own copies, and never opens another course's."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import select

from lti_app.competencies.models import Competency
from lti_app.db import Database
from lti_app.demo import seed
from lti_app.demo.server import RunningPlatform
from lti_app.grades.gradebook import get_or_create_gradebook
from lti_app.grades.models import GradeDisplay, LineItem
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.scales import get_or_create_scale, update_scale
from lti_app.pathways.models import Pathway
from lti_app.tool.models import Context, Person
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Frame, frame, second_lms
from tests.grades.conftest import GradeCourse
from tests.pathways.test_views import Built, build_pathway
from tests.progress.pages import unit_of_work

TEACHER = seed.TEACHER.user_id
OLD_STUDENT, NEW_STUDENT, OTHER_STUDENT = "user-s01", "user-s05", "user-s06"
PLACED_COLUMN = "This activity of your course is about"


@dataclass
class Terms:
    lms: RunningPlatform
    lti: LtiActions
    old_key: str
    new_key: str
    other_key: str
    """A course of the same teacher that was not copied from last term's."""
    tool_url: str


@pytest.fixture
def terms(
    tool_server: ToolServer, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Terms]:
    tag = uuid.uuid4().hex[:6]
    keys = f"bio-fall-{tag}", f"bio-spring-{tag}", f"chem-{tag}"
    # Canvas's "Copy this course" keeps the name and code of the original by default.
    for key, student in zip(keys, (OLD_STUDENT, NEW_STUDENT, OTHER_STUDENT), strict=True):
        monkeypatch.setitem(
            seed.COURSES,
            key,
            seed.Course(
                context_id=key,
                label="BIO9",
                title="Biology 9",
                enrollments=(
                    seed.Enrollment(TEACHER, seed.Role.INSTRUCTOR),
                    seed.Enrollment(student, seed.Role.LEARNER),
                ),
            ),
        )
    with second_lms(tool_server, database_url) as running:
        lti = LtiActions(running, tool_server)
        try:
            yield Terms(running, lti, *keys, tool_server.url)
        finally:
            lti.close()


def teacher_frame(t: Terms, key: str) -> Frame:
    return frame(t.lti.launch(TEACHER, context_id=key), t.tool_url)


def context_of(db: Database, key: str) -> Context:
    with db.begin() as s:
        context = s.scalars(select(Context).where(Context.context_id == key)).one()
        s.expunge(context)
        return context


def last_term(t: Terms, database_url: str) -> Built:
    teacher_frame(t, t.old_key)
    return build_pathway(database_url, t.lms, t.old_key)


def copy_into(t: Terms, key: str, built: Built, **form: str) -> None:
    answer = teacher_frame(t, key).post(
        "/competencies/copy", {"source_context_id": str(built.context_id), **form}
    )
    assert answer.status_code == 303, answer.text[:1500]


# --- links copied with the course -------------------------------------------------------------


def test_copied_pathway_placement_opens_the_copied_pathway(terms: Terms, database_url: str) -> None:
    """Canvas copies the module item that opens a pathway (custom pathway_id) with a new
    resource link id and the same custom parameters: the new term's student lands on the
    pathway's copy, as last term's did on the pathway."""
    built = last_term(terms, database_url)
    copy_into(terms, terms.new_key, built, pathways="on")
    custom = {"pathway_id": str(built.pathway_id)}
    before = terms.lti.launch(
        OLD_STUDENT, context_id=terms.old_key, resource_link_id="rl-fall", custom=custom
    )
    assert "Animal cells field guide" in before.text
    after = terms.lti.launch(
        NEW_STUDENT, context_id=terms.new_key, resource_link_id="rl-spring", custom=custom
    )
    assert after.response.status_code == 200
    assert "Animal cells field guide" in after.text, "the copied placement opens the home"
    with unit_of_work(database_url) as s:
        copy = s.scalars(select(Pathway).where(Pathway.copied_from_id == built.pathway_id)).one()
        assert copy.context_id != built.context_id


def test_placement_naming_a_course_not_copied_here_opens_the_home(
    terms: Terms, database_url: str
) -> None:
    """A link naming last term's pathway, in a course that holds no copy of it, shows this
    course's home: never last term's pathway."""
    built = last_term(terms, database_url)
    copy_into(terms, terms.new_key, built, pathways="on")
    teacher_frame(terms, terms.other_key)
    page = terms.lti.launch(
        OTHER_STUDENT,
        context_id=terms.other_key,
        resource_link_id="rl-other",
        custom={"pathway_id": str(built.pathway_id)},
    )
    assert page.response.status_code == 200
    assert "Animal cells field guide" not in page.text
    column = terms.lti.launch(
        OTHER_STUDENT,
        context_id=terms.other_key,
        resource_link_id="rl-other-col",
        custom={"pathways_item": f"competency-{built.competency_id}"},
    )
    assert PLACED_COLUMN not in column.text


def test_copied_mastery_column_link_opens_the_competency(terms: Terms, database_url: str) -> None:
    """A competency's mastery column placed by deep linking (custom pathways_item) is copied
    with the course: in the new term it opens the student's progress on that competency."""
    built = last_term(terms, database_url)
    copy_into(terms, terms.new_key, built)
    custom = {"pathways_item": f"competency-{built.competency_id}"}
    before = terms.lti.launch(
        OLD_STUDENT, context_id=terms.old_key, resource_link_id="rl-col-fall", custom=custom
    )
    assert PLACED_COLUMN in before.text
    after = terms.lti.launch(
        NEW_STUDENT, context_id=terms.new_key, resource_link_id="rl-col-spring", custom=custom
    )
    assert after.response.status_code == 200
    assert PLACED_COLUMN in after.text, "lands on the pathways home"


# --- gradebook columns copied with the course -------------------------------------------------


def grade_course(
    t: Terms, db: Database, tool_server: ToolServer, key: str, competency_id: int, student: str
) -> GradeCourse:
    context = context_of(db, key)
    with db.begin() as s:
        rows = s.execute(
            select(Person.sub, Person.id).where(
                Person.platform_id == context.platform_id, Person.sub.in_([student, TEACHER])
            )
        )
        people: dict[str, int] = {row.sub: row.id for row in rows}
    return GradeCourse(
        lms=t.lms,
        db=db,
        lms_context_id=key,
        context_id=context.id,
        platform_id=context.platform_id,
        teacher_id=people[TEACHER],
        students={student: people[student]},
        competency_ids=[competency_id],
        settings=tool_server.settings,
    )


def test_canvas_copied_mastery_column_is_taken_over_not_duplicated(
    terms: Terms, database_url: str, db: Database, tool_server: ToolServer
) -> None:
    """Canvas copies the gradebook's columns (resourceId and tag too, scores not). When the
    new course sends the copied competency to the gradebook, its scores go to that column:
    no second column of the same name beside it."""
    built = last_term(terms, database_url)
    terms.lti.launch(OLD_STUDENT, context_id=terms.old_key)
    old = teacher_frame(terms, terms.old_key)
    old.get("/grades/")
    answer = old.post("/grades/columns", {"competency": str(built.competency_id)})
    assert answer.status_code in (200, 303), answer.text[:800]
    fall = grade_course(terms, db, tool_server, terms.old_key, built.competency_id, OLD_STUDENT)
    fall.record(3)
    fall.drain_until_settled(fall.worker())
    state = terms.lms.platform.state
    [fall_column] = state.line_items_in(terms.old_key)
    assert fall_column.resource_id == f"pathways-competency-{built.competency_id}"

    copied = state.add_line_item(
        terms.new_key,
        fall_column.label,
        fall_column.score_maximum,
        resource_id=fall_column.resource_id,
        tag=fall_column.tag,
    )
    terms.lti.launch(NEW_STUDENT, context_id=terms.new_key)
    copy_into(terms, terms.new_key, built, grading_offered="yes")
    new = teacher_frame(terms, terms.new_key)
    new_context = context_of(db, terms.new_key)
    with db.begin() as s:
        spring_competency = s.scalars(
            select(Competency.id).where(
                Competency.context_id == new_context.id,
                Competency.code == built.competency_code,
            )
        ).one()
    new.get("/grades/")
    answer = new.post("/grades/columns", {"competency": str(spring_competency)})
    assert answer.status_code in (200, 303), answer.text[:800]
    spring = grade_course(terms, db, tool_server, terms.new_key, spring_competency, NEW_STUDENT)
    spring.record(3)
    spring.drain_until_settled(spring.worker())

    columns = [c for c in state.line_items_in(terms.new_key) if c.label == fall_column.label]
    assert [c.id for c in columns] == [copied.id], f"{len(columns)} columns of that name"
    assert len(state.results(copied.id)) == 1, "the new term's score is not in the column"
    with db.begin() as s:
        item = s.scalars(select(LineItem).where(LineItem.competency_id == spring_competency)).one()
        assert item.url is not None
        assert item.url.endswith(str(copied.id))
    # Last term's column keeps its own score, and only it.
    assert len(state.results(fall_column.id)) == 1


# --- the grading set-up -----------------------------------------------------------------------

SCHOOL_LEVELS = ["Beginning", "Approaching", "Meeting", "Exceeding"]


def set_up_last_terms_grading(database_url: str, built: Built) -> None:
    """Their school's level names, the most recent result counts, percents in the gradebook,
    and the competency sent to the gradebook."""
    with unit_of_work(database_url) as s:
        get_or_create_scale(s, context_id=built.context_id)
        update_scale(
            s,
            context_id=built.context_id,
            method=CalculationMethod.MOST_RECENT,
            levels=[
                (name, Decimal(i + 1), "#444444", name == "Meeting")
                for i, name in enumerate(SCHOOL_LEVELS)
            ],
        )
        gb = get_or_create_gradebook(s, context_id=built.context_id)
        gb.display = GradeDisplay.PERCENT
        gb.conversion = {"Meeting": "85.00"}
        s.add(
            LineItem(
                platform_id=gb.platform_id,
                context_id=built.context_id,
                competency_id=built.competency_id,
                label="Cells",
                score_maximum=Decimal(4),
                resource_id=f"pathways-competency-{built.competency_id}",
                tag="pathways-competency",
            )
        )


def grading_of(database_url: str, db: Database, key: str) -> tuple[object, ...]:
    context_id = context_of(db, key).id
    with unit_of_work(database_url) as s:
        scale = get_or_create_scale(s, context_id=context_id)
        gb = get_or_create_gradebook(s, context_id=context_id)
        sent = s.scalars(
            select(Competency.code)
            .join(LineItem, LineItem.competency_id == Competency.id)
            .where(LineItem.context_id == context_id, LineItem.is_enabled.is_(True))
        ).all()
        return (
            [lv.name for lv in scale.levels],
            scale.method,
            gb.display,
            gb.conversion.get("Meeting"),
            sent,
        )


def test_copy_from_last_term_carries_the_grading_set_up(
    terms: Terms, database_url: str, db: Database
) -> None:
    """The copy form offers the grading set-up, ticked in a course without evidence: the new
    term grades as last term did."""
    built = last_term(terms, database_url)
    set_up_last_terms_grading(database_url, built)
    form = teacher_frame(terms, terms.new_key).get("/competencies/copy")
    assert re.search(r'name="grading"[^>]*checked', form.text), "not offered, or not ticked"
    copy_into(terms, terms.new_key, built, pathways="on", grading_offered="yes", grading="on")

    assert grading_of(database_url, db, terms.new_key) == (
        SCHOOL_LEVELS,
        CalculationMethod.MOST_RECENT,
        GradeDisplay.PERCENT,
        "85.00",
        [built.competency_code],
    )


def test_copy_without_the_grading_set_up_leaves_the_courses_own(
    terms: Terms, database_url: str, db: Database
) -> None:
    built = last_term(terms, database_url)
    set_up_last_terms_grading(database_url, built)
    copy_into(terms, terms.new_key, built, grading_offered="yes")

    names, method, display, _, sent = grading_of(database_url, db, terms.new_key)
    assert (names, method, display, sent) == (
        ["Emerging", "Developing", "Proficient", "Advanced"],
        CalculationMethod.DECAYING_AVERAGE,
        GradeDisplay.POINTS,
        [],
    )


# --- telling the courses apart ----------------------------------------------------------------


def test_copy_form_tells_last_terms_course_from_older_ones(terms: Terms, database_url: str) -> None:
    """Canvas's course copy keeps the original's name and code, so a teacher in their third
    term has several "Biology 9" courses: the form tells them apart, last opened first."""
    teacher_frame(terms, terms.other_key)
    last_term(terms, database_url)  # opened last, and holds the framework and a pathway
    page = teacher_frame(terms, terms.new_key).get("/competencies/copy")
    assert page.status_code == 200
    options = [
        html.unescape(o).strip()
        for o in re.findall(r"<option value=\"\d+\">([^<]*)</option>", page.text)
    ]
    assert len(options) == 2, options
    assert len(set(options)) == 2, f"the copy form offers {options}: which is last term's?"
    assert "1 pathway" in options[0], options
    assert "0 pathways" in options[1], options
