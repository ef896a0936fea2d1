"""The gradebook service (AGS) as a real Moodle 4.x answers it, from Moodle's own source.

`MoodleGradebook` plays mod/lti/services.php and the ltiservice_gradebookservices resources
(moodle/moodle mod/lti/services.php; mod/lti/service/gradebookservices/classes/local/
resources/lineitems.php, lineitem.php, scores.php; classes/local/service/gradebookservices.php;
mod/lti/classes/local/ltiservice/response.php) on the loopback fake LMS of
tests/roster/test_nrps_crafted.py:

- services.php picks the resource by path template *and* media type: a GET whose Accept is not
  empty, `*/*` or one of the resource's formats, or a POST/PUT whose Content-Type is not exactly
  one of them, finds no resource: 400.
- URLs carry `?type_id=<tool type>`; item ids are `<container>/<id>/lineitem?type_id=…`.
- A new or updated column naming a `resourceLinkId` that is not an LTI activity of this tool in
  the course (`check_lti_1x_id`; for instance one the teacher deleted) is refused with 403.
- Scores: userId, timestamp, gradingProgress and activityProgress required, the user must be
  gradable (400), and a timestamp not newer than the stored grade's, in seconds, is 409.
- Errors carry response.php's JSON body {status, reason, request}.
- A column's submission review (subreviewurl: "DEFAULT" without a url) is what the last PUT
  said: a PUT without `submissionReview` clears it (lineitem.php `process_put_request`), and
  item_for_json lists it only when set.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.grades.columns import set_display, set_gradebook_competencies
from lti_app.grades.gradebook import remember_ags_claim
from lti_app.grades.models import Gradebook, GradeDisplay, LineItemState, OutboxStatus
from lti_app.tool.client import SCOPE_LINEITEM, SCOPE_SCORE
from lti_app.tool.models import Context, Membership, MembershipStatus, Person, ResourceLink
from tests.conftest import ToolServer
from tests.grades.conftest import GradeCourse
from tests.roster.test_nrps_crafted import (
    Answer,
    FakeLms,
    Seen,
    make_lms,  # noqa: F401 - fixture
    register_platform,
)

SERVICES = "/moodle/mod/lti/services.php"
TYPE_ID = "1"
COURSE_ID = "2"
LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
SCORES = "application/vnd.ims.lis.v1.scorecontainer+json"
# services.php tries the gradebook resources in this order (gradebookservices::get_resources).
RESOURCES = [
    ("lineitem", r"/[^/]+/lineitems/[^/]+/lineitem", (LINEITEM,)),
    ("lineitems", r"/[^/]+/lineitems", (LINEITEMS, LINEITEM)),
    ("scores", r"/[^/]+/lineitems/[^/]+/lineitem/scores", (SCORES, SCORE)),
]


@dataclass
class GbsItem:
    """A grade item and its ltiservice_gradebookservices row."""

    label: str
    score_maximum: float
    resource_id: str
    tag: str
    lti_link_id: str | None
    subreview_url: str | None = None


class MoodleGradebook:
    """A Moodle course's gradebook behind mod/lti/services.php."""

    def __init__(self, lms: FakeLms, *, activities: set[str], gradable: set[str]) -> None:
        self.lms = lms
        self.activities = activities
        """Ids of this tool's LTI activities in the course (resource link ids)."""
        self.gradable = gradable
        """Users with a gradebook role ($CFG->gradebookroles) in the course."""
        self.items: dict[int, GbsItem] = {}
        self.grades: dict[tuple[int, str], tuple[dict[str, Any], int]] = {}
        """(item, user) -> (last score accepted, its timemodified in seconds)"""
        self._ids = itertools.count(100)
        self.lock = threading.Lock()
        lms.route = self.route

    @property
    def lineitems_url(self) -> str:
        """The launch's AGS `lineitems`, as gradebookservices::get_launch_parameters gives it."""
        return self.lms.url(f"{SERVICES}/{COURSE_ID}/lineitems?type_id={TYPE_ID}")

    def item_id(self, n: int) -> str:
        return self.lms.url(f"{SERVICES}/{COURSE_ID}/lineitems/{n}/lineitem?type_id={TYPE_ID}")

    def item_json(self, n: int) -> dict[str, Any]:
        """gradebookservices::item_for_json."""
        item = self.items[n]
        data: dict[str, Any] = {
            "id": self.item_id(n),
            "label": item.label,
            "scoreMaximum": float(item.score_maximum),
            "resourceId": item.resource_id,
            "tag": item.tag,
        }
        if item.lti_link_id is not None:
            data["resourceLinkId"] = data["ltiLinkId"] = item.lti_link_id
        if item.subreview_url:
            data["submissionReview"] = (
                {} if item.subreview_url == "DEFAULT" else {"url": item.subreview_url}
            )
        return data

    def route(self, seen: Seen) -> Answer:
        if not seen.path.startswith(SERVICES + "/"):
            return Answer(404, "Not Found")
        path = seen.path[len(SERVICES) :]
        accept = seen.headers.get("accept", "")
        content_type = seen.headers.get("content-type", "")
        name = next(
            (
                name
                for name, template, formats in RESOURCES
                if _takes(seen.method, accept, content_type, formats) and re.search(template, path)
            ),
            None,
        )
        if name is None:
            return _error(seen, 400)
        if not (seen.authorization or "").startswith("Bearer ") or (
            seen.query.get("type_id") != TYPE_ID
        ):
            return _error(seen, 401)
        with self.lock:
            if name == "lineitems":
                return self._lineitems(seen, accept, content_type)
            n = int(path.split("/")[3])
            if n not in self.items:
                return _error(seen, 404, f"Not Found: Grade item {n} doesn't exist")
            if name == "lineitem":
                return self._lineitem(seen, n)
            return self._scores(seen, n)

    def _lineitems(self, seen: Seen, accept: str, content_type: str) -> Answer:
        kind = accept if seen.method == "GET" else content_type
        container = not kind or kind == LINEITEMS
        if container != (seen.method == "GET"):
            return _error(seen, 400, "No context or unsupported content type")
        if seen.method == "GET":
            wanted = {k: seen.query.get(k) for k in ("resource_id", "resource_link_id", "tag")}
            listed = [
                self.item_json(n)
                for n, item in self.items.items()
                if wanted["resource_id"] in (None, item.resource_id)
                and wanted["tag"] in (None, item.tag)
                and wanted["resource_link_id"] in (None, item.lti_link_id)
            ]
            return Answer(200, listed, [("Content-Type", f"{LINEITEMS}; charset=utf-8")])
        body = json.loads(seen.body or b"null")
        if not body or "scoreMaximum" not in body or "label" not in body:
            return _error(seen, 400, "No label or Score Maximum")
        link = body.get("resourceLinkId") or body.get("ltiLinkId")
        if link is not None and str(link) not in self.activities:
            return _error(seen, 403)  # check_lti_1x_id
        n = next(self._ids)
        self.items[n] = GbsItem(
            body["label"],
            float(body["scoreMaximum"]),
            body.get("resourceId", ""),
            body.get("tag", ""),
            None if link is None else str(link),
        )
        return Answer(
            201, {**body, "id": self.item_id(n)}, [("Content-Type", f"{LINEITEM}; charset=utf-8")]
        )

    def _lineitem(self, seen: Seen, n: int) -> Answer:
        if seen.method == "GET":
            return Answer(200, self.item_json(n), [("Content-Type", f"{LINEITEM}; charset=utf-8")])
        if seen.method != "PUT":
            return _error(seen, 405)
        body = json.loads(seen.body or b"null")
        if not body or "scoreMaximum" not in body or "label" not in body:
            return _error(seen, 400)
        item = self.items[n]
        link = body.get("resourceLinkId")
        if link is not None:
            if not str(link).isdigit():
                return _error(seen, 400)
            if str(link) not in self.activities:
                return _error(seen, 403)  # check_lti_1x_id
            item.lti_link_id = str(link)
        item.label = body["label"]
        item.score_maximum = float(body["scoreMaximum"])
        item.resource_id = body.get("resourceId", "")
        item.tag = body.get("tag", item.tag)
        review = body.get("submissionReview")
        item.subreview_url = None
        if isinstance(review, dict):  # `$json->submissionReview->url ?? 'DEFAULT'`
            item.subreview_url = "DEFAULT" if review.get("url") is None else review["url"]
        return Answer(200, {**body, "id": self.item_id(n)})

    def _scores(self, seen: Seen, n: int) -> Answer:
        if seen.method != "POST":
            return _error(seen, 405, "GET requests are not allowed.")
        score = json.loads(seen.body or b"null")
        required = ("userId", "timestamp", "gradingProgress", "activityProgress")
        if (
            not score
            or any(k not in score for k in required)
            or str(score["userId"]) not in self.gradable
        ):
            return _error(seen, 400, "Incorrect score received")
        stamp = int(datetime.fromisoformat(score["timestamp"]).timestamp())  # strtotime
        stored = self.grades.get((n, str(score["userId"])))
        if stored is not None and stored[1] >= stamp:
            return _error(seen, 409, "Refusing score with an earlier timestamp")
        self.grades[(n, str(score["userId"]))] = (score, stamp)
        return Answer(200, b"", [("Content-Type", f"{SCORE}; charset=utf-8")])

    def given(self, n: int) -> dict[str, float | None]:
        """user -> the grade Moodle holds (scoreGiven counts only when FullyGraded)."""
        with self.lock:
            return {
                user: score.get("scoreGiven") if score["gradingProgress"] == "FullyGraded" else None
                for (item, user), (score, _) in self.grades.items()
                if item == n
            }


