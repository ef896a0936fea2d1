"""Deep linking places a competency's mastery column: the LMS makes the column from the returned
lineItem, and Pathways adopts that column and fills it with every student's mastery.

Sources:
- https://www.imsglobal.org/spec/lti-dl/v2p0#deep-linking-settings (`accept_lineitem: false`:
  the platform ignores line items) and #lti-resource-link (`lineItem` label, scoreMaximum,
  resourceId, tag).
- instructure/canvas-lms app/controllers/lti/ims/concerns/deep_linking_modules.rb: an item with
  a lineItem becomes an assignment out of scoreMaximum whose line item keeps resourceId and tag.
- moodle/moodle mod/lti/locallib.php `lti_tool_configuration_from_content_item`: lineItem gives
  the activity's grade maximum, `lineitemresourceid` and `lineitemtag`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
from sqlalchemy import delete, select, update

from lti_app.db import Database, utcnow
from lti_app.demo.browser import parse_forms, submit_form
from lti_app.demo.launches import MessageType
from lti_app.demo.seed import TEACHER
from lti_app.grades.columns import (
    LMS_MAKES_COLUMN_GRACE,
    set_display,
    set_gradebook_competencies,
)
from lti_app.grades.models import GradeDisplay, LineItem, LineItemState, OutboxStatus
from lti_app.roster.models import RosterSync, SyncStatus
from tests.conftest import Launched, LtiActions
from tests.grades.conftest import GradeCourse, make_course, outbox_rows
from tests.tool.test_deep_linking_crafted import open_picker

__all__ = ["make_course"]  # the grades tests' fixture, used here by name

ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DL_RETURN = "/deep_link_return"
CourseMaker = Callable[..., GradeCourse]


def _picker(lti: LtiActions, course: GradeCourse, **settings: Any) -> Launched:
    if settings:
        launched = open_picker(lti, TEACHER.user_id, context_id=course.lms_context_id, **settings)
    else:
        launched = lti.launch(
            TEACHER.user_id,
            context_id=course.lms_context_id,
            message_type=MessageType.DEEP_LINKING,
        )
    assert launched.response.status_code == 200, launched.text[:2000]
    _wait_for_roster(course)
    return launched


def _wait_for_roster(course: GradeCourse) -> None:
    """A teacher's first launch in a course syncs its roster in the background; let it end
    before the test writes rows of the same course (SQLite has one writer)."""
    deadline = time.monotonic() + 20
    while True:
        with course.db.session_factory() as session:
            row = session.scalar(
                select(RosterSync).where(RosterSync.context_id == course.context_id)
            )
            if row is not None and row.status is SyncStatus.OK:
                return
        assert time.monotonic() < deadline, "the launch's roster sync did not finish"
        time.sleep(0.05)


def _pick(launched: Launched, keys: list[str], **extra: str) -> tuple[dict[str, Any], Any]:
    """Submit the picker with these items ticked; the signed answer's claims and its form."""
    form = next(
        f
        for f in parse_forms(launched.text, str(launched.response.url))
        if f.action.endswith("/lti/deep-link")
    )
    form.fields.pop("item", None)
    data = {**form.fields, **extra, "item": keys}
    page = launched.client.post(form.action, data=data)
    assert page.status_code == 200, page.text[:2000]
    back = next(f for f in parse_forms(page.text, str(page.url)) if "JWT" in f.fields)
    claims: dict[str, Any] = jwt.decode(back.fields["JWT"], options={"verify_signature": False})
    return claims, back


def _return_to_lms(launched: Launched, back: Any) -> None:
    """The browser carries the answer back; the demo LMS places the links and their columns."""
    result = submit_form(launched.client, back)
    assert result.status_code == 200, result.text[:2000]
    assert "refused" not in result.text, result.text[:2000]


