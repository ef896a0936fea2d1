"""A roster page whose next link no request can go to ("http://[oops/p2") ended the sync as an
"unexpected error" with a traceback, and a promise of a retry nobody made."""

from __future__ import annotations

from lti_app.roster.jobs import SyncResult
from tests.roster.test_nrps_crafted import (  # noqa: F401 - fixtures
    Roster,
    make_lms,
    make_roster,
    member,
    page,
    roster,
)


def test_a_next_link_no_request_can_go_to_is_a_plain_refusal(roster: Roster) -> None:  # noqa: F811
    roster.seed(["a", "b"])
    roster.lms.route = lambda seen: page([member("a"), member("b")], next_url="http://[oops/p2")
    result = roster.sync_bounded(10)
    assert isinstance(result, SyncResult)
    assert not result.ok
    assert "not valid" in result.message
    assert "unexpected" not in result.message
