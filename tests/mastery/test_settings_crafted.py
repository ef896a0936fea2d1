"""Adversarial tests of a course's mastery settings and what they do to students' levels: the
scale editor, the calculation method and its parameter, the "what changed" report, gradebook
re-queueing, self-assessment counting, roll-ups, and two saves at once.

Numbers are worked by hand from the definitions in the issue (Canvas's Learning Mastery
Gradebook), never read back from the code:

- decaying average: v = first result, then v = v*(1-w) + result*w;
- weighted average: latest*w + mean(earlier)*(1-w);
- n times: mean of the results at or above mastery once there are n of them, else no score;
- scores are rounded to two decimals (half up) and then mapped to the level they reach.

Page tests run against a second test LMS of their own, so nothing here changes the scale of the
courses other test files use.
"""

from __future__ import annotations

import html
import os
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lti_app.competencies import services as competencies
from lti_app.db import Database
from lti_app.grades.columns import set_gradebook_competencies
from lti_app.grades.models import OutboxStatus, ScoreOutbox
from lti_app.mastery import services
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.errors import InvalidScaleError
from lti_app.mastery.levels import current_levels
from lti_app.mastery.models import EvidenceSource, MasteryScale, StudentCompetencyLevel
from lti_app.mastery.scales import get_or_create_scale, update_scale
from lti_app.tool.models import Person
from tests.courses.frames import Frame, Ids, unique
from tests.domain_fixtures import Course, make_course
from tests.mastery.confirming import save_anyway
from tests.mastery.conftest import DEFAULT_SPECS, STUDENTS

D = Decimal
M = CalculationMethod
NOW = datetime.now(UTC)
ON_POSTGRES = bool(os.environ.get("LTI_APP_TEST_DATABASE_URL"))

# (score, level name, mastered) on the default scale (1, 2, 3 = mastery, 4).
Standing = tuple[Decimal | None, str | None, bool]
NONE: Standing = (None, None, False)


# --- helpers ----------------------------------------------------------------------------------


def _competency(session: Session, course: Course, code: str, parent: int | None = None) -> int:
    return competencies.create_competency(
        session, context_id=course.context_id, code=code, title=code, parent_id=parent
    ).id


def _results(
    session: Session,
    context_id: int,
    competency_id: int,
    student: int,
    points: Sequence[str],
    *,
    recorded_by: int,
    source: EvidenceSource = EvidenceSource.TEACHER,
    start_days_ago: int = 30,
) -> None:
    """Record results in the order the student showed them, typed in newest first (make-up
    work), each a day after the one before."""
    for offset, value in reversed(list(enumerate(points))):
        services.record_evidence(
            session,
            context_id=context_id,
            competency_id=competency_id,
            student_ids=[student],
            points=D(value),
            source=source,
            note=f"result {offset}",
            recorded_by_id=recorded_by,
            observed_at=NOW - timedelta(days=start_days_ago - offset),
        )


def _standing(session: Session, context_id: int, student: int, competency_id: int) -> Standing:
    row = current_levels(session, context_id=context_id, person_id=student).get(competency_id)
    if row is None:
        return NONE
    score = None if row.score is None else D(row.score).quantize(D("0.01"))
    return (score, row.level_name, row.is_mastered)


def _set(session: Session, course: Course, method: M, **kw: Any) -> list[services.MasteryChange]:
    return update_scale(session, context_id=course.context_id, method=method, **kw)


# --- the methods on the same evidence, switched one after another ------------------------------

