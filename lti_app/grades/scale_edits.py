"""Scale edits and renamed competencies: session event listeners that keep the LMS gradebook
in step with changes made elsewhere.

They are registered when this module is imported, which `lti_app/grades/__init__.py` does, so
any import of the grades feature registers them.
"""

from __future__ import annotations

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, UOWTransaction

from lti_app.competencies.models import Competency
from lti_app.grades.gradebook import column_label, get_gradebook
from lti_app.grades.models import LineItem
from lti_app.grades.services import notify_worker, rescore_course
from lti_app.mastery.models import MasteryLevel, MasteryScale

# A scale edit (mastery's `update_scale`) changes the points a level is worth, or the top
# level's points, without changing anyone's level; mastery then reports no change and nothing
# would reach the LMS. Mastery does not know the gradebook, so the gradebook watches the
# session: a flush that changes level points, names or the set of levels marks the course,
# and the commit re-scores it in the same transaction. A renamed competency renames its column
# the same way (the worker then updates the LMS's line item). A renamed level takes its entry in
# the course's percentage table (keyed by level name) with it, before that re-score reads it.

_RESCORE_KEY = "pathways_grades_rescore_contexts"


def _scale_edits(session: Session) -> set[int]:
    with session.no_autoflush:
        return _scale_edits_in(session)


def _scale_edits_in(session: Session) -> set[int]:
    contexts: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, MasteryLevel):
            scale = obj.scale
            if scale is None or scale in session.new:
                continue  # a new course's default scale: no score exists yet
            state = inspect(obj)
            if (
                obj in session.new
                or obj in session.deleted
                or state.attrs.points.history.has_changes()
                or state.attrs.name.history.has_changes()
            ):
                contexts.add(scale.context_id)
        elif (
            isinstance(obj, MasteryScale)
            and obj not in session.new
            and inspect(obj).attrs.levels.history.has_changes()
        ):
            contexts.add(obj.context_id)
    return contexts


@event.listens_for(Session, "before_flush")
def _note_scale_edits(session: Session, _context: UOWTransaction, _instances: object) -> None:
    edited = _scale_edits(session)
    if edited:
        session.info.setdefault(_RESCORE_KEY, set()).update(edited)
        _carry_renamed_percentages(session)
    _relabel_renamed_columns(session)


def _carry_renamed_percentages(session: Session) -> None:
    """Move a renamed level's percentage to its new name (in this flush).

    `update_scale` keeps level rows by position, so a row whose name changed is a rename only
    when its old name left the scale; when the old name is still there (a level inserted or
    the order changed), the name still means the level the table's entry was set for.
    """
    renames: dict[int, dict[str, str]] = {}
    for obj in session.dirty:
        if not isinstance(obj, MasteryLevel) or obj.scale is None:
            continue
        history = inspect(obj).attrs.name.history
        if not history.deleted or not history.added:
            continue
        old, new = history.deleted[0], history.added[0]
        if old in {level.name for level in obj.scale.levels}:
            continue
        if new in _names_before_the_edit(session, obj.scale.levels):
            continue  # a level removed below it: the rows moved up, no name changed meaning
        renames.setdefault(obj.scale.context_id, {})[old] = new
    with session.no_autoflush:
        for context_id, moved in renames.items():
            gradebook = get_gradebook(session, context_id=context_id)
            if gradebook is None or not gradebook.conversion:
                continue
            table = dict(gradebook.conversion)
            carried = {new: table[old] for old, new in moved.items() if old in table}
            for old, new in moved.items():
                # A stale entry under the new name (a level removed earlier) must not apply.
                table.pop(old, None)
                table.pop(new, None)
            table.update(carried)
            if table != gradebook.conversion:
                gradebook.conversion = table  # a new dict: JSON columns track assignment only


def _relabel_renamed_columns(session: Session) -> None:
    """A competency whose code or title changed renames its LMS column (in this flush)."""
    renamed = {
        obj.id: obj
        for obj in session.dirty
        if isinstance(obj, Competency)
        and obj.id is not None
        and (
            inspect(obj).attrs.code.history.has_changes()
            or inspect(obj).attrs.title.history.has_changes()
        )
    }
    if not renamed:
        return
    with session.no_autoflush:
        items = session.scalars(select(LineItem).where(LineItem.competency_id.in_(renamed)))
        changed = False
        for item in items:
            label = column_label(renamed[item.competency_id])
            if item.label != label:
                item.label, item.needs_update, changed = label, True, True
    if changed:
        notify_worker(session)


@event.listens_for(Session, "before_commit")
def _rescore_edited_scales(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint; the outer commit re-scores
    if not session.info.get(_RESCORE_KEY) and not _scale_edits(session):
        return
    session.flush()  # edits made since the last flush are noted too
    contexts: set[int] = session.info.pop(_RESCORE_KEY, set())
    for context_id in sorted(contexts):
        rescore_course(session, context_id=context_id)


@event.listens_for(Session, "after_rollback")
def _forget_scale_edits(session: Session) -> None:
    session.info.pop(_RESCORE_KEY, None)


def _names_before_the_edit(session: Session, levels: list[MasteryLevel]) -> set[str]:
    names = set()
    for level in [*levels, *(o for o in session.deleted if isinstance(o, MasteryLevel))]:
        state = inspect(level)
        if state.pending or state.transient:
            continue  # a level this edit adds had no name before it
        history = state.attrs.name.history
        names.update(history.deleted or history.unchanged or [level.name])
    return names
