"""Family reports for who the LMS says observes whom, beyond a parent of active students: a
student who also observes a sibling in the same course, and a parent whose child has left it.

Sources:
- LTI 1.3 Core §5.4.3 `role_scope_mentor`: "the user IDs ... the launching user has access to
  as a mentor", whatever the launch's other roles.
- instructure/canvas-lms lib/lti/messages/jwt_message.rb `current_observee_list`: the students
  of the user's current ObserverEnrollments in the course; Canvas allows a StudentEnrollment
  and an ObserverEnrollment of one user in one course, and the launch then carries both roles.
"""

from __future__ import annotations

import re
import threading

import httpx

from lti_app.demo.launches import LaunchTweaks
from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Context
from tests.conftest import Launched
from tests.insights.conftest import OTHER_TEACHER, FreshCourse
from tests.progress.pages import link, person_id, unit_of_work, url

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
MENTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"
SCOPE = "https://purl.imsglobal.org/spec/lti/claim/role_scope_mentor"
JOSE, SIOBHAN = "José Núñez", "Siobhán O&#39;Brien"  # user-s01, user-s02 of the demo LMS


def _observing(
    course: FreshCourse, user_id: str, roles: list[str], children: list[str]
) -> Launched:
    return course.lti.launch(user_id, roles=roles, tweaks=LaunchTweaks(claims={SCOPE: children}))


def _title(page: httpx.Response) -> str:
    found = re.search(r"<title>(.*?)</title>", page.text, re.S)
    return found.group(1) if found else ""


def _words(page: str) -> str:
    """The page's text as a reader sees it: no tags, one space between words."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_a_student_who_observes_a_sibling_opens_the_siblings_report_from_their_own(
    fresh_course: FreshCourse, database_url: str
) -> None:
    lti = fresh_course.lti
    lti.launch("user-s02")
    lti.launch("user-s03")
    with unit_of_work(database_url) as s:
        sibling = person_id(s, lti.lms, "user-s02")
        me = person_id(s, lti.lms, "user-s03")

    both = _observing(fresh_course, "user-s03", [LEARNER, MENTOR], ["user-s02"])
    mine = both.client.get(url(both.response, "/reports/"), follow_redirects=True)

    assert mine.status_code == 200
    assert f"/reports/students/{me}" in str(mine.url)
    assert "Also following:" in mine.text
    theirs = both.client.get(link(mine, f"/reports/students/{sibling}"))
    assert theirs.status_code == 200
    assert SIOBHAN in _title(theirs)
    back = both.client.get(link(theirs, f"/reports/students/{me}"))
    assert back.status_code == 200
    assert "My report" in theirs.text
    pdf = both.client.get(url(both.response, f"/reports/students/{sibling}/report.pdf"))
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    # Only the sibling the LMS names: not the rest of the class.
    other = both.client.get(url(both.response, f"/reports/students/{fresh_course.student_id}"))
    assert other.status_code == 403


def test_a_student_the_lms_says_observes_nobody_still_sees_only_their_own_report(
    fresh_course: FreshCourse, database_url: str
) -> None:
    lti = fresh_course.lti
    lti.launch("user-s02")
    with unit_of_work(database_url) as s:
        sibling = person_id(s, lti.lms, "user-s02")

    alone = lti.launch("user-s03")
    mine = alone.client.get(url(alone.response, "/reports/"), follow_redirects=True)

    assert mine.status_code == 200
    assert "Also following:" not in mine.text
    refused = alone.client.get(url(alone.response, f"/reports/students/{sibling}"))
    assert refused.status_code == 403


def _leave_course(course: FreshCourse, database_url: str, sub: str) -> None:
    """The LMS's roster (Names and Roles) now says this student is inactive in the course."""
    # The teacher's launch syncs the roster in the background, from the test LMS's class
    # list, where the student is still active: let it finish first.
    for thread in threading.enumerate():
        if thread.name.startswith("roster-sync-"):
            thread.join(timeout=30)
    with unit_of_work(database_url) as s:
        platform_id = s.get(Context, course.context_id).platform_id  # type: ignore[union-attr]
        apply_members(
            s,
            platform_id=platform_id,
            context_id=course.context_id,
            members=[Member(sub, (LEARNER,), "Inactive", None, None, None, None, None)],
        )


def test_a_parent_whose_child_left_the_course_is_told_so(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fresh_course.lti.launch("user-s02")
    _leave_course(fresh_course, database_url, "user-s02")

    home = _observing(fresh_course, OTHER_TEACHER, [MENTOR], ["user-s02"])

    assert home.response.status_code == 200, home.text[:2000]
    assert f"{SIOBHAN} is no longer in this course" in _words(home.text)
    assert "once they have opened Pathways" not in home.text
    assert "/reports/students/" not in home.text


def test_a_parent_of_two_with_one_gone_hears_of_both(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fresh_course.lti.launch("user-s02")
    _leave_course(fresh_course, database_url, "user-s02")

    home = _observing(fresh_course, OTHER_TEACHER, [MENTOR], ["user-s01", "user-s02"])

    assert home.response.status_code == 200, home.text[:2000]
    # The list, not straight to José's report: his mother learns why Siobhán's is missing.
    assert '<article class="family-report">' not in home.text
    assert f"{SIOBHAN} is no longer in this course" in _words(home.text)
    listed = {int(p) for p in re.findall(r"/reports/students/(\d+)", home.text)}
    assert listed == {fresh_course.student_id}
    jose = home.client.get(link(home.response, f"/reports/students/{fresh_course.student_id}"))
    assert jose.status_code == 200
    assert JOSE in _title(jose)