def _without_columns(course: GradeCourse) -> None:
    """The course as a teacher who never opened the Gradebook page has it: no columns."""
    with course.db.begin() as session:
        session.execute(delete(LineItem).where(LineItem.context_id == course.context_id))


def _lms_columns(course: GradeCourse, resource_id: str) -> list[Any]:
    return [
        li
        for li in course.lms.platform.state.line_items_in(course.lms_context_id)
        if li.resource_id == resource_id
    ]


def _row(db: Database, course: GradeCourse, competency_id: int) -> LineItem:
    with db.session_factory() as session:
        item = session.scalar(
            select(LineItem).where(
                LineItem.context_id == course.context_id,
                LineItem.competency_id == competency_id,
            )
        )
        assert item is not None
        session.expunge(item)
        return item


def test_a_picked_competency_column_is_the_gradebooks_own_and_the_worker_fills_the_lms_column(
    make_course: CourseMaker, lti: LtiActions, db: Database
) -> None:
    course = make_course(students=3, competencies=2)
    _without_columns(course)
    course.record(3, competency=0)  # Proficient for every student: nothing queued yet
    assert outbox_rows(db, course.context_id) == []
    competency = course.competency_ids[0]
    key = f"competency-{competency}"

    launched = _picker(lti, course)
    assert "C1 Competency 1 \N{EM DASH} mastery column" in launched.text
    assert 'name="score_maximum"' not in launched.text
    assert "out of 4 points" in launched.text
    claims, back = _pick(launched, [key])

    (item,) = claims[ITEMS]
    assert item["custom"]["pathways_item"] == key
    assert item["url"] == lti.tool.url + "/lti/launch"
    # Exactly the column the gradebook keeps for this competency, so it can be found again.
    row = _row(db, course, competency)
    assert item["lineItem"] == {
        "label": row.label,
        "scoreMaximum": float(row.score_maximum),
        "resourceId": row.resource_id,
        "tag": row.tag,
        "submissionReview": {"reviewableStatus": ["Completed"], "label": "Open in Pathways"},
    }
    assert item["lineItem"] == {
        "label": "C1 Competency 1",
        "scoreMaximum": 4,
        "resourceId": f"pathways-competency-{competency}",
        "tag": "pathways-competency",
        "submissionReview": {"reviewableStatus": ["Completed"], "label": "Open in Pathways"},
    }
    assert (row.is_enabled, row.state, row.url) == (True, LineItemState.PENDING, None)
    # The current levels wait for the column, queued in the answer's transaction.
    queued = outbox_rows(db, course.context_id)
    assert {r.person_id for r in queued} == set(course.students.values())
    assert {r.status for r in queued} == {OutboxStatus.PENDING}
    other = _row_or_none(db, course, course.competency_ids[1])
    assert other is None, "a competency not picked stays out of the gradebook"

    # A worker that runs before the LMS has made its column (the browser is still carrying
    # the answer back; Moodle waits for the teacher to save the activity) makes none itself.
    worker = course.worker()
    worker.drain(threading.Event())
    assert _lms_columns(course, f"pathways-competency-{competency}") == []
    assert _row(db, course, competency).url is None
    # It looks again within seconds: the answer is on its way to the LMS.
    next_look = _row(db, course, competency).lease_until
    assert next_look is not None
    assert next_look <= utcnow() + timedelta(seconds=3)

    _return_to_lms(launched, back)
    (lms_column,) = _lms_columns(course, f"pathways-competency-{competency}")
    assert lms_column.resource_link_id is not None  # the LMS's, bound to the placed link

    # At its next look the worker finds the LMS's column, adopts it and fills it.
    with db.begin() as session:
        session.execute(
            update(LineItem)
            .where(LineItem.context_id == course.context_id)
            .values(lease_until=None)
        )
    course.drain_until_settled(worker)
    (adopted,) = _lms_columns(course, f"pathways-competency-{competency}")
    assert adopted.id == lms_column.id
    assert _row(db, course, competency).url == course.lms.platform.line_item_url(
        course.lms_context_id, lms_column.id
    )
    results = course.lms.platform.state.results(lms_column.id)
    assert {sub: r.body.get("scoreGiven") for sub, r in results.items()} == dict.fromkeys(
        course.students, 3
    )
    course.assert_lms_matches_mastery()