# Student 0: 1, 2, 4.  Student 1: 4, 1.  Student 2: 3, 3, 1.
EVIDENCE = (("1", "2", "4"), ("4", "1"), ("3", "3", "1"))
# Worked by hand; see each line's comment.
SWITCHES: list[tuple[M, dict[str, int], tuple[Standing, Standing, Standing]]] = [
    # v: 1 -> 1*.35+2*.65 = 1.65 -> 1.65*.35+4*.65 = 3.1775; 4*.35+1*.65 = 2.05;
    # 3 -> 3 -> 3*.35+1*.65 = 1.70
    (
        M.DECAYING_AVERAGE,
        {"weight": 65},
        (
            (D("3.18"), "Proficient", True),
            (D("2.05"), "Developing", False),
            (D("1.70"), "Emerging", False),
        ),
    ),
    # w=50: 1 -> 1.5 -> 2.75; 2.5; 3 -> 3 -> 2.0
    (
        M.DECAYING_AVERAGE,
        {"weight": 50},
        (
            (D("2.75"), "Developing", False),
            (D("2.50"), "Developing", False),
            (D("2.00"), "Developing", False),
        ),
    ),
    # w=99: 1 -> 1.99 -> 0.0199+3.96 = 3.9799; 0.04+0.99 = 1.03; 3 -> 3 -> 0.03+0.99 = 1.02
    (
        M.DECAYING_AVERAGE,
        {"weight": 99},
        (
            (D("3.98"), "Proficient", True),
            (D("1.03"), "Emerging", False),
            (D("1.02"), "Emerging", False),
        ),
    ),
    # latest*.65 + mean(earlier)*.35: 2.6+0.525 = 3.125 -> 3.13; 0.65+1.4; 0.65+1.05
    (
        M.WEIGHTED_AVERAGE,
        {"weight": 65},
        (
            (D("3.13"), "Proficient", True),
            (D("2.05"), "Developing", False),
            (D("1.70"), "Emerging", False),
        ),
    ),
    # w=1: 0.04+1.485 = 1.525 -> 1.53; 0.01+3.96; 0.01+2.97 = 2.98 (just short of mastery)
    (
        M.WEIGHTED_AVERAGE,
        {"weight": 1},
        (
            (D("1.53"), "Emerging", False),
            (D("3.97"), "Proficient", True),
            (D("2.98"), "Developing", False),
        ),
    ),
    # n=1: mean of the results >= 3: 4; 4; (3+3)/2
    (
        M.N_TIMES,
        {"n": 1},
        (
            (D("4.00"), "Advanced", True),
            (D("4.00"), "Advanced", True),
            (D("3.00"), "Proficient", True),
        ),
    ),
    # n=2: one result at mastery is not enough for students 0 and 1
    (M.N_TIMES, {"n": 2}, (NONE, NONE, (D("3.00"), "Proficient", True))),
    (M.N_TIMES, {"n": 10}, (NONE, NONE, NONE)),
    (
        M.MOST_RECENT,
        {},
        (
            (D("4.00"), "Advanced", True),
            (D("1.00"), "Emerging", False),
            (D("1.00"), "Emerging", False),
        ),
    ),
    (
        M.HIGHEST,
        {},
        (
            (D("4.00"), "Advanced", True),
            (D("4.00"), "Advanced", True),
            (D("3.00"), "Proficient", True),
        ),
    ),
    # 7/3 = 2.333; 5/2; 7/3
    (
        M.AVERAGE,
        {},
        (
            (D("2.33"), "Developing", False),
            (D("2.50"), "Developing", False),
            (D("2.33"), "Developing", False),
        ),
    ),
    # back to the default, from a state where two students had no score
    (
        M.DECAYING_AVERAGE,
        {"weight": 65},
        (
            (D("3.18"), "Proficient", True),
            (D("2.05"), "Developing", False),
            (D("1.70"), "Emerging", False),
        ),
    ),
]


def test_switching_methods_in_a_row_gives_the_hand_worked_levels_and_reports_only_movers(
    session: Session, course: Course
) -> None:
    """Every switch recomputes every level to Canvas's numbers; the list of changes holds
    exactly the students whose score, level or mastery differs from just before this switch
    (so the second of two changes in a row is reported against the first, not the original)."""
    comp = _competency(session, course, "SW")
    other = _competency(session, course, "UNTOUCHED")  # no evidence: never in a report
    for student, points in zip(course.student_ids, EVIDENCE, strict=True):
        _results(session, course.context_id, comp, student, points, recorded_by=course.teacher_id)
    before = tuple(_standing(session, course.context_id, s, comp) for s in course.student_ids)
    assert before == SWITCHES[0][2]
    for method, params, expected in SWITCHES:
        changes = _set(session, course, method, **params)
        now = tuple(_standing(session, course.context_id, s, comp) for s in course.student_ids)
        assert now == expected, (method, params)
        moved = {s for s, b, a in zip(course.student_ids, before, now, strict=True) if b != a}
        assert {c.person_id for c in changes} == moved, (method, params)
        assert all(c.competency_id == comp for c in changes)
        for change in changes:
            old = before[course.student_ids.index(change.person_id)]
            new = now[course.student_ids.index(change.person_id)]
            assert (change.old_score, change.old_level_name, change.was_mastered) == old
            assert (change.new_score, change.new_level_name, change.is_mastered) == new
        assert _standing(session, course.context_id, course.student_ids[0], other) == NONE
        before = now
    # Saving the same settings again changes nothing and reports nothing.
    assert _set(session, course, M.DECAYING_AVERAGE, weight=65) == []


