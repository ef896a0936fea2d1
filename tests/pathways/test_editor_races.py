"""Two saves of the same pathway, step or option: at the same moment (a double click, two tabs),
or from a page opened before a colleague's save.

Each test runs on its own LMS, so the shared demo course is left alone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.demo import seed
from lti_app.pathways import services
from lti_app.pathways.models import Option, Pathway, PathwayCompetency, StepPrerequisite
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import second_lms
from tests.lock_waits import in_thread, needs_row_locks, until_waiting
from tests.pathways.test_views import TEACHER, Built, build_pathway
from tests.progress.pages import form, link, unique, unit_of_work

DESCRIPTION = "<p>All about <em>cells</em></p>"
"""The built pathway's description, as its editor shows and sends it back."""


@dataclass(frozen=True)
class Course:
    lti: LtiActions
    context_id: str
    built: Built
    second_competency_id: int


@pytest.fixture
def course(
    tool_server: ToolServer, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Course]:
    """A course of its own, taught by two teachers, with a pathway and a second competency to
    tick."""
    key = unique("course-two-teachers-")
    monkeypatch.setitem(
        seed.COURSES,
        key,
        seed.Course(
            context_id=key,
            label="TWO",
            title="Biology, taught by two",
            enrollments=(
                seed.Enrollment(TEACHER, seed.Role.INSTRUCTOR),
                seed.Enrollment(SECOND_TEACHER, seed.Role.INSTRUCTOR),
            ),
        ),
    )
    with second_lms(tool_server, database_url) as running:
        lti = LtiActions(running, tool_server)
        try:
            lti.launch(TEACHER, context_id=key)
            built = build_pathway(database_url, running, key)
            with unit_of_work(database_url) as s:
                second = create_competency(
                    s, context_id=built.context_id, code=unique("EC"), title="Ecosystems"
                )
                second_id = second.id
            yield Course(lti, key, built, second_id)
        finally:
            lti.close()


@dataclass(frozen=True)
class Page:
    """An editor page open in a teacher's browser."""

    client: httpx.Client
    response: httpx.Response


SECOND_TEACHER = seed.SECOND_TEACHER.user_id


def editor(course: Course, user_id: str, path: str) -> Page:
    """A teacher's editor page at `path` (a pathway's, a step's or an option's), freshly opened."""
    launched = course.lti.launch(user_id, context_id=course.context_id)
    manage = launched.client.get(link(launched.response, "/pathways/manage?"))
    page = launched.client.get(manage.url.join(path).copy_set_param("lt", manage.url.params["lt"]))
    assert page.status_code == 200, page.text[:300]
    return Page(launched.client, page)


def save(page: Page, path: str, values: dict[str, str | list[str]]) -> httpx.Response:
    """Post the page's form with what it showed (`shown`) and the given field values."""
    found = form(page.response, path + "?")
    data: dict[str, str | list[str]] = {
        k: v for k, v in found.fields.items() if k in {"lt", "csrf_token", "shown"}
    }
    data.update(values)
    return page.client.post(found.action, data=data)


def ticked(page: httpx.Response, name: str) -> set[int]:
    return {int(v) for v in re.findall(rf'name="{name}" value="(\d+)" checked', page.text)}


def pathway_values(course: Course, ticks: list[int], title: str) -> dict[str, str | list[str]]:
    return {"title": title, "description": DESCRIPTION, "competency_ids": [str(t) for t in ticks]}


def test_a_colleagues_older_editor_page_cannot_undo_a_teachers_new_title(
    course: Course, database_url: str
) -> None:
    """A and B open the pathway's editor; A renames it; B ticks one more competency and saves.
    B used to put the old title back without anyone knowing. Now B is told, with A's title and
    B's ticks on the page, and saving that page keeps both."""
    b = course.built
    path = f"/pathways/manage/{b.pathway_id}"
    page_a = editor(course, TEACHER, path)
    page_b = editor(course, SECOND_TEACHER, path)
    old_title = form(page_b.response, path + "?").fields["title"]

    saved = save(page_a, path, pathway_values(course, [], "Cells and microscopes"))
    assert saved.status_code == 302
    both = [b.competency_id, course.second_competency_id]
    refused = save(page_b, path, pathway_values(course, both, old_title))

    assert refused.status_code == 409, re.findall(r"flash-error.*", refused.text)
    text = html.unescape(refused.text)
    assert "Someone else (a colleague, or you in another tab) saved this pathway" in text
    assert "changed the title." in text
    assert "then save again" in text
    again = form(refused, path + "?")
    assert again.fields["title"] == "Cells and microscopes"  # A's title, not B's old one
    assert ticked(refused, "competency_ids") == set(both)  # B's ticks kept
    with unit_of_work(database_url) as s:
        assert s.get_one(Pathway, b.pathway_id).title == "Cells and microscopes"
        assert (
            s.scalars(
                select(PathwayCompetency.competency_id).where(
                    PathwayCompetency.pathway_id == b.pathway_id
                )
            ).all()
            == []
        )

    resaved = save(
        Page(page_b.client, refused), path, pathway_values(course, both, again.fields["title"])
    )
    assert resaved.status_code == 302
    with unit_of_work(database_url) as s:
        assert s.get_one(Pathway, b.pathway_id).title == "Cells and microscopes"
        assert set(
            s.scalars(
                select(PathwayCompetency.competency_id).where(
                    PathwayCompetency.pathway_id == b.pathway_id
                )
            )
        ) == set(both)


