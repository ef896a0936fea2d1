"""Web-layer review by crafted requests: hostile values in every form field and parameter the
views read, methods, repeated parameters, and markup in text rendered back.

Runs on its own registered LMS (same user and course ids as the main demo LMS, different
people and courses), so what it writes never shows in another module's course.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from flask import url_for
from werkzeug.routing import AnyConverter, IntegerConverter

from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Ids, second_lms
from tests.test_authorization_crafted import (
    Course,
    Frame,
    World,
    _seed,
    assert_refused_and_unchanged,
    launch_on,
)

COURSE, OTHER = "course-bio9", "course-chem-club"


@dataclass
class Review:
    tool: ToolServer
    db: Database
    lms: RunningPlatform
    acts: LtiActions
    course: Course
    other: Course
    teacher: Frame
    student: Frame
    other_teacher: Frame


@pytest.fixture(scope="module")
def review(tool_server: ToolServer, database_url: str, db: Database) -> Iterator[Review]:
    """Two courses of one LMS; user-s01 studies in both (as on the main demo LMS)."""
    with second_lms(tool_server, database_url) as running:
        acts = LtiActions(running, tool_server)
        try:
            frames = {
                (user, course): launch_on(running, acts, tool_server, user, context_id=course)
                for user, course in [
                    ("user-t01", COURSE),
                    ("user-s03", COURSE),
                    ("user-s04", COURSE),
                    ("user-s01", COURSE),
                    ("user-t02", OTHER),
                    ("user-s01", OTHER),
                    ("user-s02", OTHER),
                ]
            }
            ids = Ids.of(db, running)
            course = _seed(db, ids, COURSE, "user-t01", ["user-s03", "user-s04", "user-s01"], "R")
            other = _seed(db, ids, OTHER, "user-t02", ["user-s01", "user-s02"], "Q")
            yield Review(
                tool_server,
                db,
                running,
                acts,
                course,
                other,
                frames[("user-t01", COURSE)],
                frames[("user-s03", COURSE)],
                frames[("user-t02", OTHER)],
            )
        finally:
            acts.close()


# --- 1. hostile values in every field a view reads -----------------------------------------

FIELDS = [
    "action",
    "all",
    "as",
    "auto_approve",
    "career_clusters",
    "career_goal_text",
    "cell",
    "challenge",
    "choice",
    "code",
    "competency",
    "competency_id",
    "competency_ids",
    "counts_self_assessment",
    "days",
    "description",
    "direction",
    "display",
    "expected_minutes",
    "format",
    "goal_id",
    "group",
    "group_id",
    "held_on",
    "id",
    "interest_tags",
    "interests",
    "is_private",
    "item",
    "kind",
    "lang",
    "level",
    "level_id",
    "limit",
    "link",
    "links",
    "mastery",
    "member",
    "method",
    "modality",
    "n",
    "name",
    "needs_and_supports",
    "next_steps",
    "non_academic_notes",
    "note",
    "notice",
    "observed_on",
    "offset",
    "parent_id",
    "pathways",
    "platform",
    "points",
    "preferences_text",
    "preferred_modalities",
    "prerequisite_ids",
    "reflection",
    "requires_approval",
    "restore",
    "rows",
    "score_maximum",
    "shown",
    "shown_at",
    "sort",
    "source_context_id",
    "status",
    "step",
    "step_id",
    "strengths",
    "student",
    "student_ids",
    "target_date",
    "teacher_notes",
    "text",
    "title",
    "url",
    "weight",
    "keep-0",
    "name-0",
    "level-0",
    "level-0-name",
    "level-0-points",
    "level-0-colour",
]
HOSTILE = ["²", "9" * 25, "-1", "\x00", "1e309"]
"""A superscript digit (str.isdigit() takes it, int() does not), a number past any id, a
negative one, a NUL (PostgreSQL text cannot hold it) and a float overflow."""


def _paths(review: Review) -> list[tuple[str, str]]:
    return [(m, p) for m, p, e in _every_route(review) if e.split(".")[0] not in SKIP_BLUEPRINTS]


SKIP_BLUEPRINTS = {"static", "tool", "registration", "health"}


def _every_route(review: Review) -> list[tuple[str, str, str]]:
    app = review.tool.app
    c = review.course
    sample = {
        "competency_id": c.competency,
        "person_id": c.students["user-s03"],
        "pathway_id": c.pathway,
        "step_id": c.step,
        "option_id": c.option,
        "item_id": c.pathway,
        "group_id": c.group,
        "evidence_id": c.evidence,
        "choice_id": c.choices["user-s03"],
        "goal_id": c.goals["user-s03"],
        "deployment_id": 1,
    }
    out = []
    for rule in app.url_map.iter_rules():
        values: dict[str, Any] = {}
        for name in rule.arguments:
            conv = rule._converters[name]
            if isinstance(conv, AnyConverter):
                values[name] = "pathway"
            elif isinstance(conv, IntegerConverter):
                values[name] = sample[name]
            elif name == "filename":
                values[name] = "css/base.css"
            else:
                values[name] = "archive"
        with app.test_request_context():
            path = url_for(rule.endpoint, **values)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((method, path, rule.endpoint))
    return out


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_hostile_values_in_every_field_never_cause_a_500(review: Review, value: str) -> None:
    """Every in-frame route, as the teacher and as a student, with the value in every field
    any view reads: a 4xx in words, never a 500 (test_huge_ids covers ids in the path)."""
    wrong = []
    for frame in (review.teacher, review.student):
        for method, path in _paths(review):
            data = dict.fromkeys(FIELDS, value)
            data["assign-" + value] = "0"
            data["option-" + str(review.course.choices["user-s03"])] = value
            r = frame.send(method, path, data)
            if r.status_code >= 500:
                wrong.append((method, path, r.status_code))
    assert wrong == [], "\n".join(map(str, wrong))


# --- 2. one student in two courses -------------------------------------------------------------

A_MARKERS = (
    "R-TEACHER-NOTE",
    "R-PRIVATE-CHECKIN",
    "R-REFLECTION",
    "R goal",
    "R pathway",
    "R option",
    "R group",
    "R competency",
    "R evidence",
)


def test_a_student_of_two_courses_shows_each_teacher_only_their_course(review: Review) -> None:
    """user-s01 studies in both courses: the other course's teacher (and s01's launch there)
    sees s01's rows of that course only, never this course's notes, goals or evidence."""
    shared = review.course.students["user-s01"]
    assert shared == review.other.students["user-s01"]  # one person, two memberships
    with review.db.begin() as s:
        record_evidence(
            s,
            context_id=review.course.context,
            competency_id=review.course.competency,
            student_ids=[shared],
            points=Decimal(4),
            source=EvidenceSource.TEACHER,
            note="R evidence of the shared student",
            recorded_by_id=review.course.teacher,
        )
    t, q = review.other_teacher, review.other
    pages = [
        f"/course/students/{shared}",
        f"/profile/students/{shared}",
        f"/reports/students/{shared}",
        f"/insights/students/{shared}/progress",
        f"/insights/students/{shared}/competencies/{q.competency}",
        "/course/",
        "/insights/",
        "/insights/attention",
        "/insights/groups",
        "/insights/progress",
        "/insights/evidence.csv",
        "/insights/dashboard.csv",
        "/mastery/evidence/bulk",
    ]
    leaks = []
    for path in pages:
        r = t.get(path)
        assert r.status_code == 200, (path, r.status_code)
        leaks += [(path, m) for m in A_MARKERS if m in r.text]
    own = launch_on(review.lms, review.acts, review.tool, "user-s01", context_id=OTHER)
    for path in (
        "/progress/",
        "/pathways/",
        "/profile/",
        "/reports/reflection",
        f"/reports/students/{shared}",
        f"/insights/students/{shared}/progress",
    ):
        r = own.get(path)
        assert r.status_code == 200, (path, r.status_code)
        leaks += [(path, m) for m in A_MARKERS if m in r.text]
    assert leaks == []


# --- 3. defects found, one test each ------------------------------------------------------------


def test_a_superscript_digit_in_ticked_prerequisites_is_a_400_not_a_500(review: Review) -> None:
    """str.isdigit() takes "²" but int() refuses it: a competency form refused for another
    reason (here its kind), shown again with what was ticked, crashed."""
    t, c = review.teacher, review.course
    for path in ("/competencies/", f"/competencies/{c.competency}/edit"):
        r = t.post(path, {"code": "SUP2", "title": "x", "kind": "?", "prerequisite_ids": "²"})
        assert r.status_code == 400, (path, r.status_code)
        assert "unexpected problem" not in r.text


@pytest.mark.parametrize("group_id", ["²", "9" * 25, "1" * 5000], ids=["sup", "huge", "5000"])
def test_a_group_id_that_is_no_id_is_refused_in_words(review: Review, group_id: str) -> None:
    """The group picker of "record evidence for several students" and "unlock a step": a
    group_id that str.isdigit() accepts but is no database id was a 500."""
    t, c = review.teacher, review.course
    for path, data in (
        ("/mastery/evidence/bulk", {"competency_id": str(c.competency), "points": "3"}),
        (f"/pathways/manage/steps/{c.step}/unlock", {}),
    ):
        r = t.post(path, {**data, "group_id": group_id})
        assert r.status_code in {400, 404}, (path, r.status_code)
        assert "unexpected problem" not in r.text


def test_an_id_of_thousands_of_digits_is_not_found_not_a_500(review: Review) -> None:
    """int() refuses more than 4300 digits with a ValueError: the dashboard's cell and the
    group proposal's assign-<student id> fields turned it into a 500."""
    t, c = review.teacher, review.course
    digits = "1" * 5000
    cell = t.get("/insights/cell", cell=f"{digits}-{c.competency}")
    assert cell.status_code == 404
    propose = t.post(
        "/insights/groups/propose",
        {"competency": str(c.competency), "keep-0": "1", "name-0": "G", f"assign-{digits}": "0"},
    )
    assert propose.status_code == 404
    assert "unexpected problem" not in cell.text + propose.text