def test_a_score_that_rounds_up_to_the_mastery_points_is_mastery(
    session: Session, course: Course
) -> None:
    """Decaying 50%: 2 then 3.99 is 2.995, rounded to 3.00 before mapping: Proficient, mastered
    (Canvas rounds first, then compares with the mastery points)."""
    comp = _competency(session, course, "RND")
    student = course.student_ids[0]
    _results(
        session, course.context_id, comp, student, ["2", "3.99"], recorded_by=course.teacher_id
    )
    _set(session, course, M.DECAYING_AVERAGE, weight=50)
    assert _standing(session, course.context_id, student, comp) == (D("3.00"), "Proficient", True)


# --- the scale: levels, threshold, points ----------------------------------------------------


def test_moving_the_threshold_up_reports_exactly_who_lost_mastery(
    session: Session, course: Course
) -> None:
    """Mastery moved from Proficient (3) to Advanced (4): 3.18 stays Proficient but is no longer
    mastery; 2.05 and 1.70 were never mastered and their levels did not move, so only the first
    student is reported."""
    comp = _competency(session, course, "THR")
    for student, points in zip(course.student_ids, EVIDENCE, strict=True):
        _results(session, course.context_id, comp, student, points, recorded_by=course.teacher_id)
    levels = [(n, p, c, n == "Advanced") for n, p, c, _ in DEFAULT_SPECS]
    changes = _set(session, course, M.DECAYING_AVERAGE, levels=levels)
    assert [(c.person_id, c.was_mastered, c.is_mastered) for c in changes] == [
        (course.student_ids[0], True, False)
    ]
    assert _standing(session, course.context_id, course.student_ids[0], comp) == (
        D("3.18"),
        "Proficient",
        False,
    )
    # n times now counts only results of 4 or more: student 0 has one, so n=1 gives 4.
    _set(session, course, M.N_TIMES, n=1)
    assert [_standing(session, course.context_id, s, comp) for s in course.student_ids] == [
        (D("4.00"), "Advanced", True),
        (D("4.00"), "Advanced", True),
        NONE,
    ]


def test_decimal_points_and_a_level_above_every_result(session: Session, course: Course) -> None:
    """Levels 0, 1.5, 2.75 (mastery), 3.5 and a new top level at 10 that nobody reaches: each
    score maps to the highest level whose points it reaches, and the top level holds nobody."""
    comp = _competency(session, course, "DEC")
    for student, points in zip(course.student_ids, EVIDENCE, strict=True):
        _results(session, course.context_id, comp, student, points, recorded_by=course.teacher_id)
    levels = [
        ("Beginning", D(0), "#b42318", False),
        ("Approaching", D("1.5"), "#93370d", False),
        ("Meets", D("2.75"), "#067647", True),
        ("Exceeds", D("3.5"), "#175cd3", False),
        ("Beyond", D(10), "#5b21b6", False),
    ]
    _set(session, course, M.DECAYING_AVERAGE, levels=levels)
    assert [_standing(session, course.context_id, s, comp) for s in course.student_ids] == [
        (D("3.18"), "Meets", True),
        (D("2.05"), "Approaching", False),
        (D("1.70"), "Approaching", False),
    ]


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ([("Only", D(1), "#067647", True)], "at least two levels"),
        (
            [("Low", D(1), "#b42318", False), ("low ", D(2), "#067647", True)],
            "name of its own",
        ),
        (
            [("Low", D(2), "#b42318", False), ("High", D(2), "#067647", True)],
            "rising points",
        ),
        (
            [("Low", D(-1), "#b42318", False), ("High", D(2), "#067647", True)],
            "from 0",
        ),
        (
            [("Low", D(1), "#b42318", False), ("High", D(2), "#067647", False)],
            "exactly one level",
        ),
        (
            [("Low", D(1), "#b42318", True), ("High", D(2), "#067647", True)],
            "exactly one level",
        ),
        (
            [("Low", D(1), "#b42318\n", False), ("High", D(2), "#067647", True)],
            "#rrggbb",
        ),
        (
            [(f"L{i}", D(i), "#067647", i == 1) for i in range(50)],
            "at most 20 levels",
        ),
    ],
    ids=[
        "one-level",
        "same-name",
        "same-points",
        "negative",
        "no-mastery",
        "two-mastery",
        "colour-newline",
        "50",
    ],
)
def test_scales_a_teacher_cannot_mean_are_refused_and_nothing_changes(
    session: Session, course: Course, levels: list[tuple[str, Decimal, str, bool]], message: str
) -> None:
    """A scale of 50 levels is refused: the editor shows at most 20 rows, so a longer scale
    could never be edited again without losing levels (product decision: 20 is the limit)."""
    comp = _competency(session, course, "BAD")
    _results(
        session,
        course.context_id,
        comp,
        course.student_ids[0],
        ["3"],
        recorded_by=course.teacher_id,
    )
    with pytest.raises(InvalidScaleError, match=message):
        _set(session, course, M.HIGHEST, levels=levels)
    session.expire_all()
    scale = get_or_create_scale(session, context_id=course.context_id)
    assert [lv.name for lv in scale.levels] == [s[0] for s in DEFAULT_SPECS]
    assert scale.method is M.DECAYING_AVERAGE
    assert _standing(session, course.context_id, course.student_ids[0], comp) == (
        D("3.00"),
        "Proficient",
        True,
    )


