"""A competency with parts averages its parts' levels, but is mastered only when every part is:
the dashboard, its counts and its CSV must say so, as the overview and family report do."""

from __future__ import annotations

import csv
import html
import io
import re
from decimal import Decimal

from lti_app.competencies.services import create_competency
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.services import record_evidence
from tests.insights.conftest import TEACHER, FreshCourse
from tests.progress.pages import unit_of_work, url

MARK = "\u25d0"


def _half_the_parts_proficient(fc: FreshCourse, database_url: str) -> tuple[int, list[int]]:
    """CELL with four parts, the student Proficient on the first two, nothing on the others."""
    with unit_of_work(database_url) as s:
        ctx = fc.context_id
        parent = create_competency(s, context_id=ctx, code="CELL", title="Cells")
        parts = [
            create_competency(
                s, context_id=ctx, code=f"CELL.{n}", title=f"Part {n}", parent_id=parent.id
            )
            for n in range(1, 5)
        ]
        for part in parts[:2]:
            record_evidence(
                s,
                context_id=ctx,
                competency_id=part.id,
                student_ids=[fc.student_id],
                points=Decimal(3),
                source=EvidenceSource.TEACHER,
                note="",
                recorded_by_id=fc.teacher_id,
            )
        return parent.id, [p.id for p in parts]


def _student_name(dashboard: str, person_id: int) -> str:
    found = re.search(
        rf'<tr><th scope="row"><a [^>]*>([^<]*)</a>(?:(?!</tr>).)*value="{person_id}-', dashboard
    )
    assert found is not None
    return html.unescape(found[1])


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_dashboard_marks_a_mastery_level_not_mastered_as_the_overview_counts_it(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    parent, parts = _half_the_parts_proficient(fc, database_url)
    home = fc.lti.launch(TEACHER)
    page = home.client.get(url(home.response, "/insights/")).text

    def grid_cell(competency_id: int) -> str:
        found = re.search(
            rf'<td[^>]*><button name="cell" value="{fc.student_id}-{competency_id}".*?</td>', page
        )
        assert found is not None
        return found[0]

    # The parts at Proficient wear the mastery colour; the parent, Proficient on average with
    # two parts not mastered, shows its letter without it, with a mark and words for a screen
    # reader.
    assert all(re.match(r'<td class="lv\d">', grid_cell(p)) for p in parts[:2])
    cell = grid_cell(parent)
    assert cell.startswith('<td class="part">'), cell
    assert f"P{MARK}" in _text(cell).replace(" ", "")
    assert "not mastered yet: some parts are not mastered" in _text(cell)
    coloured = [cid for cid in [parent, *parts] if re.match(r'<td class="lv', grid_cell(cid))]

    # So does the page of the evidence behind the cell.
    behind = home.client.get(
        url(home.response, "/insights/cell") + f"&cell={fc.student_id}-{parent}"
    )
    current = re.search(r"<p>Current level: (.*?)</p>", behind.text, re.S)
    assert current is not None
    assert "Proficient (score 3.00), not mastered yet: some parts" in _text(current[1])

    # The key explains the mark.
    legend = re.search(r'<ul class="legend".*?</ul>', page, re.S)
    assert legend is not None
    key = next(li for li in re.findall(r"<li>.*?</li>", legend[0], re.S) if "&#9680;" in li)
    assert "not mastered yet" in _text(key)

    # "Students at each level": one at Proficient on CELL, none of them mastered.
    counts = re.search(r'<tr><th scope="row">CELL Cells</th>(.*?)</tr>', page)
    assert counts is not None
    proficient = re.findall(r"<td>(.*?)</td>", counts[1])[2]
    assert proficient == "1 (0 mastered)"

    # The overview counts as mastered exactly the cells the dashboard colours as mastery.
    overview = home.client.get(url(home.response, "/course/")).text
    name = re.escape(html.escape(_student_name(page, fc.student_id)))
    row = re.search(rf"<a [^>]*>{name}</a></th><td>(\d+) of 5</td>", overview)
    assert row is not None
    assert int(row[1]) == len(coloured) == 2


def test_dashboard_csv_says_which_levels_are_mastered(
    fresh_course: FreshCourse, database_url: str
) -> None:
    fc = fresh_course
    _half_the_parts_proficient(fc, database_url)
    home = fc.lti.launch(TEACHER)
    name = _student_name(home.client.get(url(home.response, "/insights/")).text, fc.student_id)
    for style, delimiter in (("", ","), ("&style=semicolons", ";")):
        response = home.client.get(url(home.response, "/insights/dashboard.csv") + style)
        rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff")), delimiter=delimiter))
        header, line = rows[0], next(row for row in rows if row[0] == name)
        assert header.index("CELL mastered") == header.index("CELL level") + 1
        got = {
            code: (line[header.index(f"{code} level")], line[header.index(f"{code} mastered")])
            for code in ("CELL", "CELL.1", "CELL.3")
        }
        assert got == {
            "CELL": ("Proficient", "no"),
            "CELL.1": ("Proficient", "yes"),
            "CELL.3": ("", "no"),
        }, style
