"""The dashboard grid's HTML, built in Python: 12,000 cells through a Jinja loop cost more
than the whole query budget, so the cells are joined here, every text escaped."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

from lti_app.competencies.models import Competency
from lti_app.insights.grid import GridRow
from lti_app.insights.grouping import ScaleLevel, mastery_points, short_names

NOT_ASSESSED_MARK = (
    '<span aria-hidden="true">&ndash;</span><span class="visually-hidden">not assessed yet</span>'
)
NO_LEVEL_YET_MARK = (
    '<span aria-hidden="true">&hellip;</span>'
    '<span class="visually-hidden">evidence, no level yet</span>'
)
PARTLY_MASTERED_MARK = (
    '<span aria-hidden="true">&#9680;</span>'
    '<span class="visually-hidden"> not mastered yet: some parts are not mastered</span>'
)


def level_css(levels: Sequence[ScaleLevel]) -> str:
    """One class per level with the scale's colour and a readable text colour on it."""
    rules = []
    for index, level in enumerate(levels):
        # Black or white, whichever contrasts more (they tie at relative luminance 0.179).
        ink = "#000000" if _luminance(level.colour) > 0.179 else "#ffffff"
        rules.append(f".lv{index}{{background:{level.colour};color:{ink}}}")
        rules.append(f".grid td.lv{index} button{{color:{ink}}}")
    return "\n".join(rules) + "\n"


def _luminance(colour: str) -> float:
    try:
        r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    except ValueError:
        return 0.0

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def grid_body(
    rows: Sequence[GridRow],
    competencies: Sequence[Competency],
    levels: Sequence[ScaleLevel],
    *,
    student_href: Callable[[int], str],
) -> Markup:
    """The grid's <tbody> rows: a row header per student, then one button per competency
    (submitting the cell form the grid sits in), showing the level's short name on its colour.

    Every fragment is escaped once up front, then joined: ~25 ms for 300 x 40."""
    shorts = short_names(levels)
    opening = {
        lv.name: f'<td class="lv{i}"><button name="cell" value="' for i, lv in enumerate(levels)
    }
    closing = {lv.name: f"</span>{escape(shorts[lv.name])}</button></td>" for lv in levels}
    # A competency with parts can average a mastery level without being mastered (a part not
    # mastered yet): its letter goes without the level's colour, which says mastery, and with a
    # mark instead. Only these few cells carry the extra words.
    threshold = mastery_points(levels)
    partly = {
        lv.name: f"</span>{escape(shorts[lv.name])}{PARTLY_MASTERED_MARK}</button></td>"
        for lv in levels
        if threshold is not None and lv.points >= threshold
    }
    partly_open = '<td class="part"><button name="cell" value="'
    empty_open = '<td><button name="cell" value="'
    # Two kinds of empty cell, told apart by a mark for the eye and words for a screen reader
    # (the mark itself is hidden from it): not assessed (no evidence, or all of it withdrawn:
    # the level row stays with a count of 0), and evidence without a level yet ("n times" not
    # yet reached). The dashboard's legend shows the same marks.
    empty_close = {
        False: f"</span>{NOT_ASSESSED_MARK}</button></td>",
        True: f"</span>{NO_LEVEL_YET_MARK}</button></td>",
    }
    columns = [
        (f'-{c.id}"><span class="cc">{escape(c.code or c.title[:6])} ', c.id) for c in competencies
    ]
    parts: list[str] = []
    append = parts.append
    for row in rows:
        pid = str(row.person_id)
        status = (
            "" if row.status == "active" else f' <span class="badge">{escape(row.status)}</span>'
        )
        append(
            f'<tr><th scope="row"><a href="{escape(student_href(row.person_id))}">'
            f"{escape(row.name)}</a>{status}</th>"
        )
        cells = row.cells
        for middle, cid in columns:
            cell = cells.get(cid)
            name = cell[0] if cell is not None else None
            if name is None or name not in opening:
                append(
                    empty_open
                    + pid
                    + middle
                    + (
                        empty_close[cell is not None and cell.evidence_count > 0]
                        if name is None
                        else f"</span>{escape(name[:2])}</button></td>"
                    )
                )
            elif name in partly and cell is not None and not cell.is_mastered:
                append(partly_open + pid + middle + partly[name])
            else:
                append(opening[name] + pid + middle + closing[name])
        append("</tr>\n")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped
