"""Competency import with the files teachers really make, and the mistakes they really make.

Files as Excel ("CSV UTF-8", plain "CSV", "Unicode Text"), Google Sheets, LibreOffice and text
editors write them; every bad file gets a plain answer that names where the problem is, and an
import that fails leaves the course exactly as it was.

Line numbers are the lines a text editor shows, the header being line 1: blank lines count, and
a value with line breaks inside quotes takes several lines. Where that differs from the row a
spreadsheet shows (after such a value), a problem names the spreadsheet row too.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import zipfile
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from lti_app.competencies import queries
from lti_app.competencies.errors import ImportFailedError, ImportProblem
from lti_app.competencies.importing import MAX_ROWS, export_csv, import_case, import_csv
from lti_app.competencies.models import Competency, CompetencyKind
from lti_app.db import Database
from tests.competencies.conftest import competencies_by_code
from tests.competencies.test_importing import FRAMEWORK, case_package, snapshot
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Frame, Ids, frame, make_competency, second_lms, unique
from tests.domain_fixtures import Course

COLUMNS = ["code", "title", "description", "parent_code", "prerequisite_codes", "kind"]


def table(rows: list[list[str]], *, delimiter: str = ",") -> str:
    """Rows written the way spreadsheets write them: CRLF, quoted only where needed."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def refused(session: Session, course: Course, data: str | bytes) -> list[ImportProblem]:
    """Import `data`, expect it refused, and check the course did not change at all."""
    before = snapshot(session, course.context_id)
    with pytest.raises(ImportFailedError) as err:
        import_csv(session, context_id=course.context_id, data=data)
    assert snapshot(session, course.context_id) == before
    return err.value.problems


def where(problems: list[ImportProblem]) -> set[tuple[int | str, str]]:
    return {(p.location, p.column) for p in problems}


def by_code(session: Session, course: Course) -> dict[str, Competency]:
    return {c.code: c for c in queries.list_competencies(session, context_id=course.context_id)}


# --- Encodings: what each program writes --------------------------------------------------


def test_excel_csv_utf8_keeps_accents_curly_quotes_and_cells_with_line_breaks(
    session: Session, course: Course
) -> None:
    rows = [
        COLUMNS,
        ["LANG", "Français — écriture", "", "", "", ""],
        # Excel ends rows with CRLF but writes a cell's Alt+Enter line break as a bare LF.
        [
            "LANG.1",
            "Ñandú: “comillas” y \u2018apóstrofos\u2019",
            'Uses "quotes", commas,\nand',
            "LANG",
            "",
            "",
        ],
    ]
    data = ("\ufeff" + table(rows)).encode("utf-8")
    assert import_csv(session, context_id=course.context_id, data=data).created == 2
    found = by_code(session, course)
    assert found["LANG"].title == "Français — écriture"
    assert found["LANG.1"].title == "Ñandú: “comillas” y \u2018apóstrofos\u2019"
    assert found["LANG.1"].description == 'Uses "quotes", commas,\nand'
    assert found["LANG.1"].parent_id == found["LANG"].id
    assert import_csv(session, context_id=course.context_id, data=data).unchanged == 2


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"], ids=["windows", "unix", "classic-mac"])
def test_plain_excel_csv_in_windows_1252_is_refused_at_the_line_of_the_first_accent(
    session: Session, course: Course, newline: str
) -> None:
    text = newline.join(["code,title", "A,Alpha", "", "B,Beta", "C,“Café” olé", ""])
    problems = refused(session, course, text.encode("cp1252"))
    assert [p.location for p in problems] == [5]
    assert "UTF-8" in problems[0].message


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_excel_unicode_text_utf16_tab_separated_is_read(
    session: Session, course: Course, encoding: str
) -> None:
    rows = [
        ["code", "title", "description", "parent_code"],
        ["SCI", "Sciences", "", ""],
        ["SCI.1", "Énergie “verte”", "Watts\tand\njoules", "SCI"],
    ]
    data = "\ufeff".encode(encoding) + table(rows, delimiter="\t").encode(encoding)
    assert import_csv(session, context_id=course.context_id, data=data).created == 2
    found = by_code(session, course)
    assert found["SCI.1"].title == "Énergie “verte”"
    assert found["SCI.1"].description == "Watts\tand\njoules"
    assert found["SCI.1"].parent_id == found["SCI"].id


