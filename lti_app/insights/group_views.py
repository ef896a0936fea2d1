"""Teacher pages for flexible groups: the saved groups, proposing groups by a competency or
a step, a group's members, archiving. Routes of the insights blueprint (insights.views)."""

from __future__ import annotations

from collections.abc import Sequence

from flask import make_response, redirect, render_template, request
from werkzeug.wrappers import Response

from lti_app.courses.common import Refusal
from lti_app.display import isolate
from lti_app.errors import AppError, NotFoundError
from lti_app.insights.dashboard import load_dashboard
from lti_app.insights.groups import (
    InvalidGroupError,
    archive_group,
    current_member_ids,
    get_group,
    list_groups,
    member_counts,
    restore_group,
    save_proposal,
    update_group,
)
from lti_app.insights.models import GroupBasis, StudentGroup
from lti_app.insights.proposals import propose_for_competency, propose_for_step
from lti_app.insights.views import (
    TEACHER,
    _context_id,
    _domain_errors,
    _int_arg,
    _plain_id,
    bp,
)
from lti_app.roster.services import list_students
from lti_app.web import current_launch, db_session, launch_url, require_role

MAX_PROPOSED = 50
"""More proposed groups than a proposal ever has: the bound on `keep-N` fields read back."""


def _ids(name: str) -> list[int]:
    ids: list[int] = []
    for raw in request.form.getlist(name):
        value = _plain_id(raw)
        if value is None:
            raise NotFoundError("A student picked is not in this course.")
        ids.append(value)
    return ids


@bp.get("/groups")
@require_role(TEACHER)
def groups() -> str:
    """Saved groups (active and archived) and the form to propose new ones."""
    session = db_session()
    context_id = _context_id(current_launch())
    return render_template(
        "insights/groups.html",
        title="Groups",
        groups=list_groups(session, context_id=context_id, include_archived=True),
        counts=member_counts(session, context_id=context_id),
        data=load_dashboard(session, context_id=context_id),
        # Only the count this page's own redirect puts there: any other text in the address
        # would be shown as Pathways' own words ("Call 555-0100 ... group(s) saved.").
        saved_count=_saved_count(request.args.get("saved", "")),
    )


