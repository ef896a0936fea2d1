"""The deep-linking return endpoint and the demo LMS pages."""

from __future__ import annotations

import html
import time
from typing import Any

import httpx
import jwt
import pytest

from lti_app.demo.browser import follow_launch, parse_forms
from lti_app.demo.launches import (
    AGS_ENDPOINT,
    CLAIM,
    DEPLOYMENT_ID,
    DL_CONTENT_ITEMS,
    DL_DATA,
    DL_MSG,
    MESSAGE_TYPE,
    VERSION,
    MessageType,
)
from lti_app.demo.platform import DemoPlatform
from lti_app.demo.seed import BIOLOGY, TEACHER, default_resource_link_id

from .conftest import FakeTool

ITEMS = [
    {
        "type": "ltiResourceLink",
        "title": "Photosynthesis <pathway>",
        "url": "https://tool.example/lti/launch",
        "custom": {"pathway": "42"},
        "lineItem": {"label": "Photosynthesis", "scoreMaximum": 20, "tag": "pathway"},
    },
    {"type": "ltiResourceLink", "title": "Ungraded"},
]


def dl_response(lms: DemoPlatform, hint: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    payload = {
        "iss": lms.config.client_id,
        "aud": lms.config.issuer,
        "iat": now,
        "exp": now + 300,
        MESSAGE_TYPE: "LtiDeepLinkingResponse",
        VERSION: "1.3.0",
        DEPLOYMENT_ID: lms.config.deployment_id,
        DL_DATA: hint,
        DL_CONTENT_ITEMS: ITEMS,
        DL_MSG: "Added two pathways",
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def test_deep_link_return_places_links_and_creates_a_line_item(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    spec = lms.make_launch(TEACHER.user_id, message_type=MessageType.DEEP_LINKING)
    resp = http.post(
        lms.url("/deep_link_return"), data={"JWT": tool.signed(dl_response(lms, spec.hint))}
    )
    assert resp.status_code == 200, resp.text
    assert "Photosynthesis &lt;pathway&gt;" in resp.text
    [item] = lms.state.line_items_in(BIOLOGY.context_id)
    assert (item.label, item.score_maximum, item.tag) == ("Photosynthesis", 20.0, "pathway")
    link = lms.state.resource_links[item.resource_link_id or ""]
    assert link.custom == {"pathway": "42"}
    assert link.line_item_id == item.id
    # A later launch of that link carries its line item and custom parameters.
    later = lms.make_launch(TEACHER.user_id, resource_link_id=link.id)
    assert later.line_item_id == item.id
    assert later.custom == {"pathway": "42"}
    assert later.target_link_uri == "https://tool.example/lti/launch"
    page = http.get(lms.url(f"/courses/{BIOLOGY.context_id}/deep_links"))
    assert "Added two pathways" in page.text


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "https://elsewhere.example"},
        {DL_DATA: None},
        {DEPLOYMENT_ID: "other"},
        {MESSAGE_TYPE: "LtiResourceLinkRequest"},
        {"iss": "someone"},
    ],
)
def test_deep_link_return_rejects_a_bad_response(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool, overrides: dict[str, Any]
) -> None:
    spec = lms.make_launch(TEACHER.user_id, message_type=MessageType.DEEP_LINKING)
    token = tool.signed(dl_response(lms, spec.hint, **overrides))
    resp = http.post(lms.url("/deep_link_return"), data={"JWT": token})
    assert resp.status_code == 400
    assert lms.state.deep_link_returns == []


def test_course_page_escapes_names_and_embeds_launches_in_a_frame(
    http: httpx.Client, lms: DemoPlatform
) -> None:
    page = http.get(lms.url(f"/courses/{BIOLOGY.context_id}?storage=1"))
    assert page.status_code == 200
    assert "&lt;b&gt;Tables&lt;/b&gt;" in page.text
    assert "<b>Tables</b>" not in page.text
    assert "Siobhán O&#39;Brien" in page.text
    assert '<iframe id="tool-frame" name="tool-frame"' in page.text
    assert page.text.count('target="tool-frame"') == 31 + 1 + 1 + 1  # people, parent, admin, DL
    assert "lti_storage_target=_parent" in html.unescape(page.text)
    assert "lti.put_data" in page.text
    assert "lti.frameResize" in page.text


