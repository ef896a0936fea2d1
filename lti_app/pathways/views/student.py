"""The student's pages: their pathways, and choosing, starting and handing in work."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Literal

from flask import redirect, render_template, request
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from lti_app.courses.common import Refusal
from lti_app.courses.lineage import own_or_copy
from lti_app.errors import NotFoundError, PermissionDeniedError
from lti_app.pathways import choices as choice_services
from lti_app.pathways import options as option_services
from lti_app.pathways import services
from lti_app.pathways.errors import (
    ChoiceNotAllowedError,
    ChoiceNotFoundError,
    PathwayNotFoundError,
)
from lti_app.pathways.forms import minutes_label
from lti_app.pathways.models import Choice, ChoiceStatus, Option, Pathway, Step
from lti_app.pathways.retrying import try_step_again
from lti_app.pathways.student import (
    StepView,
    student_pathway_view,
)
from lti_app.pathways.text import InvalidUrlError
from lti_app.pathways.views import LEARNER, bp, launch_course, page_notice
from lti_app.progress.services import next_actions, student_home_overview
from lti_app.tool.services import LaunchContext
from lti_app.web import db_session, launch_url, require_role, set_history_url

LOG = logging.getLogger(__name__)


def deep_link_pathways(session: Session, ctx: LaunchContext) -> list[dict[str, Any]]:
    """Each pathway of the course, for a teacher placing Pathways in a module."""
    if ctx.context is None:
        return []
    return [
        {
            "key": f"pathway-{p.id}",
            "title": p.title,
            "text": "Opens this pathway for students.",
            "custom": {"pathway_id": str(p.id)},
        }
        for p in services.list_pathways(session, context_id=ctx.context.id)
    ]


def _placed_pathway_id(ctx: LaunchContext) -> int | None:
    """The pathway a deep-linked placement opens (its custom parameter), if any."""
    custom = ctx.resource_link.custom if ctx.resource_link is not None else {}
    value = custom.get("pathway_id") if isinstance(custom, dict) else None
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None  # isdigit() alone also takes "²", which int() refuses
    return int(value) if len(value) <= 9 else None  # nine digits fit any database


def render_student_home(ctx: LaunchContext) -> str:
    """The learner's landing page: every pathway at a glance and what to do next.

    A placement made for one pathway (deep linking) opens that pathway instead.
    """
    if ctx.context is None:  # pragma: no cover - render_home handles launches without one
        raise PermissionDeniedError("Open Pathways from a course to see its pathways.")
    placed = _placed_pathway_id(ctx)
    if placed is not None and request.endpoint == "tool.launch":
        # A placement copied with the course (the LMS's course copy) names last term's
        # pathway: this course's copy of it is the one to open.
        placed = (
            own_or_copy(db_session(), Pathway, context_id=ctx.context.id, item_id=placed) or placed
        )
        # Back and a reload of the frame ask for the history's address: the pathway, as at
        # launch, not the home the launch's address would be.
        set_history_url("pathways.student_pathway", pathway_id=placed)
        try:
            return _render_pathway(placed)[0]
        except PathwayNotFoundError:
            set_history_url("tool.home")
            LOG.info("placement names a missing pathway %s; showing the home", placed)
    session = db_session()
    overview, archived = student_home_overview(
        session, context_id=ctx.context.id, person_id=ctx.person.id
    )
    return render_template(
        "pathways/my_pathways.html",
        ctx=ctx,
        overview=overview,
        archived=archived,
        actions=next_actions(overview),
        notice=page_notice(),
        status_words=STUDENT_STATUS_WORDS,
        status_of=student_status,
    )


def student_status(status: ChoiceStatus, option: Option | None, step: Step | None = None) -> str:
    """A choice's status in the student's words; a pick that waits for approval says so."""
    if status is ChoiceStatus.CHOSEN and option is not None and option.requires_approval:
        return "Waiting for your teacher's approval"
    if status is ChoiceStatus.REJECTED and step is not None and step.archived_at is not None:
        return REJECTED_ON_ARCHIVED_STEP
    return STUDENT_STATUS_WORDS[status]


@bp.get("/")
@require_role(LEARNER)
def my_pathways() -> str:
    """The student's pathways: steps, lock states and their choices."""
    ctx, _ = launch_course()
    return render_student_home(ctx)


def _render_pathway(
    pathway_id: int,
    *,
    refused: Refusal | None = None,
    status: int = 200,
    draft: dict[int, dict[str, str]] | None = None,
) -> tuple[str, int]:
    """The student's pathway page; `draft` holds a refused hand-in as typed, by choice id, and
    `refused` marks the field it is about."""
    ctx, context_id = launch_course()
    view = student_pathway_view(
        db_session(), context_id=context_id, pathway_id=pathway_id, person_id=ctx.person.id
    )
    return (
        render_template(
            "pathways/student_pathway.html",
            ctx=ctx,
            view=view,
            errors=[refused] if refused else [],
            errors_title="Not saved:",
            notice=None if refused else page_notice(),
            status_words=STUDENT_STATUS_WORDS,
            step_actions={
                s.step.id: _step_actions(s, read_only=view.is_read_only) for s in view.steps
            },
            minutes_label=minutes_label,
            draft=draft or {},
        ),
        status,
    )