# --- self-assessment and roll-ups -------------------------------------------------------------


def test_self_assessment_counting_switched_on_and_off(session: Session, course: Course) -> None:
    """Teacher 2 (day 1), the student's own 4 (day 2). Off: 2, Developing. On: decaying 65%
    2*.35 + 4*.65 = 3.30, Proficient and mastered. Off again: back to 2. Each switch reports only
    this student; a classmate with only teacher evidence never appears."""
    comp = _competency(session, course, "SELF")
    me, classmate = course.student_ids[0], course.student_ids[1]
    _results(session, course.context_id, comp, me, ["2"], recorded_by=course.teacher_id)
    services.record_evidence(
        session,
        context_id=course.context_id,
        competency_id=comp,
        student_ids=[me],
        points=D(4),
        source=EvidenceSource.SELF_ASSESSMENT,
        note="I think I got it",
        recorded_by_id=me,
        observed_at=NOW - timedelta(days=10),
    )
    _results(session, course.context_id, comp, classmate, ["3"], recorded_by=course.teacher_id)
    assert _standing(session, course.context_id, me, comp) == (D("2.00"), "Developing", False)

    on = _set(session, course, M.DECAYING_AVERAGE, counts_self_assessment=True)
    assert [(c.person_id, c.new_score, c.became_mastered) for c in on] == [(me, D("3.30"), True)]
    row = current_levels(session, context_id=course.context_id, person_id=me)[comp]
    assert (row.level_name, row.evidence_count) == ("Proficient", 2)

    off = _set(session, course, M.DECAYING_AVERAGE, counts_self_assessment=False)
    assert [(c.person_id, c.new_score, c.is_mastered) for c in off] == [(me, D("2.00"), False)]
    assert row.evidence_count == 1


def test_sub_competency_roll_up_follows_a_method_change(session: Session, course: Course) -> None:
    """Parent P over A (4 then 1) and B (3). Decaying 65%: A 2.05, B 3 -> P (2.05+3)/2 = 2.525
    -> 2.53 Developing, not mastered (A is not). Highest: A 4, B 3 -> P 3.50 Proficient and
    mastered (both are). n times with n=2: neither child has a score -> P has none. Each
    switch reports the parent along with the child that moved."""
    parent = _competency(session, course, "P")
    a = _competency(session, course, "P.A", parent)
    b = _competency(session, course, "P.B", parent)
    me = course.student_ids[0]
    _results(session, course.context_id, a, me, ["4", "1"], recorded_by=course.teacher_id)
    _results(session, course.context_id, b, me, ["3"], recorded_by=course.teacher_id)
    assert _standing(session, course.context_id, me, parent) == (D("2.53"), "Developing", False)

    changes = _set(session, course, M.HIGHEST)
    assert {c.competency_id for c in changes} == {a, parent}
    assert _standing(session, course.context_id, me, parent) == (D("3.50"), "Proficient", True)

    changes = _set(session, course, M.N_TIMES, n=2)
    assert {c.competency_id for c in changes} == {a, b, parent}
    assert _standing(session, course.context_id, me, parent) == NONE


