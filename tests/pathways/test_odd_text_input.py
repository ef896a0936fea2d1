"""The pathway, step and option editors meeting input that looks ordinary but is not: a hidden
field nested past what Python's json reads, and titles made of invisible characters only.

Each test runs on an LMS of the module's own (tests/pathways/conftest.py).
"""

from __future__ import annotations

import html

import httpx
import pytest

from lti_app.demo.browser import HtmlForm
from lti_app.pathways.models import Option, Pathway, Step
from tests.conftest import LtiActions
from tests.pathways.test_views import TEACHER, Built, build_pathway
from tests.progress.pages import form, link, post, unit_of_work

INVISIBLE = "\u200b\u202e\u2060"
"""A zero-width space, a right-to-left override and a word joiner: a title that shows nothing."""


def _open_editor(lti: LtiActions, path: str) -> tuple[httpx.Client, HtmlForm]:
    """The teacher's editor at `path`, freshly opened: the client and the page's form."""
    launched = lti.launch(TEACHER)
    manage = launched.client.get(link(launched.response, "/pathways/manage?"))
    page = launched.client.get(manage.url.join(path).copy_set_param("lt", manage.url.params["lt"]))
    assert page.status_code == 200, page.status_code
    return launched.client, form(page, path + "?")


def _stored_title(database_url: str, model: type[Pathway | Step | Option], row_id: int) -> str:
    with unit_of_work(database_url) as s:
        row = s.get_one(model, row_id)
        assert isinstance(row, Pathway | Step | Option)
        return row.title


FIELDS = {"option": {"modality": "online", "challenge": "2"}}
"""Fields an editor's form needs beyond its title, as the built pathway has them."""


def _paths(built: Built) -> dict[str, tuple[str, type[Pathway | Step | Option], int]]:
    return {
        "pathway": (f"/pathways/manage/{built.pathway_id}", Pathway, built.pathway_id),
        "step": (f"/pathways/manage/steps/{built.open_step_id}", Step, built.open_step_id),
        "option": (
            f"/pathways/manage/options/{built.plain_option_id}",
            Option,
            built.plain_option_id,
        ),
    }


@pytest.mark.parametrize("editor", ["pathway", "step", "option"])
def test_an_editor_save_whose_hidden_field_is_nested_past_reading_saves_as_asked(
    lti: LtiActions, database_url: str, editor: str
) -> None:
    """A script or a broken extension posts "[[[[…" as what the page showed: read as a page
    that does not say (a 500 before), the editor saves what was typed."""
    lti.launch(TEACHER)
    path, model, row_id = _paths(build_pathway(database_url, lti.lms))[editor]
    client, found = _open_editor(lti, path)
    fields = {"title": "Renamed", "shown": "[" * 5000, **FIELDS.get(editor, {})}

    answer = post(client, found, fields, follow=False)

    assert answer.status_code == 302, answer.status_code
    assert _stored_title(database_url, model, row_id) == "Renamed"


@pytest.mark.parametrize("editor", ["pathway", "step", "option"])
def test_a_title_of_invisible_characters_only_is_no_title(
    lti: LtiActions, database_url: str, editor: str
) -> None:
    lti.launch(TEACHER)
    path, model, row_id = _paths(build_pathway(database_url, lti.lms))[editor]
    client, found = _open_editor(lti, path)

    fields = {"title": INVISIBLE, "shown": found.fields["shown"], **FIELDS.get(editor, {})}

    answer = post(client, found, fields, follow=False)

    assert answer.status_code == 400, answer.status_code
    assert "Give it a title" in html.unescape(answer.text)
    assert _stored_title(database_url, model, row_id) != INVISIBLE
