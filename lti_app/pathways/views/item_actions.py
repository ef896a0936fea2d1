"""Moving a pathway, step or option up or down the teacher's lists, archiving and restoring it."""

from __future__ import annotations

from flask import redirect, request
from werkzeug.wrappers import Response

from lti_app.errors import NotFoundError
from lti_app.pathways import options as option_services
from lti_app.pathways import services
from lti_app.pathways.views import TEACHER, bp, launch_course
from lti_app.web import db_session, launch_url, require_role

ITEM_ACTIONS = frozenset({"up", "down", "archive", "restore"})


def _moved(ids: list[int], item_id: int, direction: str) -> list[int] | None:
    """The order with the item swapped with its neighbour, or None when the item is no longer
    where the teacher's page showed it.

    A double-clicked "Move up" posts the same move twice; the second post finds the item one
    place higher than the page said, so it is ignored rather than moving the item again. The
    same goes for a page left open while a colleague reordered the list.
    """
    shown_at = request.form.get("shown_at", "")
    index = ids.index(item_id)
    if not (shown_at.isascii() and shown_at.isdigit()) or int(shown_at) != index:
        return None
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(ids):
        ids[index], ids[other] = ids[other], ids[index]
    return ids


@bp.post("/manage/<any(pathway, step, option):kind>/<int:item_id>/<action>")
@require_role(TEACHER)
def item_action(kind: str, item_id: int, action: str) -> Response:
    """Move a pathway, step or option up or down, archive it or restore it."""
    _, context_id = launch_course()
    if action not in ITEM_ACTIONS:
        raise NotFoundError("Unknown action.")
    session = db_session()
    notice = {"up": "moved", "down": "moved", "archive": "archived", "restore": "restored"}[action]
    moves = action in {"up", "down"}
    order: list[int] | None = None
    target: tuple[str, dict[str, int]]
    if kind == "pathway":
        services.get_pathway(session, context_id=context_id, pathway_id=item_id)
        if moves:
            ids = [
                p.id
                for p in services.list_pathways(
                    session, context_id=context_id, include_archived=True
                )
            ]
            order = _moved(ids, item_id, action)
            if order is not None:
                services.reorder_pathways(session, context_id=context_id, pathway_ids=order)
        elif action == "archive":
            services.archive_pathway(session, context_id=context_id, pathway_id=item_id)
            notice = "archived_pathway"
        else:
            services.restore_pathway(session, context_id=context_id, pathway_id=item_id)
        target = "pathways.manage", {}
    elif kind == "step":
        step = services.get_step(session, context_id=context_id, step_id=item_id)
        if moves:
            ids = [
                s.id
                for s in services.list_steps(
                    session,
                    context_id=context_id,
                    pathway_id=step.pathway_id,
                    include_archived=True,
                )
            ]
            order = _moved(ids, item_id, action)
            if order is not None:
                services.reorder_steps(
                    session, context_id=context_id, pathway_id=step.pathway_id, step_ids=order
                )
        elif action == "archive":
            services.archive_step(session, context_id=context_id, step_id=item_id)
        else:
            services.restore_step(session, context_id=context_id, step_id=item_id)
        target = "pathways.edit_pathway", {"pathway_id": step.pathway_id}
    else:
        option = option_services.get_option(session, context_id=context_id, option_id=item_id)
        if moves:
            ids = [
                o.id
                for o in option_services.list_options(
                    session, context_id=context_id, step_id=option.step_id, include_archived=True
                )
            ]
            order = _moved(ids, item_id, action)
            if order is not None:
                option_services.reorder_options(
                    session, context_id=context_id, step_id=option.step_id, option_ids=order
                )
        elif action == "archive":
            option_services.archive_option(session, context_id=context_id, option_id=item_id)
        else:
            option_services.restore_option(session, context_id=context_id, option_id=item_id)
        target = "pathways.edit_step", {"step_id": option.step_id}
    if moves and order is None:
        notice = "not_moved"
    session.commit()
    endpoint, values = target
    return redirect(f"{launch_url(endpoint, **values, notice=notice)}#{kind}-{item_id}")
