"""Frameworks no course has, sent anyway: JSON nested thousands deep (a 500 from the parser's
recursion), a parent chain hundreds deep (imported, then every page that walks the tree was a
500 for good), and CASE packages the CSV reader would refuse (over the row limit; a code or
statement that is an object or a number, stored as its Python repr)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.orm import Session

from lti_app.competencies.errors import ImportFailedError, InvalidCompetencyError
from lti_app.competencies.graph import MAX_DEPTH
from lti_app.competencies.importing import MAX_ROWS, import_case, import_csv
from lti_app.competencies.reading import parse_csv
from lti_app.competencies.services import create_competency, edit_competency
from tests.competencies.conftest import *  # noqa: F403 - fixtures
from tests.courses.frames import unique


@pytest.mark.parametrize("chosen_format", ["case", "csv"])
def test_json_nested_thousands_deep_is_refused_in_plain_words(
    teacher: Any, chosen_format: str
) -> None:
    answer = teacher.post("/competencies/import", {"format": chosen_format, "text": "[" * 100_000})
    assert answer.status_code == 400
    assert "Traceback" not in answer.text


def _chain(prefix: str, levels: int) -> str:
    rows = [f"{prefix}.{i},Level {i},{f'{prefix}.{i - 1}' if i else ''}" for i in range(levels)]
    return "\n".join(["code,title,parent_code", *rows])


def test_a_parent_chain_deeper_than_a_framework_goes_is_refused_naming_the_line(
    teacher: Any,
) -> None:
    prefix = unique("CH")
    answer = teacher.post(
        "/competencies/import", {"format": "csv", "text": _chain(prefix, MAX_DEPTH + 580)}
    )
    assert answer.status_code == 400
    assert f"Line {MAX_DEPTH + 2}" in answer.text  # the first row past the limit (header is 1)
    assert f"at most {MAX_DEPTH} levels deep" in answer.text
    assert teacher.get("/competencies/").status_code == 200


def test_a_framework_as_deep_as_allowed_imports_and_every_page_shows_it(teacher: Any) -> None:
    prefix = unique("OK")
    answer = teacher.post(
        "/competencies/import", {"format": "csv", "text": _chain(prefix, MAX_DEPTH)}
    )
    assert answer.status_code == 303
    page = teacher.get("/competencies/")
    assert page.status_code == 200
    assert f"{prefix}.{MAX_DEPTH - 1}" in page.text
    assert teacher.get("/competencies/export.csv").status_code == 200


def test_the_editor_keeps_a_framework_within_the_depth_too(session: Session, course: Any) -> None:
    parent_id = None
    ids = []
    for level in range(MAX_DEPTH):
        made = create_competency(
            session, context_id=course.context_id, code=f"D{level}", title="x", parent_id=parent_id
        )
        ids.append(made.id)
        parent_id = made.id
    with pytest.raises(InvalidCompetencyError, match="levels deep"):
        create_competency(
            session, context_id=course.context_id, code="TOO", title="x", parent_id=parent_id
        )
    # Moving a branch of two under the deepest but one would put its child one level too deep.
    top = create_competency(session, context_id=course.context_id, code="B0", title="x")
    create_competency(session, context_id=course.context_id, code="B1", title="x", parent_id=top.id)
    with pytest.raises(InvalidCompetencyError, match="levels deep"):
        edit_competency(
            session, context_id=course.context_id, competency_id=top.id, parent_id=ids[-2]
        )


def _package(items: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"CFDocument": {"identifier": "doc"}, "CFItems": items, "CFAssociations": []}
    ).encode()


def test_a_case_package_over_the_row_limit_is_refused_like_a_csv(
    session: Session, course: Any
) -> None:
    items = [
        {"identifier": f"item-{i}", "humanCodingScheme": f"C{i}", "fullStatement": f"S {i}"}
        for i in range(MAX_ROWS + 1)
    ]
    with pytest.raises(ImportFailedError) as refused:
        import_case(session, context_id=course.context_id, data=_package(items))
    [problem] = refused.value.problems
    assert problem.location == f"item-{MAX_ROWS}"
    assert f"at most {MAX_ROWS:,}" in str(problem)


@pytest.mark.parametrize(
    "item",
    [
        {"identifier": "i1", "humanCodingScheme": {"x": 1}, "fullStatement": ["a", "b"]},
        {"identifier": "i1", "humanCodingScheme": True, "fullStatement": 12},
    ],
    ids=["object-and-list", "boolean-and-number"],
)
def test_case_fields_that_are_not_text_are_refused_by_name(
    session: Session, course: Any, item: dict[str, Any]
) -> None:
    with pytest.raises(ImportFailedError) as refused:
        import_case(session, context_id=course.context_id, data=_package([item]))
    named = {(p.location, p.column) for p in refused.value.problems}
    assert named == {("i1", "humanCodingScheme"), ("i1", "fullStatement")}


def test_a_header_with_a_hidden_character_is_named_as_such() -> None:
    with pytest.raises(ImportFailedError) as refused:
        parse_csv("code\x00,title\nA,Cells\n")
    said = [str(p) for p in refused.value.problems]
    assert any("code?: holds a hidden character: retype it as code" in s for s in said), said
    assert all("\x00" not in s for s in said)


def test_a_prerequisite_named_twice_counts_once(session: Session, course: Any) -> None:
    rows, _ = parse_csv("code,title,prerequisite_codes\nA,Cells,B;;B\nB,Tissues,\nC,Organs,C;C\n")
    assert rows[0].prerequisite_codes == ["B"]
    with pytest.raises(ImportFailedError) as refused:
        import_csv(
            session,
            context_id=course.context_id,
            data="code,title,prerequisite_codes\nC,Organs,C;;C\n",
        )
    assert [str(p) for p in refused.value.problems] == [
        "line 2, prerequisite_codes: a competency cannot require itself"
    ]


def test_a_header_of_thousands_of_columns_is_refused_naming_the_columns_read(
    teacher: Any,
) -> None:
    """Each unknown name was compared with the six columns Pathways reads (a million names:
    half a minute of a worker), and each repeated name listed (a 200 MB answer)."""
    for extra in ([f"c{i}" for i in range(200_000)], ["xx"] * 200_000):
        body = "code,title," + ",".join(extra) + "\nA1,Alpha\n"
        answer = teacher.post(
            "/competencies/import",
            {"format": "csv"},
            files={"file": ("wide.csv", body.encode(), "text/csv")},
        )
        assert answer.status_code == 400
        assert "200,002 columns" in answer.text
        assert "code, title, description" in answer.text
        assert len(answer.content) < 100_000


def test_reading_stops_at_the_first_row_over_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import lti_app.competencies.reading as reading

    parse_record = reading._parse_csv_record
    read: list[int] = []

    def counting(*args: Any) -> Any:
        read.append(1)
        return parse_record(*args)

    monkeypatch.setattr(reading, "_parse_csv_record", counting)
    with pytest.raises(ImportFailedError) as refused:
        parse_csv("code,title\n" + "A,B\n" * (MAX_ROWS * 4))
    [problem] = refused.value.problems
    assert f"more than {MAX_ROWS:,} competencies" in problem.message
    assert len(read) == MAX_ROWS + 1


def test_a_case_number_too_long_to_read_is_named_in_plain_words(
    session: Session, course: Any
) -> None:
    data = (
        b'{"CFDocument": {"identifier": "d"}, "CFItems": [{"identifier": "i", '
        b'"humanCodingScheme": "C1", "fullStatement": "S", "sequenceNumber": '
        + b"9" * 5000
        + b"}]}"
    )
    with pytest.raises(ImportFailedError) as refused:
        import_case(session, context_id=course.context_id, data=data)
    [problem] = refused.value.problems
    assert "number too long" in problem.message
    assert "set_int_max_str_digits" not in str(problem)
