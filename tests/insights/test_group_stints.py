"""A student taken out of a group and put back (the teacher's undo, or a second stint weeks
later) keeps both stints in the group history on their page. Runs on an LMS of its own, so the
shared demo course is left alone."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from lti_app.insights.groups import create_group
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import second_lms
from tests.progress.pages import context_id, form, person_id, post, unique, unit_of_work, url

TEACHER, READER, CLASSMATE = "user-t01", "user-s01", "user-s02"


@pytest.fixture
def lti(tool_server: ToolServer, database_url: str) -> Iterator[LtiActions]:
    with second_lms(tool_server, database_url) as running:
        actions = LtiActions(running, tool_server)
        try:
            yield actions
        finally:
            actions.close()


def history_of(page: httpx.Response, group: str) -> list[str]:
    """The entries of the page's group history that name this group, as text."""
    section = re.search(r'<section class="group-history".*?</section>', page.text, re.S)
    assert section, "no group history on the page"
    entries = re.findall(r"<li>(.*?)</li>", section.group(0), re.S)
    return [" ".join(re.sub(r"<[^>]+>", "", e).split()) for e in entries if group in e]


def test_a_student_put_back_in_a_group_keeps_their_first_stint_in_the_history(
    lti: LtiActions, database_url: str
) -> None:
    home = lti.launch(TEACHER)
    lti.launch(READER)
    lti.launch(CLASSMATE)
    name = unique("Reading ")
    with unit_of_work(database_url) as s:
        course = context_id(s, lti.lms)
        reader, classmate = person_id(s, lti.lms, READER), person_id(s, lti.lms, CLASSMATE)
        group_id = create_group(
            s, context_id=course, name=name, person_ids=[reader, classmate], created_by_id=None
        ).id

    for members in ([classmate], [reader, classmate]):  # taken out, then put back
        page = home.client.get(url(home.response, f"/insights/groups/{group_id}"))
        found = form(page, f"/insights/groups/{group_id}")
        saved = post(home.client, found, {"name": name, "member": [str(m) for m in members]})
        assert "The group is saved." in saved.text

    progress = home.client.get(url(home.response, f"/insights/students/{reader}/progress"))
    stints = history_of(progress, name)
    assert len(stints) == 2, f"the first stint is gone from the history: {stints}"
    assert "left" not in stints[0], "the current stint (listed first) shows as ended"
    assert "left" in stints[1], "the first stint does not say when the student left"