def test_a_launch_link_on_the_course_page_completes_a_launch(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    page = http.get(lms.url(f"/courses/{BIOLOGY.context_id}"), params={"as": TEACHER.user_id})
    src = html.unescape(page.text.split('src="', 1)[1].split('"', 1)[0])
    assert src.startswith(lms.config.tool_login_url)
    resp = follow_launch(http, src)
    assert resp.text == "launched"
    assert tool.logins[-1]["login_hint"] == TEACHER.user_id


def _review_from_the_gradebook(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool, item: Any, student: str
) -> dict[str, Any]:
    """Score the student in the column, follow the gradebook's one review link; the claims
    the tool got."""
    body = {"userId": student, "scoreGiven": 3, "scoreMaximum": 4, "gradingProgress": "FullyGraded"}
    lms.state.record_score(item, student, {**body, "timestamp": "2026-12-06T10:00:00Z"})
    gradebook = http.get(lms.url(f"/courses/{BIOLOGY.context_id}/gradebook")).text
    links = [html.unescape(a.split('"', 1)[0]) for a in gradebook.split('<a href="')[1:]]
    [review] = [a for a in links if "review_for=" in a]
    page = http.get(lms.url(review))
    src = html.unescape(page.text.split('src="', 1)[1].split('"', 1)[0])
    assert follow_launch(http, src).text == "launched"
    claims: dict[str, Any] = jwt.decode(
        tool.launches[-1]["id_token"], options={"verify_signature": False}
    )
    return claims


def test_a_score_in_a_column_that_asked_for_review_links_to_a_review_launch(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    """Moodle's grade report links each score of such a column to the tool (mod/lti/grade.php);
    the demo's gradebook does the same, launching as the course's teacher."""
    reviewed = {**ITEMS[0], "lineItem": {**ITEMS[0]["lineItem"], "submissionReview": {}}}
    spec = lms.make_launch(TEACHER.user_id, message_type=MessageType.DEEP_LINKING)
    back = dl_response(lms, spec.hint, **{DL_CONTENT_ITEMS: [reviewed, ITEMS[1]]})
    assert http.post(lms.url("/deep_link_return"), data={"JWT": tool.signed(back)}).is_success
    [item] = lms.state.line_items_in(BIOLOGY.context_id)
    student = next(e.user_id for e in BIOLOGY.enrollments if e.user_id != TEACHER.user_id)
    claims = _review_from_the_gradebook(http, lms, tool, item, student)
    assert claims[MESSAGE_TYPE] == "LtiSubmissionReviewRequest"
    assert claims["sub"] == TEACHER.user_id
    assert claims[f"{CLAIM}/for_user"]["user_id"] == student
    assert claims[AGS_ENDPOINT]["lineitem"] == lms.line_item_url(BIOLOGY.context_id, item.id)
    assert claims[f"{CLAIM}/resource_link"]["id"] == item.resource_link_id


def test_a_review_link_on_a_column_the_tool_made_launches_with_that_column(
    http: httpx.Client, lms: DemoPlatform, tool: FakeTool
) -> None:
    """A column the tool created over AGS for a link, asking for review, is not the link's own
    (deep-linked) column: its review launch names it, so the tool opens the right competency."""
    link = lms.state.resource_links[default_resource_link_id(BIOLOGY)]
    assert link.line_item_id is None
    item = lms.state.add_line_item(
        BIOLOGY.context_id,
        "C2 Competency 2",
        4.0,
        resource_link_id=link.id,
        extra={"submissionReview": {"reviewableStatus": ["Completed"]}},
    )
    student = next(e.user_id for e in BIOLOGY.enrollments if e.user_id != TEACHER.user_id)
    claims = _review_from_the_gradebook(http, lms, tool, item, student)
    assert claims[MESSAGE_TYPE] == "LtiSubmissionReviewRequest"
    assert claims[AGS_ENDPOINT]["lineitem"] == lms.line_item_url(BIOLOGY.context_id, item.id)
    assert claims[f"{CLAIM}/resource_link"]["id"] == link.id


def test_gradebook_index_and_return_pages_render(http: httpx.Client, lms: DemoPlatform) -> None:
    assert "Biology 9 — Living Systems" in http.get(lms.url("/")).text
    assert http.get(lms.url(f"/courses/{BIOLOGY.context_id}/gradebook")).status_code == 200
    back = http.get(
        lms.url("/return"), params={"lti_msg": "<i>done</i>", "context_id": BIOLOGY.context_id}
    )
    assert "&lt;i&gt;done&lt;/i&gt;" in back.text
    assert http.get(lms.url("/courses/nope")).status_code == 404


def test_launch_form_parses_as_an_auto_post_form() -> None:
    forms = parse_forms(
        '<form id="lti-auto-post" method="POST" action="/x">'
        '<input type="hidden" name="id_token" value="a&amp;b"></form>',
        "http://tool.test/base",
    )
    assert forms[0].action == "http://tool.test/x"
    assert forms[0].fields == {"id_token": "a&b"}