def _takes(method: str, accept: str, content_type: str, formats: tuple[str, ...]) -> bool:
    """services.php: whether a resource with these media types may answer the request."""
    if method == "GET":
        return not accept or "*/*" in accept or accept in formats
    return method == "DELETE" or content_type in formats


def _error(seen: Seen, status: int, reason: str = "") -> Answer:
    """response.php: a 4xx without a body gets {status, reason, request}."""
    body = {
        "status": status,
        "reason": reason or {400: "Bad Request", 401: "Unauthorized"}.get(status, "Forbidden"),
        "request": {
            "method": seen.method,
            "url": seen.target,
            "accept": seen.headers.get("accept", ""),
            "contentType": seen.headers.get("content-type", "").split(";")[0],
        },
    }
    return Answer(status, body, [("Content-Type", "application/json; charset=utf-8")])


@pytest.fixture
def make_moodle_course(
    make_lms: Callable[[], FakeLms],  # noqa: F811
    db: Database,
    tool_server: ToolServer,
) -> Iterator[Callable[..., tuple[GradeCourse, MoodleGradebook]]]:
    """A Moodle course with three students whose teacher launched Pathways from activity
    `placement` and sends one competency to the gradebook."""
    httpx.get(tool_server.url + "/.well-known/jwks.json", timeout=10).raise_for_status()
    made: list[GradeCourse] = []

    def make(*, placement: str, activities: set[str]) -> tuple[GradeCourse, MoodleGradebook]:
        lms = make_lms()
        students = {"11", "12", "13"}
        moodle = MoodleGradebook(lms, activities=activities, gradable=students)
        platform_id = register_platform(db, lms)
        with db.begin() as session:
            context = Context(platform_id=platform_id, context_id=f"moodle-{uuid.uuid4().hex}")
            session.add(context)
            session.flush()
            people: dict[str, int] = {}
            for sub in ["3", *sorted(students)]:
                person = Person(platform_id=platform_id, sub=sub, name=f"User {sub}")
                session.add(person)
                session.flush()
                learner = sub in students
                session.add(
                    Membership(
                        context_id=context.id,
                        person_id=person.id,
                        roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]
                        if learner
                        else ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
                        status=MembershipStatus.ACTIVE,
                        is_learner=learner,
                        is_teacher=not learner,
                    )
                )
                people[sub] = person.id
            link = ResourceLink(
                platform_id=platform_id, context_id=context.id, resource_link_id=placement
            )
            session.add(link)
            competency = create_competency(
                session, context_id=context.id, code="C1", title="Competency 1"
            )
            session.flush()
            # Moodle "grade sync and column management": the four AGS scopes.
            remember_ags_claim(
                session,
                context_id=context.id,
                claim={"lineitems": moodle.lineitems_url, "scope": [SCOPE_LINEITEM, SCOPE_SCORE]},
                resource_link_id=link.id,
            )
            set_gradebook_competencies(
                session, context_id=context.id, competency_ids=[competency.id]
            )
            course = GradeCourse(
                lms=None,  # type: ignore[arg-type]
                db=db,
                lms_context_id=context.context_id,
                context_id=context.id,
                platform_id=platform_id,
                teacher_id=people.pop("3"),
                students=people,
                competency_ids=[competency.id],
                settings=tool_server.settings,
            )
        made.append(course)
        return course, moodle

    yield make
    for course in made:
        for worker in course.workers:
            worker.close()


