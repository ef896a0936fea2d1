"""A launch refused after it wrote its person, course and placement rows (a student's
deep-linking request, a review of a student Pathways does not know) rolls them back; the rows
it remembered for the next minute (tool.launch_rows.KNOWN_ROWS) must go with them. SQLite gives a
rolled-back id to the next new row, so a remembered copy passed another person or course off as
this one: the next launch opened as Bob, or in another course."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from sqlalchemy.engine import Engine

from lti_app.demo.launches import MessageType
from lti_app.tool.models import LaunchSession, Person
from tests.conftest import LtiActions
from tests.tool.test_crafted_launches import CONTEXT, RESOURCE_LINK, context, link
from tests.tool.test_launch import STUDENT, TEACHER, tweaks

NAV_LINK = re.compile(r'href="(/[^"?]*\?lt=[^"]+)"')


def _next_page(lti: LtiActions, launched: object, path_prefix: str) -> str:
    text = launched.text  # type: ignore[attr-defined]
    href = next(h for h in NAV_LINK.findall(text) if h.startswith(path_prefix))
    page = launched.client.get(lti.tool.url + href.replace("&amp;", "&"))  # type: ignore[attr-defined]
    assert page.status_code == 200, page.text[:1000]
    return page.text


def test_a_refused_deep_linking_request_leaves_no_person_behind(
    lti: LtiActions, engine: Engine
) -> None:
    tag = secrets.token_hex(3)
    alice = {"sub": f"alice-{tag}", "name": f"Alice Aaltonen {tag}"}
    bob = {"sub": f"bob-{tag}", "name": f"Bob Bergström {tag}"}
    assert lti.launch(STUDENT, tweaks=tweaks(sub=f"earlier-{tag}")).response.status_code == 200

    # A student (never seen before) sends a deep-linking request: refused.
    refused = lti.launch(STUDENT, message_type=MessageType.DEEP_LINKING, tweaks=tweaks(**alice))
    assert refused.response.status_code == 403
    # Bob, also new, becomes the next person row.
    assert bob["name"] in lti.launch(STUDENT, tweaks=tweaks(**bob)).text

    launched = lti.launch(STUDENT, tweaks=tweaks(**alice))
    assert launched.response.status_code == 200
    assert alice["name"] in launched.text
    assert bob["name"] not in launched.text
    profile = _next_page(lti, launched, "/profile/")
    assert alice["name"] in profile
    assert bob["name"] not in profile
    with engine.connect() as conn:
        alice_id = conn.execute(select(Person.id).where(Person.sub == alice["sub"])).scalar_one()
        last_person = conn.execute(
            select(LaunchSession.person_id).order_by(LaunchSession.created_at.desc()).limit(1)
        ).scalar_one()
    assert last_person == alice_id


def test_a_refused_review_leaves_no_course_behind(lti: LtiActions) -> None:
    tag = secrets.token_hex(3)
    course_x = {
        CONTEXT: context(f"course-x-{tag}", title=f"Chemistry X {tag}"),
        RESOURCE_LINK: link(f"link-x-{tag}"),
    }
    course_y = {
        CONTEXT: context(f"course-y-{tag}", title=f"Physics Y {tag}"),
        RESOURCE_LINK: link(f"link-y-{tag}"),
    }
    assert lti.launch(TEACHER).response.status_code == 200

    # A review, in a course Pathways has never seen, of a student it does not know: refused.
    refused = lti.launch(
        TEACHER,
        message_type=MessageType.SUBMISSION_REVIEW,
        for_user_id="user-s02",
        tweaks=tweaks(**course_x),
    )
    assert refused.response.status_code == 404
    # Course Y's first launch makes the next course row.
    assert lti.launch(STUDENT, tweaks=tweaks(**course_y)).response.status_code == 200

    launched = lti.launch(TEACHER, tweaks=tweaks(**course_x))
    assert launched.response.status_code == 200
    assert f"Chemistry X {tag}" in launched.text
    assert f"Physics Y {tag}" not in launched.text
    course_page = _next_page(lti, launched, "/course/")
    assert f"Chemistry X {tag}" in course_page
    assert f"Physics Y {tag}" not in course_page


def _menu_links_work(lti: LtiActions, launched: object) -> None:
    links = sorted(set(NAV_LINK.findall(launched.text)))  # type: ignore[attr-defined]
    assert links, "the refusal page offers the menu"
    answers = {
        link.split("?")[0]: launched.client.get(  # type: ignore[attr-defined]
            lti.tool.url + link.replace("&amp;", "&")
        ).status_code
        for link in links
    }
    assert all(status < 400 for status in answers.values()), answers


def test_the_menu_of_a_refused_review_leads_somewhere(lti: LtiActions) -> None:
    """The refusal says to refresh the class list from the Students page: its menu must work
    (it linked with a launch session rolled back with the refusal: every link said the
    session had ended)."""
    tag = secrets.token_hex(3)
    course = {
        CONTEXT: context(f"course-m-{tag}", title=f"Music M {tag}"),
        RESOURCE_LINK: link(f"link-m-{tag}"),
    }
    refused = lti.launch(
        TEACHER,
        message_type=MessageType.SUBMISSION_REVIEW,
        for_user_id="user-s02",
        tweaks=tweaks(**course),
    )
    assert refused.response.status_code == 404
    _menu_links_work(lti, refused)


def test_the_menu_of_a_students_refused_deep_linking_request_leads_somewhere(
    lti: LtiActions,
) -> None:
    refused = lti.launch(STUDENT, message_type=MessageType.DEEP_LINKING)
    assert refused.response.status_code == 403
    _menu_links_work(lti, refused)
    # The login is over: its state cookie goes with the refusal, as with a successful launch.
    deleted = [
        c for c in refused.response.headers.get_list("set-cookie") if c.startswith("lti1p3_state")
    ]
    assert deleted, refused.response.headers
    assert all("Max-Age=0" in c or "1970" in c for c in deleted), deleted
