"""Gradebook columns and display choices, and the teacher's pages."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from lti_app.competencies.models import Competency
from lti_app.competencies.services import create_competency, edit_competency
from lti_app.courses import recording
from lti_app.db import Database
from lti_app.grades.columns import LINE_ITEM_TAG, display_preview, list_columns, set_display
from lti_app.grades.gradebook import get_gradebook
from lti_app.grades.models import GradeDisplay, LineItem, LineItemState
from lti_app.mastery.scales import get_or_create_scale, update_scale
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import second_lms

from .conftest import GradeCourse

LAUNCH_TOKEN = re.compile(r"[?&]lt=([^\"&]+)")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_columns_are_found_before_created_so_retries_and_workers_never_duplicate(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=3)
    state = course.lms.platform.state
    # A create whose answer was lost: the column exists in the LMS, Pathways has no URL.
    lost = state.add_line_item(
        course.lms_context_id,
        "C1 Competency 1",
        4.0,
        resource_id=f"pathways-competency-{course.competency_ids[0]}",
        tag=LINE_ITEM_TAG,
    )
    workers = [course.worker(), course.worker()]
    threads = [threading.Thread(target=w.sync_line_items) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    items = state.line_items_in(course.lms_context_id)
    assert len(items) == 3
    ours = course.line_items()
    assert all(i.state is LineItemState.READY for i in ours.values())
    assert ours[course.competency_ids[0]].url == course.lms.platform.line_item_url(
        course.lms_context_id, lost.id
    )
    created = [i for i in items if i.id != lost.id]
    assert {i.label for i in created} == {"C2 Competency 2", "C3 Competency 3"}
    assert {i.tag for i in created} == {LINE_ITEM_TAG}
    assert {i.score_maximum for i in created} == {4.0}


def test_percent_display_sends_the_conversion_table(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=1)
    worker = course.worker()
    course.record(3)
    course.drain_until_settled(worker)
    with course.db.begin() as session:
        preview = display_preview(session, context_id=course.context_id)
        assert [(p.name, str(p.percent)) for p in preview][2] == ("Proficient", "75.00")
        queued = set_display(
            session,
            context_id=course.context_id,
            display=GradeDisplay.PERCENT,
            conversion={"Proficient": "85", "Advanced": "100"},
        )
    assert len(queued) == 2
    course.drain_until_settled(worker)
    (item,) = course.lms.platform.state.line_items_in(course.lms_context_id)
    assert item.score_maximum == 100.0
    result = course.lms.platform.state.results(item.id)["user-s01"].body
    assert (result["scoreGiven"], result["scoreMaximum"], result["comment"]) == (
        85.0,
        100.0,
        "Proficient",
    )
    assert result["https://canvas.instructure.com/lti/submission"] == {"new_submission": False}


@pytest.fixture
def own_lti(tool_server: ToolServer, database_url: str) -> Iterator[LtiActions]:
    """Launches from an LMS of this test's own: the test turns a gradebook column on, and in
    the Biology 9 the run shares every later test's evidence would then be sent to it."""
    with second_lms(tool_server, database_url) as running:
        actions = LtiActions(running, tool_server)
        yield actions
        actions.close()


