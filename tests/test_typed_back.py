"""What a form refused because the launch session ended shows back to copy: all of what was
typed, whole, under the page's own labels, and nothing the page filled in itself."""

from __future__ import annotations

import html
import re

import httpx

from lti_app.demo.browser import parse_forms
from lti_app.demo.server import RunningPlatform
from tests.conftest import LtiActions, ToolServer
from tests.courses.conftest import fresh_lms
from tests.courses.frames import Frame, frame
from tests.insights.conftest import FreshCourse, fresh_course
from tests.security_support import aged_launch_token, launch_session_id
from tests.test_form_once import TEACHER, _competency

__all__ = ["fresh_course", "fresh_lms"]
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}


def _teacher(lms: RunningPlatform, tool_server: ToolServer) -> Frame:
    return frame(LtiActions(lms, tool_server).launch("user-t01"), tool_server.url)


def _refused(
    teacher: Frame, tool_server: ToolServer, path: str, data: dict[str, str]
) -> httpx.Response:
    """The form sent after the page's launch token expired (the laptop slept through renewal)."""
    secret = tool_server.settings.secret_key
    launch_id = launch_session_id(secret, teacher.token)
    expired = aged_launch_token(secret, launch_id, tool_server.settings.launch_token_ttl + 5)
    refused = teacher.client.post(
        teacher.base + path, data={**data, "lt": expired}, headers=SAME_ORIGIN
    )
    assert refused.status_code == 401, refused.text[:1500]
    return refused


def _typed(page: str) -> list[tuple[str, str]]:
    """(label, value) of each field shown back, as a person reads them."""
    section = re.search(r'<section class="typed".*?</section>', page, re.S)
    assert section, page[:2000]
    return [
        (html.unescape(label).strip(), html.unescape(value))
        for label, value in re.findall(
            r"<label [^>]*>(.*?)</label>\s*<textarea [^>]*>(.*?)</textarea>", section.group(0), re.S
        )
    ]


def _editor_form(teacher: Frame, description: str) -> tuple[str, dict[str, str]]:
    created = teacher.post("/pathways/manage", {"title": "Unit plan", "description": description})
    assert created.status_code in (302, 303), created.text[:1500]
    editor = teacher.client.get(teacher.base + created.headers["location"])
    form = next(f for f in parse_forms(editor.text) if "shown" in f.fields and "title" in f.fields)
    return form.action.split("?")[0], dict(form.fields)


def test_a_long_pathway_description_comes_back_whole(
    fresh_lms: RunningPlatform, tool_server: ToolServer
) -> None:
    """A unit plan of 15,000 characters (the editor takes 20,000) is not cut at 10,000."""
    teacher = _teacher(fresh_lms, tool_server)
    action, fields = _editor_form(teacher, "short")
    plan = "\n".join(f"Week {i % 40 + 1}: read, debate, write." for i in range(600))[:15_000]
    refused = _refused(teacher, tool_server, action, {**fields, "description": plan})
    assert ("Description", plan) in _typed(refused.text)
    assert "left out" not in refused.text


def test_only_what_was_typed_comes_back_under_the_pages_labels(
    fresh_lms: RunningPlatform, tool_server: ToolServer
) -> None:
    """Not the page's hidden record of the OLD text ("Shown"), first and in JSON."""
    teacher = _teacher(fresh_lms, tool_server)
    action, fields = _editor_form(teacher, "The old plan: push and pull.")
    refused = _refused(
        teacher, tool_server, action, {**fields, "description": "The new plan: friction first."}
    )
    typed = _typed(refused.text)
    assert typed == [("Title", "Unit plan"), ("Description", "The new plan: friction first.")]
    assert "The old plan" not in refused.text


