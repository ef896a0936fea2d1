"""The dashboard, cells, groups, attention list, charts and exports through real launches:
only the launch's course, only its teacher."""

from __future__ import annotations

import csv
import html
import io
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lti_app.competencies.services import create_competency
from lti_app.insights.exports import evidence_csv
from lti_app.insights.groups import group_history, group_member_ids, resolve_picked_students
from lti_app.insights.proposals import propose_for_competency
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.models import Evidence, EvidenceSource
from lti_app.mastery.scales import update_scale
from lti_app.mastery.services import record_evidence, withdraw_evidence
from lti_app.tool.models import Membership
from tests.conftest import LtiActions
from tests.insights.conftest import OTHER_TEACHER, TEACHER, FreshCourse, Seeded
from tests.progress.pages import form, post, unique, unit_of_work, url

PAGES = (
    "/insights/",
    "/insights/attention",
    "/insights/groups",
    "/insights/progress",
    "/insights/dashboard.csv",
    "/insights/evidence.csv",
)


@pytest.mark.parametrize("path", PAGES)
def test_a_student_never_reaches_the_teacher_pages(lti: LtiActions, path: str) -> None:
    home = lti.launch("user-s02")
    assert home.client.get(url(home.response, path)).status_code == 403


def test_dashboard_shows_levels_with_names_and_counts(lti: LtiActions, seeded: Seeded) -> None:
    home = lti.launch(TEACHER)
    page = home.client.get(url(home.response, "/insights/"))
    assert page.status_code == 200
    text = page.text
    assert seeded.c1_code in text
    # The cell carries the level's short name, not only a colour; the legend names it.
    assert f'value="{seeded.students["user-s01"]}-{seeded.c1}"><span class="cc">' in text
    assert "<bdi>Proficient</bdi> (3), mastery" in text
    assert "Cells and &lt;organelles&gt;" in text
    filtered = home.client.get(
        url(home.response, "/insights/") + f"&competency={seeded.c1}&level=Emerging&sort=level_desc"
    )
    assert f'value="{seeded.students["user-s02"]}-{seeded.c1}"' in filtered.text
    assert f'value="{seeded.students["user-s01"]}-{seeded.c1}"' not in filtered.text


