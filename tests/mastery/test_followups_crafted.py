"""Follow-ups to the mastery settings reviews: a double click on Save, a scale page left open
in a second tab, evidence recorded while the scale is being saved, evidence recorded on a
competency before it got sub-competencies, and a refused save that must keep what was typed.

Every test asserts what a teacher would see: the page, its status, the stored levels.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from lti_app.competencies import services as competencies
from lti_app.db import Database
from lti_app.mastery import services
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.levels import current_levels
from lti_app.mastery.models import EvidenceSource, StudentCompetencyLevel
from lti_app.mastery.scales import get_or_create_scale, recompute_course, update_scale
from tests.courses.frames import Frame, Ids, unique
from tests.domain_fixtures import Course, make_course
from tests.mastery.confirming import confirm_of
from tests.mastery.conftest import DEFAULT_SPECS
from tests.mastery.test_settings_crafted import (
    ON_POSTGRES,
    _browser_fields,
    _report,
    _scale,
    _with_evidence,
)

D = Decimal
M = CalculationMethod
# Mastery moved up to Advanced: a 3 is no longer mastery, and is still called Proficient.
MASTERY_AT_ADVANCED = [(n, p, c, n == "Advanced") for n, p, c, _ in DEFAULT_SPECS]


# --- the teacher's scale page, on an LMS of this file's own -----------------------------------


def _post(teacher: Frame, fields: dict[str, str]) -> httpx.Response:
    data = {"lt": teacher.token, "csrf_token": teacher.csrf_token()}
    data.update(fields)
    return teacher.client.post(f"{teacher.base}/mastery/scale", data=data)


def _confirmed(teacher: Frame, fields: dict[str, str]) -> dict[str, str]:
    """`fields` as "Save it anyway" sends them, once the save asked first (saving nothing):
    these tests are about saves racing (test_losing_mastery_asks_first tests the asking)."""
    asked = _post(teacher, fields)
    return {**fields, **confirm_of(asked.text)} if "Not saved yet" in asked.text else fields


def _at_once(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(calls))
    answers: list[httpx.Response] = []

    def run(call: Callable[[], httpx.Response]) -> None:
        barrier.wait()
        answers.append(call())

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return answers


def test_double_click_on_save_shows_what_the_save_changed_on_both_answers(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """The teacher switches to the weighted average at 1% and clicks Save twice. The browser
    shows the second answer; it must still say what the change did to the three students (the
    first save's report), not that nothing changed."""
    code = unique("DBL")
    _with_evidence(db, own_ids, code)
    fields = _browser_fields(teacher.get("/mastery/scale").text)
    fields.update(method="weighted_average", weight="1")
    fields = _confirmed(teacher, fields)

    answers = _at_once(lambda: _post(teacher, fields), lambda: _post(teacher, fields))

    assert [a.status_code for a in answers] == [200, 200], [a.text[:500] for a in answers]
    reports = [[r for r in _report(a.text) if code in r["comp"]] for a in answers]
    assert len(reports[0]) == 3
    assert sorted(reports[0], key=str) == sorted(reports[1], key=str)
    assert any("already saved" in a.text for a in answers)
    _, settings = _scale(db, own_ids.context())
    assert (settings[0], settings[1]) == (M.WEIGHTED_AVERAGE, 1)


def test_a_save_from_a_scale_page_left_open_in_another_tab_is_refused_and_keeps_the_typing(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """Two tabs show the scale. In the first the teacher renames Developing to Approaching and
    saves. In the second, still showing Developing, they choose "Highest result" and save: that
    would silently bring Developing back. It is refused (409) with a plain message; the page
    shows the scale in force (Approaching) and keeps the choice of Highest; saving that page
    again, now knowing, goes through."""
    cid = own_ids.context()
    first_tab = _browser_fields(teacher.get("/mastery/scale").text)
    second_tab = _browser_fields(teacher.get("/mastery/scale").text)
    renamed = {**first_tab, "level-1-name": "Approaching"}
    assert _post(teacher, renamed).status_code == 200

    stale = _post(teacher, {**second_tab, "method": "highest"})

    assert stale.status_code == 409, stale.text[:1000]
    page = html.unescape(stale.text)
    assert "saved by someone else" in page
    in_force = page.split("The scale now in force", 1)[1].split("<form", 1)[0]
    assert "Approaching" in in_force
    assert 'name="method" value="highest" checked' in stale.text
    levels, settings = _scale(db, cid)
    assert [n for n, *_ in levels] == ["Emerging", "Approaching", "Proficient", "Advanced"]
    assert settings[0] == M.DECAYING_AVERAGE

    again = _post(teacher, _browser_fields(stale.text))
    assert again.status_code == 200, again.text[:1000]
    _, settings = _scale(db, cid)
    assert settings[0] == M.HIGHEST


def test_the_same_change_saved_in_two_tabs_is_not_refused(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """Both tabs ask for the same settings: the second has nothing to overwrite, so it answers
    with the report of that change, not with a refusal."""
    code = unique("TWO")
    _with_evidence(db, own_ids, code)
    tabs = [_browser_fields(teacher.get("/mastery/scale").text) for _ in range(2)]
    for fields in tabs:
        fields.update(method="highest")
    first, second = (_post(teacher, fields) for fields in tabs)
    assert (first.status_code, second.status_code) == (200, 200), second.text[:1000]
    assert (
        [r for r in _report(second.text) if code in r["comp"]]
        == [r for r in _report(first.text) if code in r["comp"]]
        != []
    )


def test_a_refused_save_keeps_everything_the_teacher_typed(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """The teacher renames two levels, switches method and mistypes one level's points: the
    refusal names the mistake, and the form still holds the renames and the method, instead of
    the stored scale (which would make them type everything again)."""
    fields = _browser_fields(teacher.get("/mastery/scale").text)
    fields.update(
        {
            "level-0-name": "Beginning",
            "level-1-name": "Approaching",
            "level-3-points": "four",
            "method": "most_recent",
        }
    )
    answer = _post(teacher, fields)
    assert answer.status_code == 400, answer.text[:1000]
    assert "not a number" in html.unescape(answer.text)
    assert 'value="Beginning"' in answer.text
    assert 'value="Approaching"' in answer.text
    assert 'value="four"' in answer.text
    assert 'name="method" value="most_recent" checked' in answer.text
    levels, _ = _scale(db, own_ids.context())
    assert [n for n, *_ in levels] == [n for n, *_ in DEFAULT_SPECS]


# --- evidence and a scale save take turns -----------------------------------------------------


def _record(session: Session, course: Course, competency_id: int, points: str) -> None:
    services.record_evidence(
        session,
        context_id=course.context_id,
        competency_id=competency_id,
        student_ids=[course.student_ids[0]],
        points=D(points),
        source=EvidenceSource.TEACHER,
        note="",
        recorded_by_id=course.teacher_id,
    )


def _stored(db: Database, course: Course, competency_id: int) -> tuple[str | None, bool]:
    with db.begin() as s:
        row = s.scalars(
            select(StudentCompetencyLevel).where(
                StudentCompetencyLevel.person_id == course.student_ids[0],
                StudentCompetencyLevel.competency_id == competency_id,
            )
        ).one()
        return row.level_name, row.is_mastered


def _until_waiting(db: Database, worker: threading.Thread) -> None:
    """Return once the worker's transaction waits for a lock (or the worker has finished)."""
    for _ in range(400):
        if not worker.is_alive():
            return
        with db.begin() as s:
            waiting = s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            )
        if waiting:
            return
        worker.join(timeout=0.05)


@pytest.mark.parametrize("first", ["scale save", "evidence"])
def test_evidence_recorded_while_the_scale_is_saved_is_scored_on_the_saved_scale(
    database_url: str, first: str
) -> None:
    """A teacher moves mastery up to Advanced while a colleague records a 3 (Proficient) for a
    student who has no level yet. Whichever starts first, once both are saved the student's 3
    is not mastery: the level is the one the scale in force gives. Before, the evidence was
    scored on the scale it had read and never recomputed: "mastered" under the old scale."""
    if not ON_POSTGRES:
        pytest.skip("SQLite runs one writing transaction at a time (BEGIN IMMEDIATE)")
    db = Database(database_url)
    try:
        with db.begin() as s:
            course = make_course(s)
            comp = competencies.create_competency(
                s, context_id=course.context_id, code="TURN", title="Turns"
            ).id
            get_or_create_scale(s, context_id=course.context_id)

        def save_scale(s: Session) -> None:
            update_scale(
                s, context_id=course.context_id, method=M.HIGHEST, levels=MASTERY_AT_ADVANCED
            )

        def record(s: Session) -> None:
            _record(s, course, comp, "3")

        held, other = (save_scale, record) if first == "scale save" else (record, save_scale)
        errors: list[BaseException] = []

        def run_other() -> None:
            try:
                with db.begin() as s:
                    other(s)
            except BaseException as err:  # the thread cannot fail the test itself
                errors.append(err)

        with db.begin() as s:
            held(s)
            worker = threading.Thread(target=run_other)
            worker.start()
            _until_waiting(db, worker)
        worker.join(timeout=60)
        assert not errors, errors
        assert _stored(db, course, comp) == ("Proficient", False)
    finally:
        db.dispose()


def test_evidence_is_scored_on_the_scale_in_force_not_on_one_read_earlier(
    database_url: str,
) -> None:
    """A unit of work that read the scale, committed, and records evidence after another one
    moved mastery up: the 3 is scored on the scale now in force (not mastered)."""
    db = Database(database_url)
    try:
        with db.begin() as s:
            course = make_course(s)
            comp = competencies.create_competency(
                s, context_id=course.context_id, code="LATE", title="Late"
            ).id
        with db.session_factory() as worker:
            get_or_create_scale(worker, context_id=course.context_id)
            worker.commit()
            with db.begin() as s:
                update_scale(
                    s, context_id=course.context_id, method=M.HIGHEST, levels=MASTERY_AT_ADVANCED
                )
            _record(worker, course, comp, "3")
            worker.commit()
        assert _stored(db, course, comp) == ("Proficient", False)
    finally:
        db.dispose()


# --- evidence on a competency that later gets sub-competencies --------------------------------


def _level(session: Session, course: Course, competency_id: int) -> tuple[Decimal | None, bool]:
    row = current_levels(
        session, context_id=course.context_id, person_id=course.student_ids[0]
    ).get(competency_id)
    return (None, False) if row is None else (row.score, row.is_mastered)


def test_evidence_on_a_competency_keeps_counting_after_it_gets_sub_competencies(
    session: Session, course: Course
) -> None:
    """The student showed Proficient (3) on Writing. The teacher splits Writing into two
    sub-competencies: nothing changes for the student (no gradebook resend either), because the
    earlier evidence stands in for the parts not yet assessed. A 1 on the first part: Writing is
    the mean of 1 and the stand-in 3. Withdrawing the old evidence takes it out at once (only
    the 1 is left); a 4 on the second part then gives the mean of 1 and 4."""
    cid = course.context_id
    writing = competencies.create_competency(session, context_id=cid, code="W", title="Writing").id
    _record(session, course, writing, "3")
    assert _level(session, course, writing) == (D(3), True)

    parts = [
        competencies.create_competency(
            session, context_id=cid, code=f"W.{i}", title=f"Part {i}", parent_id=writing
        ).id
        for i in (1, 2)
    ]
    assert recompute_course(session, context_id=cid) == []
    assert _level(session, course, writing) == (D(3), True)

    _record(session, course, parts[0], "1")
    assert _level(session, course, writing) == (D(2), False)

    direct = services.evidence_history(
        session, context_id=cid, person_id=course.student_ids[0], competency_id=writing
    )[0]
    changes = services.withdraw_evidence(
        session, context_id=cid, evidence_id=direct.id, changed_by_id=course.teacher_id
    )
    assert [(c.competency_id, c.new_score) for c in changes] == [(writing, D(1))]
    assert _level(session, course, writing) == (D(1), False)

    _record(session, course, parts[1], "4")
    assert _level(session, course, writing) == (D("2.5"), False)


def test_old_evidence_on_a_parent_stops_counting_once_every_part_has_evidence(
    session: Session, course: Course
) -> None:
    """A 1 on the unit before it had a part; then a 4 on its only part: the unit is mastered
    (the old 1 is outgrown, as new evidence can no longer go on the unit itself)."""
    cid = course.context_id
    unit = competencies.create_competency(session, context_id=cid, code="U", title="Unit").id
    _record(session, course, unit, "1")
    part = competencies.create_competency(
        session, context_id=cid, code="U.1", title="Part", parent_id=unit
    ).id
    recompute_course(session, context_id=cid)
    assert _level(session, course, unit) == (D(1), False)
    _record(session, course, part, "4")
    assert _level(session, course, unit) == (D(4), True)


def test_double_click_on_save_adding_a_level_reports_and_keeps_it_once(
    teacher: Frame, db: Database, own_ids: Ids
) -> None:
    """The second press of a Save that added Expert (5 points, now mastery) answers with what
    the first changed (the students' mastery moved up), and the scale has Expert once."""
    code = unique("ADD")
    _with_evidence(db, own_ids, code)
    fields = _browser_fields(teacher.get("/mastery/scale").text)
    fields.update(
        {"level-4-name": "Expert", "level-4-points": "5", "level-4-colour": "#5b21b6"},
        mastery="4",
    )
    fields = _confirmed(teacher, fields)
    first, second = _post(teacher, fields), _post(teacher, fields)
    assert (first.status_code, second.status_code) == (200, 200), second.text[:1000]
    mine = [[r for r in _report(a.text) if code in r["comp"]] for a in (first, second)]
    assert mine[0] == mine[1] != []
    assert {r["mastery"] for r in mine[1]} <= {"No longer mastered", "Not mastered"}
    levels, _ = _scale(db, own_ids.context())
    assert [(n, m) for n, _, _, m in levels][-2:] == [("Advanced", False), ("Expert", True)]
    again = _browser_fields(teacher.get("/mastery/scale").text)
    assert again["level-4-name"] == "Expert"
