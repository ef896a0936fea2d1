"""Adversarial tests of mastery and the student's progress page, as teachers and students meet
them: unusable scores and notes, other courses' ids, double clicks, scale edits after evidence,
calculation edges, roll-ups over archived parts, stale forms, and charts at their extremes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.competencies import services as competencies
from lti_app.db import Database
from lti_app.demo.server import RunningPlatform
from lti_app.mastery import services
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.errors import InvalidEvidenceError, InvalidScaleError
from lti_app.mastery.levels import current_levels, mastered_counts
from lti_app.mastery.models import Evidence, EvidenceSource, StudentCompetencyLevel
from lti_app.mastery.scales import (
    DEFAULT_LEVELS,
    get_or_create_scale,
    recompute_course,
    update_scale,
)
from lti_app.progress.charts import AxisLevel, ChartPoint, level_history_svg
from lti_app.progress.services import student_progress
from lti_app.tool.models import Membership, MembershipStatus, Person
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import (
    BIO_STUDENTS,
    Frame,
    Ids,
    ensure_launched,
    frame,
    make_competency,
    unique,
)
from tests.domain_fixtures import Course
from tests.progress import pages

D = Decimal
TEACHER = EvidenceSource.TEACHER
NOW = datetime.now(UTC)
DEFAULT_SPECS = [tuple(spec) for spec in DEFAULT_LEVELS]


# --- helpers ----------------------------------------------------------------------------------


def _competency(session: Session, course: Course, code: str, parent: int | None = None) -> int:
    return competencies.create_competency(
        session, context_id=course.context_id, code=code, title=code, parent_id=parent
    ).id


def _record(
    session: Session,
    course: Course,
    competency_id: int,
    points: str | Decimal,
    *,
    student: int | None = None,
    note: str = "",
    observed_at: datetime | None = None,
) -> list[services.MasteryChange]:
    return services.record_evidence(
        session,
        context_id=course.context_id,
        competency_id=competency_id,
        student_ids=[student or course.student_ids[0]],
        points=D(points),
        source=TEACHER,
        note=note,
        recorded_by_id=course.teacher_id,
        observed_at=observed_at or NOW,
    )


def _level(session: Session, course: Course, competency_id: int) -> StudentCompetencyLevel | None:
    return current_levels(
        session, context_id=course.context_id, person_id=course.student_ids[0]
    ).get(competency_id)


def _evidence_count(session: Session, competency_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Evidence)
            .where(Evidence.competency_id == competency_id)
        )
        or 0
    )


# --- scores and notes that cannot be recorded -------------------------------------------------


@pytest.mark.parametrize(
    "points",
    ["NaN", "sNaN", "Infinity", "-Infinity", "-1", "0.99", "4.01", "3.001", "1E+999999", "1e9"],
)
def test_scores_that_are_not_finite_or_off_the_scale_are_refused(
    session: Session, course: Course, points: str
) -> None:
    comp = _competency(session, course, "NUM")
    with pytest.raises(InvalidEvidenceError):
        _record(session, course, comp, points)
    assert _evidence_count(session, comp) == 0
    assert _level(session, course, comp) is None


def test_note_with_nul_is_refused_plainly_and_html_or_controls_are_kept_verbatim(
    session: Session, course: Course
) -> None:
    comp = _competency(session, course, "NOTE")
    with pytest.raises(InvalidEvidenceError, match="NUL"):
        _record(session, course, comp, "3", note="good\x00work")
    tricky = "<script>alert(1)</script>\tright\u202eleft \u0007bell"
    _record(session, course, comp, "3", note=tricky)
    session.expire_all()
    (stored,) = session.scalars(select(Evidence).where(Evidence.competency_id == comp)).all()
    assert stored.note == tricky.strip()
    with pytest.raises(InvalidEvidenceError, match="NUL"):
        services.correct_evidence(
            session,
            context_id=course.context_id,
            evidence_id=stored.id,
            note="x\x00",
            changed_by_id=course.teacher_id,
        )


def test_level_name_with_nul_is_refused(session: Session, course: Course) -> None:
    levels = list(DEFAULT_SPECS)
    levels[2] = ("Pro\x00ficient", D(3), "#067647", True)
    with pytest.raises(InvalidScaleError, match="NUL"):
        update_scale(
            session,
            context_id=course.context_id,
            method=CalculationMethod.DECAYING_AVERAGE,
            levels=levels,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    ("weight", "n"), [(10**12, None), (0, None), (-5, None), (None, 10**12), (None, 0)]
)
def test_weight_or_n_out_of_any_range_is_refused_for_a_method_that_ignores_it(
    session: Session, course: Course, weight: int | None, n: int | None
) -> None:
    scale = get_or_create_scale(session, context_id=course.context_id)
    before = (scale.weight, scale.n)
    with pytest.raises(InvalidScaleError):
        update_scale(
            session,
            context_id=course.context_id,
            method=CalculationMethod.MOST_RECENT,
            weight=weight,
            n=n,
        )
    session.flush()  # PostgreSQL would refuse a weight beyond its integer column
    assert (scale.weight, scale.n) == before


# --- calculation methods at their edges, through stored levels --------------------------------


@pytest.mark.parametrize("method", list(CalculationMethod))
def test_a_single_result_is_the_level_for_every_method(
    session: Session, course: Course, method: CalculationMethod
) -> None:
    update_scale(session, context_id=course.context_id, method=method, n=1)
    comp = _competency(session, course, "ONE")
    _record(session, course, comp, "3")
    stored = _level(session, course, comp)
    assert stored is not None
    assert (stored.score, stored.level_name, stored.is_mastered) == (D(3), "Proficient", True)


@pytest.mark.parametrize("method", list(CalculationMethod))
def test_equal_results_give_that_level_for_every_method(
    session: Session, course: Course, method: CalculationMethod
) -> None:
    update_scale(session, context_id=course.context_id, method=method, n=2)
    comp = _competency(session, course, "EQ")
    for days in (3, 2, 1):
        _record(session, course, comp, "2", observed_at=NOW - timedelta(days=days))
    stored = _level(session, course, comp)
    assert stored is not None
    if method is CalculationMethod.N_TIMES:  # never at mastery: not yet
        assert (stored.score, stored.level_name, stored.is_mastered) == (None, None, False)
    else:
        assert (stored.score, stored.level_name, stored.is_mastered) == (
            D(2),
            "Developing",
            False,
        )


def test_most_recent_with_two_results_at_the_same_moment_takes_the_one_recorded_last(
    session: Session, course: Course
) -> None:
    update_scale(session, context_id=course.context_id, method=CalculationMethod.MOST_RECENT)
    comp = _competency(session, course, "TIE")
    moment = NOW - timedelta(days=2)
    _record(session, course, comp, "4", observed_at=moment)
    _record(session, course, comp, "1", observed_at=moment)
    stored = _level(session, course, comp)
    assert stored is not None
    assert (stored.level_name, stored.is_mastered) == ("Emerging", False)
    view = student_progress(session, context_id=course.context_id, person_id=course.student_ids[0])
    item = next(c for c in view.competencies if c.competency.id == comp)
    assert [h.level_name for h in item.history] == ["Advanced", "Emerging"]


def test_decaying_average_with_one_result_then_a_second(session: Session, course: Course) -> None:
    comp = _competency(session, course, "DEC")
    _record(session, course, comp, "4", observed_at=NOW - timedelta(days=1))
    stored = _level(session, course, comp)
    assert stored is not None
    assert stored.score == D(4)
    _record(session, course, comp, "1")
    # 4 * 0.35 + 1 * 0.65 = 2.05: Developing, no longer mastered
    assert (stored.score, stored.level_name, stored.is_mastered) == (
        D("2.05"),
        "Developing",
        False,
    )


# --- roll-up over archived or empty parts -----------------------------------------------------


def test_parent_whose_children_are_all_archived_no_longer_shows_their_mastery(
    session: Session, course: Course
) -> None:
    parent = _competency(session, course, "P")
    kids = [_competency(session, course, f"P.{i}", parent) for i in (1, 2)]
    for kid in kids:
        _record(session, course, kid, "4")
    rolled = _level(session, course, parent)
    assert rolled is not None
    assert rolled.is_mastered
    for kid in kids:
        competencies.archive_competency(session, context_id=course.context_id, competency_id=kid)
    recompute_course(session, context_id=course.context_id)
    assert (rolled.score, rolled.level_name, rolled.is_mastered) == (None, None, False)
    assert mastered_counts(session, context_id=course.context_id) == {}
    # The parent now stands alone, so evidence goes on it.
    _record(session, course, parent, "3")
    assert (rolled.level_name, rolled.is_mastered) == ("Proficient", True)


def test_parent_with_a_child_without_evidence_is_not_mastered(
    session: Session, course: Course
) -> None:
    parent = _competency(session, course, "Q")
    done = _competency(session, course, "Q.1", parent)
    _competency(session, course, "Q.2", parent)
    _record(session, course, done, "4")
    rolled = _level(session, course, parent)
    assert rolled is not None
    assert (rolled.score, rolled.is_mastered) == (D(4), False)
    view = student_progress(session, context_id=course.context_id, person_id=course.student_ids[0])
    assert view.mastered_count == 1


# --- editing the scale after evidence exists --------------------------------------------------


def test_fewer_levels_keep_stored_levels_on_the_scale_and_old_evidence_correctable(
    session: Session, course: Course
) -> None:
    comp = _competency(session, course, "FEW")
    _record(session, course, comp, "4", note="Top marks")
    update_scale(
        session,
        context_id=course.context_id,
        method=CalculationMethod.DECAYING_AVERAGE,
        levels=DEFAULT_SPECS[:3],  # type: ignore[arg-type]
    )
    scale = get_or_create_scale(session, context_id=course.context_id)
    names = {lv.name for lv in scale.levels}
    stored = _level(session, course, comp)
    assert stored is not None
    assert stored.level_name in names
    assert (stored.level_name, stored.is_mastered) == ("Proficient", True)
    # The correction form sends the evidence's own points back with a new note.
    (evidence,) = services.evidence_history(
        session, context_id=course.context_id, person_id=course.student_ids[0]
    )
    services.correct_evidence(
        session,
        context_id=course.context_id,
        evidence_id=evidence.id,
        points=evidence.points,
        note="Top marks, moderated",
        changed_by_id=course.teacher_id,
    )
    assert (evidence.points, evidence.note) == (D(4), "Top marks, moderated")
    # But a new value above the scale is still refused.
    with pytest.raises(InvalidEvidenceError):
        services.correct_evidence(
            session,
            context_id=course.context_id,
            evidence_id=evidence.id,
            points=D("3.50") + 1,
            changed_by_id=course.teacher_id,
        )


def test_renamed_and_repointed_levels_show_on_the_current_level(
    session: Session, course: Course
) -> None:
    comp = _competency(session, course, "REN")
    _record(session, course, comp, "3")
    update_scale(
        session,
        context_id=course.context_id,
        method=CalculationMethod.DECAYING_AVERAGE,
        levels=[
            ("Beginning", D(0), "#b42318", False),
            ("Approaching", D(2), "#93370d", False),
            ("Meets", D("2.50"), "#067647", True),
            ("Exceeds", D("3.50"), "#175cd3", False),
        ],
    )
    stored = _level(session, course, comp)
    assert stored is not None
    assert (stored.level_name, stored.level_points, stored.is_mastered) == ("Meets", D("2.5"), True)
    view = student_progress(session, context_id=course.context_id, person_id=course.student_ids[0])
    assert view.mastered_count == 1


# --- charts at their extremes -----------------------------------------------------------------

AXIS = [
    AxisLevel("Emerging", D(1)),
    AxisLevel("Developing", D(2)),
    AxisLevel("Proficient", D(3), is_mastery=True),
    AxisLevel("Advanced", D(4)),
]


def test_chart_with_one_result_draws_one_point_and_no_line() -> None:
    svg = str(
        level_history_svg(
            [ChartPoint(NOW, D(3), "Proficient")], AXIS, chart_id="c1", title="One result"
        )
    )
    assert svg.count("<circle") == 1
    assert "<polyline" not in svg
    assert "1 result from" in svg


def test_chart_with_hundreds_of_results_stays_inside_its_box() -> None:
    points = [
        ChartPoint(NOW - timedelta(days=400 - i), D(1 + i % 4), AXIS[i % 4].name)
        for i in range(400)
    ]
    svg = str(level_history_svg(points, AXIS, chart_id="c2", title="Many"))
    assert svg.count("<circle") == 400
    xs = [float(part.split('"', 1)[0]) for part in svg.split('<circle cx="')[1:]]
    assert min(xs) >= 0
    assert max(xs) <= 540
    assert "400 results from" in svg


def test_chart_names_in_right_to_left_scripts_are_kept_and_escaped() -> None:
    axis = [AxisLevel("مبتدئ", D(1)), AxisLevel("متمكن <b>", D(2), is_mastery=True)]
    svg = str(
        level_history_svg(
            [ChartPoint(NOW, D(2), "متمكن <b>")], axis, chart_id="c3", title="نتائجك عن التمثيل"
        )
    )
    assert "نتائجك عن التمثيل" in svg
    assert "متمكن &lt;b&gt; (mastery)" in svg
    assert "<b>" not in svg


# --- through the teacher's and the student's pages --------------------------------------------


@pytest.fixture
def teacher(lti: LtiActions, tool_server: ToolServer, lms: RunningPlatform) -> Frame:
    ensure_launched(lms, tool_server, BIO_STUDENTS)
    return frame(lti.launch("user-t01"), tool_server.url)


def _count(db: Database, competency_id: int) -> int:
    with db.begin() as s:
        return _evidence_count(s, competency_id)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ("", "Choose a level"),
        ("abc", "Choose a level"),
        ("NaN", "Choose a level"),
        ("Infinity", "Choose a level"),
        ("-1", "Points must be from"),
        ("1e9", "Points must be from"),
        ("3.001", "two decimals"),
    ],
)
def test_bulk_form_with_unusable_points_answers_plainly(
    teacher: Frame, db: Database, ids: Ids, points: str, message: str
) -> None:
    with db.begin() as s:
        comp = make_competency(s, ids.context(), unique("PTS"))
    answer = teacher.post(
        "/mastery/evidence/bulk",
        {"student": [str(ids.person("user-s01"))], "competency_id": str(comp), "points": points},
    )
    assert answer.status_code == 400
    assert message in answer.text
    assert _count(db, comp) == 0


def test_evidence_on_another_course_student_or_competency_is_not_found(
    teacher: Frame,
    db: Database,
    ids: Ids,
    lti: LtiActions,
    tool_server: ToolServer,
    lms: RunningPlatform,
) -> None:
    ensure_launched(lms, tool_server, ("user-s01",), context_id="course-chem-club")
    lti.launch("user-t02", context_id="course-chem-club")
    bio, club = ids.context(), ids.context("course-chem-club")
    with db.begin() as s:
        mine = make_competency(s, bio, unique("OWN"))
        theirs = make_competency(s, club, unique("FOR"))
    student = ids.person("user-s02")
    foreign = teacher.post(
        f"/mastery/students/{student}/evidence", {"competency_id": str(theirs), "points": "3"}
    )
    assert foreign.status_code == 404
    assert _count(db, theirs) == 0
    # A student of this LMS who is not in this course (a chem-club-only launch would do; an id
    # far beyond any row is the same to the teacher).
    stranger = teacher.post(
        "/mastery/students/987654321/evidence", {"competency_id": str(mine), "points": "3"}
    )
    assert stranger.status_code == 404
    assert _count(db, mine) == 0


def test_ids_beyond_the_database_integer_range_are_not_found(
    teacher: Frame, db: Database, ids: Ids, lti: LtiActions, tool_server: ToolServer
) -> None:
    huge = str(2**70)
    assert teacher.get(f"/mastery/evidence/{huge}").status_code == 404
    with db.begin() as s:
        comp = make_competency(s, ids.context(), unique("BIG"))
    answer = teacher.post(
        f"/mastery/students/{huge}/evidence", {"competency_id": str(comp), "points": "3"}
    )
    assert answer.status_code == 404
    withdraw = teacher.post(f"/mastery/evidence/{huge}/withdraw")
    assert withdraw.status_code == 404
    home = lti.launch("user-s03")
    progress = home.client.get(pages.url(home.response, "/progress/"))
    self_rated = pages.post(
        home.client,
        pages.form(progress, "/progress/self-assessment"),
        {"competency_id": huge, "level_id": "1"},
    )
    assert self_rated.status_code == 404
    assert "does not exist in this course" in self_rated.text


def test_archived_competency_refuses_evidence_plainly(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    cid = ids.context()
    with db.begin() as s:
        comp = make_competency(s, cid, unique("ARC"))
    page = teacher.get("/mastery/evidence/bulk")  # the form is open...
    assert page.status_code == 200
    with db.begin() as s:  # ...when the competency is archived in another tab
        competencies.archive_competency(s, context_id=cid, competency_id=comp)
    answer = teacher.post(
        "/mastery/evidence/bulk",
        {"student": [str(ids.person("user-s01"))], "competency_id": str(comp), "points": "3.00"},
    )
    assert answer.status_code == 400
    assert "archived" in answer.text
    assert _count(db, comp) == 0


def _left_student(db: Database, ids: Ids, status: MembershipStatus) -> int:
    cid, platform_id = ids.context(), ids.platform()
    with db.begin() as s:
        person = Person(platform_id=platform_id, sub=unique("user-left-"), name="Left Student")
        s.add(person)
        s.flush()
        s.add(
            Membership(
                context_id=cid,
                person_id=person.id,
                roles=[],
                status=status,
                is_learner=True,
            )
        )
        return person.id


@pytest.mark.parametrize("status", [MembershipStatus.INACTIVE, MembershipStatus.DELETED])
def test_evidence_for_a_student_who_left_is_refused_plainly(
    teacher: Frame, db: Database, ids: Ids, status: MembershipStatus
) -> None:
    left, cid = _left_student(db, ids, status), ids.context()
    with db.begin() as s:
        comp = make_competency(s, cid, unique("LEFT"))
    answer = teacher.post(
        f"/mastery/students/{left}/evidence", {"competency_id": str(comp), "points": "3.00"}
    )
    assert answer.status_code in {400, 404}
    assert "left the course" in answer.text
    bulk = teacher.post(
        "/mastery/evidence/bulk",
        {"student": [str(left)], "competency_id": str(comp), "points": "3.00"},
    )
    assert bulk.status_code in {400, 404}
    assert _count(db, comp) == 0


def test_double_click_on_record_evidence_counts_once(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    with db.begin() as s:
        comp = make_competency(s, ids.context(), unique("DBL"))
    student = ids.person("user-s10")
    data = {
        "lt": teacher.token,
        "csrf_token": teacher.csrf_token(),
        "competency_id": str(comp),
        "points": "3.00",
        "note": "Presentation",
        "observed_on": "",
    }
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def click() -> None:
        barrier.wait()
        answers.append(
            teacher.client.post(f"{teacher.base}/mastery/students/{student}/evidence", data=data)
        )

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join()
    assert sorted(a.status_code for a in answers) == [303, 303], [a.text[:300] for a in answers]
    assert _count(db, comp) == 1
    with db.begin() as s:
        stored = current_levels(s, context_id=ids.context(), person_id=student)[comp]
        assert (stored.evidence_count, stored.level_name) == (1, "Proficient")


def test_note_with_nul_or_html_through_the_form(teacher: Frame, db: Database, ids: Ids) -> None:
    with db.begin() as s:
        comp = make_competency(s, ids.context(), unique("NUL"))
    student = ids.person("user-s03")
    refused = teacher.post(
        f"/mastery/students/{student}/evidence",
        {"competency_id": str(comp), "points": "2.00", "note": "pasted\x00text"},
    )
    assert refused.status_code == 400
    assert "NUL" in refused.text
    assert _count(db, comp) == 0
    saved = teacher.post(
        f"/mastery/students/{student}/evidence",
        {"competency_id": str(comp), "points": "2.00", "note": "<img src=x onerror=alert(1)>"},
    )
    assert "&lt;img src=x onerror=alert(1)&gt;" in teacher.follow(saved).text


def test_stale_correction_after_withdrawal_gets_a_plain_answer(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    with db.begin() as s:
        comp = make_competency(s, ids.context(), unique("STL"))
    student = ids.person("user-s01")
    teacher.follow(
        teacher.post(
            f"/mastery/students/{student}/evidence", {"competency_id": str(comp), "points": "2.00"}
        )
    )
    with db.begin() as s:
        evidence = s.scalars(select(Evidence).where(Evidence.competency_id == comp)).one()
    page = teacher.get(f"/mastery/evidence/{evidence.id}")
    assert "Save correction" in page.text
    teacher.follow(teacher.post(f"/mastery/evidence/{evidence.id}/withdraw"))
    stale = teacher.post(
        f"/mastery/evidence/{evidence.id}/correct",
        {
            "points": "3.00",
            "note": "regraded",
            "observed_on": evidence.observed_at.date().isoformat(),
        },
    )
    assert stale.status_code == 400
    assert "Withdrawn evidence cannot be corrected" in stale.text


def test_far_past_date_is_refused_and_old_far_past_evidence_still_renders(
    teacher: Frame, db: Database, ids: Ids, lti: LtiActions, tool_server: ToolServer
) -> None:
    """A year before 2000 is a slip (a year typed "26" is the year 26) and is refused; evidence
    saved that way before the check still shows on the student's progress page."""
    code = unique("OLD")
    with db.begin() as s:
        comp = make_competency(s, ids.context(), code)
    student = ids.person("user-s03")
    future = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    refused = teacher.post(
        f"/mastery/students/{student}/evidence",
        {"competency_id": str(comp), "points": "2.00", "observed_on": future},
    )
    assert refused.status_code == 400
    assert "future" in refused.text
    for day, points in (("0001-01-01", "1.00"), ("1900-02-28", "4.00")):
        slip = teacher.post(
            f"/mastery/students/{student}/evidence",
            {"competency_id": str(comp), "points": points, "observed_on": day},
        )
        assert slip.status_code == 400
        assert "please check the year" in slip.text
        with db.begin() as s:
            services.record_evidence(
                s,
                context_id=ids.context(),
                competency_id=comp,
                student_ids=[student],
                points=D(points),
                source=TEACHER,
                note="",
                recorded_by_id=student,
                observed_at=datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC),
            )
    me = frame(lti.launch("user-s03"), tool_server.url)
    page = me.get("/progress/")
    assert page.status_code == 200
    section = page.text.split(f'id="competency-{comp}"', 1)[1].split("</section>", 1)[0]
    assert "1 Jan 1" in section
    assert "28 Feb 1900" in section


