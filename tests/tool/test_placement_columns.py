"""A placed mastery column whose gradebook column is the LMS's own gets the scores: the link's
launches name that column (AGS claim `lineitem`), and Pathways adopts it.

Sources:
- instructure/canvas-lms lib/lti/messages/resource_link_request.rb: an assignment launch's AGS
  claim names the assignment's own line item (`assignment_line_item_url`).
  app/models/assignment.rb `update_line_items`: that line item gets the deep-linked lineItem's
  resourceId and tag when it is made, but an existing one only when the same save changes the
  assignment's name, points or dates (and a Canvas older than `line_item_resource_id` never).
- moodle/moodle mod/lti/service/gradebookservices/classes/local/service/gradebookservices.php:
  with "grade sync only" no line item management scope is granted, and the launch names the
  activity's single grade item as `lineitem`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, update

from lti_app.db import Database
from lti_app.demo.launches import SCOPE_SCORE, LaunchTweaks
from lti_app.demo.state import LineItem as LmsLineItem
from lti_app.demo.state import ResourceLink as LmsResourceLink
from lti_app.grades import line_item_sync
from lti_app.grades.client import AGS_SCOPES
from lti_app.grades.columns import set_display
from lti_app.grades.models import GradeDisplay, LineItem, LineItemState
from lti_app.grades.worker import WorkerConfig
from lti_app.tool.models import Platform, ResourceLink
from tests.conftest import LtiActions, ToolServer
from tests.grades.conftest import GradeCourse, make_course
from tests.tool.test_deep_link_columns import _pick, _picker, _without_columns

__all__ = ["make_course"]  # the grades tests' fixture, used here by name

CourseMaker = Callable[..., GradeCourse]
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"


def _place(lti: LtiActions, course: GradeCourse, competency: int) -> None:
    """The teacher picks the competency's mastery column (Pathways now waits for the LMS's)."""
    _pick(_picker(lti, course), [f"competency-{competency}"])


def _lms_placement(
    course: GradeCourse, competency: int, *, label: str = "Unit 3: food webs", maximum: float = 10
) -> tuple[LmsResourceLink, LmsLineItem]:
    """The link the LMS made its own way: an assignment (Canvas assignment_selection) whose line
    item is the assignment's, out of its own points, with neither our resourceId nor our tag (an
    existing assignment saved with its name and points unchanged, or an older Canvas); its
    custom parameters are the ones the deep-linking response gave."""
    state = course.lms.platform.state
    link = LmsResourceLink(
        id=state.next_resource_link_id(),
        context_id=course.lms_context_id,
        title=label,
        custom={"pathways_item": f"competency-{competency}"},
    )
    column = state.add_line_item(course.lms_context_id, label, maximum, resource_link_id=link.id)
    link.line_item_id = column.id
    with state.lock:
        state.resource_links[link.id] = link
    return link, column


def _launch(lti: LtiActions, course: GradeCourse, sub: str, link: LmsResourceLink) -> None:
    launched = lti.launch(sub, context_id=course.lms_context_id, resource_link_id=link.id)
    assert launched.response.status_code == 200, launched.text[:2000]


def _row(course: GradeCourse, competency: int) -> LineItem:
    item = course.line_items().get(competency)
    assert item is not None
    return item


def _column_url(course: GradeCourse, column: LmsLineItem) -> str:
    return course.lms.platform.line_item_url(course.lms_context_id, column.id)


def test_a_students_launch_adopts_the_lms_column_and_the_worker_fills_it_without_a_second(
    make_course: CourseMaker, lti: LtiActions, db: Database
) -> None:
    course = make_course(students=3, competencies=1)
    _without_columns(course)
    course.record(3)
    competency = course.competency_ids[0]
    _place(lti, course, competency)
    link, column = _lms_placement(course, competency)

    student = next(iter(course.students))
    _launch(lti, course, student, link)

    row = _row(course, competency)
    assert (row.url, row.is_enabled, row.state) == (
        _column_url(course, column),
        True,
        LineItemState.PENDING,
    )
    with db.session_factory() as session:
        bound = session.get(ResourceLink, row.resource_link_id)
        assert bound is not None
        assert bound.resource_link_id == link.id

    course.drain_until_settled(course.worker())
    assert course.lms.platform.state.line_items_in(course.lms_context_id) == [column]
    results = course.lms.platform.state.results(column.id)
    assert {sub: r.body.get("scoreGiven") for sub, r in results.items()} == dict.fromkeys(
        course.students, 3
    )
    # The assignment is the teacher's: its name and 10 points stay. Each score says it is out
    # of 4, and the LMS rescales it to the assignment's points (Canvas scores_controller.rb
    # `line_item_score_maximum_scale`; Moodle "Rescale to match the grade item maximum").
    assert {r.body.get("scoreMaximum") for r in results.values()} == {4}
    assert (column.label, column.score_maximum) == ("Unit 3: food webs", 10)
    assert _row(course, competency).state is LineItemState.READY
    course.assert_lms_matches_mastery()

    # A later change of the gradebook's display still leaves the teacher's assignment alone.
    with db.begin() as session:
        set_display(session, context_id=course.context_id, display=GradeDisplay.PERCENT)
    course.drain_until_settled(course.worker())
    (after,) = course.lms.platform.state.line_items_in(course.lms_context_id)
    assert (after.label, after.score_maximum) == ("Unit 3: food webs", 10)
    resent = course.lms.platform.state.results(column.id)
    assert {r.body.get("scoreMaximum") for r in resent.values()} == {100}


def test_a_grade_sync_only_lms_gets_scores_in_the_column_its_launch_names(
    make_course: CourseMaker, lti: LtiActions, db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    _without_columns(course)
    course.record(2)
    competency = course.competency_ids[0]
    _place(lti, course, competency)
    link, column = _lms_placement(course, competency, maximum=4)
    # The admin chose "grade sync only": no token Pathways holds manages columns any more.
    worker = course.worker()
    with db.session_factory() as session:
        platform = session.get(Platform, course.platform_id)
        assert platform is not None
    worker.ags._tokens.drop(platform, AGS_SCOPES)
    course.lms.platform.revoke_tokens()
    course.lms.platform.granted_scopes = frozenset({SCOPE_SCORE})

    _launch(lti, course, next(iter(course.students)), link)
    course.drain_until_settled(worker)

    assert course.lms.platform.state.line_items_in(course.lms_context_id) == [column]
    results = course.lms.platform.state.results(column.id)
    assert {sub: r.body.get("scoreGiven") for sub, r in results.items()} == dict.fromkeys(
        course.students, 2
    )
    assert _row(course, competency).state is LineItemState.READY


def test_another_courses_competency_in_the_link_adopts_nothing(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    mine = make_course(students=1, competencies=1)
    other = make_course(students=1, competencies=1)
    _without_columns(mine)
    _without_columns(other)
    foreign = other.competency_ids[0]
    _place(lti, other, foreign)  # the other course waits for its column
    _place(lti, mine, mine.competency_ids[0])
    # A link in my course naming the other course's competency (a copied course keeps them).
    link, _ = _lms_placement(mine, foreign)

    _launch(lti, mine, next(iter(mine.students)), link)

    assert _row(other, foreign).url is None
    assert _row(mine, mine.competency_ids[0]).url is None


def test_a_column_already_made_is_not_replaced_and_is_noted_once(
    make_course: CourseMaker,
    lti: LtiActions,
    caplog: pytest.LogCaptureFixture,
) -> None:
    course = make_course(students=2, competencies=1)
    course.record(4)
    worker = course.worker()
    course.drain_until_settled(worker)  # the Gradebook page's column exists and is filled
    competency = course.competency_ids[0]
    made = _row(course, competency).url
    assert made is not None
    link, column = _lms_placement(course, competency)

    student = next(iter(course.students))
    with caplog.at_level(logging.WARNING, logger="lti_app.grades.launch_columns"):
        _launch(lti, course, student, link)
        _launch(lti, course, student, link)
    left_alone = [r for r in caplog.records if "is left alone" in r.getMessage()]
    assert len(left_alone) == 1

    assert _row(course, competency).url == made
    course.record(2)
    course.drain_until_settled(worker)
    assert course.lms.platform.state.results(column.id) == {}
    course.assert_lms_matches_mastery()


@contextmanager
def _line_item_statements(tool_server: ToolServer) -> Iterator[list[str]]:
    """The tool's statements that touch the line_item table while the block runs."""
    seen: list[str] = []
    engine = tool_server.app.extensions["lti_app.db"].engine

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "line_item" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_a_launch_with_nothing_to_adopt_costs_one_statement_and_a_home_launch_none(
    make_course: CourseMaker, lti: LtiActions, tool_server: ToolServer
) -> None:
    course = make_course(students=1, competencies=1)
    _without_columns(course)
    competency = course.competency_ids[0]
    _place(lti, course, competency)
    link, column = _lms_placement(course, competency)
    student = next(iter(course.students))
    _launch(lti, course, student, link)  # adopted: every later launch has nothing to do
    assert _row(course, competency).url == _column_url(course, column)

    with _line_item_statements(tool_server) as again:
        _launch(lti, course, student, link)
    assert len(again) == 1, again

    with _line_item_statements(tool_server) as home:
        launched = lti.launch(student, context_id=course.lms_context_id)
        assert launched.response.status_code == 200
        pathway = lti.launch(
            student, context_id=course.lms_context_id, custom={"pathways_item": "pathway-1"}
        )
        assert pathway.response.status_code == 200
    assert home == []