@bp.get("/<int:pathway_id>")
@require_role(LEARNER)
def student_pathway(pathway_id: int) -> tuple[str, int]:
    """One pathway with its steps, options, recommendations and the student's choices."""
    return _render_pathway(pathway_id)


def _after_student_action(pathway_id: int, step_id: int, notice: str) -> Response:
    url = launch_url("pathways.student_pathway", pathway_id=pathway_id, notice=notice)
    return redirect(f"{url}#step-{step_id}")


def _pathway_of_step(step_id: int, context_id: int) -> int:
    return services.get_step(db_session(), context_id=context_id, step_id=step_id).pathway_id


def _pathway_of_option(option_id: int, context_id: int) -> int:
    option = option_services.get_option(db_session(), context_id=context_id, option_id=option_id)
    return _pathway_of_step(option.step_id, context_id)


@bp.post("/options/<int:option_id>/choose")
@require_role(LEARNER)
def choose(option_id: int) -> Response | tuple[str, int]:
    """Pick an option, or switch to it while work has not started."""
    ctx, context_id = launch_course()
    session = db_session()
    try:
        choice = choice_services.choose_option(
            session, context_id=context_id, person_id=ctx.person.id, option_id=option_id
        )
    except ChoiceNotAllowedError as err:
        session.rollback()
        return _render_pathway(
            _pathway_of_option(option_id, context_id), refused=Refusal(str(err)), status=400
        )
    pathway_id = _pathway_of_step(choice.step_id, context_id)
    step_id = choice.step_id
    session.commit()
    return _after_student_action(pathway_id, step_id, "chosen")


ChoiceAction = Literal["withdraw", "start", "submit", "again"]


def _choice_action(choice_id: int, action: ChoiceAction) -> Response | tuple[str, int]:
    ctx, context_id = launch_course()
    session = db_session()
    own = {
        c.id: c
        for c in choice_services.choices_for_student(
            session, context_id=context_id, person_id=ctx.person.id
        )
    }
    if choice_id not in own:
        done = _withdrawn_already(context_id, own.values()) if action == "withdraw" else None
        if done is not None:
            return done
        # Another student's choice, or another course's: the same answer as a missing one.
        raise NotFoundError("That choice does not exist.")
    step_id = own[choice_id].step_id
    pathway_id = _pathway_of_step(step_id, context_id)
    me = ctx.person.id
    notice = {
        "withdraw": "withdrawn",
        "start": "started",
        "submit": "submitted",
        "again": "tried_again",
    }[action]
    try:
        if action == "withdraw":
            try:
                if choice_services.withdraw_choice(
                    session, context_id=context_id, person_id=me, choice_id=choice_id
                ):
                    notice = "try_withdrawn"
            except ChoiceNotFoundError:
                session.rollback()  # a simultaneous first click withdrew it: as asked
                return _after_student_action(pathway_id, step_id, "withdrawn")
        elif action == "start":
            choice_services.start_choice(
                session, context_id=context_id, person_id=me, choice_id=choice_id
            )
        elif action == "again":
            try_step_again(
                session,
                context_id=context_id,
                person_id=me,
                choice_id=choice_id,
                option_id=_posted_id("option_id"),
            )
        else:
            choice_services.submit_choice(
                session,
                context_id=context_id,
                person_id=me,
                choice_id=choice_id,
                note=request.form.get("note", ""),
                url=request.form.get("url", ""),
            )
    except ValueError as err:  # ChoiceNotAllowedError, or a link that is not http(s)
        session.rollback()
        # A refused hand-in comes back as typed: the student only fixes what was wrong.
        draft = (
            {choice_id: {"note": request.form.get("note", ""), "url": request.form.get("url", "")}}
            if action == "submit"
            else None
        )
        field = f"url-{choice_id}" if isinstance(err, InvalidUrlError) else None
        return _render_pathway(
            pathway_id, refused=Refusal(str(err), field), status=400, draft=draft
        )
    session.commit()
    return _after_student_action(pathway_id, step_id, notice)


