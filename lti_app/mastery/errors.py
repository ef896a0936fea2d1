"""What can go wrong when recording evidence or changing a scale; views map these to HTTP."""

from __future__ import annotations

NUL_MESSAGE = (
    "the {what} contains an invisible NUL character (code 0), which cannot be saved; delete it "
    "or retype the {what}"
)
"""Why text with a NUL is refused (PostgreSQL text cannot hold it); `{what}` names the field."""


class MasteryError(Exception):
    """A mastery change that breaks a rule; the message is fit to show a teacher."""


class EvidenceNotFoundError(MasteryError, LookupError):
    """No such evidence in this course (it may exist in another one)."""

    def __init__(self, evidence_id: int) -> None:
        super().__init__(f"no evidence {evidence_id} in this course")
        self.evidence_id = evidence_id


class InvalidEvidenceError(MasteryError, ValueError):
    """Evidence that cannot be recorded or changed as asked."""

    def __init__(self, message: str, *, about: str | None = None) -> None:
        super().__init__(message)
        self.about = about
        """The argument refused ("competency_id", "points", "observed_at", "note"), if one is:
        a form marks the field that holds it."""


class InvalidScaleError(MasteryError, ValueError):
    """A scale, level or calculation setting that is not acceptable."""

    def __init__(self, message: str, *, about: str | None = None, level: int | None = None) -> None:
        super().__init__(message)
        self.about = about
        """What is refused: "weight", "n", or a level's "name", "points", "colour" or
        "mastery"; None for the scale as a whole."""
        self.level = level
        """The index, in the levels given, of the level refused, if one is."""
