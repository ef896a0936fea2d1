"""The course's gradebook settings: the AGS endpoint its launches carried, and how a level and a
competency show in the LMS gradebook (points, percent by the course's conversion table, the
column's label).

Nothing here queues or sends scores: `grades.services` queues them, `grades.worker` sends them.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.db import upsert_insert
from lti_app.grades.models import Gradebook, GradeDisplay
from lti_app.mastery.models import MasteryScale
from lti_app.tool.messages import lms_title
from lti_app.tool.models import Context, LaunchSession

HUNDRED = Decimal(100)
CENT = Decimal("0.01")


def get_gradebook(session: Session, *, context_id: int) -> Gradebook | None:
    return session.scalar(select(Gradebook).where(Gradebook.context_id == context_id))


def get_or_create_gradebook(session: Session, *, context_id: int) -> Gradebook:
    """The course's gradebook settings; the AGS endpoint comes from its latest launch."""
    gradebook = get_gradebook(session, context_id=context_id)
    if gradebook is not None:
        return gradebook
    context = session.get(Context, context_id)
    if context is None:
        raise LookupError(f"no context {context_id}")
    # ON CONFLICT DO NOTHING: the teacher's first visit may come twice at once (two tabs, a
    # double click), and a plain INSERT would fail one of them on PostgreSQL.
    created = session.execute(
        upsert_insert(session, Gradebook)
        .values(platform_id=context.platform_id, context_id=context_id)
        .on_conflict_do_nothing(index_elements=["context_id"])
    )
    gradebook = get_gradebook(session, context_id=context_id)
    if gradebook is None:  # pragma: no cover - the row exists after the insert
        raise LookupError(f"no gradebook for context {context_id}")
    if not getattr(created, "rowcount", 0):
        return gradebook
    latest = session.scalar(
        select(LaunchSession)
        .where(LaunchSession.context_id == context_id, LaunchSession.ags_claim.is_not(None))
        .order_by(LaunchSession.created_at.desc())
        .limit(1)
    )
    if latest is not None and latest.ags_claim:
        _apply_claim(gradebook, latest.ags_claim, latest.resource_link_id)
    session.flush()
    return gradebook


def _apply_claim(gradebook: Gradebook, claim: dict[str, Any], link_id: int | None) -> None:
    url = claim.get("lineitems")
    # An address longer than the column, or with NUL, is not one the LMS could answer at.
    if isinstance(url, str) and url and len(url) <= 2048 and "\x00" not in url:
        gradebook.lineitems_url = url
        if link_id is not None and claim.get("lineitem"):
            # This placement has a column of its own (a Canvas assignment, a graded Moodle
            # activity). Canvas files a column made for such a link under that assignment,
            # where only its first column is graded: competency columns bound to it never
            # showed (canvas-lms line_items_controller#create, scores_controller). Unbound,
            # they are columns of their own on every LMS.
            if gradebook.resource_link_id == link_id:
                gradebook.resource_link_id = None
        elif link_id is not None:
            gradebook.resource_link_id = link_id
    scopes = claim.get("scope")
    if isinstance(scopes, list):
        gradebook.scopes = [s for s in scopes if isinstance(s, str)]


def remember_ags_claim(
    session: Session, *, context_id: int, claim: dict[str, Any] | None, resource_link_id: int | None
) -> Gradebook:
    """Keep the AGS endpoint claim of a teacher's launch, for the worker outside requests."""
    gradebook = get_or_create_gradebook(session, context_id=context_id)
    if claim:
        _apply_claim(gradebook, claim, resource_link_id)
    session.flush()
    return gradebook


def default_conversion(scale: MasteryScale) -> dict[str, Decimal]:
    """Each level's points as a percentage of the top level's points."""
    top = scale.levels[-1].points
    return {
        level.name: (level.points * HUNDRED / top).quantize(CENT, ROUND_HALF_UP)
        if top
        else Decimal(0)
        for level in scale.levels
    }


def conversion_table(gradebook: Gradebook, scale: MasteryScale) -> dict[str, Decimal]:
    """The course's percent per level: its own table, the default for levels it lacks."""
    table = default_conversion(scale)
    for name, value in (gradebook.conversion or {}).items():
        if name in table:
            try:
                table[name] = Decimal(str(value))
            except InvalidOperation:
                continue
    return table


def score_for(
    gradebook: Gradebook, scale: MasteryScale, level_name: str | None
) -> tuple[Decimal | None, Decimal]:
    """(scoreGiven, scoreMaximum) for a level under the course's display choice."""
    maximum = HUNDRED if gradebook.display is GradeDisplay.PERCENT else scale.levels[-1].points
    if level_name is None:
        return None, maximum
    level = next((lv for lv in scale.levels if lv.name == level_name), None)
    if level is None:
        return None, maximum
    if gradebook.display is GradeDisplay.PERCENT:
        return conversion_table(gradebook, scale)[level.name], maximum
    return level.points, maximum


def column_label(competency: Competency) -> str:
    """The LMS column's label for a competency: its code and title, cut to a name every LMS
    takes (a competency's code and title come to 577 characters)."""
    return lms_title(f"{competency.code} {competency.title}".strip())


def submission_review() -> dict[str, Any]:
    """What every mastery column asks of the LMS: a review link on each score, opening Pathways
    on that student's work (LTI Submission Review 1.0, https://www.imsglobal.org/spec/lti-sr/v1p0;
    tool.review). A fresh dict each time: callers put it in request bodies.

    Sent wherever the column's definition is: deep linking's lineItem, and every line item
    Pathways creates or updates over AGS, because an update replaces the line item and drops
    what it leaves out (moodle/moodle mod/lti/service/gradebookservices/classes/local/
    resources/lineitem.php `process_put_request` clears subreviewurl when the body has no
    submissionReview). `reviewableStatus` is required (pylti1p3 lineitem.py TSubmissionReview;
    andyfmiller/LtiAdvantage SubmissionReview: the activityProgress values for which the link
    shows): a score with a level is sent `Completed` (grades.services).
    """
    return {"reviewableStatus": ["Completed"], "label": "Open in Pathways"}