def _posted_id(field: str) -> int | None:
    """A row id the form posted, or None when it posted none (or not a number)."""
    value = request.form.get(field, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


def _withdrawn_already(context_id: int, own: Iterable[Choice]) -> Response | None:
    """The answer to a second "Withdraw my choice" (a double click): the first one withdrew it,
    so the page says so instead of "not found". The form names its step; a step where the
    student holds a choice again, or that is not in the course, gets no such answer."""
    step_id = _posted_id("step_id")
    if step_id is None or any(c.step_id == step_id for c in own):
        return None
    try:
        pathway_id = _pathway_of_step(step_id, context_id)
    except PathwayNotFoundError:
        return None
    return _after_student_action(pathway_id, step_id, "withdrawn")


@bp.post("/choices/<int:choice_id>/withdraw")
@require_role(LEARNER)
def withdraw(choice_id: int) -> Response | tuple[str, int]:
    """Drop a pick before work starts."""
    return _choice_action(choice_id, "withdraw")


@bp.post("/choices/<int:choice_id>/start")
@require_role(LEARNER)
def start(choice_id: int) -> Response | tuple[str, int]:
    """Begin work on the chosen option."""
    return _choice_action(choice_id, "start")


@bp.post("/choices/<int:choice_id>/submit")
@require_role(LEARNER)
def submit(choice_id: int) -> Response | tuple[str, int]:
    """Hand in the work with a note and an optional link."""
    return _choice_action(choice_id, "submit")


@bp.post("/choices/<int:choice_id>/again")
@require_role(LEARNER)
def try_again(choice_id: int) -> Response | tuple[str, int]:
    """Open a step done below mastery for a new attempt, when a later step waits for it."""
    return _choice_action(choice_id, "again")


STUDENT_STATUS_WORDS = {
    ChoiceStatus.CHOSEN: "Chosen",
    ChoiceStatus.APPROVED: "Approved by your teacher",
    ChoiceStatus.IN_PROGRESS: "In progress",
    ChoiceStatus.SUBMITTED: "Handed in: waiting for your teacher",
    ChoiceStatus.DONE: "Done",
    ChoiceStatus.RETURNED: "Returned by your teacher: keep working and hand it in again",
    ChoiceStatus.REJECTED: "Not approved: choose an option again",
}


REJECTED_ON_ARCHIVED_STEP = (
    "Not approved, and your teacher has taken this step off offer: withdraw your choice to clear it"
)
"""There is nothing to choose again in a retired step: only withdrawing is left."""


READ_ONLY_STATUS_WORDS = {
    **STUDENT_STATUS_WORDS,
    ChoiceStatus.CHOSEN: "Chosen",
    ChoiceStatus.SUBMITTED: "Handed in",
    ChoiceStatus.RETURNED: "Returned by your teacher with a note",
    ChoiceStatus.REJECTED: "Not approved",
}
"""Statuses in an archived pathway, where nothing more can happen: no "hand it in again"."""

LOCKED_AGAIN = (
    "This step is locked for you now, so you can't start or hand in work here until it opens "
    "again. Your choice and your work are kept."
)


def _step_actions(step_view: StepView, *, read_only: bool = False) -> dict[str, object]:
    """What the student may do on a step now, so the template holds no rules.

    :param read_only: the pathway is archived: the page shows the work and notes, no buttons.
    """
    choice = step_view.choice
    chosen = next((o.option for o in step_view.options if o.is_chosen), None)
    needs_approval = bool(chosen and chosen.requires_approval)
    is_open = step_view.unlock.is_unlocked and not read_only
    # A new try goes on with an option on offer: one the teacher retired is picked anew.
    retired = chosen is not None and chosen.archived_at is not None
    on_offer = tuple(o.option for o in step_view.options if o.option.archived_at is None)
    # An archived step shows only for the work already chosen in it: nothing new is on offer.
    offered = is_open and step_view.step.archived_at is None
    if choice is None:
        return {
            "can_choose": offered,
            "status": "",
            "can_withdraw": False,
            "can_start": False,
            "can_submit": False,
            "waiting_for_approval": False,
            "locked_note": "",
            "can_try_again": False,
            "try_again_retired": False,
            "try_again_with": (),
        }
    status = choice.status
    # A new try opened on a retired option (as one could once): no work starts there.
    stale_pick = chosen is not None and choice_services.picked_after_retired(choice, chosen)
    if read_only:
        words = READ_ONLY_STATUS_WORDS[status]
    elif stale_pick:
        words = "Your teacher has taken this option off offer: switch to another option"
    elif status is ChoiceStatus.CHOSEN and needs_approval:
        words = "Chosen: waiting for your teacher's approval"
    else:
        words = student_status(status, None, step_view.step)
    # Work that could go on if the step were open: say why it can't, so it isn't a mystery.
    unfinished = status not in {ChoiceStatus.DONE, ChoiceStatus.SUBMITTED}
    return {
        "can_choose": offered and status in choice_services.CHANGEABLE,
        "status": words,
        # A pick the teacher did not approve may be dropped too: on a step taken off offer
        # there is nothing to choose again, so withdrawing is the only way to clear it.
        "can_withdraw": not read_only and status in choice_services.CHANGEABLE,
        "can_start": is_open
        and not stale_pick
        and status is not ChoiceStatus.IN_PROGRESS
        and choice_services.may_start(status, requires_approval=needs_approval),
        "can_submit": is_open
        and not stale_pick
        and choice_services.may_submit(status, requires_approval=needs_approval),
        "waiting_for_approval": status is ChoiceStatus.CHOSEN and needs_approval,
        "locked_note": LOCKED_AGAIN
        if not read_only and not step_view.unlock.is_unlocked and unfinished
        else "",
        # Done below mastery, with a later step waiting for it: the student's way on.
        "can_try_again": not read_only and bool(step_view.try_again_for),
        # The done option is off offer: a new try names the option it goes on with.
        "try_again_retired": retired,
        "try_again_with": on_offer if retired else (),
    }
