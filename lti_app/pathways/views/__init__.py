"""Pathway pages: the teacher's editor and the student's own pathways.

Every id in a URL or form is looked up inside the launch's course (and, for a student's choice,
the student's own rows), so an id from another course, student or platform is "not found".

This package holds the blueprint and what its pages share; the pages live in `student`
(the student's pathways and moves), `editor` (the teacher's authoring pages) and
`item_actions` (moving, archiving and restoring pathways, steps and options); `warnings` holds
what the editor warns the teacher of.
"""

from __future__ import annotations

from typing import cast

from flask import Blueprint, Flask, request
from flask.blueprints import BlueprintSetupState

from lti_app.errors import NotFoundError, PermissionDeniedError, render_error
from lti_app.pathways.errors import PathwayNotFoundError
from lti_app.tool.roles import CourseRole
from lti_app.tool.services import LaunchContext
from lti_app.web import add_nav_item, current_launch

bp: Blueprint = Blueprint("pathways", __name__, url_prefix="/pathways")
"""A URL id: a longer number is no row of ours (and would overflow SQLite's integers)."""

TEACHER: str = CourseRole.TEACHER.value
LEARNER: str = CourseRole.LEARNER.value

NOTICES = {
    "created": "Saved.",
    "saved": "Your changes are saved.",
    "moved": "The order is changed.",
    "not_moved": "Nothing was moved: the list had already changed since this page was shown "
    "(a second click, or a colleague's change). Here is the order as it is now.",
    # An archived step or option stays on the page of every student who chose in it, who can
    # still finish their work there: only students who had not chosen it stop seeing it.
    "archived": "Archived: students who have not chosen in it no longer see it. Those who "
    "chose in it keep their choice and work, and can still finish.",
    "archived_pathway": "Archived: students no longer see it. Those who chose in it can still "
    "read their work and your notes there, but can't change it. Restore it to let them go on.",
    "restored": "Restored: students see it again.",
    "unlocked": "The step is unlocked for the students you chose.",
    "relocked": "The teacher unlock is withdrawn for the students you chose. Any choice or work "
    "they have in this step is kept, but they can't start or hand in work here until the step "
    "opens again.",
    "chosen": "Your choice is saved. You can change your mind until you start.",
    "withdrawn": "Your choice is withdrawn. Choose another option when you are ready.",
    "try_withdrawn": "Your new try is withdrawn: the step is done again, with the work and the "
    "notes of your last try.",
    "started": "Started. Hand in your work when it is ready.",
    "submitted": "Handed in. Your teacher will look at it.",
    "tried_again": "A new try at this step: start the same option again, or switch to another "
    "one. What you handed in last time and your teacher's notes are kept under Earlier tries.",
}


@bp.record_once
def _register(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    app.extensions.setdefault("lti_app.home_renderers", {})[LEARNER] = render_student_home
    app.extensions.setdefault("lti_app.deep_link_providers", []).append(deep_link_pathways)
    add_nav_item(app, "pathways.my_pathways", "My pathways", (LEARNER,), order=10)
    add_nav_item(app, "pathways.manage", "Pathways", (TEACHER,), order=30)


@bp.errorhandler(PathwayNotFoundError)
def _not_found(err: PathwayNotFoundError) -> tuple[str, int]:
    return render_error(NotFoundError(str(err)))


def launch_course() -> tuple[LaunchContext, int]:
    """The launch and its course id; a launch outside a course sees no pathways."""
    ctx = current_launch()
    if ctx.context is None:
        raise PermissionDeniedError("Open Pathways from a course to see its pathways.")
    return ctx, ctx.context.id


def page_notice() -> str | None:
    """The message a redirect named in its `notice` parameter, if any."""
    return NOTICES.get(request.args.get("notice", ""))


# Importing the page modules registers their routes on `bp`.
from lti_app.pathways.views import (  # noqa: E402, F401
    editor,
    item_actions,
    option_editor,
    student,
)
from lti_app.pathways.views.student import (  # noqa: E402
    STUDENT_STATUS_WORDS,
    deep_link_pathways,
    render_student_home,
    student_status,
)

__all__ = [
    "LEARNER",
    "NOTICES",
    "STUDENT_STATUS_WORDS",
    "TEACHER",
    "bp",
    "deep_link_pathways",
    "launch_course",
    "page_notice",
    "render_student_home",
    "student_status",
]