def test_progress_page_with_many_results_and_a_right_to_left_title(
    db: Database, ids: Ids, lti: LtiActions, tool_server: ToolServer, lms: RunningPlatform
) -> None:
    ensure_launched(lms, tool_server, BIO_STUDENTS)
    title = "التمثيل الضوئي <ورقة>"
    student, cid = ids.person("user-s10"), ids.context()
    with db.begin() as s:
        comp = make_competency(s, cid, unique("RTL"), title=title)
        start = datetime.now(UTC) - timedelta(days=300)
        for i in range(150):
            s.add(
                Evidence(
                    context_id=cid,
                    competency_id=comp,
                    person_id=student,
                    points=D(1 + i % 4),
                    level_name=["Emerging", "Developing", "Proficient", "Advanced"][i % 4],
                    source=TEACHER,
                    note=f"שלב {i}",
                    recorded_by_id=student,
                    observed_at=start + timedelta(days=i),
                )
            )
        s.flush()
        recompute_course(s, context_id=cid)
    me = frame(lti.launch("user-s10"), tool_server.url)
    page = me.get("/progress/")
    assert page.status_code == 200
    section = page.text.split(f'id="competency-{comp}"', 1)[1].split("</section>", 1)[0]
    assert "التمثيل الضوئي &lt;ورقة&gt;" in section
    assert section.count("<circle") == 150
    assert section.count("<tr><td>") == 150
    assert "שלב 149" in section