def test_a_check_in_and_a_picked_level_come_back_as_the_page_labels_them(
    fresh_lms: RunningPlatform, tool_server: ToolServer
) -> None:
    teacher = _teacher(fresh_lms, tool_server)
    check_in = _refused(
        teacher,
        tool_server,
        "/course/students/1/check-ins",
        {"held_on": "2026-01-05", "note": "We talked about the lab.", "next_steps": "Redo it"},
    )
    assert _typed(check_in.text) == [
        ("Held on", "2026-01-05"),
        ("What you talked about", "We talked about the lab."),
        ("Next steps", "Redo it"),
    ]
    evidence = _refused(
        teacher,
        tool_server,
        "/mastery/students/1/evidence",
        {"competency_id": "17", "points": "3", "note": "Clear lab report"},
    )
    # The level picked is shown; the competency's id is the page's, not typed.
    assert _typed(evidence.text) == [("Level (points)", "3"), ("Note", "Clear lab report")]


def test_a_scale_form_shows_the_level_names_typed_not_the_colours_preset(
    fresh_lms: RunningPlatform, tool_server: ToolServer
) -> None:
    teacher = _teacher(fresh_lms, tool_server)
    refused = _refused(
        teacher,
        tool_server,
        "/mastery/scale",
        {"level-0-name": "Beginning", "level-0-points": "1", "level-0-colour": "#8a1c1c"},
    )
    assert _typed(refused.text) == [("Level 1 name", "Beginning"), ("Level 1 points", "1")]


def test_what_does_not_fit_on_the_page_is_said_to_be_left_out(
    fresh_lms: RunningPlatform, tool_server: ToolServer
) -> None:
    teacher = _teacher(fresh_lms, tool_server)
    fields = {f"answer-{i}": f"answer {i}" for i in range(502)}
    refused = _refused(teacher, tool_server, "/reports/reflection", fields)
    typed = _typed(refused.text)
    assert len(typed) == 500
    assert typed[0] == ("Answer 0", "answer 0")
    assert "2 more fields were left out" in refused.text


def _with_level(
    page: httpx.Response, action: str, select: tuple[str, str], level: str
) -> dict[str, str]:
    """The page's form with the level named `level` picked in the `select` (id, name), as a
    browser sends it."""
    found = next(f for f in parse_forms(page.text) if action in html.unescape(f.action))
    select_id, name = select
    options = page.text.split(f'id="{select_id}"')[1].split("</select>")[0]
    picked = re.search(rf'<option value="([^"]+)"[^>]*>{level}\b', options)
    assert picked, options
    return {**found.fields, name: picked.group(1)}


def test_a_picked_level_comes_back_by_its_name_not_its_points(
    fresh_course: FreshCourse, database_url: str, tool_server: ToolServer
) -> None:
    """The teacher picked "Proficient" on the bulk page; the session ended before Record: the
    page showed back "3", which names no level the teacher picked."""
    _competency(fresh_course, database_url)
    teacher = frame(fresh_course.lti.launch(TEACHER), tool_server.url)
    page = teacher.get("/mastery/evidence/bulk")
    fields = _with_level(page, "/evidence/bulk", ("bulk-points", "points"), "Proficient")

    refused = _refused(teacher, tool_server, "/mastery/evidence/bulk", {**fields, "note": "Lab 2"})

    typed = _typed(refused.text)
    assert ("Level", "Proficient") in typed
    assert ("Note", "Lab 2") in typed
    assert not [value for _, value in typed if value.startswith("3")]


def test_a_students_self_assessment_comes_back_with_the_level_they_picked(
    fresh_course: FreshCourse, database_url: str, tool_server: ToolServer
) -> None:
    """It used to come back without the level at all (a level's id is not shown back)."""
    competency_id = _competency(fresh_course, database_url)
    student = frame(fresh_course.lti.launch("user-s01"), tool_server.url)
    page = student.get("/progress/")
    select = (f"level-{competency_id}", "level_id")
    fields = _with_level(page, "/progress/self-assessment", select, "Advanced")
    fields["note"] = "I explained it to my group"

    refused = _refused(student, tool_server, "/progress/self-assessment", fields)

    assert _typed(refused.text) == [("Level", "Advanced"), ("Why?", "I explained it to my group")]