def test_two_saves_with_different_levels_never_mix_into_an_invalid_scale(
    database_url: str, engine: Engine
) -> None:
    """Teacher A's request has read the scale when teacher B's save (a fifth level, mastery
    moved to it) commits; A then saves the four default levels. A teacher expects the scale to
    be one of the two saves, never a mix with two mastery levels or falling points."""
    if not ON_POSTGRES:
        pytest.skip("SQLite runs one writing request at a time (BEGIN IMMEDIATE)")
    db = Database(database_url)
    try:
        with db.begin() as s:
            course = make_course(s)
            get_or_create_scale(s, context_id=course.context_id)
        five = [(n, p, c, False) for n, p, c, _ in DEFAULT_SPECS] + [
            ("Expert", D(5), "#5b21b6", True)
        ]
        with db.begin() as a:
            get_or_create_scale(a, context_id=course.context_id)  # A has read it
            with db.begin() as b:
                update_scale(b, context_id=course.context_id, method=M.HIGHEST, levels=five)
            update_scale(
                a,
                context_id=course.context_id,
                method=M.HIGHEST,
                levels=DEFAULT_SPECS,
            )
        with db.begin() as s:
            scale = get_or_create_scale(s, context_id=course.context_id)
            got = [(lv.name, lv.points, lv.is_mastery) for lv in scale.levels]
        assert got == [(n, p, m) for n, p, _, m in DEFAULT_SPECS]
    finally:
        db.dispose()


# --- through the teacher's pages, on an LMS of this file's own ------------------------------


def _form(
    levels: Sequence[tuple[str, Any, str, bool]] = tuple(DEFAULT_SPECS),
    *,
    method: str = "decaying_average",
    weight: str = "65",
    n: str = "3",
    rows: int | None = None,
    self_assessment: bool = False,
) -> dict[str, Any]:
    form: dict[str, Any] = {
        "rows": str(rows if rows is not None else len(levels) + 2),
        "method": method,
        "weight": weight,
        "n": n,
    }
    for i, (name, points, colour, mastery) in enumerate(levels):
        form[f"level-{i}-name"] = name
        form[f"level-{i}-points"] = str(points)
        form[f"level-{i}-colour"] = colour
        if mastery:
            form["mastery"] = str(i)
    if self_assessment:
        form["counts_self_assessment"] = "on"
    return form


def _save(teacher: Frame, form: dict[str, Any]) -> httpx.Response:
    # Confirmed when asked: these tests are about what a save does; a save that takes mastery
    # away asks first (test_losing_mastery_asks_first).
    return save_anyway(lambda fields: teacher.post("/mastery/scale", fields), form)


def _scale(db: Database, context_id: int) -> tuple[list[tuple[str, Decimal, str, bool]], Any]:
    with db.begin() as s:
        scale = s.scalars(select(MasteryScale).where(MasteryScale.context_id == context_id)).one()
        levels = [(lv.name, D(lv.points), lv.colour, lv.is_mastery) for lv in scale.levels]
        return levels, (scale.method, scale.weight, scale.n, scale.counts_self_assessment)


def _names(db: Database, person_ids: Sequence[int]) -> dict[int, str]:
    with db.begin() as s:
        rows = s.execute(select(Person.id, Person.name).where(Person.id.in_(person_ids)))
        return {int(pid): str(name) for pid, name in rows}


class _ScaleFormParser(HTMLParser):
    """The scale form's fields as a browser submits them: only checked radios and boxes."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag != "input" or not a.get("name") or a["name"] in {"lt", "csrf_token"}:
            return
        if a.get("type") in {"radio", "checkbox"} and "checked" not in a:
            return
        self.fields[a["name"]] = a.get("value", "on")


def _browser_fields(page: str) -> dict[str, str]:
    parser = _ScaleFormParser()
    parser.feed(page)
    return parser.fields


REPORT_ROW = re.compile(
    r'<tr>\s*<th scope="row"><a [^>]*>(?P<name>.*?)</a></th>\s*<td>(?P<comp>.*?)</td>'
    r"\s*<td>(?P<before>.*?)</td>\s*<td>(?P<now>.*?)</td>\s*<td>(?P<mastery>.*?)</td>",
    re.S,
)


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def _report(page: str) -> list[dict[str, str]]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    return [{k: _text(v) for k, v in m.groupdict().items()} for m in REPORT_ROW.finditer(body)]


def _with_evidence(db: Database, own_ids: Ids, code: str) -> tuple[int, list[int]]:
    """A competency with EVIDENCE's three students (s01, s02, s03); s10 has none."""
    cid = own_ids.context()
    people = [own_ids.person(sub) for sub in STUDENTS[:3]]
    teacher_id = own_ids.person("user-t01")
    with db.begin() as s:
        comp = competencies.create_competency(s, context_id=cid, code=code, title=code).id
        for person, points in zip(people, EVIDENCE, strict=True):
            _results(s, cid, comp, person, points, recorded_by=teacher_id)
    return comp, people


