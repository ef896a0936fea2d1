"""Text that looks ordinary but is not: the same letter composed or decomposed (a file saved on a
Mac, a code pasted from a PDF), half an emoji left by a JSON exporter, numbers too big for the
page's order, and names made only of invisible characters. Each refusal must be in words, and
a framework must not end up with two competencies that look the same.

Each test runs on an LMS of this module's own (see tests/courses/frames.py).
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Final

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.competencies.importing import copy_framework
from lti_app.competencies.models import Competency
from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from tests.courses.frames import Frame, Ids, unique
from tests.domain_fixtures import Course

NFC: Final = "NFC"
NFD: Final = "NFD"


def _case(items: Iterable[Mapping[str, Any]], associations: Iterable[Any] = ()) -> str:
    return json.dumps(
        {
            "CFDocument": {"identifier": "doc"},
            "CFItems": list(items),
            "CFAssociations": list(associations),
        }
    )


def _lone_surrogates(text: str) -> str:
    # json.dumps writes "\\ud83d" for the placeholder below; the file holds JSON's own escape,
    # which Python's json reads back as half an emoji.
    return text.replace("HALF", "\\ud83d")


@pytest.fixture
def course_id(teacher: Frame, db: Database, lms: RunningPlatform) -> int:
    """The Biology 9 course of this module's LMS, which the teacher has launched."""
    return Ids.of(db, lms).context()


def _codes(db: Database, context_id: int, *codes: str) -> list[str]:
    with db.begin() as s:
        return list(
            s.scalars(
                select(Competency.code).where(
                    Competency.context_id == context_id, Competency.code.in_(codes)
                )
            )
        )


def _problems(answer: httpx.Response) -> list[tuple[str, str, str]]:
    """The rows of the import page's problem table: where, column, problem."""
    rows = re.findall(r"<tr><td>(.*?)</td>\s*<td>(.*?)</td><td>(.*?)</td></tr>", answer.text, re.S)

    def cell(text: str) -> str:
        return html.unescape(text).strip()

    return [(cell(where), cell(column), cell(problem)) for where, column, problem in rows]


def _store_decomposed(db: Database, context_id: int, code: str, title: str) -> None:
    """A competency saved before codes were normalised, its code as a Mac file gave it."""
    with db.begin() as s:
        s.add(
            Competency(
                context_id=context_id,
                code=unicodedata.normalize(NFD, code),
                title=title,
                description="",
                position=900,
            )
        )


# --- the same letter, composed or decomposed --------------------------------------------------


def test_a_code_typed_composed_and_again_decomposed_is_refused_as_already_used(
    teacher: Frame, db: Database, course_id: int
) -> None:
    code = unique("É")
    composed, decomposed = (unicodedata.normalize(form, code) for form in (NFC, NFD))
    first = teacher.post("/competencies/", {"code": composed, "title": "Energy"})
    assert first.status_code == 303, first.status_code

    second = teacher.post("/competencies/", {"code": decomposed, "title": "Energy again"})

    assert second.status_code == 400, second.status_code
    assert "already used in this course" in html.unescape(second.text)
    assert _codes(db, course_id, composed, decomposed) == [composed]


def test_a_code_stored_decomposed_before_is_already_used_when_typed_composed(
    teacher: Frame, db: Database, course_id: int
) -> None:
    code = unique("Ñ")
    _store_decomposed(db, course_id, code, "Old")

    answer = teacher.post("/competencies/", {"code": code, "title": "New"})

    assert answer.status_code == 400, answer.status_code
    assert "already used in this course" in html.unescape(answer.text)


def test_a_framework_file_saved_decomposed_updates_the_competencies_it_names(
    teacher: Frame, db: Database, course_id: int
) -> None:
    code = unique("CÉL")
    first = teacher.post(
        "/competencies/import", {"format": "csv", "text": f"code,title\n{code},Cellules\n"}
    )
    assert first.status_code == 303, first.status_code
    mac_file = unicodedata.normalize(NFD, f"code,title\n{code},Cellules vivantes\n")

    again = teacher.post("/competencies/import", {"format": "csv", "text": mac_file})

    assert again.status_code == 303, again.status_code
    decomposed = unicodedata.normalize(NFD, code)
    with db.begin() as s:
        found = s.scalars(
            select(Competency).where(
                Competency.context_id == course_id,
                Competency.code.in_([code, decomposed]),
            )
        ).all()
        assert [(c.code, c.title) for c in found] == [(code, "Cellules vivantes")]


