"""Render a family report's HTML to PDF with WeasyPrint, offline: only our own stylesheet."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parents[1] / "static"
REPORT_CSS = STATIC / "css" / "report.css"


def _refuse(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    # A report never needs the network; LMS text with an <img src=...> must not make us fetch.
    raise ValueError(f"report resources are not fetched: {url[:60]}")


@cache
def _stylesheet() -> Any:
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration

    fonts = FontConfiguration()
    return CSS(filename=str(REPORT_CSS), font_config=fonts), fonts


def render_pdf(html: str) -> bytes:
    """Return the PDF of a standalone report page (its text stays selectable)."""
    from weasyprint import HTML

    stylesheet, fonts = _stylesheet()
    document = HTML(string=html, url_fetcher=_refuse, base_url=str(STATIC))
    pdf: bytes = document.write_pdf(stylesheets=[stylesheet], font_config=fonts)
    return pdf