def test_a_column_named_on_another_host_is_not_adopted(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    """The worker's bearer token goes to the column's address: only the LMS's own may be it."""
    course = make_course(students=1, competencies=1)
    _without_columns(course)
    competency = course.competency_ids[0]
    _place(lti, course, competency)
    link, _ = _lms_placement(course, competency)
    lineitems = course.lms.platform.line_items_url(course.lms_context_id)
    elsewhere = "https://collector.example/lineitems/1"

    launched = lti.launch(
        next(iter(course.students)),
        context_id=course.lms_context_id,
        resource_link_id=link.id,
        tweaks=LaunchTweaks(
            claims={AGS: {"scope": [SCOPE_SCORE], "lineitems": lineitems, "lineitem": elsewhere}}
        ),
    )
    assert launched.response.status_code == 200, launched.text[:2000]
    assert _row(course, competency).url is None


def test_a_column_adopted_while_the_worker_made_one_stays_the_column(
    make_course: CourseMaker, db: Database
) -> None:
    """A worker making a column for the competency while a launch adopts the LMS's own: the
    adopted one (the column the teacher sees) keeps the scores. A deleted adopted column that
    the worker replaces is replaced, and the new one is Pathways' own."""
    course = make_course(students=1, competencies=1)
    row = _row(course, course.competency_ids[0])
    adopted = "https://lms.example/lineitems/assignment"
    with db.begin() as session:
        session.execute(
            update(LineItem).where(LineItem.id == row.id).values(url=adopted, lms_owned=True)
        )
    line_item_sync._save_line_item(
        db, WorkerConfig(), row.id, course.context_id, "https://lms.example/lineitems/made", None
    )
    kept = _row(course, course.competency_ids[0])
    assert (kept.url, kept.lms_owned, kept.state) == (adopted, True, LineItemState.READY)

    replacement = "https://lms.example/lineitems/again"
    line_item_sync._save_line_item(
        db,
        WorkerConfig(),
        row.id,
        course.context_id,
        replacement,
        None,
        replaced=adopted,
        known_url=adopted,
    )
    replaced = _row(course, course.competency_ids[0])
    assert (replaced.url, replaced.lms_owned) == (replacement, False)