@pytest.mark.parametrize(
    "delimiter", [";", "\t"], ids=["semicolon-european-excel", "tab-google-sheets-tsv"]
)
def test_files_separated_by_semicolons_or_tabs_are_read(
    session: Session, course: Course, delimiter: str
) -> None:
    rows = [
        COLUMNS,
        ["M", "Mathématiques", "", "", "", ""],
        ["M.1", "Brüche", "Länge 3,5 cm; Breite 2,0 cm", "M", "", "academic"],
        ["M.2", "Dezimalzahlen", "", "M", "M.1", ""],
        ["M.3", "Prozent", "", "M", "M.1;M.2", ""],
    ]
    data = "\ufeff" + table(rows, delimiter=delimiter)
    assert import_csv(session, context_id=course.context_id, data=data.encode()).created == 4
    found = by_code(session, course)
    assert found["M.1"].description == "Länge 3,5 cm; Breite 2,0 cm"
    prerequisites = queries.prerequisite_map(session, context_id=course.context_id)
    assert prerequisites[found["M.3"].id] == {found["M.1"].id, found["M.2"].id}


@pytest.mark.parametrize("first_line", ["sep=;", "SEP=;;;", '"sep=;"'])
def test_excels_separator_line_is_read_and_rows_keep_their_spreadsheet_numbers(
    session: Session, course: Course, first_line: str
) -> None:
    """Excel writes "sep=;" above the header (and hides it when it opens the file): it was
    taken for a header missing every column."""
    text = f"{first_line}\r\ncode;title;parent_code\r\nA;Alpha;\r\nB;Beta;NOPE\r\n"
    [problem] = refused(session, course, text.encode())
    assert (problem.location, problem.column) == (4, "parent_code")
    assert "line 4 (row 3 in a spreadsheet)" in str(problem)
    fixed = text.replace("NOPE", "A")
    assert import_csv(session, context_id=course.context_id, data=fixed.encode()).created == 2


def test_a_spanish_header_is_told_which_column_each_name_is(
    session: Session, course: Course
) -> None:
    """A header in Pathways' other language got only "required column is missing"."""
    text = "Código,Título,Descripción,Padre,Prerrequisitos,Tipo\nA,Álgebra,,,,\n"
    problems = refused(session, course, text.encode())
    hints = {p.column: p.message for p in problems if "rename it" in p.message}
    assert {column: hint.split("rename it ")[1].split()[0] for column, hint in hints.items()} == {
        "Código": "code",
        "Título": "title",
        "Descripción": "description",
        "Padre": "parent_code",
        "Prerrequisitos": "prerequisite_codes",
        "Tipo": "kind",
    }


# --- Line endings, quotes, line numbers --------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "code,title,parent_code\r\nA,Alpha,\r\n\r\nB,Beta,NOPE\r\nC,,A\r\n",
        "code,title,parent_code\rA,Alpha,\r\rB,Beta,NOPE\rC,,A\r",
        "code,title,parent_code\r\nA,Alpha,\n\rB,Beta,NOPE\rC,,A\n",
    ],
    ids=["crlf", "cr-only", "mixed"],
)
def test_line_numbers_are_the_text_editors_whatever_the_line_endings(
    session: Session, course: Course, text: str
) -> None:
    problems = refused(session, course, text.encode())
    assert where(problems) == {(4, "parent_code"), (5, "title")}
    fixed = text.replace("NOPE", "A").replace("C,,", "C,Gamma,")
    assert import_csv(session, context_id=course.context_id, data=fixed).created == 3


def test_after_a_cell_with_line_breaks_a_problem_names_its_line_and_its_spreadsheet_row(
    session: Session, course: Course
) -> None:
    text = (
        "code,title,description\r\n"  # line 1, row 1
        'A,Alpha,"first\nsecond\nthird"\r\n'  # lines 2-4, row 2
        "B,,\r\n"  # line 5, row 3
    )
    (problem,) = refused(session, course, text)
    assert (problem.location, problem.column, problem.row) == (5, "title", 3)
    assert str(problem).startswith("line 5 (row 3 in a spreadsheet), title:")


