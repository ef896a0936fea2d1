"""A placed mastery column whose gradebook column the LMS names in the launch: adopt it.

A teacher places a competency's mastery column by deep linking, with the gradebook's own
lineItem (`grades.views.deep_link_columns`), and the worker looks for the column the LMS makes
by its resourceId and tag. Canvas and Moodle both keep the lineItem's resourceId and tag on the
column they make, when the teacher saves the assignment or activity:

- Canvas's assignment_selection: the assignment form keeps the lineItem and sends it with the
  assignment (instructure/canvas-lms ui/features/assignment_edit/backbone/views/EditView.jsx
  `handleContentItem`, `getFormData`; lib/api/v1/assignment.rb `line_item_resource_id`), and
  the assignment's line item is made with them (app/models/assignment.rb `update_line_items`).
  Placements that make the assignment at once do the same (app/controllers/lti/ims/concerns/
  deep_linking_modules.rb `create_update_assignment!`).
- Moodle: the activity form carries them (mod/lti/locallib.php `lti_convert_content_items`:
  resourceId as assignedActivity.activityId) to the grade item's gradebookservices row
  (mod/lti/service/gradebookservices/classes/local/service/gradebookservices.php
  `instance_added`).

Every launch of the link names that column too, as the AGS claim's `lineitem` (Canvas
lib/lti/messages/resource_link_request.rb `assignment_line_item_url`; Moodle
gradebookservices.php `get_launch_parameters`), and sometimes only the launch leads to it:

- Moodle with "grade sync only": Pathways' token holds no line item management scope, so the
  column cannot be looked for.
- Canvas writes the resourceId and tag on an existing assignment's line item only when the same
  save changes its name, points or dates (`update_line_items`), and a Canvas older than
  `line_item_resource_id` keeps neither.

The launch also carries the custom `pathways_item` the deep-linking response gave the link, so
the first launch of such a link, by anyone, adopts the column it names while the competency has
none yet; the worker then checks that it exists, and sends scores there without ever changing
its label or points.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.courses.lineage import own_or_copy
from lti_app.grades.models import LineItem, LineItemState
from lti_app.grades.services import notify_worker
from lti_app.http import same_origin
from lti_app.tool.models import Platform
from lti_app.tool.services import URL_MAX_LENGTH, LaunchContext

LOG = logging.getLogger(__name__)

COLUMN_KEY = "competency-"
"""The deep-link key (custom `pathways_item`) of a competency's mastery column."""
ITEM_PARAMETER = "pathways_item"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"


def placed_competency(custom: Any) -> int | None:
    """The competency id a link's custom parameters name as its mastery column, if any."""
    if not isinstance(custom, dict):
        return None
    key = custom.get(ITEM_PARAMETER)
    if not isinstance(key, str) or not key.startswith(COLUMN_KEY):
        return None
    number = key[len(COLUMN_KEY) :]
    # ASCII digits that fit the database's integer ("²" passes isdigit() but not int()).
    if not (number.isascii() and number.isdigit() and len(number) <= 18):
        return None
    return int(number)


def named_column(claim: Any, platform: Platform) -> str | None:
    """The AGS claim's `lineitem`, when it is one the bearer token may go to.

    Like every address the LMS names (`client.same_service_url`), it must be on the origin of
    the claim's `lineitems`, or of the platform's token endpoint when the claim has none.
    """
    if not isinstance(claim, dict):
        return None
    url = claim.get("lineitem")
    if not isinstance(url, str) or not url or len(url) > URL_MAX_LENGTH or "\x00" in url:
        return None
    container = claim.get("lineitems")
    reference = container if isinstance(container, str) and container else platform.token_url
    return url if same_origin(url, reference) else None


def adopt_launch_column(session: Session, ctx: LaunchContext, platform: Platform) -> None:
    """Adopt the gradebook column a launch of a placed mastery column names (see above).

    On the launch path of every launch: nothing at all unless the link is a mastery column
    (`pathways_item` = `competency-<id>`), and two statements when there is nothing to do.
    """
    link = ctx.resource_link
    if link is None or ctx.context is None or ctx.launch.message_type != RESOURCE_LINK_REQUEST:
        return
    competency_id = placed_competency(link.custom)
    if competency_id is None:
        return
    url = named_column(ctx.launch.ags_claim, platform)
    if url is None:
        return
    # A course copied in the LMS keeps its links' custom parameters: an id of another course
    # names this course's copy of that competency, if it has one, and nothing else.
    competency_id = own_or_copy(
        session, Competency, context_id=ctx.context.id, item_id=competency_id
    )
    if competency_id is None:
        return
    item = session.execute(
        select(LineItem.id, LineItem.url).where(
            LineItem.context_id == ctx.context.id, LineItem.competency_id == competency_id
        )
    ).first()
    if item is None or item.url == url:
        return
    if item.url is not None:
        _note_other_column(item.id, url, ctx)
        return
    adopted = session.execute(
        update(LineItem)
        # A launch of another placement of this competency may have adopted its own meanwhile.
        .where(LineItem.id == item.id, LineItem.url.is_(None))
        .values(
            url=url,
            lms_owned=True,
            resource_link_id=link.id,
            state=LineItemState.PENDING,
            last_error="",
            lms_makes_until=None,
            lease_until=None,  # checked at the worker's next pass
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(adopted, "rowcount", 0):
        notify_worker(session)
        LOG.info(
            "line item %s adopted from a launch context=%s resource_link=%s",
            item.id,
            ctx.context.id,
            link.resource_link_id,
        )


def reviewed_competency(
    session: Session, ctx: LaunchContext, line_item_url: str | None
) -> int | None:
    """The competency whose mastery column a submission review launch came from (tool.review):
    this course's column at that address, else the placed link's own competency."""
    if ctx.context is None:
        return None
    found: int | None = None
    if line_item_url is not None:
        found = session.execute(
            select(LineItem.competency_id).where(
                LineItem.context_id == ctx.context.id, LineItem.url == line_item_url
            )
        ).scalar()
    if found is None and ctx.resource_link is not None:
        placed = placed_competency(ctx.resource_link.custom)
        if placed is not None:
            found = own_or_copy(session, Competency, context_id=ctx.context.id, item_id=placed)
    return found


_NOTED: set[tuple[int, str]] = set()
_NOTED_LOCK = threading.Lock()
_NOTED_MAX = 10_000


def _note_other_column(line_item_id: int, url: str, ctx: LaunchContext) -> None:
    """Say once per process that a placement's column is not the competency's column.

    The competency's scores already go to a column (made by Pathways, or adopted from another
    placement): taking this one would leave that one stale, so the teacher sees this one empty.
    """
    with _NOTED_LOCK:
        if (line_item_id, url) in _NOTED:
            return
        if len(_NOTED) >= _NOTED_MAX:
            _NOTED.clear()
        _NOTED.add((line_item_id, url))
    LOG.warning(
        "line item %s already has its column; a placement's column %s is left alone "
        "context=%s resource_link=%s",
        line_item_id,
        url,
        ctx.context.id if ctx.context else None,
        ctx.resource_link.resource_link_id if ctx.resource_link else None,
    )