def test_the_groups_page_does_not_show_text_from_its_address(review: Review) -> None:
    """?saved= is the count the page's own redirect gives; any other text was shown as if
    Pathways said it (content spoofing inside the LMS frame)."""
    spoof = "Your session expired. Call 555-0100 with your password. 1"
    page = review.teacher.get("/insights/groups", saved=spoof)
    assert page.status_code == 200
    assert "555-0100" not in page.text
    assert "2 group(s) saved." in review.teacher.get("/insights/groups", saved="2").text


# --- 4. a logged-out browser, every route and method ---------------------------------------------

PUBLIC = {
    "static",
    "health.healthz",
    "tool.jwks",
    "tool.login",
    "tool.launch_started",  # a line of text where the history keeps a launch's start
    "tool.login_check",  # the login's own cookie check in the LMS frame
    "registration.about",  # the tool's own address: what Pathways is, the addresses to copy
    "registration.start",
    "registration.canvas_json",
    "registration.close_script",
    "admin.login",
}
"""Pages anyone may open: key sets, the OIDC login, the registration and operator sign-in."""


def test_a_logged_out_browser_gets_a_plain_4xx_from_every_route(review: Review) -> None:
    """No launch token, no cookie: every in-frame page and form, with every method, answers
    401/403/404/405 (400 for a form's missing CSRF token), never a page of data or a 500."""
    wrong = []
    routes = _every_route(review)
    public_paths = {path for _, path, endpoint in routes if endpoint in PUBLIC}
    with httpx.Client(timeout=30, base_url=review.tool.url) as browser:
        for method, path, endpoint in routes:
            if endpoint in PUBLIC:
                continue
            for verb in {method, "HEAD", "OPTIONS"}:
                if verb != method and path in public_paths:
                    continue  # HEAD /lti/register is the public page's
                r = browser.request(verb, path, data={"title": "x"} if verb == "POST" else None)
                if verb == "OPTIONS":
                    ok = r.status_code in {200, 204} and not r.content
                elif endpoint == "admin.console" and r.status_code == 302:
                    ok = r.headers["location"].endswith("/admin/login")  # the operator sign-in
                else:
                    ok = r.status_code in {400, 401, 403, 404, 405}
                if not ok:
                    wrong.append((verb, path, r.status_code))
    assert wrong == []


