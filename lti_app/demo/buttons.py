"""The launch buttons of the demo LMS's course page, and the launches their hints name.

A button's `lti_message_hint` says what it launches (course, link, person, and whether the
tool keeps its state in the LMS's frame), so the LMS can rebuild the launch from the hint
alone: a course page left open while `lti-app demo` restarted still launches, instead of
answering that the launch was not started here until the page is reloaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lti_app.demo.launches import LaunchSpec, MessageType
from lti_app.demo.seed import ADMIN, COURSES, PEOPLE, Course, Person, Role, observed_in

if TYPE_CHECKING:
    from lti_app.demo.platform import DemoPlatform

DEEP_LINK_PREFIX = "ui-dl-"


def button_people(course: Course) -> list[tuple[Person, Role | None]]:
    """Who the course page has a button for, with their role in the course (None: the admin)."""
    people: list[tuple[Person, Role | None]] = [
        (PEOPLE[e.user_id], e.role) for e in course.enrollments
    ]
    parents = [(p, Role.MENTOR) for p in PEOPLE.values() if observed_in(p, course)]
    return [*people, *parents, (ADMIN, None)]


def button_hint(context_id: str, link_id: str, user_id: str, *, storage: bool) -> str:
    return f"ui-{context_id}-{link_id}-{user_id}-{'s' if storage else 'c'}"


def button_launches(
    platform: DemoPlatform,
    context_id: str,
    link_id: str,
    person: Person,
    role: Role | None,
    *,
    storage: bool,
) -> tuple[LaunchSpec, LaunchSpec | None]:
    """Register a button's launch of the link and, for a teacher, its deep linking launch."""
    target = "_parent" if storage else None
    hint = button_hint(context_id, link_id, person.user_id, storage=storage)
    spec = platform.make_launch(
        person.user_id,
        context_id,
        resource_link_id=link_id,
        storage_target=target,
        hint=hint,
    )
    deep_link = None
    if role is Role.INSTRUCTOR:
        deep_link = platform.make_launch(
            person.user_id,
            context_id,
            message_type=MessageType.DEEP_LINKING,
            storage_target=target,
            hint=DEEP_LINK_PREFIX + hint,
        )
    return spec, deep_link


def rebuild_button_launch(platform: DemoPlatform, hint: str) -> LaunchSpec | None:
    """The launch of the course page's button with this hint, if the page could show it
    now: a seeded course, one of its links, and someone with a button there."""
    if not hint.startswith("ui-"):
        return None
    deep_linking = hint.startswith(DEEP_LINK_PREFIX)
    page_hint = hint.removeprefix(DEEP_LINK_PREFIX) if deep_linking else hint
    with platform.state.lock:
        links = [(rl.context_id, rl.id) for rl in platform.state.resource_links.values()]
    for context_id, link_id in links:
        course = COURSES.get(context_id)
        if course is None or not page_hint.startswith(f"ui-{context_id}-{link_id}-"):
            continue
        for person, role in button_people(course):
            for storage in (False, True):
                if page_hint != button_hint(context_id, link_id, person.user_id, storage=storage):
                    continue
                spec, deep_link = button_launches(
                    platform, context_id, link_id, person, role, storage=storage
                )
                return deep_link if deep_linking else spec
    return None
