"""A group form Pathways refuses comes back as the teacher left it: the group page with the new
name and the ticks as sent, the message on top marking the field to change and linking to it;
the proposal page with the refused name marked. Only what cannot be shown on the form reaches
the general error page, and there, with the session still open, a link leads back."""

from __future__ import annotations

import re

import httpx

from lti_app.insights.groups import create_group, current_member_ids, get_group
from tests.conftest import LtiActions
from tests.courses.frames import field_marks
from tests.insights.conftest import TEACHER, Seeded
from tests.progress.pages import form, post, unique, unit_of_work, url

MARKED = (True, True, True)


def _group(seeded: Seeded, database_url: str, name: str) -> int:
    s01, s02 = seeded.students["user-s01"], seeded.students["user-s02"]
    with unit_of_work(database_url) as s:
        return create_group(
            s,
            context_id=seeded.context_id,
            name=name,
            person_ids=[s01, s02],
            created_by_id=seeded.teacher_id,
        ).id


def _ticked(page: httpx.Response) -> set[int]:
    return {int(v) for v in re.findall(r'name="member" value="(\d+)" checked', page.text)}


def _stored(seeded: Seeded, database_url: str, group_id: int) -> tuple[str, set[int]]:
    with unit_of_work(database_url) as s:
        group = get_group(s, context_id=seeded.context_id, group_id=group_id)
        return group.name, current_member_ids(group)


def test_a_group_saved_with_nobody_ticked_comes_back_with_the_new_name_and_the_message(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """The hunt's teacher renamed the group and unticked everyone: the group page comes back
    (not "Something is not right"), the new name still typed, nobody ticked, and the list of
    students marked as what to change."""
    name = f"Friday lab table 3 {unique()}"
    group_id = _group(seeded, database_url, name)
    home = lti.launch(TEACHER)
    page = home.client.get(url(home.response, f"/insights/groups/{group_id}"))
    renamed = f"{name} — renamed"
    refused = post(home.client, form(page, f"/insights/groups/{group_id}"), {"name": renamed})
    assert refused.status_code == 400
    assert "Something is not right" not in refused.text
    assert "A group needs at least one student; archive it instead." in refused.text
    again = form(refused, f"/insights/groups/{group_id}")
    assert again.fields["name"] == renamed
    assert _ticked(refused) == set()
    # The message links to the list of students, which it describes; each box says it is wrong.
    assert 'href="#g-members"' in refused.text
    assert re.search(r'<fieldset id="g-members"[^>]*aria-describedby="error-summary"', refused.text)
    assert re.search(r'name="member" value="\d+" aria-invalid="true"', refused.text)
    assert field_marks(refused.text, "g-name")[0] is False
    assert _stored(seeded, database_url, group_id) == (
        name,
        {seeded.students["user-s01"], seeded.students["user-s02"]},
    )


def test_a_group_name_of_only_spaces_comes_back_marked_with_the_ticks_as_sent(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """The browser's `required` lets spaces through: the name field is marked and linked, and
    the member changes made meanwhile are still there to save once the name is fixed."""
    name = f"Pairs {unique()}"
    group_id = _group(seeded, database_url, name)
    s01, s03 = seeded.students["user-s01"], seeded.students["user-s03"]
    home = lti.launch(TEACHER)
    page = home.client.get(url(home.response, f"/insights/groups/{group_id}"))
    found = form(page, f"/insights/groups/{group_id}")
    refused = post(home.client, found, {"name": "   ", "member": [str(s01), str(s03)]})
    assert refused.status_code == 400
    assert "A group needs a name." in refused.text
    assert field_marks(refused.text, "g-name") == MARKED
    assert _ticked(refused) == {s01, s03}
    assert "aria-invalid" not in refused.text.split('id="g-members"', 1)[1]
    assert _stored(seeded, database_url, group_id)[0] == name
    fixed = post(
        home.client,
        form(refused, f"/insights/groups/{group_id}"),
        {"name": f"{name} again", "member": [str(s01), str(s03)]},
    )
    assert fixed.status_code == 200
    assert "The group is saved." in fixed.text
    assert _stored(seeded, database_url, group_id) == (f"{name} again", {s01, s03})


def test_a_refused_proposal_marks_and_links_the_name_it_refused(
    lti: LtiActions, seeded: Seeded
) -> None:
    home = lti.launch(TEACHER)
    proposal = home.client.get(
        url(home.response, "/insights/groups/propose") + f"&competency={seeded.c1}"
    )
    found = form(proposal, "/insights/groups/propose")
    data = dict(found.fields)
    for name, body in re.findall(
        r'<select id="(assign-\d+)" name="\1">(.*?)</select>', proposal.text, re.S
    ):
        picked = re.search(r'<option value="([^"]*)" selected>', body)
        data[name] = picked.group(1) if picked else ""
    assert "keep-1" in data, "needs two proposed groups"
    data["name-1"] = "  "
    refused = home.client.post(found.action, data=data)
    assert refused.status_code == 400
    assert "A group needs a name." in refused.text
    assert field_marks(refused.text, "name-1") == MARKED
    assert field_marks(refused.text, "name-0")[0] is False


def test_a_refusal_on_the_error_page_links_back_while_the_session_is_open(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """A refusal the form cannot show (a student picked who is not in this course) still ends
    on the error page; the session is open, so it leads back to the group, not "Copy it before
    you open Pathways again"."""
    group_id = _group(seeded, database_url, f"Readers {unique()}")
    home = lti.launch(TEACHER)
    address = url(home.response, f"/insights/groups/{group_id}")
    page = home.client.get(address)
    found = form(page, f"/insights/groups/{group_id}")
    refused = home.client.post(
        found.action,
        data={**found.fields, "name": "Readers renamed", "member": ["999999999"]},
        headers={"Referer": address, "Sec-Fetch-Site": "same-origin"},
    )
    assert refused.status_code == 404
    assert "Readers renamed" in refused.text  # what was typed, to copy
    assert "Copy it before you open Pathways again" not in refused.text
    back = re.search(r'<a href="([^"]+)">go back to the page you were on</a>', refused.text)
    assert back is not None
    reopened = home.client.get(refused.url.join(back.group(1).replace("&amp;", "&")))
    assert reopened.status_code == 200
    assert form(reopened, f"/insights/groups/{group_id}").fields["name"].startswith("Readers ")


def test_a_refusal_after_a_save_does_not_bring_the_saved_message_back_with_back(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """A save lands on the group page "?saved=1"; a refused save made from it keeps that page in
    the history (lti_app.history) without the old "The group is saved.", or Back would show it
    again over a save that did not happen."""
    group_id = _group(seeded, database_url, f"Window seats {unique()}")
    home = lti.launch(TEACHER)
    page = home.client.get(url(home.response, f"/insights/groups/{group_id}"))
    member = str(seeded.students["user-s01"])
    saved = post(
        home.client,
        form(page, f"/insights/groups/{group_id}"),
        {"name": "Window seats", "member": member},
    )
    assert "saved=1" in str(saved.url)
    refused_form = form(saved, f"/insights/groups/{group_id}")
    refused = home.client.post(
        refused_form.action,
        data={**{k: refused_form.fields[k] for k in ("lt", "csrf_token")}, "name": "   "},
        headers={"Referer": str(saved.url)},
    )
    assert refused.status_code == 400
    history = re.search(r'data-history-url="([^"]+)"', refused.text)
    assert history is not None
    assert f"/insights/groups/{group_id}?" in history.group(1)
    assert "saved=" not in history.group(1)
