"""The demo LMS's own pages: courses, people with launch buttons, gradebook, deep links."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, render_template, request

from lti_app.demo.buttons import button_launches, button_people
from lti_app.demo.launches import MessageType
from lti_app.demo.platform import DemoPlatform, current_platform
from lti_app.demo.seed import (
    COURSES,
    PEOPLE,
    Course,
    Person,
    Role,
    default_resource_link_id,
)
from lti_app.demo.state import ResourceLink

bp = Blueprint("pages", __name__)
ROLE_LABELS = {Role.INSTRUCTOR: "Teacher", Role.LEARNER: "Student", Role.MENTOR: "Parent"}


@dataclass(frozen=True)
class LaunchButton:
    """One "Launch as …" entry on the course page."""

    person: Person
    role_label: str
    url: str
    deep_link_url: str | None = None


def _course_or_404(context_id: str) -> Course:
    course = COURSES.get(context_id)
    if course is None:
        abort(404)
    return course


def _links(platform: DemoPlatform, course: Course) -> list[ResourceLink]:
    with platform.state.lock:
        return [
            rl
            for rl in platform.state.resource_links.values()
            if rl.context_id == course.context_id
        ]


def _buttons(
    platform: DemoPlatform, course: Course, link: ResourceLink, storage: bool
) -> list[LaunchButton]:
    buttons = []
    for person, role in button_people(course):
        spec, deep_link = button_launches(
            platform, course.context_id, link.id, person, role, storage=storage
        )
        deep_link_url = platform.login_url(deep_link) if deep_link else None
        label = ROLE_LABELS[role] if role else "Admin"
        buttons.append(LaunchButton(person, label, platform.login_url(spec), deep_link_url))
    return buttons


def _review_url(
    platform: DemoPlatform,
    course: Course,
    link: ResourceLink,
    line_item_id: int,
    student: Person,
    storage: bool,
) -> str | None:
    """The teacher opening a student's score in a column from the gradebook (a submission
    review launch of the column's link, as Moodle's grade report sends)."""
    teacher = next((e.user_id for e in course.enrollments if e.role is Role.INSTRUCTOR), None)
    if teacher is None:
        return None
    spec = platform.make_launch(
        teacher,
        course.context_id,
        message_type=MessageType.SUBMISSION_REVIEW,
        resource_link_id=link.id,
        line_item_id=line_item_id,
        for_user_id=student.user_id,
        storage_target="_parent" if storage else None,
    )
    return platform.login_url(spec)


@bp.get("/")
def index() -> str:
    """The list of courses."""
    return render_template("demo/index.html", courses=list(COURSES.values()))


@bp.get("/courses/<context_id>")
def course(context_id: str) -> str:
    """A course: its Pathways links, its people with launch buttons, and the tool frame."""
    platform = current_platform()
    course = _course_or_404(context_id)
    links = _links(platform, course)
    wanted = request.args.get("link", default_resource_link_id(course))
    link = next((rl for rl in links if rl.id == wanted), links[0])
    # storage=forgetful: answer every lti.get_data with no value, as Canvas does when nothing
    # was stored (its put_data refused for storage_exhaustion, or timed out).
    # storage=mute: send lti_storage_target but never answer, as Canvas's mobile apps do.
    storage = request.args.get("storage") in ("1", "forgetful", "mute")
    buttons = _buttons(platform, course, link, storage)
    preload = next((b.url for b in buttons if b.person.user_id == request.args.get("as")), None)
    reviewed = PEOPLE.get(request.args.get("review_for", ""))
    # The clicked column: a column Pathways made over AGS for this link is not the link's own.
    column = platform.state.get_line_item(course.context_id, request.args.get("column", 0, int))
    line_item_id = column.id if column is not None else link.line_item_id
    if reviewed is not None and line_item_id is not None:
        preload = _review_url(platform, course, link, line_item_id, reviewed, storage)
    config: dict[str, Any] = {
        "toolOrigin": platform.config.tool_origin,
        "storageForgets": request.args.get("storage") == "forgetful",
        "storageMute": request.args.get("storage") == "mute",
    }
    return render_template(
        "demo/course.html",
        course=course,
        links=links,
        link=link,
        storage=storage,
        buttons=buttons,
        preload=preload,
        config=config,
    )


@bp.get("/courses/<context_id>/gradebook")
def gradebook(context_id: str) -> str:
    """Line items, each learner's current score, and every score received, in order."""
    platform = current_platform()
    course = _course_or_404(context_id)
    items = platform.state.line_items_in(context_id)
    learners = [PEOPLE[e.user_id] for e in course.enrollments if e.role is Role.LEARNER]
    current = {item.id: platform.state.results(item.id) for item in items}
    item_ids = {item.id for item in items}
    with platform.state.lock:
        log = [s for s in platform.state.scores if s.line_item_id in item_ids]
    return render_template(
        "demo/gradebook.html",
        course=course,
        items=items,
        learners=learners,
        current=current,
        log=log,
        people=PEOPLE,
    )


@bp.get("/courses/<context_id>/deep_links")
def deep_links(context_id: str) -> str:
    """What the tool returned through deep linking in this course."""
    platform = current_platform()
    course = _course_or_404(context_id)
    with platform.state.lock:
        returns = [r for r in platform.state.deep_link_returns if r.context_id == context_id]
    return render_template("demo/deep_links.html", course=course, returns=returns)


@bp.get("/return")
def launch_return() -> str:
    """The launch_presentation return_url: shows lti_msg / lti_errormsg from the tool."""
    course = COURSES.get(request.args.get("context_id", ""))
    return render_template(
        "demo/return.html",
        course=course,
        message=request.args.get("lti_msg"),
        error=request.args.get("lti_errormsg"),
    )
