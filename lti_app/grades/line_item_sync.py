"""Keeping the LMS gradebook columns (line items) in step with Pathways' own, for the worker.

Scores wait until their column is READY, so the worker runs this before each drain. Kept
apart from `grades.worker` because it is one request per column, not per score, and has its
own recovery: a column the teacher deleted in the LMS answers 404. The worker then checks the
line item's own URL, and when that answers 404 too, holds the column's scores
(`hold_deleted_columns`); the next sync finds or creates the column again (find first, so
retries and other workers never duplicate it) and queues every active learner's current level
for it, with a note for the teacher's "Gradebook sync" page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lti_app.db import Database, utcnow
from lti_app.grades import services
from lti_app.grades.claiming import DISABLED_PLATFORMS
from lti_app.grades.client import READ_COLUMNS, AgsClient, LmsRequestError
from lti_app.grades.client.errors import without_nul
from lti_app.grades.columns import LMS_MAKES_COLUMN_GRACE
from lti_app.grades.gradebook import submission_review
from lti_app.grades.models import Gradebook, LineItem, LineItemState
from lti_app.grades.remote_columns import (
    copied_resource_ids,
    create_line_item,
    find_copied_column,
    update_line_item,
)
from lti_app.grades.throttling import Throttles
from lti_app.tool.messages import lms_title
from lti_app.tool.models import Platform, ResourceLink

if TYPE_CHECKING:
    from lti_app.grades.worker import WorkerConfig

LOG = logging.getLogger(__name__)
NO_AGS = (
    "The LMS has not offered Pathways a gradebook for this course (no Assignment and Grade "
    "Services claim in the launches). An LMS administrator can enable that service for "
    "Pathways; then a teacher opens Pathways again from the course."
)


UNUSABLE_ANSWER = (
    "The LMS answered about this gradebook column in a way Pathways could not use; it will try "
    "again. If this stays, an LMS administrator can check the LMS's gradebook service."
)


def column_deleted_note(label: str) -> str:
    return f"The column “{label}” was deleted in the LMS; Pathways is creating it again."


def column_recreated_note(label: str, resent: int) -> str:
    scores = "1 score" if resent == 1 else f"{resent} scores"
    return (
        f"The column “{label}” was deleted in the LMS; Pathways created it again and "
        f"resent {scores}."
    )


def sync_line_items(
    db: Database,
    ags: AgsClient,
    config: WorkerConfig,
    platform_of: Callable[[Session, int], Platform],
    throttles: Throttles,
) -> int:
    """Find or create (or update) the columns that need it; return how many are done.

    :param platform_of: the worker's cache of detached platforms, by id.
    :param throttles: the worker's pauses: a platform that throttles (or whose token endpoint
        is down) is paused for its columns as for its scores, and its Retry-After honoured.
    """
    now = utcnow()
    with db.begin() as session:
        stmt = (
            select(LineItem)
            .where(
                LineItem.is_enabled.is_(True),
                (LineItem.state == LineItemState.PENDING) | LineItem.needs_update.is_(True),
                LineItem.state != LineItemState.FAILED,
                (LineItem.lease_until.is_(None)) | (LineItem.lease_until < now),
                LineItem.platform_id.not_in(DISABLED_PLATFORMS),
            )
            .order_by(LineItem.id)
            .limit(50)
            .with_for_update(skip_locked=True, of=LineItem)
        )
        if config.context_ids is not None:
            stmt = stmt.where(LineItem.context_id.in_(config.context_ids))
        items = list(session.scalars(stmt))
        work: list[
            tuple[
                int,
                int,
                Platform,
                str | None,
                str | None,
                dict[str, Any],
                bool,
                bool,
                bool,
                bool,
                tuple[str, ...],
                tuple[str, ...],
            ]
        ] = []
        for item in items:
            item.lease_until = now + config.lease
            # Being tried again: Retry resets only columns with an error, so it leaves this
            # lease alone and no second worker takes the column meanwhile.
            item.last_error = ""
            gradebook = session.scalar(
                select(Gradebook).where(Gradebook.context_id == item.context_id)
            )
            link = (
                session.get(ResourceLink, item.resource_link_id) if item.resource_link_id else None
            )
            work.append(
                (
                    item.id,
                    item.context_id,
                    platform_of(session, item.platform_id),
                    gradebook.lineitems_url if gradebook else None,
                    item.url,
                    {
                        # Rows labelled before labels were cut to what an LMS takes.
                        "label": lms_title(item.label),
                        "scoreMaximum": float(item.score_maximum),
                        "resourceId": item.resource_id,
                        "tag": item.tag,
                        **({"resourceLinkId": link.resource_link_id} if link else {}),
                        # Never compared with the LMS's copy: an LMS that does not keep it
                        # (Canvas) would have the column updated on every pass.
                        "submissionReview": submission_review(),
                    },
                    item.needs_update,
                    item.state is LineItemState.PENDING,
                    item.lms_makes_until is not None and item.lms_makes_until > now,
                    item.lms_owned,
                    tuple(gradebook.scopes or ()) if gradebook else (),
                    copied_resource_ids(session, item),
                )
            )
    done = 0
    for (
        item_id,
        context_id,
        platform,
        lineitems_url,
        known_url,
        body,
        needs_update,
        pending,
        lms_makes_it,
        lms_owned,
        offered,
        copied_columns,
    ) in work:
        error: LmsRequestError | None = None
        waiting = False
        url = known_url
        # The known column answered 404: whatever column holds its scores now is a new, empty
        # one, even at the same address (an LMS may give it the deleted one's id).
        gone = False
        held = throttles.pause(platform.id)
        if held is not None:
            # The LMS asked Pathways to wait (or cannot give a token): the column waits too.
            _save_line_item(
                db,
                config,
                item_id,
                context_id,
                url,
                held,
                hold_until=throttles.pause_end(platform.id),
            )
            continue
        try:
            if lms_owned:
                # The LMS's own column, named by a launch (`launch_columns`): its label and
                # points are the teacher's, never changed from here. Scores keep our
                # scoreMaximum and the LMS rescales them to its points (instructure/canvas-lms
                # scores_controller.rb `line_item_score_maximum_scale`; moodle/moodle
                # gradebookservices scores: "Rescale to match the grade item maximum").
                needs_update = False
            # A known column marked pending (a score answered 404, a retry after a failure,
            # or one a launch named) may have been deleted in the LMS: ask before trusting it.
            if url is not None and pending and not needs_update:
                if not ags.grants(platform, READ_COLUMNS, offered=offered):
                    # A token for scores alone (a Canvas developer key with the score scope
                    # only, see `AgsClient`) cannot read a column: the one its launch named
                    # takes scores all the same, unchecked. Moodle's "grade sync only" grants
                    # reading (lineitem.readonly; ltiservice_gradebookservices
                    # get_permitted_scopes in moodle/moodle mod/lti/service/gradebookservices/
                    # classes/local/service/gradebookservices.php).
                    pass
                elif not ags.line_item_exists(platform, url, offered=offered):
                    url, gone = None, True
            if url is not None and needs_update:
                try:
                    update_line_item(ags, platform, url, body, offered)
                    needs_update = False
                except LmsRequestError as err:
                    if err.status != 404:
                        raise
                    url, gone = None, True
            if url is None:
                if not lineitems_url:
                    raise LmsRequestError(NO_AGS, retryable=False, config=True)
                found = next(
                    ags.find_line_items(
                        platform,
                        lineitems_url,
                        resource_id=body["resourceId"],
                        tag=body["tag"],
                        offered=offered,
                    ),
                    None,
                )
                if found is None and copied_columns:
                    found = find_copied_column(
                        db, ags, platform, lineitems_url, item_id, copied_columns, offered
                    )
                if found is None and lms_makes_it:
                    waiting = True  # placed by deep linking: the LMS is making it
                elif found is None:
                    url = create_line_item(ags, platform, lineitems_url, body, offered).url
                else:
                    url = found.url
                    needs_update = needs_update or found.score_maximum != body["scoreMaximum"]
            if needs_update and url is not None:
                update_line_item(ags, platform, url, body, offered)
        except LmsRequestError as err:
            error = err
        except Exception:
            # One column's unusable answer (an address no request can go to, say) must not
            # stop the pass: the columns after it, of any course, would wait behind it for good.
            LOG.exception("gradebook column %s: unexpected answer from the LMS", item_id)
            error = LmsRequestError(UNUSABLE_ANSWER, retryable=True)
        if waiting and error is None:
            _wait_for_lms(db, item_id)
            continue
        hold_until = None
        if error is not None and (error.throttled or error.unavailable):
            # Every request to the LMS shares its patience (Canvas: one quota per developer
            # key): the scores and other columns of this platform wait too.
            if error.throttled:
                throttles.throttled(platform.id, error)
            else:
                throttles.unavailable(platform.id, error)
            hold_until = throttles.pause_end(platform.id)
        replaced = known_url if gone else None
        _save_line_item(
            db,
            config,
            item_id,
            context_id,
            url,
            error,
            replaced=replaced,
            known_url=known_url,
            hold_until=hold_until,
        )
        done += error is None
    return done


LMS_COLUMN_LOOK_AGAIN = timedelta(seconds=30)
"""How often a column the LMS is making (deep linking) is looked for."""
LMS_COLUMN_LOOK_SOON = timedelta(seconds=3)
LMS_COLUMN_SOON_FOR = timedelta(minutes=1)
"""For the first minute after the pick, look every few seconds: the pick is saved before the
browser has carried the answer to the LMS, so a worker woken by it looks too early, and most
LMSs make the column the moment the answer arrives (Canvas's module placements; Moodle when
the teacher saves the activity, usually at once). Thirty seconds of an empty column in a
gradebook the teacher just opened looked like a failure."""


def _wait_for_lms(db: Database, item_id: int) -> None:
    with db.begin() as session:
        item = session.get(LineItem, item_id)
        if item is None:
            return
        now = utcnow()
        picked_at = item.lms_makes_until - LMS_MAKES_COLUMN_GRACE if item.lms_makes_until else None
        just_picked = picked_at is not None and now - picked_at < LMS_COLUMN_SOON_FOR
        item.lease_until = now + (LMS_COLUMN_LOOK_SOON if just_picked else LMS_COLUMN_LOOK_AGAIN)


def _save_line_item(
    db: Database,
    config: WorkerConfig,
    item_id: int,
    context_id: int,
    url: str | None,
    error: LmsRequestError | None,
    *,
    replaced: str | None = None,
    known_url: str | None = None,
    hold_until: datetime | None = None,
) -> None:
    """Record the outcome; `replaced` is the URL of a column deleted in the LMS, `known_url`
    the column's URL when the worker took it, `hold_until` the end of the platform's pause."""
    now = utcnow()
    with db.begin() as session:
        item = session.get(LineItem, item_id)
        if item is None:
            return
        if item.lms_owned and item.url is not None and item.url != known_url:
            # A launch adopted the LMS's own column (`launch_columns`) while this worker looked
            # for or made one: the adopted one is the column the teacher sees.
            if url and url != item.url:
                LOG.warning(
                    "line item %s: a launch adopted %s meanwhile; %s is left unused",
                    item_id,
                    item.url,
                    url,
                )
            url = item.url
        if replaced is not None and error is None and item.url != replaced:
            replaced = None  # someone else already re-created it and re-queued its scores
        if url and url != item.url:
            item.lms_owned = False  # a column Pathways found or made replaces the LMS's own
        item.url = url or item.url
        if error is None:
            item.state, item.needs_update, item.last_error = LineItemState.READY, False, ""
            item.lease_until = item.lms_makes_until = None
            if replaced is not None:
                # The new column is empty: every learner's current level goes again,
                # superseding scores still waiting for the old one.
                session.flush()
                resent = services.requeue_current(
                    session, context_id=context_id, competency_ids=[item.competency_id]
                )
                item.last_error = column_recreated_note(item.label, len(resent))
                LOG.warning(
                    "line item %s was deleted in the LMS; re-created context=%s, "
                    "%d scores queued again",
                    item_id,
                    context_id,
                    len(resent),
                )
            LOG.info("line item ready context=%s line_item=%s", context_id, item_id)
            return
        item.last_error = without_nul(str(error))[:2000]
        if error.config:
            note_gradebook_error(session, {context_id: str(error)})
        if error.retryable or error.config:
            # At least as long as the LMS asked (Retry-After), as for a score.
            delay = config.config_retry if error.config else config.backoff(2, error.retry_after)
            item.lease_until = max(now + timedelta(seconds=delay), hold_until or now)
        else:
            item.state, item.lease_until = LineItemState.FAILED, None
        LOG.warning("line item %s failed context=%s: %s", item_id, context_id, error)


def hold_deleted_columns(session: Session, columns: Iterable[tuple[int, str]]) -> None:
    """Hold the columns whose URL answers 404 until `sync_line_items` re-creates them.

    :param columns: (line item id, the URL that answered 404) pairs.
    """
    for line_item_id, url in sorted(set(columns)):
        item = session.get(LineItem, line_item_id)
        # Only the column as this score knew it: another worker may have re-created it.
        if item is None or item.url != url or item.state is not LineItemState.READY:
            continue
        item.state, item.lease_until = LineItemState.PENDING, None
        item.last_error = column_deleted_note(item.label)
        LOG.warning("line item %s answers 404 context=%s", line_item_id, item.context_id)


def note_gradebook_error(session: Session, errors: dict[int, str]) -> None:
    """Show each course's problem that only an admin can fix (token, scopes, no AGS)."""
    for context_id, message in errors.items():
        session.execute(
            update(Gradebook)
            .where(Gradebook.context_id == context_id)
            .values(last_error=without_nul(message)[:2000])
        )