def _saved_count(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 4 else None


@bp.route("/groups/propose", methods=["GET", "POST"])
@require_role(TEACHER)
def propose() -> str | Response:
    """Propose groups by a competency or a step; the teacher adjusts, names and saves them."""
    ctx = current_launch()
    context_id = _context_id(ctx)
    session = db_session()
    source = request.form if request.method == "POST" else request.args
    competency_id = _int_arg("competency", source=source)
    step_id = None if competency_id else _int_arg("step", source=source)
    with _domain_errors():
        if competency_id:
            proposal = propose_for_competency(
                session, context_id=context_id, competency_id=competency_id
            )
            basis = GroupBasis.COMPETENCY
        elif step_id:
            proposal = propose_for_step(session, context_id=context_id, step_id=step_id)
            basis = GroupBasis.STEP
        else:
            raise AppError("Choose a competency or a step to group by.")
    students = {s.person_id: s.name for s in list_students(session, context_id=context_id)}
    slot_of = {pid: str(index) for index, group in enumerate(proposal) for pid in group.person_ids}
    names: dict[int, str] = {}
    kept: set[int] | None = None
    errors: list[Refusal] = []
    if request.method == "POST":
        chosen: list[tuple[str, list[int]]] = []
        assignments: dict[int, str] = {}
        for key, value in request.form.items():
            if key.startswith("assign-"):
                person_id = _plain_id(key[7:])
                if person_id is None:
                    raise NotFoundError("A student picked is not in this course.")
                assignments[person_id] = value
        # The groups the teacher's page showed, not today's proposal: evidence recorded or
        # withdrawn since the page opened may have changed how many groups there are now.
        kept = set()
        for index in range(MAX_PROPOSED):
            names[index] = request.form.get(f"name-{index}", "")
            if request.form.get(f"keep-{index}") != "1":
                continue
            kept.add(index)
            members = [pid for pid, slot in assignments.items() if slot == str(index)]
            chosen.append((names[index], members))
        with _domain_errors():
            try:
                saved = save_proposal(
                    session,
                    context_id=context_id,
                    created_by_id=ctx.person.id,
                    groups=chosen,
                    basis=basis,
                    competency_id=competency_id,
                    step_id=step_id,
                )
            except ValueError as err:
                # The page comes back as the teacher left it, with what to change.
                session.rollback()
                errors.append(_proposal_refusal(err, sorted(kept)))
                slot_of.update(assignments)
            else:
                session.commit()
                return redirect(launch_url("insights.groups", saved=len(saved)), 303)
    return make_response(
        render_template(
            "insights/propose.html",
            title="Propose groups",
            proposal=proposal,
            students=students,
            slot_of=slot_of,
            names=names,
            kept=kept,
            errors=errors,
            errors_title="Nothing was saved yet; your changes are below.",
            competency_id=competency_id,
            step_id=step_id,
        ),
        400 if errors else 200,
    )


def _proposal_refusal(err: ValueError, kept: list[int]) -> Refusal:
    """The refusal of a proposal's save, marking the name field of the group refused (`kept`:
    the page's indexes of the groups sent to be saved, in order)."""
    if isinstance(err, InvalidGroupError) and err.about == "name" and err.position is not None:
        return Refusal(str(err), f"name-{kept[err.position]}")
    return Refusal(str(err))


GROUP_FIELDS = {"name": "g-name", "members": "g-members"}
"""The group page's field for what a refusal of `update_group` is about."""


@bp.route("/groups/<int:group_id>", methods=["GET", "POST"])
@require_role(TEACHER)
def group_detail(group_id: int) -> str | Response:
    """A group's members: rename it, add or remove students. A refused save (no name, nobody
    ticked) shows the page again as the teacher left it, with what to change."""
    context_id = _context_id(current_launch())
    session = db_session()
    with _domain_errors():
        group = get_group(session, context_id=context_id, group_id=group_id)
    if request.method == "GET":
        return _group_page(group, name=group.name, ticked=current_member_ids(group))
    name = request.form.get("name", "")
    ticked = _ids("member")
    with _domain_errors():
        try:
            update_group(
                session, context_id=context_id, group_id=group_id, name=name, person_ids=ticked
            )
        except InvalidGroupError as err:
            session.rollback()
            refused = Refusal(str(err), GROUP_FIELDS.get(err.about))
        else:
            session.commit()
            return redirect(launch_url("insights.group_detail", group_id=group_id, saved=1), 303)
    return _group_page(group, name=name, ticked=set(ticked), errors=[refused], status=400)


def _group_page(
    group: StudentGroup,
    *,
    name: str,
    ticked: set[int],
    errors: Sequence[Refusal] = (),
    status: int = 200,
) -> Response:
    """The group page, its form holding `name` and `ticked` (stored, or as a refused form
    sent them)."""
    session = db_session()
    members = current_member_ids(group)
    # Members whose enrollment is inactive stay listed (ticked), or saving would drop them.
    students = [
        s
        for s in list_students(session, context_id=group.context_id, include_inactive=True)
        if s.status.value == "active" or s.person_id in members or s.person_id in ticked
    ]
    return make_response(
        render_template(
            "insights/group.html",
            title=isolate(group.name),  # the page <title>: no <bdi> there
            group=group,
            name=name,
            ticked=ticked,
            students=students,
            errors=errors,
            errors_title="Not saved:",
            saved=request.args.get("saved") == "1" and not errors,
        ),
        status,
    )


@bp.post("/groups/<int:group_id>/archive")
@require_role(TEACHER)
def archive(group_id: int) -> Response:
    """Archive a group, or bring it back (``restore=1``)."""
    context_id = _context_id(current_launch())
    session = db_session()
    with _domain_errors():
        if request.form.get("restore") == "1":
            restore_group(session, context_id=context_id, group_id=group_id)
        else:
            archive_group(session, context_id=context_id, group_id=group_id)
    session.commit()
    return redirect(launch_url("insights.groups"), 303)