def test_a_quote_that_is_never_closed_does_not_swallow_the_rows_after_it(
    session: Session, course: Course
) -> None:
    text = 'code,title\nA,"Alpha\nB,Beta\nC,Gamma\n'
    (problem,) = refused(session, course, text)
    assert problem.location == 2
    assert "quote" in problem.message
    assert "line 2" in str(problem)


def test_text_after_a_closing_quote_is_reported_rather_than_silently_dropped(
    session: Session, course: Course
) -> None:
    text = 'code,title\nA,Alpha\nB,"Best" practices\n'
    (problem,) = refused(session, course, text)
    assert problem.location == 3
    assert "quote" in problem.message


# --- Headers and columns ---------------------------------------------------------------------


def test_headers_as_spreadsheets_write_them_are_understood(
    session: Session, course: Course
) -> None:
    text = (
        "Kind,CODE, Title ,Notes,Parent-Code,Prerequisite Codes,,\r\n"
        "Non-Academic,W,Work habits,only for me,,,,\r\n"
        ",W.1,Comes prepared,,W,,,\r\n"
        ",W.2,Asks for help,,W,W.1,,\r\n"
        ",,,,,,,\r\n"
        ",,,,,,,\r\n"
    )
    assert import_csv(session, context_id=course.context_id, data=text).created == 3
    assert snapshot(session, course.context_id) == [
        ("W", "Work habits", "", None, [], CompetencyKind.NON_ACADEMIC, 0),
        ("W.1", "Comes prepared", "", "W", [], CompetencyKind.ACADEMIC, 0),
        ("W.2", "Asks for help", "", "W", ["W.1"], CompetencyKind.ACADEMIC, 1),
    ]


def test_a_column_that_looks_like_one_pathways_reads_is_reported_not_ignored(
    session: Session, course: Course
) -> None:
    text = "code,title,Parent,Prerequisites,Descripton,Notes\nA,Alpha,,,,\nB,Beta,A,A,About B,\n"
    problems = refused(session, course, text)
    assert where(problems) == {(1, "Parent"), (1, "Prerequisites"), (1, "Descripton")}
    messages = {p.column: p.message for p in problems}
    assert "parent_code" in messages["Parent"]
    assert "prerequisite_codes" in messages["Prerequisites"]
    assert "description" in messages["Descripton"]


def test_a_case_json_file_imported_as_csv_says_which_format_to_choose(
    session: Session, course: Course
) -> None:
    (problem,) = refused(session, course, json.dumps(case_package()).encode())
    assert "CASE" in problem.message


# --- Values ---------------------------------------------------------------------------------------


def test_overlong_values_are_reported_with_their_line_and_column(
    session: Session, course: Course
) -> None:
    rows = [
        ["code", "title", "description"],
        ["C" * 65, "Long code", ""],
        ["T", "t" * 513, ""],
        ["D", "Long description", "d" * 200_000],
    ]
    problems = refused(session, course, table(rows))
    assert where(problems) == {(2, "code"), (3, "title"), (4, "")}
    long_description = next(p for p in problems if p.location == 4)
    assert "characters" in long_description.message
    assert "field" not in long_description.message  # Python's csv words, not the teacher's


def test_nul_characters_are_reported_not_lost_or_crashing_the_database(
    session: Session, course: Course
) -> None:
    text = "code,title,description\nA,Al\x00pha,\nB,Beta,Line\x00two\nC\x00,Gamma,\nD,Delta,\n"
    problems = refused(session, course, text.encode())
    assert where(problems) == {(2, "title"), (3, "description"), (4, "code")}
    assert all("NUL" in p.message for p in problems)
    package = case_package()
    package["CFItems"][0]["fullStatement"] = "Science\x00practices"
    with pytest.raises(ImportFailedError) as err:
        import_case(session, context_id=course.context_id, data=json.dumps(package))
    assert where(err.value.problems) == {("i-sci", "fullStatement")}
    assert by_code(session, course) == {}