# --- 5. forms the authorization review did not name ----------------------------------------------


def _missed_requests(a: Course) -> list[tuple[str, str, dict[str, Any]]]:
    s = a.students["user-s03"]
    return [
        ("POST", f"/course/students/{s}/profile", {"teacher_notes": "HACKED", "interests": "x"}),
        ("POST", f"/course/students/{s}/check-ins", {"note": "HACKED", "held_on": ""}),
        ("POST", f"/competencies/{a.competency}/edit", {"code": "HACKED", "title": "HACKED"}),
        ("POST", f"/competencies/{a.competency}/move", {"direction": "down"}),
        ("POST", f"/competencies/{a.competency}/unarchive", {}),
        ("POST", f"/pathways/manage/steps/{a.step}/unlock", {"action": "relock", "student_ids": s}),
        ("POST", f"/pathways/manage/option/{a.option}/down", {"shown_at": "0"}),
        ("POST", f"/pathways/manage/step/{a.step}/restore", {}),
        ("POST", f"/pathways/manage/pathway/{a.pathway}/restore", {}),
        ("GET", f"/competencies/{a.competency}/edit", {}),
        ("GET", f"/insights/students/{s}/competencies/{a.competency}", {}),
    ]


def test_other_courses_and_other_lmss_teachers_cannot_use_the_remaining_forms(
    review: Review, lms: RunningPlatform
) -> None:
    same_lms = review.other_teacher
    acts = LtiActions(lms, review.tool)
    try:
        other_lms = launch_on(lms, acts, review.tool, "user-t01", context_id=COURSE)
        for attacker in (same_lms, other_lms):
            assert_refused_and_unchanged(
                World(review.db, review.tool, review.lms, review.course, review.other),
                attacker,
                _missed_requests(review.course),
                {400, 403, 404},
                [review.course.context],
            )
    finally:
        acts.close()