def test_a_code_stored_decomposed_before_is_matched_and_composed_by_a_reimport(
    teacher: Frame, db: Database, course_id: int
) -> None:
    code = unique("ÉN")
    _store_decomposed(db, course_id, code, "Énergie")
    child = unique("SUB")

    answer = teacher.post(
        "/competencies/import",
        {
            "format": "csv",
            "text": f"code,title,parent_code\n{code},Énergie,\n{child},Chaleur,{code}\n",
        },
    )

    assert answer.status_code == 303, answer.status_code
    decomposed = unicodedata.normalize(NFD, code)
    assert _codes(db, course_id, code, decomposed) == [code]
    with db.begin() as s:
        parent, sub = (
            s.scalars(
                select(Competency).where(Competency.context_id == course_id, Competency.code == c)
            ).one()
            for c in (code, child)
        )
        assert sub.parent_id == parent.id


# --- half a character in CASE JSON ------------------------------------------------------------


def test_a_case_identifier_holding_half_a_character_is_named_on_the_problems_page(
    teacher: Frame,
) -> None:
    items = [
        {"identifier": "XHALF", "humanCodingScheme": unique("SV"), "fullStatement": "One"},
        {"identifier": "XHALF", "humanCodingScheme": unique("SW"), "fullStatement": "Two"},
    ]

    answer = teacher.post(
        "/competencies/import", {"format": "case", "text": _lone_surrogates(_case(items))}
    )

    assert answer.status_code == 400, answer.status_code
    assert _problems(answer) == [("X\ufffd", "identifier", "appears twice in CFItems")]


def test_a_case_statement_holding_half_a_character_is_refused_in_plain_words(
    teacher: Frame, db: Database, course_id: int
) -> None:
    code = unique("SU")
    items = [{"identifier": "i1", "humanCodingScheme": code, "fullStatement": "Energy HALF"}]

    answer = teacher.post(
        "/competencies/import", {"format": "case", "text": _lone_surrogates(_case(items))}
    )

    assert answer.status_code == 400, answer.status_code
    text = html.unescape(answer.text)
    assert "codec" not in text  # Python's "'utf-8' codec can't encode character ..."
    assert [(where, column) for where, column, _ in _problems(answer)] == [("i1", "fullStatement")]
    assert "holds half of a character" in _problems(answer)[0][2]
    assert _codes(db, course_id, code) == []


def test_a_case_sequence_number_too_large_for_any_order_is_refused_on_its_association(
    teacher: Frame,
) -> None:
    items = [{"identifier": "i1", "humanCodingScheme": unique("SQ"), "fullStatement": "One"}]
    child_of = {
        "identifier": "a1",
        "associationType": "isChildOf",
        "originNodeURI": {"identifier": "i1"},
        "destinationNodeURI": {"identifier": "doc"},
        "sequenceNumber": 0,
    }
    text = _case(items, [child_of]).replace(
        '"sequenceNumber": 0', '"sequenceNumber": 1' + "0" * 400
    )

    answer = teacher.post("/competencies/import", {"format": "case", "text": text})

    assert answer.status_code == 400, answer.status_code
    assert _problems(answer) == [("a1", "sequenceNumber", "is too large a number")]


# --- names of invisible characters only -------------------------------------------------------


def test_a_code_or_title_of_invisible_characters_only_is_refused_as_empty(
    teacher: Frame, db: Database
) -> None:
    invisible = "\u200b\u202e\u2060\ufeff"  # zero-width space, right-to-left override, ...
    no_code = teacher.post("/competencies/", {"code": invisible, "title": "Energy"})
    no_title = teacher.post("/competencies/", {"code": unique("INV"), "title": invisible})
    imported = teacher.post(
        "/competencies/import", {"format": "csv", "text": f"code,title\n{invisible},Energy\n"}
    )

    assert (no_code.status_code, no_title.status_code) == (400, 400)
    assert "code is required" in no_code.text
    assert "title is required" in no_title.text
    assert imported.status_code == 400, imported.status_code
    assert _problems(imported) == [("Line 2", "code", "a code is required")]
    with db.begin() as s:
        assert s.scalars(select(Competency).where(Competency.code == invisible)).all() == []


def test_copying_a_framework_whose_code_was_saved_decomposed_copies_it_composed(
    session: Session, course: Course, other_course: Course
) -> None:
    code = unique("ÉCO")
    session.add(
        Competency(
            context_id=course.context_id,
            code=unicodedata.normalize(NFD, code),
            title="Écologie",
            description="",
            position=0,
        )
    )
    session.flush()

    copied = copy_framework(
        session, from_context_id=course.context_id, to_context_id=other_course.context_id
    )

    copy = session.get_one(Competency, next(iter(copied.values())))
    assert (copy.context_id, copy.code) == (other_course.context_id, code)
