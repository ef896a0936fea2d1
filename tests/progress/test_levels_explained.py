"""A student's progress page says how the course's method turns results into a level: with
"n times", how many results at mastery count so far, and what a parent competency needs."""

from __future__ import annotations

from decimal import Decimal

from lti_app.competencies.services import create_competency
from lti_app.mastery.calculation import CalculationMethod
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.scales import update_scale
from lti_app.mastery.services import record_evidence
from tests.insights.conftest import FreshCourse, fresh_course  # noqa: F401
from tests.progress.pages import unique, unit_of_work, url


def _section(text: str, competency_id: int) -> str:
    return text.split(f'id="competency-{competency_id}"', 1)[1].split("</section>", 1)[0]


def test_n_times_says_how_many_results_at_mastery_count_so_far(
    fresh_course: FreshCourse,  # noqa: F811
    database_url: str,
) -> None:
    c = fresh_course
    with unit_of_work(database_url) as s:
        update_scale(s, context_id=c.context_id, method=CalculationMethod.N_TIMES, n=3)
        gate = create_competency(s, context_id=c.context_id, code=unique("GATE"), title="Safety")
        parent = create_competency(s, context_id=c.context_id, code=unique("P"), title="Whole")
        parts = [
            create_competency(
                s,
                context_id=c.context_id,
                code=unique("PP"),
                title=f"Part {i}",
                parent_id=parent.id,
            )
            for i in (1, 2)
        ]
        results = [(gate.id, 4, EvidenceSource.KNOWLEDGE_CHECK)] * 2
        results += [(gate.id, 1, EvidenceSource.TEACHER)]
        results += [(gate.id, 4, EvidenceSource.SELF_ASSESSMENT)]
        # Part 1 reaches a level (three results at mastery), part 2 none: nor does the parent.
        results += [(parts[0].id, 3, EvidenceSource.TEACHER)] * 3
        for competency_id, points, source in results:
            record_evidence(
                s,
                context_id=c.context_id,
                competency_id=competency_id,
                student_ids=[c.student_id],
                points=Decimal(points),
                source=source,
                note="",
                recorded_by_id=c.teacher_id,
            )
        gate_id, parent_id = gate.id, parent.id
    home = c.lti.launch("user-s01")
    page = home.client.get(url(home.response, "/progress/"))
    assert page.status_code == 200
    # The two Advanced results count; the weak one and the self-rating don't.
    assert "No level yet: 2 of 3 results at mastery so far" in _section(page.text, gate_id)
    assert "You get a level once you have 3 results at" in page.text
    assert "Your own ratings of yourself are shown on your charts, but they don" in page.text
    assert "No level yet" in _section(page.text, parent_id)


def test_a_parent_not_mastered_at_a_mastery_level_says_every_part_must_be(
    fresh_course: FreshCourse,  # noqa: F811
    database_url: str,
) -> None:
    c = fresh_course
    with unit_of_work(database_url) as s:
        parent = create_competency(s, context_id=c.context_id, code=unique("P"), title="Whole")
        for points in (4, 2):  # the parts average to mastery; the second is not mastered
            part = create_competency(
                s, context_id=c.context_id, code=unique("PP"), title="Part", parent_id=parent.id
            )
            record_evidence(
                s,
                context_id=c.context_id,
                competency_id=part.id,
                student_ids=[c.student_id],
                points=Decimal(points),
                source=EvidenceSource.TEACHER,
                note="",
                recorded_by_id=c.teacher_id,
            )
        parent_id = parent.id
    home = c.lti.launch("user-s01")
    page = home.client.get(url(home.response, "/progress/"))
    section = _section(page.text, parent_id)
    assert "Your level:" in section
    assert "Not mastered yet: every part below must be mastered" in section
    assert "A competency with parts is mastered once every one of its parts is." in page.text
