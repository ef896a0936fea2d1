"""Sanitized descriptions and links."""

from __future__ import annotations

import pytest

from lti_app.pathways.text import InvalidUrlError, clean_html, clean_links, clean_url


def test_script_is_removed_with_its_content() -> None:
    assert clean_html("<p>Hi<script>alert(1)</script></p>") == "<p>Hi</p>"


def test_event_handlers_and_unknown_tags_are_dropped() -> None:
    cleaned = clean_html('<p onclick="x()">a<img src=x onerror="alert(1)"><b>b</b></p>')
    assert "onerror" not in cleaned
    assert "onclick" not in cleaned
    assert "<img" not in cleaned
    assert cleaned == "<p>ab</p>"


@pytest.mark.parametrize(
    "href", ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "/relative"]
)
def test_unsafe_link_targets_are_dropped(href: str) -> None:
    cleaned = clean_html(f'<a href="{href}">x</a>')
    assert "href" not in cleaned
    assert "javascript" not in cleaned.lower()


def test_allowed_formatting_survives_and_links_get_noopener() -> None:
    html = (
        "<p><strong>Read</strong> <em>this</em><br></p><ul><li>one</li></ul><ol><li>two</li></ol>"
        '<a href="https://example.org/a">link</a> <a href="mailto:t@example.org">mail</a>'
    )
    cleaned = clean_html(html)
    assert "<strong>Read</strong>" in cleaned
    assert "<ul><li>one</li></ul>" in cleaned
    assert '<a href="https://example.org/a" rel="noopener">link</a>' in cleaned
    assert 'href="mailto:t@example.org"' in cleaned


def test_style_and_target_attributes_are_dropped() -> None:
    cleaned = clean_html('<p style="color:red"><a href="https://e.org" target="_top">x</a></p>')
    assert "style" not in cleaned
    assert "target" not in cleaned


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "ftp://example.org", "example.org", "https://", " ", "http://a b"],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidUrlError):
        clean_url(url)


def test_links_keep_http_urls_and_default_their_label() -> None:
    links = clean_links(
        [
            {"label": "  Khan  Academy ", "url": " https://khanacademy.org "},
            {"label": "", "url": "http://example.org/x"},
        ]
    )
    assert links == [
        {"label": "Khan Academy", "url": "https://khanacademy.org"},
        {"label": "http://example.org/x", "url": "http://example.org/x"},
    ]


def test_links_refuse_javascript() -> None:
    with pytest.raises(InvalidUrlError):
        clean_links([{"label": "x", "url": "javascript:alert(1)"}])


def test_a_teachers_text_direction_is_kept_on_paragraphs_and_lists() -> None:
    """A Hebrew or Arabic description keeps its right-to-left paragraphs and lists."""
    html = (
        '<p dir="rtl">اقرأ الفصل 3.</p><ul dir="rtl"><li dir="auto">אחת</li></ul>'
        '<ol dir="ltr"><li>one</li></ol>'
    )
    assert clean_html(html) == html


@pytest.mark.parametrize(
    "html", ['<p dir="sideways">x</p>', '<a dir="rtl" href="https://example.org/">x</a>']
)
def test_only_known_directions_on_known_tags_are_kept(html: str) -> None:
    assert "dir=" not in clean_html(html)