def _gradebook_error(course: GradeCourse) -> str:
    with course.db.session_factory() as session:
        gradebook = session.scalar(
            select(Gradebook).where(Gradebook.context_id == course.context_id)
        )
        assert gradebook is not None
        return gradebook.last_error


def test_a_column_for_a_deleted_moodle_activity_is_made_unbound_and_takes_every_score(
    make_moodle_course: Callable[..., tuple[GradeCourse, MoodleGradebook]],
) -> None:
    """The teacher's last launch came from activity 9, since deleted in Moodle: Moodle answers
    403 to a column naming it. The column is made unbound, and every score arrives, instead
    of the course waiting for an admin to "enable Assignment and Grade Services"."""
    course, moodle = make_moodle_course(placement="9", activities={"5"})
    course.record(3)
    worker = course.worker()
    course.drain_until_settled(worker)
    (item,) = course.line_items().values()
    assert item.state is LineItemState.READY, item.last_error
    assert _gradebook_error(course) == ""
    (n,) = moodle.items
    assert item.url == moodle.item_id(n)
    assert moodle.items[n].lti_link_id is None
    assert moodle.given(n) == dict.fromkeys(course.students, 3.0)
    assert course.counts()[OutboxStatus.SENT] == len(course.students)


def test_a_column_bound_to_an_activity_deleted_later_still_takes_its_new_maximum(
    make_moodle_course: Callable[..., tuple[GradeCourse, MoodleGradebook]],
) -> None:
    """Columns made while activity 9 existed stay bound to it in Moodle. After the teacher
    deletes it, a change of display (points -> percent) updates each column: Moodle answers
    403 to an update naming the deleted activity, so the update goes unbound."""
    course, moodle = make_moodle_course(placement="9", activities={"9"})
    course.record(3)
    worker = course.worker()
    course.drain_until_settled(worker)
    (n,) = moodle.items
    assert moodle.items[n].lti_link_id == "9"
    assert moodle.items[n].score_maximum == 4.0

    moodle.activities.discard("9")  # the teacher deletes the activity in Moodle
    with course.db.begin() as session:
        set_display(session, context_id=course.context_id, display=GradeDisplay.PERCENT)
    course.drain_until_settled(worker)
    (item,) = course.line_items().values()
    assert item.state is LineItemState.READY
    assert not item.needs_update, item.last_error
    assert _gradebook_error(course) == ""
    assert moodle.items[n].score_maximum == 100.0
    assert moodle.given(n) == dict.fromkeys(course.students, 75.0)
