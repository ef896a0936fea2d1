"""Spec review probes of the roster client (NRPS 2.0, Security Framework 1.0 §4.1).

Written from the spec rather than from a platform: each test scripts a spec-valid answer the
crafted-LMS suites did not yet cover. Fixtures and the fake LMS come from
tests/roster/test_nrps_crafted.py.
"""

from __future__ import annotations

from collections.abc import Callable

from lti_app.roster.client import MEMBERSHIPS_TYPE
from lti_app.tool.models import MembershipStatus
from tests.roster.test_nrps_crafted import (
    LEARNER,
    Answer,
    FakeLms,
    Roster,
    Seen,
    make_lms,  # noqa: F401 - fixture
    make_roster,  # noqa: F401 - fixture
    member,
    page,
    roster,  # noqa: F401 - fixture
)

# --- NRPS §2.4.3 differences ---------------------------------------------------------------


def test_a_differences_sync_applies_changes_and_keeps_the_rest(
    roster: Roster,  # noqa: F811
) -> None:
    """The `differences` link of a full sync gives only the changes since then: members it
    does not list stay as they are; Deleted and Inactive members are marked so; the new
    `differences` link it carries is kept for the next one."""
    roster.seed(["s1", "s2", "s3"])
    first_diff = "/nrps/c1/members?since=1"

    def full(seen: Seen) -> Answer:
        answer = page([member("s1"), member("s2"), member("s3")])
        # Several links in one header, relative URLs (RFC 8288 §3.2).
        answer.headers.append(
            ("Link", f'</nrps/c1/members?p=1>; rel="first", <{first_diff}>; rel="differences"')
        )
        return answer

    roster.lms.route = full
    assert roster.sync().ok
    assert roster.sync_row().differences_url == roster.lms.url(first_diff)

    def changes(seen: Seen) -> Answer:
        assert seen.query.get("since") == "1"
        answer = page(
            [
                member("s1", status="Deleted"),
                member("s2", status="Inactive"),
                member("s4"),
            ]
        )
        answer.headers.append(("Link", '</nrps/c1/members?since=2>; rel="differences"'))
        return answer

    roster.lms.route = changes
    result = roster.sync(full=False)
    assert result.ok, result.message
    assert roster.statuses() == {
        "s1": MembershipStatus.DELETED,
        "s2": MembershipStatus.INACTIVE,
        "s3": MembershipStatus.ACTIVE,
        "s4": MembershipStatus.ACTIVE,
    }
    assert roster.sync_row().differences_url == roster.lms.url("/nrps/c1/members?since=2")


def test_a_differences_link_to_another_host_is_not_kept(
    roster: Roster,  # noqa: F811
    make_lms: Callable[[], FakeLms],  # noqa: F811
) -> None:
    foreign = make_lms()
    answer = page([member("s1")])
    answer.headers.append(("Link", f'<{foreign.url("/diff")}>; rel="differences"'))
    roster.lms.route = lambda seen: answer
    assert roster.sync().ok
    assert roster.sync_row().differences_url is None
    assert roster.sync(full=False).ok
    assert not foreign.seen


# --- NRPS §2.2 the request: media type, filters, the service URL as given ----------------------


def test_the_request_keeps_the_service_query_and_asks_for_the_membership_container(
    make_roster: Callable[..., Roster],  # noqa: F811
) -> None:
    """A membership URL with its own query string (`?type_id=` and friends) keeps it; a
    `role` filter, when one is asked for, is added to it; Accept is the NRPS membership
    container media type. A sync asks for the whole membership (no filter)."""
    service = make_roster(path="/nrps/c1/members?type_id=3")
    service.lms.route = lambda seen: page([member("s1")])
    assert service.sync().ok
    (request,) = service.members_requests()
    assert request.query == {"type_id": "3"}
    assert request.headers["accept"] == MEMBERSHIPS_TYPE
    assert service.sync(role_filter=LEARNER).ok
    assert service.members_requests()[-1].query == {"type_id": "3", "role": LEARNER}


# --- size -------------------------------------------------------------------------------------


def test_a_10000_member_course_in_one_page(roster: Roster) -> None:  # noqa: F811
    """Moodle sends every member in one page unless asked for `limit`. Stored with one
    multi-row INSERT, that page bound about 90,000 parameters: PostgreSQL takes 65,535."""
    members = [member(f"s{i:05d}") for i in range(10_000)]
    roster.lms.route = lambda seen: page(members)
    result = roster.sync()
    assert result.ok, result.message
    assert result.members == 10_000
    statuses = roster.statuses()
    assert len(statuses) == 10_000
    assert set(statuses.values()) == {MembershipStatus.ACTIVE}
