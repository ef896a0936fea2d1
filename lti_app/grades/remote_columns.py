"""What `grades.line_item_sync` asks the LMS about one column: take over the column a course
copy brought along, make a new one, or update it, bound to the teacher's placement unless the
LMS refuses that binding."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.models import Competency
from lti_app.courses.lineage import copied_from_ids
from lti_app.db import Database
from lti_app.grades.client import AgsClient, LmsRequestError, RemoteLineItem
from lti_app.grades.columns import LINE_ITEM_TAG, column_resource_id
from lti_app.grades.models import LineItem
from lti_app.tool.models import Platform

LOG = logging.getLogger(__name__)
_T = TypeVar("_T")


def copied_resource_ids(session: Session, item: LineItem) -> tuple[str, ...]:
    """The resourceIds of the columns of the competencies this one was copied from (nearest
    first): Canvas's course copy brings last term's columns along with them (`courses.lineage`).
    """
    if item.resource_id != column_resource_id(item.competency_id):
        return ()  # a column Pathways does not name by its competency: nothing was copied
    return tuple(
        column_resource_id(source)
        for source in copied_from_ids(session, Competency, item_id=item.competency_id)
    )


def find_copied_column(
    db: Database,
    ags: AgsClient,
    platform: Platform,
    lineitems_url: str,
    item_id: int,
    resource_ids: Iterable[str],
    offered: Collection[str],
) -> RemoteLineItem | None:
    """The column the LMS copied with the course for this competency, to take over rather
    than make a second, identical one beside it that alone would get the scores.

    The search goes to this course's own gradebook (its `lineitems`), so it only ever finds
    columns of this course. One another competency's column already uses is left to it.
    """
    for resource_id in resource_ids:
        for found in ags.find_line_items(
            platform, lineitems_url, resource_id=resource_id, tag=LINE_ITEM_TAG, offered=offered
        ):
            with db.begin() as session:
                taken = session.scalar(
                    select(LineItem.id).where(
                        LineItem.url == found.url,
                        LineItem.id != item_id,
                        LineItem.context_id
                        == select(LineItem.context_id)
                        .where(LineItem.id == item_id)
                        .scalar_subquery(),
                    )
                )
            if taken is None:
                LOG.info("gradebook column %s takes over the copied column %s", item_id, found.url)
                return found
    return None


LINK_REFUSED = frozenset({400, 403, 404, 422})
"""What an LMS answers for a column naming a resourceLinkId it will not bind one to. Moodle
answers 403 when the id is not an activity of this tool in the course, e.g. one the teacher
deleted (check_lti_1x_id in moodle/moodle mod/lti/service/gradebookservices: classes/local/
resources/lineitems.php for a new column, lineitem.php for an update)."""
UPDATE_LINK_REFUSED = LINK_REFUSED - {404}
"""For an update, 404 says the column itself is gone (see `line_item_sync.sync_line_items`)."""


def create_line_item(
    ags: AgsClient,
    platform: Platform,
    lineitems_url: str,
    body: dict[str, Any],
    offered: Collection[str],
) -> RemoteLineItem:
    """Make the column in the course's gradebook, bound to the placement if the LMS lets it."""
    create = functools.partial(ags.create_line_item, platform, lineitems_url, offered=offered)
    return _unless_link_refused(platform, body, create)


def update_line_item(
    ags: AgsClient, platform: Platform, url: str, body: dict[str, Any], offered: Collection[str]
) -> RemoteLineItem | None:
    update = functools.partial(ags.update_line_item, platform, url, offered=offered)
    return _unless_link_refused(platform, body, update, refused=UPDATE_LINK_REFUSED)


def _unless_link_refused(
    platform: Platform,
    body: dict[str, Any],
    send: Callable[[dict[str, Any]], _T],
    *,
    refused: frozenset[int] = LINK_REFUSED,
) -> _T:
    """Send the column bound to the teacher's placement, or unbound when the LMS refuses the
    binding: Canvas gives a module launch a resource link id that no line item may name
    ("The specified resource does not exist", canvas-lms#1944), Moodle refuses the id of a
    deleted activity, and an unbound column still takes every score (Canvas makes it its
    own assignment). A refusal for another reason (services off) is refused again, unbound,
    and raised."""
    try:
        return send(body)
    except LmsRequestError as err:
        # Canvas throttles with a 403 too: that says "later", not "not this link".
        if "resourceLinkId" not in body or err.status not in refused or err.throttled:
            raise
        LOG.warning(
            "gradebook column refused with resourceLinkId %r iss=%s (%s); sending it unbound",
            body["resourceLinkId"],
            platform.issuer,
            err.status,
        )
        return send({k: v for k, v in body.items() if k != "resourceLinkId"})