def test_report_lists_every_mover_and_only_them_after_two_changes_in_a_row(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """First save: weighted 1% (hand-worked: 1.53 Emerging, 3.97 Proficient, 2.98 Developing):
    all three students moved. Second save: n times, n=2: students 1 and 2 lose their score
    ("No level yet") and student 3 goes 2.98 Developing -> 3.00 Proficient, now mastered. The
    student with no evidence, and students of other competencies, never appear."""
    code = unique("RPT")
    _, people = _with_evidence(db, own_ids, code)
    names = _names(db, people)

    first = _save(teacher, _form(method="weighted_average", weight="1"))
    assert first.status_code == 200, first.text[:1000]
    rows = [r for r in _report(first.text) if code in r["comp"]]
    assert {r["name"] for r in rows} == set(names.values())
    by_name = {r["name"]: r for r in rows}
    assert by_name[names[people[0]]]["now"] == "Emerging (1.53)"
    assert by_name[names[people[1]]]["now"] == "Proficient (3.97)"
    assert by_name[names[people[1]]]["mastery"] == "Now mastered"
    assert by_name[names[people[2]]]["before"] == "Emerging (1.70)"
    assert by_name[names[people[2]]]["now"] == "Developing (2.98)"

    second = _save(teacher, _form(method="n_times", n="2"))
    assert second.status_code == 200, second.text[:1000]
    rows = [r for r in _report(second.text) if code in r["comp"]]
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == set(names.values())
    assert by_name[names[people[0]]]["before"] == "Emerging (1.53)"
    assert by_name[names[people[0]]]["now"] == "No level yet"
    assert by_name[names[people[1]]]["mastery"] == "No longer mastered"
    assert by_name[names[people[2]]]["now"] == "Proficient (3.00)"
    assert by_name[names[people[2]]]["mastery"] == "Now mastered"

    again = _save(teacher, _form(method="n_times", n="2"))
    assert again.status_code == 200
    assert [r for r in _report(again.text) if code in r["comp"]] == []


def test_levels_that_moved_are_queued_for_the_gradebook_with_the_new_level(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """With the competency sent to the LMS gradebook, a method change queues exactly the
    students whose level changed, each with the new level's points; a student whose score moved
    within the same level is not re-sent (the gradebook shows levels). Renaming a level re-sends
    everyone on it with the new name."""
    comp, people = _with_evidence(db, own_ids, unique("GB"))
    cid = own_ids.context()
    with db.begin() as s:
        set_gradebook_competencies(s, context_id=cid, competency_ids=[comp])

    def pending() -> dict[int, tuple[str | None, Decimal | None]]:
        with db.begin() as s:
            rows = s.scalars(
                select(ScoreOutbox).where(
                    ScoreOutbox.competency_id == comp,
                    ScoreOutbox.status == OutboxStatus.PENDING,
                )
            )
            return {r.person_id: (r.level_name, r.score_given) for r in rows}

    queued_before = pending()
    assert queued_before == {
        people[0]: ("Proficient", D(3)),
        people[1]: ("Developing", D(2)),
        people[2]: ("Emerging", D(1)),
    }
    # Decaying 50%: 2.75 Developing, 2.50 Developing (same level), 2.00 Developing.
    answer = _save(teacher, _form(weight="50"))
    assert answer.status_code == 200, answer.text[:1000]
    assert pending() == {
        people[0]: ("Developing", D(2)),
        people[1]: ("Developing", D(2)),  # the earlier row, still waiting: not re-sent
        people[2]: ("Developing", D(2)),
    }
    with db.begin() as s:
        counts = {
            p: len(
                s.scalars(
                    select(ScoreOutbox.id).where(
                        ScoreOutbox.competency_id == comp, ScoreOutbox.person_id == p
                    )
                ).all()
            )
            for p in people
        }
    assert counts == {people[0]: 2, people[1]: 1, people[2]: 2}

    renamed = [("Approaching" if n == "Developing" else n, p, c, m) for n, p, c, m in DEFAULT_SPECS]
    answer = _save(teacher, _form(renamed, weight="50"))
    assert answer.status_code == 200, answer.text[:1000]
    assert pending() == {p: ("Approaching", D(2)) for p in people}


def test_a_scale_of_twenty_levels_survives_being_saved_from_its_own_page(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """The teacher opens the scale page of a 20-level scale and saves it unchanged: all 20
    levels are still there (the page shows the 20 rows and no empty one: the scale is full)."""
    cid = own_ids.context()
    twenty = [(f"Step {i}", D(i), "#067647", i == 10) for i in range(20)]
    with db.begin() as s:
        update_scale(s, context_id=cid, method=M.HIGHEST, levels=twenty)
    fields = _browser_fields(teacher.get("/mastery/scale").text)
    answer = teacher.post("/mastery/scale", fields)
    assert answer.status_code == 200, answer.text[:1000]
    levels, _ = _scale(db, cid)
    assert [(n, p, m) for n, p, _, m in levels] == [(n, p, m) for n, p, _, m in twenty]


def test_more_levels_than_the_editor_holds_are_refused_not_dropped(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """A crafted form with 25 filled rows: refused with a plain message; before, the rows past
    the 20th were silently dropped."""
    many = [(f"Step {i}", D(i), "#067647", i == 3) for i in range(25)]
    answer = _save(teacher, _form(many))
    assert answer.status_code == 400, answer.text[:1000]
    assert "at most 20 levels" in answer.text
    levels, _ = _scale(db, own_ids.context())
    assert [n for n, *_ in levels] == [n for n, *_ in DEFAULT_SPECS]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"level-2-name": "Pro\x00ficient"}, "NUL"),
        ({"level-2-name": "x" * 65}, "at most 64 characters"),
        ({"level-1-name": "proficient"}, "name of its own"),
        ({"level-1-points": "3"}, "rising points"),
        ({"level-0-points": "-1"}, "from 0"),
        ({"level-0-points": "0.555"}, "two decimals"),
        ({"level-3-points": "1E+999999"}, "two decimals"),
        ({"level-3-points": "10000"}, "9999.99"),
        ({"level-3-points": "NaN"}, "not a number"),
        ({"level-3-points": "4\x00"}, "not a number"),
        ({"level-0-colour": "red"}, "#rrggbb"),
        ({"level-0-colour": "#12345g"}, "#rrggbb"),
        ({"level-0-colour": "#123456\x00"}, "#rrggbb"),
        ({"mastery": "5"}, "Exactly one level marks mastery."),
        ({"mastery": "x"}, "Exactly one level marks mastery."),
        (
            {
                "level-1-name": "",
                "level-1-points": "",
                "level-2-name": "",
                "level-2-points": "",
                "level-3-name": "",
                "level-3-points": "",
            },
            "at least two levels",
        ),
        ({"rows": "abc"}, "whole number"),
        ({"rows": "-3"}, "at least two levels"),
        ({"method": "canvas_magic"}, "Choose a calculation method"),
        ({"method": "decaying_average\x00"}, "Choose a calculation method"),
    ],
)
def test_scale_forms_a_browser_could_send_are_answered_plainly(
    teacher: Frame, db: Database, own_ids: Ids, edit: dict[str, str], message: str
) -> None:
    cid = own_ids.context()
    before = _scale(db, cid)
    answer = teacher.post("/mastery/scale", {**_form(), **edit})
    assert answer.status_code == 400, answer.text[:1000]
    assert message in html.unescape(answer.text)
    assert _scale(db, cid) == before


