"""Families reviewed against what Canvas really sends an observer, and against crafted
`role_scope_mentor` lists: what a parent sees when the LMS names their child, names nobody, or
names a student Pathways has no report for; lists no platform sends must not drop a child or
end in a server error.

Sources:
- instructure/canvas-lms lib/lti/messages/jwt_message.rb: `add_mentorship_claims! if
  @tool.public? && ...` (the claim only for a tool at privacy level public);
  `current_observee_list` = the observer's current ObserverEnrollments in the course, each
  observed student's `lti_id`; `sub` = `@user.lookup_lti_id(@context)`.
- instructure/canvas-lms spec/lib/lti/messages/jwt_message_spec.rb "mentorship claims": "adds
  role scope mentor" (`student.lti_id`) for a public tool; "when tool privacy policy does not
  allow mentorship claim release" (`workflow_state: "name_only"`): no role_scope_mentor.
- instructure/canvas-lms lib/lti/substitutions_helper.rb LIS_V2_LTI_ADVANTAGE_ROLE_MAP:
  ObserverEnrollment => membership#Mentor (no institution role for "observer").
- Pathways registers at privacy level name_only (lti_app/registration/configuration.py
  PRIVACY_LEVEL), so a Canvas observer's launch carries no role_scope_mentor unless an admin
  changes it.
- LTI 1.3 Core §5.3.7.1 (role_scope_mentor: the user ids the mentor may access) and §A.2.3.1
  (membership/Mentor sub-roles: Advisor, Tutor, ...). Canvas observers are also how schools
  link a counsellor to a year group, so one observer may follow many students.
"""

from __future__ import annotations

import httpx
import pytest

from lti_app.demo.launches import LaunchTweaks
from tests.conftest import LtiActions
from tests.insights.conftest import OTHER_TEACHER, Seeded
from tests.tool.lms_pages import assert_home
from tests.tool.test_canvas_shaped import (
    OBSERVER_ROLES,
    STUDENT_ROLES,
    CanvasLaunch,
    CanvasSite,
    CanvasUser,
    browser,
    canvas_launch,
    site,
)

__all__ = ["browser", "site"]  # the Canvas-shaped site's fixtures, used here

MENTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"
ADVISOR = "http://purl.imsglobal.org/vocab/lis/v2/membership/Mentor#Advisor"
SCOPE = "https://purl.imsglobal.org/spec/lti/claim/role_scope_mentor"
JOSE_GOAL = "Explain photosynthesis to my family"  # user-s01's goal in the seeded course
NAMED_NOBODY = "did not tell Pathways which students you follow"
ADMIN_HINT = "only when the tool's privacy level is <strong>Public</strong>"
NOT_YET = "Pathways has no report yet for the students the LMS lists for you"


def _parent(lti: LtiActions, children: object, roles: list[str] | None = None) -> httpx.Response:
    """A parent with no role of their own in Biology 9, observing `children`."""
    launched = lti.launch(
        OTHER_TEACHER, roles=roles or [MENTOR], tweaks=LaunchTweaks(claims={SCOPE: children})
    )
    assert launched.response.status_code == 200, launched.text[:2000]
    return launched.response


@pytest.mark.parametrize("privacy", ["public", "name_only"])
def test_a_canvas_observer_reaches_the_report_only_where_canvas_names_the_child(
    site: CanvasSite, browser: httpx.Client, privacy: str
) -> None:
    """At Pathways' own privacy level Canvas names nobody: the parent is told so, and the page
    tells the school's admin what Canvas needs, instead of only blaming a missing link."""
    child = CanvasUser("Ngozi Okafor", "Ngozi", "Okafor", "ngozi@school.example")
    parent = CanvasUser("Chidi Okafor", "Chidi", "Okafor", "chidi@home.example")
    with httpx.Client(timeout=30) as student_browser:
        canvas_launch(site.canvas, student_browser, CanvasLaunch(child, STUDENT_ROLES, site.north))
    launch = CanvasLaunch(parent, OBSERVER_ROLES, site.north, privacy=privacy, observees=(child,))

    home = canvas_launch(site.canvas, browser, launch)

    if privacy == "public":
        assert_home(home, "Family", "Ngozi Okafor", "Progress report")
    else:
        assert_home(home, "Family", NAMED_NOBODY, ADMIN_HINT)
        assert "Ngozi" not in home.text


def test_a_parent_whose_child_pathways_has_no_report_for_is_not_told_to_get_linked(
    lti: LtiActions, seeded: Seeded
) -> None:
    """The LMS did name a child (who has not opened Pathways, and no class list has brought
    them in): asking the school to link the accounts would send the parent the wrong way."""
    page = _parent(lti, ["user-never-launched-9f3"])

    assert NOT_YET in page.text
    assert NAMED_NOBODY not in page.text
    assert "/reports/students/" not in page.text


def test_a_mentor_following_more_than_fifty_students_still_reaches_each_of_them(
    lti: LtiActions, seeded: Seeded
) -> None:
    """An advisor observing a year group: the child named 61st is not dropped."""
    others = [f"user-elsewhere-{n:03d}" for n in range(60)]

    page = _parent(lti, [*others, "user-s01"], roles=[ADVISOR])

    assert JOSE_GOAL in page.text, page.text[:2000]


def test_an_observed_id_with_a_nul_is_ignored_instead_of_failing_every_page(
    lti: LtiActions, seeded: Seeded
) -> None:
    """No sub holds NUL (launches refuse one); PostgreSQL refuses a text parameter with it."""
    launched = lti.launch(
        OTHER_TEACHER,
        roles=[MENTOR],
        tweaks=LaunchTweaks(claims={SCOPE: ["user-s02\x00", "user-s01"]}),
    )

    assert launched.response.status_code == 200, launched.text[:2000]
    assert JOSE_GOAL in launched.text