def test_n_times_dashboard_tells_no_level_yet_from_not_assessed(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """With "n times" (n = 3), two Advanced results give no level yet: the legend, the grid and
    the cell must not tell the teacher the student was never assessed."""
    with unit_of_work(database_url) as s:
        ctx = fresh_course.context_id
        update_scale(s, context_id=ctx, method=CalculationMethod.N_TIMES, n=3)
        twice = create_competency(s, context_id=ctx, code=unique("NT-"), title="Twice")
        never = create_competency(s, context_id=ctx, code=unique("NA-"), title="Never")
        for days in (3, 2):
            record_evidence(
                s,
                context_id=ctx,
                competency_id=twice.id,
                student_ids=[fresh_course.student_id],
                points=Decimal(4),
                source=EvidenceSource.TEACHER,
                note="",
                recorded_by_id=fresh_course.teacher_id,
                observed_at=datetime.now(UTC) - timedelta(days=days),
            )
    home = fresh_course.lti.launch(TEACHER)
    page = home.client.get(url(home.response, "/insights/")).text
    legend = re.search(r'<li><span class="chip">\u2013</span>([^<]*)</li>', page)
    assert legend is not None
    assert "not assessed yet" in legend[1]
    waiting = re.search(r'<li><span class="chip">\u2026</span>([^<]*)</li>', page)
    assert waiting is not None
    assert "evidence, no level yet" in waiting[1]
    assert "n times" in html.unescape(waiting[1])

    def grid_cell(competency_id: int) -> str:
        found = re.search(rf'value="{fresh_course.student_id}-{competency_id}".*?</td>', page)
        assert found is not None
        return found[0]

    # The two empty cells differ for the eye (the legend's marks) and in the words a screen
    # reader says (the mark itself is hidden from it).
    assert '<span aria-hidden="true">&hellip;</span>' in grid_cell(twice.id)
    assert '<span class="visually-hidden">evidence, no level yet</span>' in grid_cell(twice.id)
    assert '<span aria-hidden="true">&ndash;</span>' in grid_cell(never.id)
    assert '<span class="visually-hidden">not assessed yet</span>' in grid_cell(never.id)

    def current(competency_id: int) -> str:
        cell = f"&cell={fresh_course.student_id}-{competency_id}"
        text = home.client.get(url(home.response, "/insights/cell") + cell).text
        found = re.search(r"<p>Current level: (.*?)</p>", text, re.S)
        assert found is not None
        return " ".join(html.unescape(re.sub(r"<[^>]+>", "", found[1])).split())

    assessed = current(twice.id)
    assert "not assessed" not in assessed
    assert assessed.startswith("no level yet")
    assert "2 results counted" in assessed
    assert current(never.id) == "not assessed yet."


def test_a_cell_whose_only_evidence_was_withdrawn_reads_not_assessed(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """Evidence recorded for the wrong student and withdrawn leaves the level row behind with
    nothing counted: the grid must say "not assessed yet", as the cell's page does, not
    "evidence, no level yet"."""
    with unit_of_work(database_url) as s:
        ctx = fresh_course.context_id
        competency = create_competency(s, context_id=ctx, code=unique("WD-"), title="Withdrawn")
        record_evidence(
            s,
            context_id=ctx,
            competency_id=competency.id,
            student_ids=[fresh_course.student_id],
            points=Decimal(3),
            source=EvidenceSource.TEACHER,
            note="typed for the wrong student",
            recorded_by_id=fresh_course.teacher_id,
        )
        evidence_id = s.scalars(
            select(Evidence.id).where(
                Evidence.person_id == fresh_course.student_id,
                Evidence.competency_id == competency.id,
            )
        ).one()
        withdraw_evidence(
            s, context_id=ctx, evidence_id=evidence_id, changed_by_id=fresh_course.teacher_id
        )
    home = fresh_course.lti.launch(TEACHER)
    page = home.client.get(url(home.response, "/insights/")).text
    found = re.search(rf'value="{fresh_course.student_id}-{competency.id}".*?</td>', page)
    assert found is not None
    assert '<span aria-hidden="true">&ndash;</span>' in found[0]
    assert '<span class="visually-hidden">not assessed yet</span>' in found[0]
    assert "no level yet" not in found[0]


def test_proposed_groups_follow_the_stored_standing_not_the_level_alone(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """A parent at Advanced with a part never assessed is not "ready to extend", and "n times"
    evidence without a level yet is not "not assessed": each would send the teacher's group the
    wrong way."""
    ctx, student = fresh_course.context_id, fresh_course.student_id

    def advanced(s: Session, competency_id: int, days: int = 1) -> None:
        record_evidence(
            s,
            context_id=ctx,
            competency_id=competency_id,
            student_ids=[student],
            points=Decimal(4),
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=fresh_course.teacher_id,
            observed_at=datetime.now(UTC) - timedelta(days=days),
        )

    def group_of_student(competency_id: int) -> str:
        with unit_of_work(database_url) as s:
            groups = propose_for_competency(s, context_id=ctx, competency_id=competency_id)
        (name,) = [g.name for g in groups if student in g.person_ids]
        return name

    with unit_of_work(database_url) as s:
        parent = create_competency(s, context_id=ctx, code=unique("PP-"), title="Parts")
        part_a = create_competency(
            s, context_id=ctx, code=unique("PA-"), title="Part A", parent_id=parent.id
        )
        create_competency(
            s, context_id=ctx, code=unique("PB-"), title="Part B", parent_id=parent.id
        )
        advanced(s, part_a.id)
    assert group_of_student(parent.id) == f"Needs more practice on {parent.code}"

    with unit_of_work(database_url) as s:
        update_scale(s, context_id=ctx, method=CalculationMethod.N_TIMES, n=3)
        twice = create_competency(s, context_id=ctx, code=unique("NT-"), title="Twice")
        for days in (3, 2):
            advanced(s, twice.id, days)
    assert group_of_student(twice.id) == (
        f"Not yet enough results at mastery on {twice.code} for a level"
    )


def test_every_student_name_on_the_dashboard_opens_their_progress(
    lti: LtiActions, seeded: Seeded
) -> None:
    home = lti.launch(TEACHER)
    page = home.client.get(url(home.response, "/insights/"))
    links = sorted(set(re.findall(r'href="([^"]*/insights/students/[^"]*)"', page.text)))
    assert len(links) >= len(seeded.students)
    for link in links:
        opened = home.client.get(str(home.response.url.join(link.replace("&amp;", "&"))))
        assert opened.status_code == 200, (link, opened.status_code)
        assert "progress" in opened.text.lower()


def test_cell_heading_isolates_the_student_name_from_the_code(
    lti: LtiActions, seeded: Seeded
) -> None:
    """An Arabic or Hebrew name before a code that starts with a digit ("name: 1.2 Cells") is
    drawn as "1.2: name … Cells" unless the name is isolated; so are the LMS's names in the top
    bar."""
    home = lti.launch(TEACHER)
    s01 = seeded.students["user-s01"]
    page = home.client.get(url(home.response, f"/insights/students/{s01}/competencies/{seeded.c1}"))
    heading = re.search(r"<h1>(.*?)</h1>", page.text)
    assert heading is not None
    assert re.fullmatch(
        rf"<bdi>[^<]+</bdi>: <bdi>{seeded.c1_code}</bdi> <bdi>Cells and &lt;organelles&gt;</bdi>",
        heading[1],
    )
    assert re.search(
        r'<strong><bdi>[^<]+</bdi></strong>\s*<span aria-hidden="true">·</span> '
        r'<bdi class="course">',
        page.text,
    )


def test_cell_shows_the_evidence_and_refuses_other_courses(lti: LtiActions, seeded: Seeded) -> None:
    home = lti.launch(TEACHER)
    s01 = seeded.students["user-s01"]
    page = home.client.get(url(home.response, "/insights/cell") + f"&cell={s01}-{seeded.c1}")
    assert page.status_code == 200
    assert "Clear lab report on mitochondria" in page.text
    other = lti.launch(OTHER_TEACHER, context_id="course-chem-club")
    for path in (
        f"/insights/cell?cell={s01}-{seeded.c1}",
        f"/insights/students/{s01}/competencies/{seeded.c1}",
        f"/insights/students/{seeded.students['user-s03']}/progress",
    ):
        base, _, query = path.partition("?")
        response = other.client.get(url(other.response, base) + (f"&{query}" if query else ""))
        assert response.status_code == 404, path
    dashboard = other.client.get(url(other.response, "/insights/"))
    assert seeded.c1_code not in dashboard.text
    # s01 is in both courses: the club's teacher sees only the club's data about them. s01's
    # club membership comes from the roster sync the club teacher's launch started in the
    # background; give it time on a busy machine.
    shared = other.client.get(url(other.response, f"/insights/students/{s01}/progress"))
    deadline = time.monotonic() + 20
    while shared.status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.2)
        shared = other.client.get(url(other.response, f"/insights/students/{s01}/progress"))
    assert shared.status_code == 200
    assert seeded.c1_code not in shared.text


def test_exports_are_csv_of_this_course(lti: LtiActions, seeded: Seeded) -> None:
    home = lti.launch(TEACHER)
    grid = home.client.get(url(home.response, "/insights/dashboard.csv"))
    assert grid.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(grid.text)))
    assert f"{seeded.c1_code} level" in rows[0]
    assert any("Proficient" in row for row in rows[1:])
    log = home.client.get(url(home.response, "/insights/evidence.csv"))
    assert "Clear lab report on mitochondria" in log.text
    other = lti.launch(OTHER_TEACHER, context_id="course-chem-club")
    assert (
        "mitochondria" not in other.client.get(url(other.response, "/insights/evidence.csv")).text
    )


