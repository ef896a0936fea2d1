"""What can go wrong with a competency framework; views map these to HTTP statuses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lti_app.unicode_text import shown_whole


class CompetencyError(Exception):
    """A framework change that breaks a rule; the message is fit to show a teacher."""


class CompetencyNotFoundError(CompetencyError, LookupError):
    """No such competency in this course (it may exist in another one)."""

    def __init__(self, competency_id: int | str) -> None:
        super().__init__(f"no competency {competency_id} in this course")
        self.competency_id = competency_id


class CompetencyCycleError(CompetencyError, ValueError):
    """A parent or prerequisite change would make a competency depend on itself."""


class InvalidCompetencyError(CompetencyError, ValueError):
    """A value is missing, too long, duplicated or otherwise not acceptable."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        """The form field at fault ("code", "title"), where it is one field."""


@dataclass(frozen=True)
class ImportProblem:
    """One thing wrong with an imported file.

    `location` is the CSV line number as a text editor counts lines (the header is line 1,
    blank lines count, a quoted value with line breaks takes several lines) or the CASE
    identifier.
    """

    location: int | str
    column: str
    message: str
    row: int | None = field(default=None, compare=False)
    """The row a spreadsheet shows for a CSV line: it differs after a value with line breaks."""

    def __post_init__(self) -> None:
        # A CASE identifier may hold half a character (JSON's "\ud83d"), which no page can
        # encode: shown with "\ufffd" in its place, the teacher still sees which item it is.
        for name in ("location", "column", "message"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, shown_whole(value))

    @property
    def spreadsheet_row(self) -> int | None:
        """The spreadsheet row when it is not the line number (else None)."""
        return self.row if self.row is not None and self.row != self.location else None

    def __str__(self) -> str:
        if isinstance(self.location, int):
            where = f"line {self.location}"
            if self.spreadsheet_row is not None:
                where += f" (row {self.spreadsheet_row} in a spreadsheet)"
        else:
            where = self.location
        return (
            f"{where}, {self.column}: {self.message}" if self.column else f"{where}: {self.message}"
        )


class ImportFailedError(CompetencyError, ValueError):
    """An import changed nothing because of these problems (all of them, not the first)."""

    def __init__(self, problems: Sequence[ImportProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "import failed")


# The names the issue uses; the Error-suffixed names follow the style guide.
CompetencyNotFound = CompetencyNotFoundError
ImportFailed = ImportFailedError
