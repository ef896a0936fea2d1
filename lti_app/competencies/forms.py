"""Read the competency editor's forms into plain values (the services validate the rules)."""

from __future__ import annotations

from dataclasses import dataclass, field

from werkzeug.datastructures import MultiDict

from lti_app.competencies.models import CompetencyKind
from lti_app.courses.common import optional_id, parse_id

KIND_LABELS = {
    CompetencyKind.ACADEMIC: "Academic",
    CompetencyKind.NON_ACADEMIC: "Non-academic (e.g. work habits, social skills)",
}
IMPORT_FORMATS = {"csv": "CSV", "case": "1EdTech CASE JSON"}


@dataclass
class CompetencyForm:
    """What the create and edit forms post."""

    code: str = ""
    title: str = ""
    description: str = ""
    kind: CompetencyKind = CompetencyKind.ACADEMIC
    parent_id: int | None = None
    prerequisite_ids: list[int] = field(default_factory=list)

    @classmethod
    def from_form(cls, form: MultiDict[str, str]) -> CompetencyForm:
        try:
            kind = CompetencyKind(form.get("kind", CompetencyKind.ACADEMIC.value))
        except ValueError as err:
            raise ValueError("Choose academic or non-academic.") from err
        return cls(
            code=form.get("code", ""),
            title=form.get("title", ""),
            description=form.get("description", ""),
            kind=kind,
            parent_id=optional_id(form.get("parent_id")),
            prerequisite_ids=[
                parse_id(v) for v in dict.fromkeys(form.getlist("prerequisite_ids")) if v.strip()
            ],
        )