def test_groups_are_proposed_adjusted_saved_and_used(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    home = lti.launch(TEACHER)
    proposal = home.client.get(
        url(home.response, "/insights/groups/propose") + f"&competency={seeded.c1}"
    )
    assert proposal.status_code == 200
    assert f"Needs re-teaching on {seeded.c1_code}" in proposal.text
    s01, s02, s03 = (seeded.students[k] for k in ("user-s01", "user-s02", "user-s03"))
    found = form(proposal, "/insights/groups/propose")
    data = {k: v for k, v in found.fields.items() if k.startswith(("keep-", "name-", "competency"))}
    # Keep only the first group, renamed, and move s03 into it.
    for key in list(data):
        if key.startswith("keep-") and key != "keep-0":
            data.pop(key)
    data["name-0"] = "Re-teach cells"
    data.update({f"assign-{s02}": "0", f"assign-{s03}": "0", f"assign-{s01}": ""})
    saved = post(home.client, found, data)
    assert saved.status_code == 200
    assert "Re-teach cells" in saved.text
    with unit_of_work(database_url) as s:
        history = group_history(s, context_id=seeded.context_id, person_id=s03)
        assert history[0].name == "Re-teach cells"
        group_id = history[0].group_id
        assert group_member_ids(s, context_id=seeded.context_id, group_id=group_id) == {s02, s03}
        picked = resolve_picked_students(
            s, context_id=seeded.context_id, group_id=group_id, person_ids=[s01]
        )
        assert set(picked) == {s01, s02, s03}
        with pytest.raises(LookupError):
            resolve_picked_students(
                s, context_id=seeded.context_id, group_id=None, person_ids=[10**9]
            )
    # Another course's teacher cannot open, edit or archive it.
    other = lti.launch(OTHER_TEACHER, context_id="course-chem-club")
    assert other.client.get(url(other.response, f"/insights/groups/{group_id}")).status_code == 404
    with unit_of_work(database_url) as s, pytest.raises(LookupError):
        group_member_ids(s, context_id=seeded.context_id + 10**6, group_id=group_id)
    # The teacher archives it; it stays in the student's history.
    groups = home.client.get(url(home.response, "/insights/groups"))
    archived = post(home.client, form(groups, f"/insights/groups/{group_id}/archive"))
    assert "Archived" in archived.text
    progress = home.client.get(url(home.response, f"/insights/students/{s03}/progress"))
    assert "Re-teach cells" in progress.text
    assert "group archived" in progress.text


def test_attention_list_names_the_action(lti: LtiActions, seeded: Seeded) -> None:
    home = lti.launch(TEACHER)
    page = home.client.get(url(home.response, "/insights/attention") + "&days=1")
    assert page.status_code == 200
    assert "Goals past their target date" in page.text
    assert "Explain photosynthesis to my family" in page.text
    assert "Hold a goal check-in" in page.text
    assert "No recent evidence" in page.text


def test_progress_charts_are_svg_with_a_data_table(lti: LtiActions, seeded: Seeded) -> None:
    home = lti.launch(TEACHER)
    s01 = seeded.students["user-s01"]
    page = home.client.get(url(home.response, f"/insights/students/{s01}/progress"))
    assert "<svg" in page.text
    assert 'role="img"' in page.text
    assert ">Proficient</text>" in page.text  # level names label the axis: no colour needed
    assert "Data table" in page.text
    klass = home.client.get(url(home.response, "/insights/progress") + f"&competency={seeded.c1}")
    assert "<svg" in klass.text
    assert "at mastery" in klass.text
    # A student sees their own chart, never a classmate's.
    me = lti.launch("user-s01")
    assert me.client.get(url(me.response, f"/insights/students/{s01}/progress")).status_code == 200
    s02 = seeded.students["user-s02"]
    assert me.client.get(url(me.response, f"/insights/students/{s02}/progress")).status_code == 403


def test_the_evidence_export_leaves_out_canvas_test_student(
    fresh_course: FreshCourse, database_url: str
) -> None:
    """Canvas's Test Student is the teacher trying the course: not a row of the class's record."""
    ctx = fresh_course.context_id
    with unit_of_work(database_url) as s:
        competency = create_competency(s, context_id=ctx, code=unique("TS-"), title="Previewed")
        record_evidence(
            s,
            context_id=ctx,
            competency_id=competency.id,
            student_ids=[fresh_course.student_id],
            points=Decimal(3),
            source=EvidenceSource.TEACHER,
            note="tried as the test student",
            recorded_by_id=fresh_course.teacher_id,
            observed_at=datetime.now(UTC),
        )

        def exported() -> str:
            return "".join(evidence_csv(s, context_id=ctx, zone=ZoneInfo("UTC")))

        assert "tried as the test student" in exported()
        s.execute(
            update(Membership)
            .where(Membership.context_id == ctx, Membership.person_id == fresh_course.student_id)
            .values(is_preview=True)
        )
        assert "tried as the test student" not in exported()


def test_every_grid_cell_opens_its_evidence_from_inside_one_form(
    lti: LtiActions, seeded: Seeded
) -> None:
    """The grid sits inside the cell form, so a cell's button needs no form="" of its own: at
    40 x 150 that attribute alone was ~100 KB of the page."""
    home = lti.launch(TEACHER)
    text = home.client.get(url(home.response, "/insights/")).text
    start = text.index('<form id="cell-form"')
    end = text.index("</form>", start)
    inside = text[start:end]
    assert 'action="/insights/cell"' in inside[: inside.index(">")]
    assert '<table class="grid"' in inside
    assert "</table>" in inside
    buttons = re.findall(r"<button name=\"cell\"[^>]*>", text)
    assert buttons
    assert all(b in inside for b in buttons)
    assert not any("form=" in b for b in buttons)