def test_a_step_page_opened_before_a_colleagues_save_quotes_the_title_both_changed(
    course: Course, database_url: str
) -> None:
    b = course.built
    path = f"/pathways/manage/steps/{b.locked_step_id}"
    page_a = editor(course, TEACHER, path)
    page_b = editor(course, SECOND_TEACHER, path)
    step = {"description": "", "competency_id": ""}
    prerequisites = {"prerequisite_ids": [str(b.competency_id)]}
    assert save(page_a, path, {**step, **prerequisites, "title": "Deeper"}).status_code == 302

    refused = save(page_b, path, {**step, **prerequisites, "title": "Go further"})

    assert refused.status_code == 409, re.findall(r"flash-error.*", refused.text)
    assert "You changed the title too: theirs reads “Deeper”." in html.unescape(refused.text)
    assert (
        form(refused, path + "?").fields["title"] == "Go further"
    )  # what B typed stays on the page
    with unit_of_work(database_url) as s:
        assert services.get_step(s, context_id=b.context_id, step_id=b.locked_step_id).title == (
            "Deeper"
        )


def test_an_option_page_opened_before_a_colleagues_save_keeps_their_expected_time(
    course: Course, database_url: str
) -> None:
    b = course.built
    path = f"/pathways/manage/options/{b.plain_option_id}"
    page_a = editor(course, TEACHER, path)
    page_b = editor(course, SECOND_TEACHER, path)
    with unit_of_work(database_url) as s:
        option = s.get_one(Option, b.plain_option_id)
        shown = {
            "title": option.title,
            "description": option.description,
            "links": "",
            "modality": option.modality.value,
            "challenge": str(option.challenge),
            "expected_minutes": "",
            "interest_tags": ", ".join(option.interest_tags),
        }
    assert save(page_a, path, {**shown, "expected_minutes": "45"}).status_code == 302

    refused = save(page_b, path, {**shown, "title": "Read the chapter"})

    assert refused.status_code == 409, re.findall(r"flash-error.*", refused.text)
    assert "changed the expected time." in html.unescape(refused.text)
    again = form(refused, path + "?")
    assert (again.fields["title"], again.fields["expected_minutes"]) == ("Read the chapter", "45")
    with unit_of_work(database_url) as s:
        option = s.get_one(Option, b.plain_option_id)
        assert (option.title, option.expected_minutes) == (shown["title"], 45)


def test_saving_the_same_change_twice_from_one_page_is_not_refused(
    course: Course, database_url: str
) -> None:
    """A double click: the second save's page is out of date, but it undoes nothing."""
    b = course.built
    path = f"/pathways/manage/{b.pathway_id}"
    page = editor(course, TEACHER, path)
    values = pathway_values(course, [b.competency_id], "Cells, again")
    assert [save(page, path, values).status_code for _ in range(2)] == [302, 302]


@needs_row_locks
@pytest.mark.parametrize("what", ["pathway", "step"])
def test_two_saves_of_the_same_ticks_at_once_both_succeed(
    course: Course, database_url: str, db: Database, what: str
) -> None:
    """The test's own transaction stands in for the first save: it has ticked the same
    competencies and not yet committed when the second save arrives. Both deleted every tick
    and inserted them again, so the second hit the primary key: "Something went wrong" (500).
    Now the second waits for the first, then finds its ticks. (Both keep the title: a changed
    one made the second save wait for the first at its UPDATE, before it deleted the ticks.)"""
    b = course.built
    both = sorted([b.competency_id, course.second_competency_id])
    title = f"Cells {b.competency_code}"
    if what == "pathway":
        path = f"/pathways/manage/{b.pathway_id}"
        values = pathway_values(course, both, title)
    else:
        path = f"/pathways/manage/steps/{b.locked_step_id}"
        values = {
            "title": "Go deeper",
            "description": "",
            "competency_id": "",
            "prerequisite_ids": [str(c) for c in both],
        }
    page = editor(course, TEACHER, path)
    results: dict[str, httpx.Response] = {}
    with db.begin() as first_save:
        if what == "pathway":
            services.update_pathway(
                first_save,
                context_id=b.context_id,
                pathway_id=b.pathway_id,
                title=title,
                description=DESCRIPTION,
                competency_ids=both,
            )
        else:
            services.update_step(
                first_save,
                context_id=b.context_id,
                step_id=b.locked_step_id,
                title="Go deeper",
                description="",
                competency_id=None,
                prerequisite_ids=both,
            )
        second = in_thread(lambda: save(page, path, values), results, "second save")
        until_waiting(db, 1, [second])
    second.join(30)
    assert results["second save"].status_code == 302, results["second save"].text[:400]
    with db.begin() as s:
        if what == "pathway":
            rows = s.scalars(
                select(PathwayCompetency.competency_id).where(
                    PathwayCompetency.pathway_id == b.pathway_id
                )
            )
        else:
            rows = s.scalars(
                select(StepPrerequisite.competency_id).where(
                    StepPrerequisite.step_id == b.locked_step_id
                )
            )
        assert sorted(rows) == both
