"""What can go wrong in pathways, in words a teacher or student can act on."""

from __future__ import annotations


class PathwayNotFoundError(LookupError):
    """No such pathway, step, option or choice in this course."""


class StepNotFoundError(PathwayNotFoundError):
    pass


class OptionNotFoundError(PathwayNotFoundError):
    pass


class ChoiceNotFoundError(PathwayNotFoundError):
    pass


class ChoiceNotAllowedError(ValueError):
    """The student or teacher may not move this choice that way now; the message says why."""


class ParentCompetencyError(ValueError):
    """A step's work cannot be evidence for a competency with sub-competencies: its level is
    rolled up from theirs, and marking the work done with a level would fail."""


class PathwayInUseError(ValueError):
    """Students have chosen from it, so it can be archived but not deleted."""


class CopyError(ValueError):
    """Pathways cannot be copied as asked (a competency has no counterpart)."""
