"""The level-history chart reads without colour: level names on the axis, a title and a
description, a tooltip per point in words, and everything from the database escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from xml.etree import ElementTree

from lti_app.progress.charts import AxisLevel, ChartPoint, level_history_svg

LEVELS = [
    AxisLevel("Emerging", Decimal(1)),
    AxisLevel("Developing", Decimal(2)),
    AxisLevel("Proficient", Decimal(3), is_mastery=True),
    AxisLevel("Advanced", Decimal(4)),
]
SVG = "{http://www.w3.org/2000/svg}"


def _points() -> list[ChartPoint]:
    return [
        ChartPoint(datetime(2025, 3, 1, tzinfo=UTC), Decimal(1), "Emerging"),
        ChartPoint(datetime(2025, 3, 9, tzinfo=UTC), Decimal("3.5"), "Proficient"),
    ]


def test_chart_names_levels_in_text_and_describes_itself() -> None:
    svg = level_history_svg(_points(), LEVELS, chart_id="c1", title="Your results on <C1>")
    root = ElementTree.fromstring(str(svg))  # noqa: S314 - our own output
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"Emerging", "Developing", "Proficient (mastery)", "Advanced"} <= set(texts)
    assert "1 Mar 2025" in texts
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == "Your results on <C1>"  # escaped in the markup, intact as text
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert "Latest: Proficient" in (desc.text or "")
    tooltips = [t.text for c in root.iter(f"{SVG}circle") for t in c.iter(f"{SVG}title")]
    assert tooltips == ["1 Mar 2025: Emerging", "9 Mar 2025: Proficient"]
    mastery = [line for line in root.iter(f"{SVG}line") if "mastery" in (line.get("class") or "")]
    assert mastery[0].get("stroke-dasharray")  # marked by its dash, not by colour


def test_chart_escapes_level_names_and_is_empty_without_results() -> None:
    levels = [AxisLevel("<b>Low</b>", Decimal(0)), AxisLevel("High & mighty", Decimal(1), True)]
    svg = str(level_history_svg(_points()[:1], levels, chart_id="c2", title="t"))
    assert "<b>" not in svg
    assert "&lt;b&gt;Low&lt;/b&gt;" in svg
    assert "High &amp; mighty (mastery)" in svg
    assert str(level_history_svg([], LEVELS, chart_id="c3", title="t")) == ""