def test_teacher_pages_choose_columns_and_show_the_sync(own_lti: LtiActions, db: Database) -> None:
    lti = own_lti
    launched = lti.launch("user-t01")
    token = LAUNCH_TOKEN.search(launched.text)
    assert token is not None
    with db.begin() as session:
        context_id = lti.course_id(session)
        competency = create_competency(
            session,
            context_id=context_id,
            code=f"G{threading.get_ident() % 10000}",
            title="<i>Cells</i>",
        )
    page = launched.client.get(f"{lti.tool.url}/grades/", params={"lt": token.group(1)})
    assert page.status_code == 200
    assert "&lt;i&gt;Cells&lt;/i&gt;" in page.text
    assert "Its points out of the top level" in page.text
    csrf = CSRF.search(page.text)
    assert csrf is not None
    saved = launched.client.post(
        f"{lti.tool.url}/grades/columns",
        data={"csrf_token": csrf.group(1), "lt": token.group(1), "competency": competency.id},
    )
    assert saved.status_code == 303  # to the page: Back in the LMS frame re-sends nothing
    saved = launched.client.get(
        f"{lti.tool.url}{saved.headers['location']}", headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert saved.status_code == 200
    assert "Gradebook columns saved." in saved.text
    with db.session_factory() as session:
        columns = {c.competency_id: c for c in list_columns(session, context_id=context_id)}
        gradebook = get_gradebook(session, context_id=context_id)
    assert columns[competency.id].is_enabled
    assert gradebook is not None
    assert gradebook.lineitems_url == lti.platform.line_items_url("course-bio9")
    sync = launched.client.get(f"{lti.tool.url}/grades/sync", params={"lt": token.group(1)})
    assert sync.status_code == 200
    assert "Sent to the LMS" in sync.text
    student = lti.launch("user-s02")
    student_token = LAUNCH_TOKEN.search(student.text)
    if student_token is not None:
        refused = student.client.get(
            f"{lti.tool.url}/grades/sync", params={"lt": student_token.group(1)}
        )
        assert refused.status_code == 403


def _raise_top_level(course: GradeCourse, points: int) -> None:
    """Change the top level's points as the scale page does: no student changes level."""
    with course.db.begin() as session:
        scale = get_or_create_scale(session, context_id=course.context_id)
        levels = [(lv.name, lv.points, lv.colour, lv.is_mastery) for lv in scale.levels]
        name, _, colour, is_mastery = levels[-1]
        levels[-1] = (name, Decimal(points), colour, is_mastery)
        changes = update_scale(
            session, context_id=course.context_id, method=scale.method, levels=levels
        )
        assert [c for c in changes if c.old_level_name != c.new_level_name] == []
        recording.queue_scores(session, changes)


def test_a_scale_change_that_keeps_every_level_still_updates_the_gradebook(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=3, competencies=2)
    state = course.lms.platform.state
    worker = course.worker()
    course.record(3)  # Proficient
    course.record(2, competency=1)  # Developing
    course.drain_until_settled(worker)

    _raise_top_level(course, 5)
    course.drain_until_settled(worker)
    items = state.line_items_in(course.lms_context_id)
    assert {i.score_maximum for i in items} == {5.0}
    shown = {
        (i.label, sub): (r.body["scoreGiven"], r.body["scoreMaximum"])
        for i in items
        for sub, r in state.results(i.id).items()
    }
    assert shown == {
        **{("C1 Competency 1", sub): (3.0, 5.0) for sub in course.students},
        **{("C2 Competency 2", sub): (2.0, 5.0) for sub in course.students},
    }

    # A percentage the teacher left to the default follows the level's share of the top.
    with course.db.begin() as session:
        set_display(session, context_id=course.context_id, display=GradeDisplay.PERCENT)
    course.drain_until_settled(worker)
    _raise_top_level(course, 6)
    course.drain_until_settled(worker)
    items = state.line_items_in(course.lms_context_id)
    assert {i.score_maximum for i in items} == {100.0}
    proficient = {r.body["scoreGiven"] for r in state.results(items[0].id).values()}
    assert proficient == {50.0}


def test_renaming_a_competency_renames_its_gradebook_column(
    make_course: Callable[..., GradeCourse],
) -> None:
    course = make_course(students=2, competencies=2)
    state = course.lms.platform.state
    worker = course.worker()
    course.record(3)
    course.drain_until_settled(worker)
    first = {i.label: i.id for i in state.line_items_in(course.lms_context_id)}

    with course.db.begin() as session:
        competency_id = session.scalar(
            select(Competency.id).where(
                Competency.context_id == course.context_id, Competency.code == "C1"
            )
        )
        assert competency_id is not None
        edit_competency(
            session,
            context_id=course.context_id,
            competency_id=competency_id,
            title="Reads scientific texts",
        )
    course.drain_until_settled(worker)

    items = {i.label: i.id for i in state.line_items_in(course.lms_context_id)}
    assert items == {
        "C1 Reads scientific texts": first["C1 Competency 1"],
        **{label: item_id for label, item_id in first.items() if label != "C1 Competency 1"},
    }


def test_columns_pathways_makes_have_labels_the_lms_takes(
    make_course: Callable[..., GradeCourse],
) -> None:
    """Canvas refuses an assignment name over 255 characters, so it refused the column, and
    Moodle's grade item names hold 255; a competency's code and title come to 577."""
    course = make_course(students=1, competencies=2)
    long_title = "Evaluates the author's choices in the text and in other texts. " * 6
    with course.db.begin() as session:
        edit_competency(
            session,
            context_id=course.context_id,
            competency_id=course.competency_ids[0],
            title=long_title,
        )
        # A column labelled before labels were cut keeps its long label in the database.
        session.execute(
            update(LineItem)
            .where(LineItem.competency_id == course.competency_ids[1])
            .values(label="C2 " + long_title)
        )
    course.record(3)
    course.drain_until_settled(course.worker())

    labels = sorted(i.label for i in course.lms.platform.state.line_items_in(course.lms_context_id))
    assert [label[:3] for label in labels] == ["C1 ", "C2 "]
    for label in labels:
        assert len(label) <= 255
        assert label[3:].startswith("Evaluates the author's choices")
        assert label.endswith("\N{HORIZONTAL ELLIPSIS}")
    course.assert_lms_matches_mastery()


def test_a_renamed_column_that_was_deleted_in_the_lms_is_made_again_under_its_new_name(
    make_course: Callable[..., GradeCourse],
) -> None:
    """The update of a column the teacher deleted answers 404: it is made again, not lost."""
    course = make_course(students=3, competencies=1)
    state = course.lms.platform.state
    worker = course.worker()
    course.record(3)
    course.drain_until_settled(worker)
    deleted_url = course.line_items()[course.competency_ids[0]].url
    assert deleted_url is not None
    state.delete_line_item(course.lms_item_ids()[deleted_url])  # the teacher, in the LMS

    with course.db.begin() as session:
        edit_competency(
            session,
            context_id=course.context_id,
            competency_id=course.competency_ids[0],
            title="Reads scientific texts",
        )
    course.drain_until_settled(worker)

    items = state.line_items_in(course.lms_context_id)
    assert [i.label for i in items] == ["C1 Reads scientific texts"]
    assert sorted(state.results(items[0].id)) == sorted(course.students)
    course.assert_lms_matches_mastery()


@pytest.mark.parametrize("noticed_by", ["a new score", "a rename"])
def test_a_column_made_again_at_the_address_it_had_gets_every_students_level(
    make_course: Callable[..., GradeCourse], noticed_by: str
) -> None:
    """An LMS that gives a new column a deleted one's id (the demo LMS after `lti-app demo`
    restarts numbers its columns from 1 again) answers the re-made column at the address
    Pathways knew: it is still a new, empty column, and every student's level goes to it."""
    course = make_course(students=4, competencies=1)
    state = course.lms.platform.state
    worker = course.worker()
    course.record(3)
    course.drain_until_settled(worker)
    known_url = course.line_items()[course.competency_ids[0]].url
    assert known_url is not None
    item_id = course.lms_item_ids()[known_url]
    state.delete_line_item(item_id)  # the teacher, in the LMS
    state._next_line_item_id = item_id
    sent_before = len(state.scores)

    if noticed_by == "a new score":
        assert course.record(1, subs=[next(iter(course.students))])
    else:
        with course.db.begin() as session:
            edit_competency(
                session,
                context_id=course.context_id,
                competency_id=course.competency_ids[0],
                title="Reads scientific texts",
            )
    course.drain_until_settled(worker)

    assert course.lms_item_ids() == {known_url: item_id}  # made again, at the same address
    received = {
        score.user_id
        for score in state.scores[sent_before:]
        if score.line_item_id == item_id and score.status == 200
    }
    assert sorted(received) == sorted(course.students)
    course.assert_lms_matches_mastery()
    note = course.line_items()[course.competency_ids[0]].last_error
    assert "created it again and resent 4 scores" in note
