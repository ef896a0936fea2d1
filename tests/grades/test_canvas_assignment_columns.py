"""Canvas's AGS line items as app/controllers/lti/ims/line_items_controller.rb and
scores_controller.rb, app/models/lti/line_item.rb (instructure/canvas-lms) answer them:

- POST line_items with resourceLinkId: ResourceLink.find_by(resource_link_uuid, tool) -> 404
  when unknown (a course_navigation launch's rlid is the context's opaque id); 412
  (precondition_failed) when the link has no active line item (a module item's link); else the
  new line item is attached to THAT assignment (Lti::LineItem.new(assignment:)), no new column.
- POST line_items without resourceLinkId: a new placeholder assignment (a gradebook column).
- scores: only the assignment's first line item (assignment_line_item?) grades the submission;
  any other line item only stores an Lti::Result the gradebook never shows.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.grades.columns import set_gradebook_competencies
from lti_app.grades.gradebook import remember_ags_claim
from lti_app.grades.models import LineItemState
from lti_app.tool.client import SCOPE_LINEITEM, SCOPE_LINEITEM_READ, SCOPE_SCORE
from lti_app.tool.models import Context, Membership, MembershipStatus, Person, ResourceLink
from tests.conftest import ToolServer
from tests.grades.conftest import GradeCourse
from tests.roster.test_nrps_crafted import (
    Answer,
    FakeLms,
    Seen,
    make_lms,  # noqa: F401 - a fixture
    register_platform,
)

COURSE = "/api/lti/courses/7"


@dataclass
class CanvasLineItem:
    assignment: int
    label: str
    score_maximum: float
    resource_id: str | None
    tag: str | None
    resource_link: str | None


@dataclass
class CanvasCourse:
    lms: FakeLms
    # resource_link_uuid -> assignment id, or None for a module item's link (no line item)
    links: dict[str, int | None]
    items: dict[int, CanvasLineItem] = field(default_factory=dict)
    assignments: dict[int, str] = field(default_factory=dict)
    grades: dict[tuple[int, str], float] = field(default_factory=dict)  # what the gradebook shows
    results: dict[tuple[int, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._ids = itertools.count(100)
        for uuid_, assignment in self.links.items():
            if assignment is not None:
                self.assignments[assignment] = "Deep-linked activity"
                n = next(self._ids)
                self.items[n] = CanvasLineItem(
                    assignment, "Deep-linked activity", 10, None, None, uuid_
                )
        self.lms.route = self.route

    def item_url(self, n: int) -> str:
        return self.lms.url(f"{COURSE}/line_items/{n}")

    def item_json(self, n: int) -> dict[str, Any]:
        it = self.items[n]
        data = {"id": self.item_url(n), "label": it.label, "scoreMaximum": it.score_maximum}
        if it.resource_id:
            data["resourceId"] = it.resource_id
        if it.tag:
            data["tag"] = it.tag
        if it.resource_link:
            data["resourceLinkId"] = it.resource_link
        return data

    def first_item_of(self, assignment: int) -> int:
        return min(n for n, it in self.items.items() if it.assignment == assignment)

    def route(self, seen: Seen) -> Answer:
        path = seen.path
        with self.lock:
            if path == f"{COURSE}/line_items" and seen.method == "GET":
                q = seen.query
                listed = [
                    self.item_json(n)
                    for n, it in self.items.items()
                    if q.get("resource_id") in (None, it.resource_id)
                    and q.get("tag") in (None, it.tag)
                ]
                return Answer(
                    200,
                    listed,
                    [("Content-Type", "application/vnd.ims.lis.v2.lineitemcontainer+json")],
                )
            if path == f"{COURSE}/line_items" and seen.method == "POST":
                body = json.loads(seen.body)
                rlid = body.get("resourceLinkId")
                if rlid is not None:
                    if rlid not in self.links:
                        return Answer(
                            404, {"errors": [{"message": "The specified resource does not exist."}]}
                        )
                    assignment = self.links[rlid]
                    if assignment is None:
                        # gradebook_services.rb prepare_line_item_for_ags!: no assignment has
                        # this lti_context_id -> RecordNotFound (before the 412 check)
                        return Answer(
                            404, {"errors": [{"message": "The specified resource does not exist."}]}
                        )
                else:
                    assignment = max(self.assignments, default=0) + 1
                    self.assignments[assignment] = body["label"]
                n = next(self._ids)
                self.items[n] = CanvasLineItem(
                    assignment,
                    body["label"],
                    float(body["scoreMaximum"]),
                    body.get("resourceId"),
                    body.get("tag"),
                    rlid,
                )
                return Answer(
                    201,
                    self.item_json(n),
                    [("Content-Type", "application/vnd.ims.lis.v2.lineitem+json")],
                )
            parts = path[len(COURSE) + 1 :].split("/")
            if len(parts) >= 2 and parts[0] == "line_items" and int(parts[1]) in self.items:
                n = int(parts[1])
                if len(parts) == 2 and seen.method == "GET":
                    return Answer(200, self.item_json(n))
                if len(parts) == 2 and seen.method == "PUT":
                    body = json.loads(seen.body)
                    self.items[n].label = body.get("label", self.items[n].label)
                    self.items[n].score_maximum = float(
                        body.get("scoreMaximum", self.items[n].score_maximum)
                    )
                    return Answer(200, self.item_json(n))
                if len(parts) == 3 and parts[2] == "scores" and seen.method == "POST":
                    score = json.loads(seen.body)
                    given = score.get("scoreGiven")
                    self.results[(n, score["userId"])] = given
                    if self.first_item_of(self.items[n].assignment) == n and given is not None:
                        self.grades[(self.items[n].assignment, score["userId"])] = given
                    return Answer(200, {"resultUrl": self.item_url(n) + "/results/1"})
            return Answer(404, {"errors": [{"message": "The specified resource does not exist."}]})


@pytest.fixture
def make_canvas_course(
    make_lms: Callable[[], FakeLms],  # noqa: F811 - the fixture imported above
    db: Database,
    tool_server: ToolServer,
) -> Iterator[Callable[..., tuple[GradeCourse, CanvasCourse]]]:
    httpx.get(tool_server.url + "/.well-known/jwks.json", timeout=10).raise_for_status()
    made: list[GradeCourse] = []

    def make(*, placement: str, links: dict[str, int | None], competencies: int = 2):
        lms = make_lms()
        canvas = CanvasCourse(lms, links)
        platform_id = register_platform(db, lms)
        students = {"11", "12"}
        with db.begin() as session:
            context = Context(platform_id=platform_id, context_id=f"canvas-{uuid.uuid4().hex}")
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
                        roles=[
                            "http://purl.imsglobal.org/vocab/lis/v2/membership#"
                            + ("Learner" if learner else "Instructor")
                        ],
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
            ids = [
                create_competency(
                    session, context_id=context.id, code=f"C{i}", title=f"Comp {i}"
                ).id
                for i in range(competencies)
            ]
            session.flush()
            # The teacher's launch (from `placement`) carried Canvas's AGS claim, with the
            # assignment's own column when the placement is an assignment.
            claim = {
                "lineitems": lms.url(f"{COURSE}/line_items"),
                "scope": [SCOPE_LINEITEM, SCOPE_LINEITEM_READ, SCOPE_SCORE],
            }
            own = [n for n, item in canvas.items.items() if item.resource_link == placement]
            if own:
                claim["lineitem"] = canvas.item_url(own[0])
            remember_ags_claim(
                session, context_id=context.id, claim=claim, resource_link_id=link.id
            )
            set_gradebook_competencies(session, context_id=context.id, competency_ids=ids)
            course = GradeCourse(
                lms=None,
                db=db,
                lms_context_id=context.context_id,
                context_id=context.id,  # type: ignore[arg-type]
                platform_id=platform_id,
                teacher_id=people.pop("3"),
                students=people,
                competency_ids=ids,
                settings=tool_server.settings,
            )
        made.append(course)
        return course, canvas

    yield make
    for course in made:
        for worker in course.workers:
            worker.close()


def test_teacher_who_opened_pathways_from_a_canvas_module_item_gets_columns(
    make_canvas_course: Callable[..., tuple[GradeCourse, CanvasCourse]],
) -> None:
    """The teacher added the Pathways home to a module (link_selection, no lineItem), opened it
    from there and turned two competencies on. Canvas answers 404 to a line item naming that
    module item's resource link (prepare_line_item_for_ags!: not an assignment): the columns must
    still be made (unbound), not fail. (Held before as well.)"""
    course, canvas = make_canvas_course(
        placement="module-item-uuid", links={"module-item-uuid": None}
    )
    course.record(3, competency=0)
    course.record(2, competency=1)
    course.worker().sync_line_items()
    states = {i.label: (i.state, i.last_error) for i in course.line_items().values()}
    assert all(s is LineItemState.READY for s, _ in states.values()), states
    assert len(canvas.assignments) == 2  # two gradebook columns


def test_teacher_who_opened_pathways_from_a_canvas_assignment_gets_visible_columns(
    make_canvas_course: Callable[..., tuple[GradeCourse, CanvasCourse]],
) -> None:
    """The teacher opened Pathways from an assignment (assignment_selection, or a deep-linked
    item with a lineItem) and turned two competencies on. Canvas attaches a line item naming
    that assignment's resource link to that same assignment: no new gradebook column appears,
    and scores on such a secondary line item never reach the gradebook."""
    course, canvas = make_canvas_course(placement="assignment-uuid", links={"assignment-uuid": 1})
    course.record(3, competency=0)
    course.record(2, competency=1)
    course.drain_until_settled(course.worker())
    assert {i.state for i in course.line_items().values()} == {LineItemState.READY}
    # Pathways says every column is ready; what does the Canvas gradebook show?
    columns = {a: label for a, label in canvas.assignments.items() if a != 1}
    assert len(columns) == 2, f"Canvas gradebook columns besides the activity: {columns}"
    visible = {k: v for k, v in canvas.grades.items() if k[0] != 1}
    assert len(visible) == 4, (
        f"grades visible in Canvas: {canvas.grades}; results only: {canvas.results}"
    )
