"""Safe formatted text and links for what teachers write and students read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import nh3

from lti_app.learners.vocab import strip_control_characters
from lti_app.pathways.models import URL_MAX_LENGTH

ALLOWED_TAGS = frozenset({"p", "br", "strong", "em", "ul", "ol", "li", "a"})
ALLOWED_ATTRIBUTES = {"a": {"href"}}
TEXT_DIRECTIONS = frozenset({"ltr", "rtl", "auto"})
ALLOWED_ATTRIBUTE_VALUES = {tag: {"dir": set(TEXT_DIRECTIONS)} for tag in ("p", "li", "ol", "ul")}
"""A teacher writing Hebrew or Arabic (or pasting it from a word processor) sets a paragraph's
or a list's direction; only the three directions HTML knows are kept."""
ALLOWED_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
MAX_HTML_LENGTH = 20_000
MAX_LINKS = 20
MAX_LINK_LABEL = 200


class InvalidUrlError(ValueError):
    """A link that is not an absolute http(s) URL."""


def clean_html(html: str) -> str:
    """Keep a small allow-list of formatting; drop scripts, event handlers and unsafe links."""
    if len(html) > MAX_HTML_LENGTH:
        raise ValueError(f"The text is too long (at most {MAX_HTML_LENGTH} characters).")
    return nh3.clean(
        strip_control_characters(html),
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        tag_attribute_values=ALLOWED_ATTRIBUTE_VALUES,
        url_schemes=set(ALLOWED_LINK_SCHEMES),
        # Relative links would resolve against Pathways inside the LMS frame.
        url_relative="deny",
        link_rel="noopener",
    ).strip()


def clean_url(url: str) -> str:
    """Return the URL trimmed if it is an absolute http(s) URL, else raise InvalidUrlError."""
    url = url.strip()
    if not url:
        raise InvalidUrlError("Enter a link.")
    if len(url) > URL_MAX_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidUrlError("That link is not a valid web address.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise InvalidUrlError("Links must start with http:// or https://.")
    return url


def clean_links(links: Iterable[Mapping[str, str]]) -> list[dict[str, str]]:
    """Validate [{label, url}] links; an empty label becomes the URL."""
    cleaned: list[dict[str, str]] = []
    for link in links:
        url = clean_url(str(link.get("url", "")))
        label = " ".join(strip_control_characters(str(link.get("label", ""))).split()) or url
        cleaned.append({"label": label[:MAX_LINK_LABEL], "url": url})
    if len(cleaned) > MAX_LINKS:
        raise ValueError(f"Use at most {MAX_LINKS} links.")
    return cleaned
