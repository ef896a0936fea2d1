"""A second review of deep linking against the Deep Linking 2.0 specification and what Moodle
does with the answer, independent of the other deep-linking tests.

Sources:
- https://www.imsglobal.org/spec/lti-dl/v2p0#deep-linking-settings: `title` and `text` are the
  default title and text for the content item the tool returns.
- moodle/moodle mod/lti/amd/src/mod_form.js and contentitem.js: "Select content" sends the
  activity name and description the teacher has typed as `title` and `text`
  (accept_multiple true since Moodle 3.10), then writes a single returned item's title and text
  over those form fields; several items become one activity each, under their own titles.
"""

from __future__ import annotations

from tests.conftest import LtiActions
from tests.tool.test_deep_linking_crafted import (  # noqa: F401 - fixtures used by name
    ITEMS,
    PathwayMaker,
    _quiet_database,
    add_pathway,
    claims_of,
    open_picker,
    post_picks,
    return_form,
)

# What a Moodle teacher typed in the activity form before pressing "Select content".
TYPED_NAME = "Week 3 \u2014 choose your route through \u00ab Ecosystems \u00bb"
TYPED_DESCRIPTION = 'Pick one route; "done" means your teacher has seen it.'


def test_one_placed_item_keeps_the_name_and_description_the_teacher_typed_in_moodle(
    lti: LtiActions,
    add_pathway: PathwayMaker,  # noqa: F811 - the imported fixture
) -> None:
    pathway = add_pathway("Ecosystems by choice")
    moodle_settings = {
        "accept_presentation_document_targets": ["frame", "iframe", "window"],
        "accept_multiple": True,
        "title": TYPED_NAME,
        "text": TYPED_DESCRIPTION,
    }

    launched = open_picker(lti, **moodle_settings)
    form = return_form(post_picks(launched, [f"pathway-{pathway}"]))
    (item,) = claims_of(form)[ITEMS]
    assert item["title"] == TYPED_NAME
    assert item["text"] == TYPED_DESCRIPTION
    # What the link opens is still the teacher's pick.
    assert item["custom"]["pathway_id"] == str(pathway)
    placed_before = set(lti.platform.state.resource_links)
    accepted = launched.client.post(form.action, data=form.fields)
    assert accepted.status_code == 200, accepted.text[:2000]
    (placed,) = [
        link for key, link in lti.platform.state.resource_links.items() if key not in placed_before
    ]
    assert placed.title == TYPED_NAME

    # Several items are several activities: one typed name would be wrong for each of them.
    launched = open_picker(lti, **moodle_settings)
    items = claims_of(return_form(post_picks(launched, ["home", f"pathway-{pathway}"])))[ITEMS]
    assert [i["title"] for i in items] == ["Pathways", "Ecosystems by choice"]
    assert TYPED_DESCRIPTION not in [i.get("text") for i in items]

    # Moodle sends the name field even when the teacher has typed nothing yet.
    launched = open_picker(lti, title="  ", text="")
    (item,) = claims_of(return_form(post_picks(launched, ["home"])))[ITEMS]
    assert (item["title"], item["text"]) == ("Pathways", "The Pathways home for this course.")
