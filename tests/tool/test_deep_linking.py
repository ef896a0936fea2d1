"""Deep linking: a teacher picks what to place; the LMS receives a signed response it accepts."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.db import Database
from lti_app.demo.browser import parse_forms, submit_form
from lti_app.demo.launches import DL_SETTINGS, LaunchTweaks, MessageType
from lti_app.demo.seed import STUDENTS, TEACHER
from lti_app.launch_tokens import make_launch_token
from lti_app.tool.models import LaunchSession
from tests.conftest import Launched, LtiActions
from tests.grades.conftest import GradeCourse, make_course
from tests.tool.test_deep_link_columns import _pick, _return_to_lms
from tests.tool.test_deep_link_columns import _picker as _picker_in_course

__all__ = ["make_course"]  # the grades tests' fixture, used here by name

DL_RETURN = "/deep_link_return"


def _picker(lti: LtiActions, user: str = "user-t01", **kwargs: Any) -> Launched:
    return lti.launch(user, message_type=MessageType.DEEP_LINKING, **kwargs)


def test_teacher_picks_an_item_and_the_lms_receives_it_with_a_gradebook_column(
    lti: LtiActions, database_url: str
) -> None:
    from lti_app.competencies.models import Competency
    from lti_app.competencies.services import create_competency
    from lti_app.db import Database

    lti.launch("user-t01")  # makes sure the course exists in Pathways
    db = Database(database_url)
    with db.begin() as s:
        competency = create_competency(
            s, context_id=lti.course_id(s), code="DL1", title="Reads a food web"
        ).id
    try:
        _picks_the_column(lti, competency)
    finally:
        with db.begin() as s:
            s.delete(s.get(Competency, competency))
        db.dispose()


def _picks_the_column(lti: LtiActions, competency: int) -> None:
    launched = _picker(lti)
    assert launched.response.status_code == 200, launched.text[:1000]
    assert "Add Pathways to your course" in launched.text
    form = next(
        f
        for f in parse_forms(launched.text, str(launched.response.url))
        if f.action.endswith("/lti/deep-link")
    )
    form.fields["item"] = f"competency-{competency}"
    autopost = submit_form(launched.client, form)
    assert autopost.status_code == 200
    back = next(f for f in parse_forms(autopost.text, str(autopost.url)))
    assert back.action == lti.platform.url(DL_RETURN)
    before = len(lti.platform.state.deep_link_returns)
    result = submit_form(launched.client, back)
    assert result.status_code == 200, result.text[:1000]
    record = lti.platform.state.deep_link_returns[before]
    assert record.error_message is None
    (item,) = record.items
    assert item["type"] == "ltiResourceLink"
    assert item["url"] == lti.tool.url + "/lti/launch"
    assert item["lineItem"] == {
        "label": "DL1 Reads a food web",
        "scoreMaximum": 4,
        "resourceId": f"pathways-competency-{competency}",
        "tag": "pathways-competency",
        "submissionReview": {"reviewableStatus": ["Completed"], "label": "Open in Pathways"},
    }
    assert item["custom"]["pathways_item"] == f"competency-{competency}"
    (column,) = [
        li
        for li in lti.platform.state.line_items_in("course-bio9")
        if li.resource_id == f"pathways-competency-{competency}"
    ]
    assert column.score_maximum == 4


def test_the_home_link_carries_no_line_item(lti: LtiActions) -> None:
    launched = _picker(lti)
    form = next(
        f
        for f in parse_forms(launched.text, str(launched.response.url))
        if f.action.endswith("/lti/deep-link")
    )
    form.fields.pop("gradebook", None)
    form.fields["item"] = "home"
    autopost = submit_form(launched.client, form)
    back = parse_forms(autopost.text, str(autopost.url))[0]
    before = len(lti.platform.state.deep_link_returns)
    submit_form(launched.client, back)
    (item,) = lti.platform.state.deep_link_returns[before].items
    assert "lineItem" not in item


def test_single_choice_platform_gets_radio_buttons(lti: LtiActions) -> None:
    spec = lti.spec("user-t01", message_type=MessageType.DEEP_LINKING)
    settings = {
        "deep_link_return_url": lti.platform.url(DL_RETURN),
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe"],
        "accept_multiple": False,
        "data": spec.hint,
    }
    spec.tweaks = LaunchTweaks(claims={DL_SETTINGS: settings})
    launched = lti.launch_spec(spec)
    assert 'type="radio"' in launched.text
    assert 'type="checkbox" name="item"' not in launched.text


def test_a_picker_that_takes_several_items_starts_with_none_ticked(lti: LtiActions) -> None:
    """The demo LMS, Moodle and Canvas's module placements take several items: a box ticked in
    advance was placed beside whatever the teacher ticked (a second "Pathways" link)."""
    launched = _picker(lti)
    boxes = re.findall(r'<input type="checkbox" name="item"[^>]*>', launched.text)
    assert boxes, launched.text[:2000]
    assert [box for box in boxes if re.search(r"\bchecked\b", box)] == []


def test_a_student_cannot_place_content(lti: LtiActions) -> None:
    launched = _picker(lti, "user-s02")
    assert launched.response.status_code == 403
    assert "Only a teacher" in launched.text


def test_deep_link_submit_without_csrf_token_is_refused(lti: LtiActions) -> None:
    launched = _picker(lti)
    form = next(
        f
        for f in parse_forms(launched.text, str(launched.response.url))
        if f.action.endswith("/lti/deep-link")
    )
    form.fields.pop("csrf_token")
    assert submit_form(launched.client, form).status_code == 400


def test_a_deep_link_response_needs_a_deep_linking_launch(
    lti: LtiActions, session: Session
) -> None:
    """A teacher's ordinary launch cannot be used to place content."""
    picker = _picker(lti)
    form = next(
        f
        for f in parse_forms(picker.text, str(picker.response.url))
        if f.action.endswith("/lti/deep-link")
    )
    lti.launch("user-t01")
    ordinary = session.scalars(
        select(LaunchSession)
        .where(LaunchSession.message_type == "LtiResourceLinkRequest")
        .order_by(LaunchSession.created_at.desc())
        .limit(1)
    ).one()
    with lti.tool.app.test_request_context():
        form.fields["lt"] = make_launch_token(ordinary.id)
    assert submit_form(lti.browser(), form).status_code in {400, 403}