def test_control_characters_are_kept_through_import_and_export(
    session: Session, course: Course, other_course: Course
) -> None:
    rows = [
        ["code", "title", "description"],
        ["CTRL.1", "Bell\x07 and escape\x1b", "Page\x0cbreak\x0bvertical\x85tab\u2028separator"],
    ]
    import_csv(session, context_id=course.context_id, data=table(rows))
    (competency,) = by_code(session, course).values()
    session.expire(competency)  # read back what the database stored
    assert competency.title == "Bell\x07 and escape\x1b"
    assert competency.description == "Page\x0cbreak\x0bvertical\x85tab\u2028separator"
    exported = export_csv(session, context_id=course.context_id)
    import_csv(session, context_id=other_course.context_id, data=exported)
    assert snapshot(session, other_course.context_id) == snapshot(session, course.context_id)


def test_codes_with_spaces_around_them_match_the_course_and_each_other(
    session: Session, course: Course
) -> None:
    import_csv(session, context_id=course.context_id, data="code,title\nA,Alpha\n")
    summary = import_csv(session, context_id=course.context_id, data="code,title\n  A ,Alpha 2\n")
    assert (summary.created, summary.updated) == (0, 1)
    assert by_code(session, course)["A"].title == "Alpha 2"
    problems = refused(session, course, "code,title\nB,Beta\n B,Beta again\n")
    assert where(problems) == {(3, "code")}


# --- Empty, oversized and half-good files --------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"\xef\xbb\xbf", b"\r\n \r\n", b"code,title\r\n", b"\xef\xbb\xbfCode;Title\r\n;\r\n;\r\n"],
    ids=["bom-only", "blank-lines", "header-only", "header-and-empty-rows"],
)
def test_a_file_without_competencies_is_refused(
    session: Session, course: Course, data: bytes
) -> None:
    (problem,) = refused(session, course, data)
    assert problem.message
    assert by_code(session, course) == {}


def test_a_file_over_the_row_limit_is_refused_before_anything_is_written(
    session: Session, course: Course
) -> None:
    rows = [["code", "title"]] + [[f"R{i}", f"Row {i}"] for i in range(MAX_ROWS + 1)]
    (problem,) = refused(session, course, table(rows))
    assert problem.location == MAX_ROWS + 2  # the first row over the limit
    assert f"{MAX_ROWS:,}" in problem.message


def test_a_problem_on_the_last_line_leaves_earlier_changes_unapplied(
    session: Session, course: Course
) -> None:
    import_csv(session, context_id=course.context_id, data=FRAMEWORK)
    text = (
        "code,title,parent_code,prerequisite_codes,kind\n"
        "MATH,Maths renamed,,,\n"  # would update
        "MATH.2,Decimals,,MATH.3,\n"  # would move to top level and change prerequisites
        "NEW,New one,MATH,,\n"  # would create
        "WORK,Work habits,,,robotic\n"  # line 5: unknown kind
    )
    problems = refused(session, course, text)
    assert where(problems) == {(5, "kind")}


# --- Through the pages, as a teacher meets it ---------------------------------------------------


def upload(teacher: Frame, name: str, content: bytes, mimetype: str = "text/csv") -> Any:
    return teacher.post(
        "/competencies/import", {"format": "csv"}, files={"file": (name, content, mimetype)}
    )