def test_stale_self_assessment_with_a_level_since_removed_gets_a_plain_answer(
    db: Database, ids: Ids, lti: LtiActions, tool_server: ToolServer, lms: RunningPlatform
) -> None:
    ensure_launched(lms, tool_server, ("user-s01",), context_id="course-chem-club")
    cid = ids.context("course-chem-club")
    with db.begin() as s:
        comp = make_competency(s, cid, unique("SELF"))
        get_or_create_scale(s, context_id=cid)
    home = lti.launch("user-s01", context_id="course-chem-club")
    progress = home.client.get(pages.url(home.response, "/progress/"))
    page = progress.text
    top_id = page.split(f'id="level-{comp}"', 1)[1].split("</select>", 1)[0]
    advanced = top_id.split(">Advanced</option>", 1)[0].rsplit('value="', 1)[1].split('"', 1)[0]
    try:
        with db.begin() as s:  # the teacher drops the top level while the page is open
            update_scale(
                s,
                context_id=cid,
                method=CalculationMethod.DECAYING_AVERAGE,
                levels=DEFAULT_SPECS[:3],  # type: ignore[arg-type]
            )
        stale = pages.post(
            home.client,
            pages.form(progress, "/progress/self-assessment"),
            {"competency_id": str(comp), "level_id": advanced},
        )
        assert stale.status_code == 400, (stale.url, stale.text[stale.text.find("<main") :][:1500])
        assert "Choose one of the levels." in stale.text
        assert _count(db, comp) == 0
    finally:
        with db.begin() as s:
            update_scale(
                s,
                context_id=cid,
                method=CalculationMethod.DECAYING_AVERAGE,
                levels=DEFAULT_SPECS,  # type: ignore[arg-type]
            )