def _row_or_none(db: Database, course: GradeCourse, competency_id: int) -> LineItem | None:
    with db.session_factory() as session:
        return session.scalar(
            select(LineItem).where(
                LineItem.context_id == course.context_id,
                LineItem.competency_id == competency_id,
            )
        )


def test_a_column_already_in_the_lms_is_offered_without_a_second_line_item(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    course = make_course(students=1, competencies=2)
    course.record(2, competency=0)
    course.drain_until_settled(course.worker())  # the Gradebook page's columns now exist
    before = {li.id for li in course.lms.platform.state.line_items_in(course.lms_context_id)}
    assert len(before) == 2

    launched = _picker(lti, course)
    assert "already in the gradebook" in launched.text
    claims, back = _pick(launched, [f"competency-{c}" for c in course.competency_ids])
    assert [i["custom"]["pathways_item"] for i in claims[ITEMS]] == [
        f"competency-{c}" for c in course.competency_ids
    ]
    assert all("lineItem" not in i for i in claims[ITEMS])
    _return_to_lms(launched, back)
    after = {li.id for li in course.lms.platform.state.line_items_in(course.lms_context_id)}
    assert after == before


def test_a_placement_that_ignores_line_items_gets_none_and_pathways_makes_the_column(
    make_course: CourseMaker, lti: LtiActions, db: Database
) -> None:
    course = make_course(students=2, competencies=1)
    _without_columns(course)
    course.record(4)
    competency = course.competency_ids[0]

    launched = _picker(lti, course, accept_lineitem=False)
    assert "makes no gradebook column" in launched.text
    claims, back = _pick(launched, [f"competency-{competency}"])
    (item,) = claims[ITEMS]
    assert "lineItem" not in item
    _return_to_lms(launched, back)
    assert _lms_columns(course, f"pathways-competency-{competency}") == []

    # The teacher still asked for the column: with nothing to wait for, the worker makes it.
    course.drain_until_settled(course.worker())
    (made,) = _lms_columns(course, f"pathways-competency-{competency}")
    assert _row(db, course, competency).url == course.lms.platform.line_item_url(
        course.lms_context_id, made.id
    )
    course.assert_lms_matches_mastery()


def test_home_and_pathway_links_carry_no_line_item_whatever_the_form_says(
    make_course: CourseMaker, lti: LtiActions, db: Database
) -> None:
    from lti_app.pathways import services as pathways

    course = make_course(students=1, competencies=1)
    _without_columns(course)
    with db.begin() as session:
        pathway = pathways.create_pathway(
            session, context_id=course.context_id, title="Ecosystems"
        ).id
    competency = course.competency_ids[0]

    launched = _picker(lti, course)
    # The old checkbox and points field are gone; posting them anyway changes nothing.
    assert 'name="gradebook"' not in launched.text
    claims, back = _pick(
        launched,
        ["home", f"pathway-{pathway}", f"competency-{competency}"],
        gradebook="on",
        score_maximum="10",
    )
    home, placed_pathway, column = claims[ITEMS]
    assert "lineItem" not in home
    assert "lineItem" not in placed_pathway
    assert column["lineItem"]["resourceId"] == f"pathways-competency-{competency}"
    assert column["lineItem"]["scoreMaximum"] == 4
    _return_to_lms(launched, back)
    columns = course.lms.platform.state.line_items_in(course.lms_context_id)
    assert [li.resource_id for li in columns] == [f"pathways-competency-{competency}"]


def test_the_column_is_out_of_100_when_the_gradebook_shows_percentages(
    make_course: CourseMaker, lti: LtiActions, db: Database
) -> None:
    course = make_course(students=1, competencies=1)
    with db.begin() as session:
        set_gradebook_competencies(session, context_id=course.context_id, competency_ids=[])
        set_display(session, context_id=course.context_id, display=GradeDisplay.PERCENT)
    competency = course.competency_ids[0]

    launched = _picker(lti, course)
    assert "out of 100%" in launched.text
    claims, _ = _pick(launched, [f"competency-{competency}"])
    (item,) = claims[ITEMS]
    row = _row(db, course, competency)
    assert row.is_enabled
    assert item["lineItem"]["scoreMaximum"] == float(row.score_maximum) == 100


def test_a_column_the_lms_never_makes_is_made_by_pathways_once_the_wait_is_over(
    make_course: CourseMaker, lti: LtiActions, db: Database
) -> None:
    """A teacher who cancels Moodle's activity form after picking a column still asked for
    it: after the wait the worker makes the column itself, and the scores go there."""
    course = make_course(students=2, competencies=1)
    _without_columns(course)
    course.record(3)
    competency = course.competency_ids[0]
    launched = _picker(lti, course)
    _pick(launched, [f"competency-{competency}"])  # never carried back to the LMS
    worker = course.worker()
    worker.drain(threading.Event())
    assert _lms_columns(course, f"pathways-competency-{competency}") == []
    # A minute on, the worker looks every half minute instead of every few seconds.
    with db.begin() as session:
        session.execute(
            update(LineItem)
            .where(LineItem.context_id == course.context_id)
            .values(
                lease_until=None,
                lms_makes_until=utcnow() + LMS_MAKES_COLUMN_GRACE - timedelta(minutes=2),
            )
        )
    worker.drain(threading.Event())
    next_look = _row(db, course, competency).lease_until
    assert next_look is not None
    assert next_look > utcnow() + timedelta(seconds=20)
    assert _lms_columns(course, f"pathways-competency-{competency}") == []
    with db.begin() as session:
        session.execute(
            update(LineItem)
            .where(LineItem.context_id == course.context_id)
            .values(lease_until=None, lms_makes_until=utcnow() - timedelta(seconds=1))
        )
    course.drain_until_settled(worker)
    (made,) = _lms_columns(course, f"pathways-competency-{competency}")
    assert _row(db, course, competency).url == course.lms.platform.line_item_url(
        course.lms_context_id, made.id
    )
    course.assert_lms_matches_mastery()


def test_a_column_placed_again_before_the_worker_found_it_is_asked_of_the_lms_once(
    make_course: CourseMaker, lti: LtiActions, db: Database
) -> None:
    """The teacher places a competency's column in one module, then in another a minute later,
    before the worker has found the column the LMS made: a second lineItem made a second LMS
    column, which stayed empty."""
    course = make_course(students=2, competencies=1)
    _without_columns(course)
    course.record(3)
    competency = course.competency_ids[0]
    key = f"competency-{competency}"
    first = _picker(lti, course)
    claims, back = _pick(first, [key])
    assert "lineItem" in claims[ITEMS][0]
    _return_to_lms(first, back)

    second = _picker(lti, course)
    assert "being added to the gradebook" in second.text
    claims, back = _pick(second, [key])
    (item,) = claims[ITEMS]
    assert item["custom"]["pathways_item"] == key
    assert "lineItem" not in item
    _return_to_lms(second, back)
    (column,) = _lms_columns(course, f"pathways-competency-{competency}")

    with db.begin() as session:  # the worker's next look, now rather than in a few seconds
        session.execute(
            update(LineItem)
            .where(LineItem.context_id == course.context_id)
            .values(lease_until=None)
        )
    course.drain_until_settled(course.worker())
    assert sorted(course.lms.platform.state.results(column.id)) == sorted(course.students)
    course.assert_lms_matches_mastery()


LONG_TITLE = (
    "Cite strong and thorough textual evidence to support analysis of what the text says "
    "explicitly as well as inferences drawn from the text, including determining where the "
    "text leaves matters uncertain, and evaluate the author's choices in the text and in "
    "other texts of the period."
)


def _retitle(course: GradeCourse, competency_id: int, title: str) -> None:
    from lti_app.competencies.services import edit_competency

    with course.db.begin() as session:
        edit_competency(
            session, context_id=course.context_id, competency_id=competency_id, title=title
        )


def test_a_long_competency_title_is_cut_to_a_name_the_lms_takes(
    make_course: CourseMaker, lti: LtiActions
) -> None:
    """Canvas refuses an assignment name over 255 characters (the placement failed), and
    Moodle's activity and grade item names hold 255; a code and title come to 577."""
    course = make_course(students=1, competencies=1)
    competency = course.competency_ids[0]
    _retitle(course, competency, LONG_TITLE)
    _without_columns(course)

    launched = _picker(lti, course)
    claims, back = _pick(launched, [f"competency-{competency}"])
    (item,) = claims[ITEMS]
    assert len(item["title"]) <= 255
    assert item["title"].startswith("C1 Cite strong and thorough")
    assert item["title"].endswith("\N{HORIZONTAL ELLIPSIS} \N{EM DASH} mastery column")
    label = item["lineItem"]["label"]
    assert len(label) <= 255
    assert label.startswith("C1 Cite strong and thorough")
    assert label.endswith("\N{HORIZONTAL ELLIPSIS}")
    _return_to_lms(launched, back)
    (column,) = _lms_columns(course, f"pathways-competency-{competency}")
    assert column.label == label


def test_a_second_select_content_in_moodle_names_the_activity_after_the_new_pick(
    make_course: CourseMaker, lti: LtiActions, db: Database
) -> None:
    """Moodle's "Select content" sends the activity's name and description as the default
    title and text, and writes a single pick's title and text back into them: pressed again,
    it offered the first pick's, and the activity (and its gradebook column, Moodle's grade
    item) kept the name ECO.1 while holding ECO.2."""
    from lti_app.pathways import services as pathways

    course = make_course(students=1, competencies=2)
    _without_columns(course)
    first_column, second_column = course.competency_ids
    with db.begin() as session:
        pathway = pathways.create_pathway(
            session, context_id=course.context_id, title="Ecosystems by choice"
        ).id
    moodle = {"accept_presentation_document_targets": ["frame", "iframe", "window"]}

    # A new activity, its name still empty: the teacher picks the wrong column first.
    first = _picker(lti, course, title="", text="", **moodle)
    claims, _ = _pick(first, [f"competency-{first_column}"])
    (wrong,) = claims[ITEMS]
    assert wrong["title"] == "C1 Competency 1 \N{EM DASH} mastery column"

    # Moodle wrote that pick over the name and description; "Select content" again.
    second = _picker(lti, course, title=wrong["title"], text=wrong["text"], **moodle)
    claims, back = _pick(second, [f"competency-{second_column}"])
    (right,) = claims[ITEMS]
    assert right["title"] == "C2 Competency 2 \N{EM DASH} mastery column"
    assert right["lineItem"]["label"] == "C2 Competency 2"
    placed_before = set(lti.platform.state.resource_links)
    _return_to_lms(second, back)
    (placed,) = [
        link for key, link in lti.platform.state.resource_links.items() if key not in placed_before
    ]
    assert placed.title == right["title"]

    # The description as Moodle's editor gives it back, in a paragraph: still not the teacher's.
    third = _picker(lti, course, title=right["title"], text=f"<p>{right['text']}</p>", **moodle)
    claims, _ = _pick(third, [f"pathway-{pathway}"])
    (item,) = claims[ITEMS]
    assert (item["title"], item["text"]) == (
        "Ecosystems by choice",
        "Opens this pathway for students.",
    )