def test_excel_unicode_text_file_can_be_chosen_and_imported(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    page = teacher.get("/competencies/import").text
    assert ".txt" in page  # the file picker shows Excel's "Unicode Text" files
    p = unique("U16")
    rows = [["Code", "Title"], [f"{p}.1", "Géographie"], [f"{p}.2", "Économie"]]
    content = table(rows, delimiter="\t").encode("utf-16")  # with its byte-order mark
    response = upload(teacher, "framework.txt", content, "text/plain")
    assert "Imported: 2 competencies" in teacher.follow(response).text
    assert {c.title for c in competencies_by_code(db, ids.context(), p).values()} == {
        "Géographie",
        "Économie",
    }


def xlsx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as book:
        book.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        book.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook/>')
        book.writestr("xl/worksheets/sheet1.xml", "<worksheet><c>code</c><c>title</c></worksheet>")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "named"),
    [
        ("framework.xlsx", xlsx(), "Excel"),
        ("framework.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "Excel"),
        ("framework.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
    ],
    ids=["xlsx", "xls", "pdf"],
)
def test_a_workbook_or_pdf_chosen_by_mistake_gets_a_plain_answer(
    teacher: Frame, name: str, content: bytes, named: str
) -> None:
    response = upload(teacher, name, content, "application/octet-stream")
    assert response.status_code == 400
    assert "Nothing was imported" in response.text
    assert named in response.text
    assert "CSV UTF-8" in response.text  # what to do instead


def test_an_empty_file_or_one_with_only_a_header_is_named_as_such(teacher: Frame) -> None:
    empty = upload(teacher, "empty.csv", b"")
    assert empty.status_code == 400
    assert "empty.csv" in empty.text
    assert "empty" in empty.text.replace("empty.csv", "")
    header_only = upload(teacher, "template.csv", b"code,title,description\r\n")
    assert header_only.status_code == 400
    assert "no competencies" in header_only.text


def test_pasted_text_over_the_paste_limit_is_refused_not_cut_short(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    p = unique("PASTE")
    rows = [["code", "title", "description"]]
    rows += [[f"{p}.{i}", f"Row {i}", "x" * 100_000] for i in range(21)]  # 2.1 million chars
    response = teacher.post("/competencies/import", {"format": "csv", "text": table(rows)})
    assert response.status_code == 400
    assert "2,000,000" in response.text
    assert competencies_by_code(db, ids.context(), p) == {}


def test_a_long_paste_sent_as_a_browser_sends_the_form_is_imported(
    tool_server: ToolServer, database_url: str, db: Database
) -> None:
    """The import form has a file field, so a browser posts it as multipart/form-data, where
    Flask caps each text field at 500 kB unless told otherwise; CASE packages run past that."""
    p = unique("LONG")
    rows = [["code", "title", "description"]]
    rows += [[f"{p}.{i}", f"Row {i}", "x" * 1_000] for i in range(600)]
    text = table(rows)
    assert 500_000 < len(text) < 2_000_000
    no_file = {"file": ("", b"", "application/octet-stream")}
    # A course of its own (a second LMS): 600 competencies would weigh on the shared one.
    with second_lms(tool_server, database_url) as lms:
        teacher = frame(LtiActions(lms, tool_server).launch("user-t01"), tool_server.url)
        response = teacher.post("/competencies/import", {"format": "csv", "text": text}, no_file)
        assert "Imported: 600 competencies" in teacher.follow(response).text
        context_id = Ids.of(db, lms).context()
        assert len(competencies_by_code(db, context_id, p)) == 600


def test_a_file_over_the_upload_limit_gets_a_plain_answer(teacher: Frame) -> None:
    response = upload(teacher, "huge.csv", b"code,title\n" + b"A,Alpha\n" * 1_200_000)
    assert response.status_code == 413
    assert "larger than 8 MB" in response.text
    assert "nothing was saved" in response.text


def test_problems_page_names_line_and_row_keeps_the_paste_and_escapes_the_file(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    p = unique("ROW")
    text = (
        "code,title,description,parent_code\n"
        f'{p}.1,Alpha,"one\ntwo\nthree",\n'
        f"{p}.2,Beta,,<img src=x onerror=alert(1)>\n"
    )
    response = teacher.post("/competencies/import", {"format": "csv", "text": text})
    assert response.status_code == 400
    assert "Line 5 (row 3 in a spreadsheet)" in response.text
    assert "<img src=x" not in response.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
    assert f"{p}.1,Alpha," in response.text  # the pasted text is still there to fix
    assert competencies_by_code(db, ids.context(), p) == {}


def test_formula_like_values_are_stored_as_text_and_exported_harmless(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    p = unique("F")
    rows = [
        ["code", "title", "description"],
        [f"={p}", "@SUM(A1:A9)", "-2 + 3 = 1"],
        [f"{p}.2", "+33 6 12 34 56 78", '=HYPERLINK("http://evil.test","x")'],
    ]
    imported = teacher.post("/competencies/import", {"format": "csv", "text": table(rows)})
    page = teacher.follow(imported).text
    assert "@SUM(A1:A9)" in page
    mine = competencies_by_code(db, ids.context(), f"={p}") | competencies_by_code(
        db, ids.context(), p
    )
    assert {(c.code, c.title, c.description) for c in mine.values()} == {
        tuple(row) for row in rows[1:]
    }
    exported = teacher.get("/competencies/export.csv").text
    cells = [
        cell for row in csv.reader(io.StringIO(exported)) if row and p in row[0] for cell in row
    ]
    assert len(cells) == 12
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))]
    lines = [line for line in exported.splitlines()[1:] if p in line.split(",")[0]]
    again = teacher.post(
        "/competencies/import",
        {"format": "csv", "text": ",".join(COLUMNS) + "\n" + "\n".join(lines)},
    )
    assert "Imported: 0 competencies created or changed." in teacher.follow(again).text


def test_an_import_without_the_forms_tokens_changes_nothing(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    p = unique("TOK")
    text = f"code,title\n{p}.1,Alpha\n"
    url = teacher.base + "/competencies/import"
    no_csrf = teacher.client.post(url, data={"lt": teacher.token, "format": "csv", "text": text})
    assert no_csrf.status_code == 400
    no_launch = teacher.client.post(
        url, data={"csrf_token": teacher.csrf_token(), "format": "csv", "text": text}
    )
    assert no_launch.status_code in (400, 401)
    assert "Traceback" not in no_csrf.text + no_launch.text
    assert competencies_by_code(db, ids.context(), p) == {}


def test_a_competency_imported_on_its_own_under_a_parent_comes_after_its_siblings(
    session: Session, course: Course
) -> None:
    import_csv(session, context_id=course.context_id, data=FRAMEWORK)
    addition = "code,title,parent_code\nMATH.4,Ratios,MATH\nART,Art,\n"
    import_csv(session, context_id=course.context_id, data=addition)
    tree = queries.competency_tree(session, context_id=course.context_id)
    assert [node.competency.code for node in tree] == ["MATH", "WORK", "ART"]
    assert [child.competency.code for child in tree[0].children] == [
        "MATH.1",
        "MATH.2",
        "MATH.3",
        "MATH.4",
    ]
    before = snapshot(session, course.context_id)
    assert import_csv(session, context_id=course.context_id, data=addition).unchanged == 2
    assert snapshot(session, course.context_id) == before


def test_an_import_racing_another_one_gets_a_plain_answer(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    p = unique("RACE")
    cid = ids.context()
    teacher.csrf_token()  # before the database is busy
    answers: list[httpx.Response] = []
    text = f"code,title\n{p}.1,From the file\n"
    request = threading.Thread(
        target=lambda: answers.append(
            teacher.post("/competencies/import", {"format": "csv", "text": text})
        )
    )
    with db.begin() as s:  # the first press of Import, still writing
        make_competency(s, cid, f"{p}.1", title="From the first press")
        request.start()
        time.sleep(1.0)  # PostgreSQL: the second import now waits on the same code
    request.join(timeout=30)
    (answer,) = answers
    assert [c.code for c in competencies_by_code(db, cid, p).values()] == [f"{p}.1"]
    if answer.status_code == 303:  # SQLite: the second waited for the first, then updated
        assert competencies_by_code(db, cid, p)[f"{p}.1"].title == "From the file"
    else:
        assert answer.status_code == 409
        assert "nothing was imported" in answer.text


def test_the_export_opens_in_excel_with_its_accents_and_imports_again_unchanged(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    """Excel reads a CSV as the machine's legacy code page unless the file starts with the
    UTF-8 byte order mark: "Énergie" would show as "Ã‰nergie" and be saved back that way."""
    p = unique("BOM")
    rows = [["code", "title"], [p, "Énergie et matière — niño"]]
    teacher.follow(teacher.post("/competencies/import", {"format": "csv", "text": table(rows)}))
    downloaded = teacher.get("/competencies/export.csv").content
    assert downloaded.startswith(b"\xef\xbb\xbf")
    assert "Énergie et matière — niño".encode() in downloaded
    again = teacher.post(
        "/competencies/import", {"format": "csv", "text": downloaded.decode("utf-8")}
    )
    assert "Imported: 0 competencies created or changed." in teacher.follow(again).text
