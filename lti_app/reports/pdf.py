"""Render a family report's HTML to PDF with WeasyPrint, offline: only our own stylesheet."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parents[1] / "static"
REPORT_CSS = STATIC / "css" / "report.css"


def _refuse(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    # A report never needs the network; LMS text with an <img src=...> must not make us fetch.
    raise ValueError(f"report resources are not fetched: {url[:60]}")


A4, LETTER = "A4", "letter"
LETTER_REGIONS = frozenset(
    {"BZ", "CA", "CL", "CO", "CR", "GT", "MX", "NI", "PA", "PH", "PR", "SV", "US", "VE"}
)
"""Where paper is US Letter, not A4 (Unicode CLDR supplemental data, measurementData)."""


def paper_for(locales: Iterable[str]) -> str:
    """The paper size for a reader whose language tags (best first, such as "en-US" or
    "es-419") are these: that of the first tag naming a country; A4 when none does."""
    for tag in locales:
        region = _region(tag)
        if region:
            return LETTER if region in LETTER_REGIONS else A4
    return A4


def _region(tag: str) -> str:
    # language[-script][-region]...: the region is the subtag of two letters (or three digits,
    # a UN area such as 419, Latin America, which names no single country's paper).
    for subtag in tag.replace("_", "-").split("-")[1:]:
        if len(subtag) == 2 and subtag.isalpha():
            return subtag.upper()
        if len(subtag) == 3 and subtag.isdigit():
            return ""
    return ""


@cache
def _fonts() -> Any:
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


@cache
def _stylesheets(paper: str) -> list[Any]:
    from weasyprint import CSS

    fonts = _fonts()
    # report.css names no page size, so that a browser prints on the paper its dialog chose.
    return [
        CSS(filename=str(REPORT_CSS), font_config=fonts),
        CSS(string=f"@page {{ size: {paper}; }}", font_config=fonts),
    ]


def render_pdf(html: str, paper: str = A4) -> bytes:
    """Return the PDF of a standalone report page (its text stays selectable) on A4 or
    letter paper."""
    from weasyprint import HTML

    if paper not in (A4, LETTER):
        raise ValueError(f"unknown paper size: {paper}")
    document = HTML(string=html, url_fetcher=_refuse, base_url=str(STATIC))
    pdf: bytes = document.write_pdf(stylesheets=_stylesheets(paper), font_config=_fonts())
    return pdf