def test_correction_form_after_the_scale_lost_a_level_keeps_the_points(
    lti: LtiActions, tool_server: ToolServer, lms: RunningPlatform, db: Database, ids: Ids
) -> None:
    ensure_launched(lms, tool_server, ("user-s01",), context_id="course-chem-club")
    chem = frame(lti.launch("user-t02", context_id="course-chem-club"), tool_server.url)
    cid, student = ids.context("course-chem-club"), ids.person("user-s01")
    with db.begin() as s:
        comp = make_competency(s, cid, unique("LOST"))
    chem.follow(
        chem.post(
            f"/mastery/students/{student}/evidence", {"competency_id": str(comp), "points": "4.00"}
        )
    )
    with db.begin() as s:
        evidence_id = s.scalars(select(Evidence.id).where(Evidence.competency_id == comp)).one()
    try:
        with db.begin() as s:
            update_scale(
                s,
                context_id=cid,
                method=CalculationMethod.DECAYING_AVERAGE,
                levels=DEFAULT_SPECS[:3],  # type: ignore[arg-type]
            )
        page = chem.get(f"/mastery/evidence/{evidence_id}").text
        select_html = page.split('id="cor-points"', 1)[1].split("</select>", 1)[0]
        selected = select_html.split(" selected", 1)[0].rsplit('value="', 1)
        assert " selected" in select_html, "the evidence's own points are not offered"
        posted_points = selected[1].split('"', 1)[0]
        answer = chem.post(
            f"/mastery/evidence/{evidence_id}/correct",
            {"points": posted_points, "note": "moderated", "observed_on": ""},
        )
        assert answer.status_code == 303, answer.text[:500]
        with db.begin() as s:
            stored = s.get(Evidence, evidence_id)
            assert stored is not None
            assert (stored.points, stored.note) == (D(4), "moderated")
    finally:
        with db.begin() as s:
            update_scale(
                s,
                context_id=cid,
                method=CalculationMethod.DECAYING_AVERAGE,
                levels=DEFAULT_SPECS,  # type: ignore[arg-type]
            )


def test_weight_beyond_any_range_on_the_scale_form_gets_a_plain_answer(
    lti: LtiActions, tool_server: ToolServer, lms: RunningPlatform, db: Database, ids: Ids
) -> None:
    chem = frame(lti.launch("user-t02", context_id="course-chem-club"), tool_server.url)
    form: dict[str, Any] = {"rows": "4", "method": "most_recent", "weight": "99999999999"}
    form["n"] = "3"
    form["mastery"] = "2"
    for i, (name, points, colour, _) in enumerate(DEFAULT_SPECS):
        form[f"level-{i}-name"] = name
        form[f"level-{i}-points"] = str(points)
        form[f"level-{i}-colour"] = colour
    try:
        answer = chem.post("/mastery/scale", form)
        assert answer.status_code == 400
        assert "weight" in answer.text
    finally:
        with db.begin() as s:
            update_scale(
                s,
                context_id=ids.context("course-chem-club"),
                method=CalculationMethod.DECAYING_AVERAGE,
                weight=65,
                levels=DEFAULT_SPECS,  # type: ignore[arg-type]
            )