def test_a_placed_pathway_opens_for_students(lti: LtiActions, database_url: str) -> None:
    from lti_app.db import Database
    from lti_app.pathways import services as pathways

    lti.launch("user-t01")  # makes sure the course exists in Pathways
    db = Database(database_url)
    with db.begin() as s:
        pathway = pathways.create_pathway(
            s, context_id=lti.course_id(s), title="Ecosystems by choice"
        )
        pathway_id = pathway.id
    db.dispose()

    picker = _picker(lti)
    assert "Ecosystems by choice" in picker.text
    form = next(
        f
        for f in parse_forms(picker.text, str(picker.response.url))
        if f.action.endswith("/lti/deep-link")
    )
    form.fields["item"] = f"pathway-{pathway_id}"
    autopost = submit_form(picker.client, form)
    before = len(lti.platform.state.deep_link_returns)
    submit_form(picker.client, parse_forms(autopost.text, str(autopost.url))[0])
    (item,) = lti.platform.state.deep_link_returns[before].items
    assert item["custom"]["pathway_id"] == str(pathway_id)

    placed = next(
        link
        for link in lti.platform.state.resource_links.values()
        if link.custom.get("pathway_id") == str(pathway_id)
    )
    student = lti.launch("user-s04", resource_link_id=placed.id)
    assert student.response.status_code == 200
    assert "<h1><bdi>Ecosystems by choice</bdi></h1>" in student.text


def _history_page(lti: LtiActions, launched: Launched) -> httpx.Response:
    """What Back to this page, or a reload of the LMS's frame, shows: the address frame.js put
    in the browser's history for the page the launch's POST answered."""
    found = re.search(r'data-history-url="([^"]+)"', launched.text)
    assert found is not None, launched.text[:2000]
    return launched.client.get(lti.tool.url + html.unescape(found.group(1)))


def test_the_picker_has_no_menu_and_back_or_a_reload_shows_it_again(
    make_course: Callable[..., GradeCourse], lti: LtiActions
) -> None:
    """The LMS's "add content" dialog closes only with the picker's answer: the teacher's menu
    led away from it, and Back or a reload of the dialog landed on the teacher's dashboard."""
    course = make_course(students=1, competencies=1)
    launched = _picker_in_course(lti, course)
    assert "Add Pathways to your course" in launched.text
    assert "<nav" not in launched.text

    again = _history_page(lti, launched)
    assert again.status_code == 200
    assert "Add Pathways to your course" in again.text
    assert "<nav" not in again.text
    reloaded = Launched(again, launched.client)
    claims, back = _pick(reloaded, [f"competency-{course.competency_ids[0]}"])
    (item,) = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["lineItem"]["resourceId"] == f"pathways-competency-{course.competency_ids[0]}"
    _return_to_lms(reloaded, back)

    # An ordinary launch keeps its menu and its home.
    teacher = lti.launch(TEACHER.user_id, context_id=course.lms_context_id)
    assert '<nav aria-label="Pathways">' in teacher.text
    assert "Add Pathways to your course" not in _history_page(lti, teacher).text


def test_back_to_a_placed_pathway_shows_the_pathway_again(
    make_course: Callable[..., GradeCourse], lti: LtiActions, db: Database
) -> None:
    """A student who opened a placed pathway, went on to another page and pressed Back (or
    reloaded the LMS's frame) landed on "My pathways" instead."""
    from lti_app.pathways import services as pathways

    course = make_course(students=1, competencies=0)
    with db.begin() as session:
        pathway = pathways.create_pathway(
            session, context_id=course.context_id, title="Ecosystems by choice"
        ).id
    picker = _picker_in_course(lti, course)
    _claims, back = _pick(picker, [f"pathway-{pathway}"])
    _return_to_lms(picker, back)
    placed = next(
        link
        for link in lti.platform.state.resource_links.values()
        if link.custom.get("pathway_id") == str(pathway)
    )

    student = lti.launch(
        STUDENTS[0].user_id, context_id=course.lms_context_id, resource_link_id=placed.id
    )
    assert "<h1><bdi>Ecosystems by choice</bdi></h1>" in student.text
    again = _history_page(lti, student)
    assert again.status_code == 200
    assert "<h1><bdi>Ecosystems by choice</bdi></h1>" in again.text
