"""A parent (a Canvas observer: the Mentor role) opens Pathways and reads their child's family
report, and nothing else.

Sources:
- LTI 1.3 Core §5.3.7 (role vocabularies: membership#Mentor) and §5.4.3 `role_scope_mentor`:
  "the user IDs ... the launching user has access to as a mentor".
- instructure/canvas-lms lib/lti/messages/jwt_message.rb `add_mentorship_claims!`,
  `current_observee_list` (the observed students' `lti_id`, which is their `sub`); an
  ObserverEnrollment launches with membership#Mentor (lib/lti/substitutions_helper.rb).
"""

from __future__ import annotations

import re

from lti_app.demo.launches import LaunchTweaks
from lti_app.demo.seed import PARENT
from tests.conftest import Launched, LtiActions
from tests.insights.conftest import OTHER_TEACHER, Seeded
from tests.progress.pages import url

MENTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"
SCOPE = "https://purl.imsglobal.org/spec/lti/claim/role_scope_mentor"
SECRETS = ("SECRET-NOTE", "SECRET-NEEDS", "SECRET-PRIVATE")


def _parent(lti: LtiActions, children: object) -> Launched:
    """A parent with no role of their own in Biology 9 (a seeded person the course does not
    enrol), observing `children`."""
    claims = {} if children is None else {SCOPE: children}
    return lti.launch(OTHER_TEACHER, roles=[MENTOR], tweaks=LaunchTweaks(claims=claims))


def _report_path(seeded: Seeded, sub: str, suffix: str = "") -> str:
    return f"/reports/students/{seeded.students[sub]}{suffix}"


def test_a_parent_of_one_student_lands_on_their_family_report(
    lti: LtiActions, seeded: Seeded
) -> None:
    home = _parent(lti, ["user-s01"])

    assert home.response.status_code == 200, home.text[:2000]
    assert 'role-badge">Family<' in home.text
    assert "Explain photosynthesis to my family" in home.text
    assert "Clear lab report on mitochondria" in home.text
    for secret in SECRETS:
        assert secret not in home.text
    pdf = home.client.get(url(home.response, _report_path(seeded, "user-s01", "/report.pdf")))
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")


def test_a_parent_of_two_students_chooses_between_their_reports(
    lti: LtiActions, seeded: Seeded
) -> None:
    home = _parent(lti, ["user-s01", "user-s02"])

    assert home.response.status_code == 200, home.text[:2000]
    listed = re.findall(r"/reports/students/(\d+)", home.text)
    assert {int(p) for p in listed} == {seeded.students["user-s01"], seeded.students["user-s02"]}
    second = home.client.get(url(home.response, _report_path(seeded, "user-s02")))
    assert second.status_code == 200
    assert "Cells and &lt;organelles&gt;" in second.text


def test_a_parent_reads_no_other_students_report_and_no_teacher_or_student_page(
    lti: LtiActions, seeded: Seeded
) -> None:
    home = _parent(lti, ["user-s01"])

    for path in (
        _report_path(seeded, "user-s02"),
        _report_path(seeded, "user-s02", "/report.pdf"),
        "/reports/class.zip",
        "/reports/reflection",
        "/progress/",
        "/course/",
        f"/course/students/{seeded.students['user-s01']}",
        "/profile/",
        "/pathways/",
        "/insights/",
    ):
        page = home.client.get(url(home.response, path))
        assert page.status_code in (403, 404), path
        assert "Explain photosynthesis" not in page.text, path


def test_a_student_of_another_course_named_by_the_lms_is_not_shown(
    lti: LtiActions, seeded: Seeded
) -> None:
    """The list names LMS users; only this course's students count (a Biology student in the
    Chemistry Club's launch, or the club's teacher, opens nothing)."""
    lti.launch("user-s05")  # known to Pathways, in Biology only
    home = lti.launch(
        "user-t01",
        context_id="course-chem-club",
        roles=[MENTOR],
        tweaks=LaunchTweaks(claims={SCOPE: ["user-s05", OTHER_TEACHER]}),
    )

    assert home.response.status_code == 200, home.text[:2000]
    assert "Pathways has no report yet for the students the LMS lists for you" in home.text
    assert "/reports/students/" not in home.text


def test_a_parent_the_lms_links_to_nobody_is_told_why_there_is_nothing(
    lti: LtiActions, seeded: Seeded
) -> None:
    for children in (None, [], "user-s01", [5, None, "x" * 300]):
        home = _parent(lti, children)
        assert home.response.status_code == 200, home.text[:2000]
        assert "did not tell Pathways which students you follow" in home.text
        assert "Explain photosynthesis" not in home.text


def test_the_demo_lms_parent_opens_her_daughters_report(lti: LtiActions, seeded: Seeded) -> None:
    """The demo LMS's parent launches as Canvas sends an observer: her own Mentor role in the
    course and her daughter in `role_scope_mentor`."""
    home = lti.launch(PARENT.user_id)

    assert home.response.status_code == 200, home.text[:2000]
    assert 'role-badge">Family<' in home.text
    assert "Siobhán O&#39;Brien" in home.text
    assert "Explain photosynthesis" not in home.text  # that is José's (user-s01) goal