def test_markup_in_level_names_is_kept_as_typed_and_shown_as_text(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    comp, people = _with_evidence(db, own_ids, unique("MK"))
    levels = list(DEFAULT_SPECS)
    levels[2] = ('<img src=x onerror="alert(1)">', D(3), "#067647", True)
    answer = _save(teacher, _form(levels))
    assert answer.status_code == 200, answer.text[:1000]
    assert "<img src=x" not in answer.text
    assert "&lt;img src=x onerror=" in answer.text
    saved, _ = _scale(db, own_ids.context())
    assert saved[2][0] == '<img src=x onerror="alert(1)">'
    assert "&lt;img src=x onerror=" in teacher.get("/mastery/scale").text
    with db.begin() as s:
        row = s.scalars(
            select(StudentCompetencyLevel).where(
                StudentCompetencyLevel.competency_id == comp,
                StudentCompetencyLevel.person_id == people[0],
            )
        ).one()
        assert row.level_name == '<img src=x onerror="alert(1)">'


@pytest.mark.parametrize(
    ("method", "weight", "n", "stored"),
    [
        ("decaying_average", "49", "3", None),
        ("decaying_average", "50", "3", (50, 3)),
        ("decaying_average", "99", "3", (99, 3)),
        ("decaying_average", "100", "3", None),
        ("weighted_average", "0", "3", None),
        ("weighted_average", "1", "3", (1, 3)),
        ("weighted_average", "99", "3", (99, 3)),
        ("weighted_average", "100", "3", None),
        ("n_times", "65", "0", None),
        ("n_times", "65", "1", (65, 1)),
        ("n_times", "65", "10", (65, 10)),
        ("n_times", "65", "11", None),
        ("decaying_average", " 70 ", "3", (70, 3)),
        ("decaying_average", "70.0", "3", (70, 3)),
        ("decaying_average", "7e1", "3", (70, 3)),
        ("decaying_average", "70.5", "3", None),
        ("decaying_average", "-70", "3", None),
        ("decaying_average", "NaN", "3", None),
        ("decaying_average", "Infinity", "3", None),
        ("decaying_average", "1e999999", "3", None),
        ("decaying_average", "7\x000", "3", None),
        ("decaying_average", "9" * 40, "3", None),
        ("n_times", "65", "2.0", (65, 2)),
        ("n_times", "65", "1e400", None),
        ("most_recent", "", "", (65, 3)),
    ],
)
def test_method_parameters_at_and_past_their_bounds(
    teacher: Frame,
    db: Database,
    own_ids: Ids,
    method: str,
    weight: str,
    n: str,
    stored: tuple[int, int] | None,
) -> None:
    """Decaying average takes 50-99%, weighted 1-99%, n times 1-10. A number field may send
    "70.0" or "7e1" for seventy: the teacher typed a whole number, so it is taken as 70. Anything
    else is refused with the allowed range named, and nothing is saved."""
    cid = own_ids.context()
    before = _scale(db, cid)
    answer = _save(teacher, _form(method=method, weight=weight, n=n))
    if stored is None:
        assert answer.status_code == 400, answer.text[:1000]
        text = html.unescape(answer.text)
        assert re.search(r"from (1|50)% to 99%|from 1 to 10|whole number|percentage", text)
        assert "_average" not in text.split("<h1>", 1)[1].split("<form", 1)[0]
        assert _scale(db, cid) == before
    else:
        assert answer.status_code == 200, answer.text[:1000]
        _, settings = _scale(db, cid)
        assert (settings[0].value, settings[1], settings[2]) == (method, *stored)


def test_self_assessment_switch_through_the_form(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """The checkbox on: the student's own 4 after the teacher's 2 counts (3.30, mastered) and
    the report says so; unticked: back to 2.00."""
    cid, me = own_ids.context(), own_ids.person("user-s02")
    code, teacher_id = unique("SA"), own_ids.person("user-t01")
    with db.begin() as s:
        comp = competencies.create_competency(s, context_id=cid, code=code, title=code).id
        _results(s, cid, comp, me, ["2"], recorded_by=teacher_id)
        _results(
            s,
            cid,
            comp,
            me,
            ["4"],
            recorded_by=me,
            source=EvidenceSource.SELF_ASSESSMENT,
            start_days_ago=5,
        )
    on = _save(teacher, _form(self_assessment=True))
    assert on.status_code == 200
    rows = [r for r in _report(on.text) if code in r["comp"]]
    assert [(r["before"], r["now"], r["mastery"]) for r in rows] == [
        ("Developing (2.00)", "Proficient (3.30)", "Now mastered")
    ]
    assert 'id="counts-self" checked' in teacher.get("/mastery/scale").text
    off = _save(teacher, _form())
    rows = [r for r in _report(off.text) if code in r["comp"]]
    assert [(r["now"], r["mastery"]) for r in rows] == [("Developing (2.00)", "No longer mastered")]


def test_double_click_on_save_adding_a_level_adds_it_once(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """Two identical saves at once (a double click), each adding "Expert" at 5: the scale ends
    with five levels, Expert once, and both answers are pages, not errors."""
    cid = own_ids.context()
    comp, _ = _with_evidence(db, own_ids, unique("DC"))
    five = [*DEFAULT_SPECS, ("Expert", D(5), "#5b21b6", False)]
    data = {"lt": teacher.token, "csrf_token": teacher.csrf_token(), **_form(five)}
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def click() -> None:
        barrier.wait()
        answers.append(teacher.client.post(f"{teacher.base}/mastery/scale", data=data))

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join()
    assert sorted(a.status_code for a in answers) == [200, 200], [a.text[:300] for a in answers]
    levels, _ = _scale(db, cid)
    assert [n for n, *_ in levels] == ["Emerging", "Developing", "Proficient", "Advanced", "Expert"]
    assert sum(m for *_, m in levels) == 1
    assert comp
