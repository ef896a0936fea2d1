"""CSV and CASE import (all or nothing, every problem located), export round trip, copy."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from sqlalchemy.orm import Session

from lti_app.competencies import queries, services
from lti_app.competencies.errors import ImportFailed, ImportFailedError, ImportProblem
from lti_app.competencies.importing import (
    ImportSummary,
    copy_framework,
    export_csv,
    import_case,
    import_csv,
)
from lti_app.competencies.models import CompetencyKind
from tests.domain_fixtures import Course

FRAMEWORK = """code,title,description,parent_code,prerequisite_codes,kind
MATH,Mathematics,,,,
MATH.1,Fractions,"Add, subtract and compare fractions",MATH,,academic
MATH.2,Decimals,,MATH,MATH.1,academic
MATH.3,Percent,,MATH,MATH.1;MATH.2,
WORK,Work habits,Comes prepared,,,non_academic
"""


def snapshot(session: Session, context_id: int) -> list[tuple[Any, ...]]:
    """The framework as comparable values: codes instead of ids, in tree order."""
    competencies = queries.list_competencies(session, context_id=context_id, include_archived=True)
    code = {c.id: c.code for c in competencies}
    prerequisites = queries.prerequisite_map(session, context_id=context_id)
    return [
        (
            c.code,
            c.title,
            c.description,
            code.get(c.parent_id) if c.parent_id else None,
            sorted(code[p] for p in prerequisites.get(c.id, ())),
            c.kind,
            c.position,
        )
        for c in competencies
    ]


def problems_of(err: pytest.ExceptionInfo[ImportFailedError]) -> set[tuple[Any, str]]:
    return {(p.location, p.column) for p in err.value.problems}


def test_import_builds_the_framework(session: Session, course: Course) -> None:
    summary = import_csv(session, context_id=course.context_id, data=FRAMEWORK)
    assert summary == ImportSummary(created=5)
    assert snapshot(session, course.context_id) == [
        ("MATH", "Mathematics", "", None, [], CompetencyKind.ACADEMIC, 0),
        ("MATH.1", "Fractions", "Add, subtract and compare fractions", "MATH", [], "academic", 0),
        ("MATH.2", "Decimals", "", "MATH", ["MATH.1"], "academic", 1),
        ("MATH.3", "Percent", "", "MATH", ["MATH.1", "MATH.2"], "academic", 2),
        ("WORK", "Work habits", "Comes prepared", None, [], CompetencyKind.NON_ACADEMIC, 1),
    ]


def test_importing_the_same_file_twice_changes_nothing(session: Session, course: Course) -> None:
    import_csv(session, context_id=course.context_id, data=FRAMEWORK)
    before = snapshot(session, course.context_id)
    ids = {c.code: c.id for c in queries.list_competencies(session, context_id=course.context_id)}
    summary = import_csv(session, context_id=course.context_id, data=FRAMEWORK)
    assert summary == ImportSummary(unchanged=5)
    assert snapshot(session, course.context_id) == before
    after = {c.code: c.id for c in queries.list_competencies(session, context_id=course.context_id)}
    assert after == ids


def test_reimport_updates_by_code_and_leaves_others_alone(session: Session, course: Course) -> None:
    import_csv(session, context_id=course.context_id, data=FRAMEWORK)
    services.create_competency(session, context_id=course.context_id, code="ART", title="Art")
    changed = "code,title,prerequisite_codes\nMATH.3,Percentages,MATH.2\nNEW,New one,\n"
    summary = import_csv(session, context_id=course.context_id, data=changed)
    assert summary == ImportSummary(created=1, updated=1)
    percent = queries.get_competency_by_code(session, context_id=course.context_id, code="MATH.3")
    assert percent.title == "Percentages"
    math = queries.get_competency_by_code(session, context_id=course.context_id, code="MATH")
    assert percent.parent_id == math.id  # the file has no parent_code column: it stays
    prerequisites = queries.prerequisite_map(session, context_id=course.context_id)
    math2 = queries.get_competency_by_code(session, context_id=course.context_id, code="MATH.2")
    assert prerequisites[percent.id] == {math2.id}
    queries.get_competency_by_code(session, context_id=course.context_id, code="ART")


def test_a_file_of_codes_and_titles_only_renames(session: Session, course: Course) -> None:
    """A teacher fixing titles in a two-column sheet: nothing the sheet leaves out is touched
    (parent, prerequisites, description, kind), and the summary counts only the renamed one."""
    import_csv(session, context_id=course.context_id, data=FRAMEWORK)
    before = snapshot(session, course.context_id)
    data = "code,title\nMATH.3,Percentages\nMATH.1,Fractions\nWORK,Work habits\nNEW,New one\n"
    summary = import_csv(session, context_id=course.context_id, data=data)
    assert summary == ImportSummary(created=1, updated=1, unchanged=2)
    renamed = [("MATH.3", "Percentages", *row[2:]) if row[0] == "MATH.3" else row for row in before]
    new: tuple[Any, ...] = ("NEW", "New one", "", None, [], CompetencyKind.ACADEMIC, 2)
    assert snapshot(session, course.context_id) == [*renamed, new]


def test_an_empty_cell_in_a_column_the_file_has_clears_the_field(
    session: Session, course: Course
) -> None:
    import_csv(session, context_id=course.context_id, data=FRAMEWORK)
    data = "code,title,description,parent_code,prerequisite_codes,kind\nMATH.3,Percent,,,,\n"
    data += "WORK,Work habits,,,,\n"
    assert import_csv(session, context_id=course.context_id, data=data) == ImportSummary(updated=2)
    rows = {row[0]: row for row in snapshot(session, course.context_id)}
    assert rows["MATH.3"][:6] == ("MATH.3", "Percent", "", None, [], CompetencyKind.ACADEMIC)
    assert rows["WORK"][:6] == ("WORK", "Work habits", "", None, [], CompetencyKind.ACADEMIC)


def test_bom_blank_lines_crlf_and_header_case_are_accepted(
    session: Session, course: Course
) -> None:
    data = "\ufeffCode,Title,Kind\r\n\r\nA,Alpha,Non-Academic\r\n,,\r\nB,Beta,\r\n"
    summary = import_csv(session, context_id=course.context_id, data=data.encode("utf-8"))
    assert summary.created == 2
    a = queries.get_competency_by_code(session, context_id=course.context_id, code="A")
    assert a.kind is CompetencyKind.NON_ACADEMIC


def test_every_problem_is_reported_with_its_line_and_nothing_is_imported(
    session: Session, course: Course
) -> None:
    data = (
        "code,title,parent_code,prerequisite_codes,kind\n"  # line 1
        "A,Alpha,,,\n"  # line 2
        "\n"  # line 3: blank, still counted
        "A,Alpha again,,,\n"  # line 4: duplicate code
        "B,,A,,\n"  # line 5: missing title
        "C,Gamma,NOPE,,\n"  # line 6: unknown parent
        "D,Delta,,A;NOPE,\n"  # line 7: unknown prerequisite
        'E,"Epsilon\nspans two lines",,,robotic\n'  # lines 8-9: unknown kind
        "F,Phi,F,,\n"  # line 10: its own parent
        ",Nameless,,,\n"  # line 11: missing code
    )
    with pytest.raises(ImportFailedError) as err:
        import_csv(session, context_id=course.context_id, data=data)
    assert problems_of(err) == {
        (4, "code"),
        (5, "title"),
        (6, "parent_code"),
        (7, "prerequisite_codes"),
        (8, "kind"),
        (10, "parent_code"),
        (11, "code"),
    }
    assert "line 4" in str(err.value)
    assert queries.list_competencies(session, context_id=course.context_id) == []


def test_missing_required_columns_are_reported_on_line_one(
    session: Session, course: Course
) -> None:
    with pytest.raises(ImportFailed) as err:
        import_csv(session, context_id=course.context_id, data="name,description\nA,B\n")
    assert err.value.problems == [
        ImportProblem(1, "code", "required column is missing"),
        ImportProblem(1, "title", "required column is missing"),
    ]
    with pytest.raises(ImportFailedError) as err:
        import_csv(session, context_id=course.context_id, data="\n\n")
    assert problems_of(err) == {(1, "")}


def test_extra_values_and_bad_encoding_are_reported(session: Session, course: Course) -> None:
    with pytest.raises(ImportFailedError) as err:
        import_csv(session, context_id=course.context_id, data="code,title\nA,Alpha,beta\n")
    assert problems_of(err) == {(2, "")}
    with pytest.raises(ImportFailedError) as err:
        import_csv(session, context_id=course.context_id, data=b"code,title\nA,Alpha\nB,Caf\xe9\n")
    assert problems_of(err) == {(3, "")}


def test_cycles_are_reported(session: Session, course: Course) -> None:
    data = (
        "code,title,parent_code,prerequisite_codes\n"
        "A,Alpha,C,\n"  # line 2: A under C under B under A
        "B,Beta,A,\n"
        "C,Gamma,B,\n"
        "X,Ex,,Y\n"  # line 5: X needs Y needs X
        "Y,Why,,X\n"
    )
    with pytest.raises(ImportFailedError) as err:
        import_csv(session, context_id=course.context_id, data=data)
    assert problems_of(err) == {(2, "parent_code"), (5, "prerequisite_codes")}
    assert any("→" in p.message for p in err.value.problems)


def test_cycle_through_a_competency_already_in_the_course_is_reported(
    session: Session, course: Course
) -> None:
    import_csv(session, context_id=course.context_id, data="code,title\nA,Alpha\nB,Beta\n")
    import_csv(
        session, context_id=course.context_id, data="code,title,prerequisite_codes\nB,Beta,A\n"
    )
    with pytest.raises(ImportFailedError) as err:
        import_csv(
            session,
            context_id=course.context_id,
            data="code,title,prerequisite_codes\nA,Alpha,B\n",
        )
    assert problems_of(err) == {(2, "prerequisite_codes")}


def test_export_round_trips_into_an_empty_course(
    session: Session, course: Course, other_course: Course
) -> None:
    import_csv(session, context_id=course.context_id, data=FRAMEWORK)
    # Give the framework an order that is not the file's, and a tricky value.
    math = queries.get_competency_by_code(session, context_id=course.context_id, code="MATH")
    work = queries.get_competency_by_code(session, context_id=course.context_id, code="WORK")
    services.reorder_competencies(
        session, context_id=course.context_id, parent_id=None, ordered_ids=[work.id, math.id]
    )
    services.edit_competency(
        session,
        context_id=course.context_id,
        competency_id=work.id,
        description='Says "please",\nand thanks',
    )
    exported = export_csv(session, context_id=course.context_id)
    import_csv(session, context_id=other_course.context_id, data=exported)
    assert snapshot(session, other_course.context_id) == snapshot(session, course.context_id)
    assert export_csv(session, context_id=other_course.context_id) == exported


def test_export_neutralises_formulas_and_still_round_trips(
    session: Session, course: Course, other_course: Course
) -> None:
    data = 'code,title,description\n"=HYPERLINK(""http://evil.test"")",+SUM(1),-minus\n'
    import_csv(session, context_id=course.context_id, data=data)
    exported = export_csv(session, context_id=course.context_id)
    cells = [cell for row in csv.reader(io.StringIO(exported)) for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))]
    import_csv(session, context_id=other_course.context_id, data=exported)
    assert snapshot(session, other_course.context_id) == snapshot(session, course.context_id)
    (imported,) = queries.list_competencies(session, context_id=other_course.context_id)
    assert (imported.code, imported.title) == ('=HYPERLINK("http://evil.test")', "+SUM(1)")


def test_export_guards_formulas_after_a_semicolon_and_still_round_trips(
    session: Session, course: Course, other_course: Course
) -> None:
    # Excel where ";" is the list separator (much of Europe) splits a .csv at every ";".
    title = 'Reading;=HYPERLINK("http://evil.test");+1'
    description = "Plain; text;-1;'@typed with its quote"
    services.create_competency(
        session, context_id=course.context_id, code="R", title=title, description=description
    )
    exported = export_csv(session, context_id=course.context_id)
    pieces = [p for row in csv.reader(io.StringIO(exported)) for c in row for p in c.split(";")]
    assert not [p for p in pieces if p.startswith(("=", "+", "-", "@"))]
    import_csv(session, context_id=other_course.context_id, data=exported)
    (imported,) = queries.list_competencies(session, context_id=other_course.context_id)
    assert (imported.title, imported.description) == (title, description)


def test_parent_archived_in_the_course_is_reported(session: Session, course: Course) -> None:
    import_csv(session, context_id=course.context_id, data=FRAMEWORK)
    math = queries.get_competency_by_code(session, context_id=course.context_id, code="MATH")
    services.archive_competency(session, context_id=course.context_id, competency_id=math.id)
    with pytest.raises(ImportFailedError) as err:
        import_csv(session, context_id=course.context_id, data="code,title,parent_code\nN,N,MATH\n")
    assert problems_of(err) == {(2, "parent_code")}
    # Bringing the parent back in the same file is fine: the file unarchives what it names.
    data = "code,title,parent_code\nMATH,Mathematics,\nN,N,MATH\n"
    assert import_csv(session, context_id=course.context_id, data=data).created == 1
    assert not math.is_archived


def test_export_leaves_out_archived_competencies_and_their_links(
    session: Session, course: Course, other_course: Course
) -> None:
    import_csv(session, context_id=course.context_id, data=FRAMEWORK)
    math1 = queries.get_competency_by_code(session, context_id=course.context_id, code="MATH.1")
    services.archive_competency(session, context_id=course.context_id, competency_id=math1.id)
    exported = export_csv(session, context_id=course.context_id)
    assert "MATH.1" not in exported
    import_csv(session, context_id=other_course.context_id, data=exported)
    assert len(queries.list_competencies(session, context_id=other_course.context_id)) == 4


def case_package() -> dict[str, Any]:
    doc = "doc-1"

    def item(identifier: str, code: str | None, statement: str) -> dict[str, Any]:
        found: dict[str, Any] = {"identifier": identifier, "fullStatement": statement}
        if code is not None:
            found["humanCodingScheme"] = code
        return found

    def link(identifier: str, kind: str, origin: str, destination: str, **extra: Any) -> Any:
        return {
            "identifier": identifier,
            "associationType": kind,
            "originNodeURI": {"identifier": origin, "uri": f"https://case.test/{origin}"},
            "destinationNodeURI": {"identifier": destination},
            **extra,
        }

    return {
        "CFDocument": {"identifier": doc, "title": "Science"},
        "CFItems": [
            item("i-sci", "SCI", "Science practices"),
            item("i-2", "SCI.2", "Analyze data " + "carefully " * 30),
            item("i-1", "SCI.1", "Ask questions"),
        ],
        "CFAssociations": [
            link("a-1", "isChildOf", "i-sci", doc),
            link("a-2", "isChildOf", "i-1", "i-sci", sequenceNumber=1),
            link("a-3", "isChildOf", "i-2", "i-sci", sequenceNumber=2),
            link("a-4", "precedes", "i-1", "i-2"),
            link("a-5", "exemplar", "i-1", "i-2"),
        ],
    }


def test_case_import_maps_codes_hierarchy_order_and_prerequisites(
    session: Session, course: Course
) -> None:
    summary = import_case(
        session, context_id=course.context_id, data=json.dumps(case_package()).encode()
    )
    assert summary.created == 3
    rows = snapshot(session, course.context_id)
    assert [(r[0], r[3], r[4], r[6]) for r in rows] == [
        ("SCI", None, [], 0),
        ("SCI.1", "SCI", [], 0),
        ("SCI.2", "SCI", ["SCI.1"], 1),
    ]
    analyze = queries.get_competency_by_code(session, context_id=course.context_id, code="SCI.2")
    assert len(analyze.title) <= 200
    assert analyze.title.endswith("…")
    assert analyze.description.startswith("Analyze data carefully")
    assert import_case(session, context_id=course.context_id, data=case_package()) == (
        ImportSummary(unchanged=3)
    )


def test_case_import_keeps_the_description_and_kind_case_does_not_carry(
    session: Session, course: Course
) -> None:
    """A CASE item whose statement is its title carries no description, and CASE has no kind:
    the teacher's own description and a non-academic kind survive importing the package again.
    What CASE does carry (the hierarchy, a long statement) still comes from the package."""
    data = "code,title,description,kind\nSCI.1,Ask questions,See the wall chart,non_academic\n"
    data += "SCI.2,Analyze data,Mine,non_academic\n"
    import_csv(session, context_id=course.context_id, data=data)
    summary = import_case(session, context_id=course.context_id, data=case_package())
    assert summary == ImportSummary(created=1, updated=2)
    rows = {row[0]: row for row in snapshot(session, course.context_id)}
    assert rows["SCI.1"][:6] == (
        "SCI.1",
        "Ask questions",
        "See the wall chart",
        "SCI",
        [],
        CompetencyKind.NON_ACADEMIC,
    )
    assert rows["SCI.2"][2].startswith("Analyze data carefully")  # the whole statement
    assert rows["SCI.2"][3:6] == ("SCI", ["SCI.1"], CompetencyKind.NON_ACADEMIC)
    assert rows["SCI"][2:6] == ("", None, [], CompetencyKind.ACADEMIC)
    assert import_case(session, context_id=course.context_id, data=case_package()) == (
        ImportSummary(unchanged=3)
    )


def test_case_problems_name_the_identifier_and_field(session: Session, course: Course) -> None:
    package = case_package()
    package["CFItems"].append({"identifier": "i-x", "fullStatement": "No code"})
    package["CFItems"].append({"identifier": "i-y", "humanCodingScheme": "SCI.1"})
    package["CFAssociations"].append(
        {
            "identifier": "a-9",
            "associationType": "isChildOf",
            "originNodeURI": {"identifier": "i-1"},
            "destinationNodeURI": {"identifier": "i-missing"},
        }
    )
    with pytest.raises(ImportFailedError) as err:
        import_case(session, context_id=course.context_id, data=package)
    assert ("a-9", "isChildOf") in problems_of(err)  # i-1 already has a parent
    package["CFAssociations"].pop()
    with pytest.raises(ImportFailedError) as err:
        import_case(session, context_id=course.context_id, data=package)
    assert problems_of(err) == {
        ("i-x", "humanCodingScheme"),
        ("i-y", "fullStatement"),
        ("i-y", "humanCodingScheme"),  # duplicate of i-1's code
    }
    with pytest.raises(ImportFailedError) as err:
        import_case(session, context_id=course.context_id, data="{not json")
    assert problems_of(err) == {("CFPackage", "")}
    with pytest.raises(ImportFailedError) as err:
        import_case(session, context_id=course.context_id, data={"CFItems": []})
    assert problems_of(err) == {("CFDocument", "identifier")}
    assert queries.list_competencies(session, context_id=course.context_id) == []


def test_case_precedes_cycle_is_reported(session: Session, course: Course) -> None:
    package = case_package()
    package["CFAssociations"].append(
        {
            "identifier": "a-6",
            "associationType": "precedes",
            "originNodeURI": {"identifier": "i-2"},
            "destinationNodeURI": {"identifier": "i-1"},
        }
    )
    with pytest.raises(ImportFailedError) as err:
        import_case(session, context_id=course.context_id, data=package)
    assert [p.column for p in err.value.problems] == ["precedes"]


def test_copy_framework_returns_an_id_map(
    session: Session, course: Course, other_course: Course
) -> None:
    import_csv(session, context_id=course.context_id, data=FRAMEWORK)
    mapping = copy_framework(
        session, from_context_id=course.context_id, to_context_id=other_course.context_id
    )
    source = queries.list_competencies(session, context_id=course.context_id)
    assert set(mapping) == {c.id for c in source}
    for competency in source:
        copied = queries.get_competency(
            session, context_id=other_course.context_id, competency_id=mapping[competency.id]
        )
        assert copied.code == competency.code
    assert snapshot(session, other_course.context_id) == snapshot(session, course.context_id)
    again = copy_framework(
        session, from_context_id=course.context_id, to_context_id=other_course.context_id
    )
    assert again == mapping
