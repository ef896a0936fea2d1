"""The roster as a real Moodle 4.x's Names and Role Provisioning service sends it.

Shapes from moodle/moodle mod/lti/service/memberships/classes/local/service/memberships.php
(`users_to_json`): every member `Active`, roles from `lti_get_ims_role` as the short names
`Instructor` / `Learner`, `user_id` the numeric user id as text, and name, given_name,
family_name and email passed through `format_string` (lib/classes/formatting.php, lib/weblib.php
`replace_ampersands_not_followed_by_entity`), while launches carry the same names raw.
The fake LMS is the loopback one of tests/roster/test_nrps_crafted.py.
"""

from __future__ import annotations

import re

from lti_app.roster import services
from tests.roster.test_nrps_crafted import (
    Roster,
    make_lms,  # noqa: F401 - fixture
    make_roster,  # noqa: F401 - fixture
    page,
    roster,  # noqa: F401 - fixture
)


def moodle_format_string(text: str) -> str:
    """format_string with Moodle's defaults (escape on, formatstringstriptags on)."""
    text = re.sub(r"&(?![a-zA-Z0-9#]{1,8};)", "&amp;", text)
    text = re.sub(r"<[^>]*>", "", text)  # strip_tags
    return text.replace("<", "&lt;").replace(">", "&gt;")


def moodle_member(user_id: str, first: str, last: str, email: str) -> dict[str, object]:
    """One entry of users_to_json for a tool allowed to see names and emails."""
    return {
        "status": "Active",
        "roles": ["Learner"],
        "user_id": user_id,
        "lis_person_sourcedid": "",
        "name": moodle_format_string(f"{first} {last}"),
        "given_name": moodle_format_string(first),
        "family_name": moodle_format_string(last),
        "email": moodle_format_string(email),
    }


def test_moodle_roster_names_read_as_in_its_launches(roster: Roster) -> None:  # noqa: F811
    """A teacher's class list shows "Tom & Jerry", not "Tom &amp; Jerry", after a roster
    sync from Moodle; text that merely looks like a reference ("&copy" with no `;`) stays."""
    people = [
        ("4", "Tom", "& Jerry", "tom&jerry@school.example"),
        ("5", "Zoë", "D'Arcy-Smith", "zoe@school.example"),
        ("6", "Bob", "Smith &copy Co", "bob@school.example"),
        ("7", "Ann", "<b>Lee</b>", "ann@school.example"),
    ]
    sent = [moodle_member(*person) for person in people]
    assert sent[0]["name"] == "Tom &amp; Jerry"  # what Moodle really sends
    assert sent[2]["family_name"] == "Smith &amp;copy Co"
    roster.lms.route = lambda seen: page(sent)
    result = roster.sync()
    assert result.ok, result.message
    (request,) = roster.members_requests()
    assert "role" not in request.query  # the whole membership, teachers included

    with roster.db.session_factory() as session:
        students = services.list_students(session, context_id=roster.context_id)
    assert {s.name for s in students} == {
        "Tom & Jerry",
        "Zoë D'Arcy-Smith",
        "Bob Smith &copy Co",
        "Ann Lee",
    }
    by_sub = roster.people()
    assert by_sub["4"].given_name == "Tom"
    assert by_sub["4"].family_name == "& Jerry"
    assert by_sub["4"].email == "tom&jerry@school.example"
    assert by_sub["6"].family_name == "Smith &copy Co"
