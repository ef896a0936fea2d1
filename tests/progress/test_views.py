"""The student's progress page through a real launch: levels with their history as a chart
and a table, what to do next, and a self-assessment recorded as such."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from lti_app.competencies.services import create_competency
from lti_app.mastery.models import Evidence, EvidenceSource
from lti_app.mastery.services import record_evidence
from tests.conftest import LtiActions
from tests.progress.pages import context_id, form, person_id, post, unique, unit_of_work, url

STUDENT, CLASSMATE = "user-s02", "user-s01"


def test_progress_shows_levels_chart_table_and_records_a_self_assessment(
    lti: LtiActions, database_url: str
) -> None:
    lti.launch(STUDENT)
    code = unique("PH")
    with unit_of_work(database_url) as s:
        ctx, me = context_id(s, lti.lms), person_id(s, lti.lms, STUDENT)
        comp = create_competency(s, context_id=ctx, code=code, title="Photosynthesis <light>")
        now = datetime.now(UTC)
        for days, points in ((9, 1), (5, 2), (1, 4)):
            record_evidence(
                s,
                context_id=ctx,
                competency_id=comp.id,
                student_ids=[me],
                points=Decimal(points),
                source=EvidenceSource.TEACHER,
                note="Good work" if points == 4 else "",
                recorded_by_id=me,
                observed_at=now - timedelta(days=days),
            )
        comp_id = comp.id
    home = lti.launch(STUDENT)
    page = home.client.get(url(home.response, "/progress/"))
    assert page.status_code == 200
    section = page.text.split(f'id="competency-{comp_id}"', 1)[1].split("</section>", 1)[0]
    assert "Photosynthesis &lt;light&gt;" in section
    assert 'Your level: <span class="level-badge">Proficient</span>' in section
    assert "Mastered" in section
    assert '<svg class="level-chart"' in section
    assert "Proficient (mastery)</text>" in section  # level names on the axis
    assert "<table" in section  # the chart's text alternative
    assert "<td>Developing</td>" in section
    assert "Good work" in section
    assert "What to do next" in page.text
    assert "<strong><bdi>Emerging</bdi></strong> (1 point)" in page.text  # not "1.0 points"
    assert "<strong><bdi>Developing</bdi></strong> (2 points)" in page.text

    saved = post(
        home.client,
        form(page, "/progress/self-assessment"),
        {
            "competency_id": str(comp_id),
            "level_id": _level_id(page.text, comp_id, "Advanced"),
            "note": "I can explain it",
        },
    )
    assert "your self-assessment is saved" in saved.text
    assert "Your self-assessment" in saved.text
    with unit_of_work(database_url) as s:
        mine = s.scalars(
            select(Evidence).where(Evidence.competency_id == comp_id, Evidence.person_id == me)
        ).all()
    assert [e.source for e in mine].count(EvidenceSource.SELF_ASSESSMENT) == 1
    self_row = next(e for e in mine if e.source is EvidenceSource.SELF_ASSESSMENT)
    assert self_row.recorded_by_id == me
    assert self_row.note == "I can explain it"


def test_self_assessment_on_another_course_competency_is_refused(
    lti: LtiActions, database_url: str
) -> None:
    lti.launch("user-t02", context_id="course-chem-club")
    with unit_of_work(database_url) as s:
        club = context_id(s, lti.lms, "course-chem-club")
        foreign = create_competency(s, context_id=club, code=unique("CH"), title="Bonds").id
    home = lti.launch(STUDENT)
    page = home.client.get(url(home.response, "/progress/"))
    hidden = {
        k: v
        for k, v in form(page, "/progress/self-assessment").fields.items()
        if k in {"lt", "csrf_token"}
    }
    level = _any_level_id(page.text)
    answer = home.client.post(
        url(page, "/progress/self-assessment"),
        data={**hidden, "competency_id": str(foreign), "level_id": level},
    )
    assert answer.status_code == 404


def _level_id(html: str, competency_id: int, name: str) -> str:
    section = html.split(f'id="level-{competency_id}"', 1)[1].split("</select>", 1)[0]
    return section.split(f">{name}</option>", 1)[0].rsplit('value="', 1)[1].split('"', 1)[0]


def _any_level_id(html: str) -> str:
    return html.split('name="level_id">', 1)[1].split('value="', 1)[1].split('"', 1)[0]
