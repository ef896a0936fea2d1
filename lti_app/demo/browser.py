"""Drive a launch like a browser without JavaScript: follow redirects and auto-post forms."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

AUTO_POST_FORM_ID = "lti-auto-post"
"""The id of the platform's launch form (the one a browser submits by script)."""


@dataclass
class HtmlForm:
    """A form found in a page: its id, method, absolute action and input values."""

    id: str | None
    method: str
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    page_url: str = ""
    """The page the form is in: a browser names its origin (Origin) when it posts the form."""


class _FormParser(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url
        self.forms: list[HtmlForm] = []
        self._current: HtmlForm | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = HtmlForm(
                a.get("id"),
                a.get("method", "get").lower(),
                urljoin(self.base_url, a.get("action", "")),
                page_url=self.base_url,
            )
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            self._current.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_forms(html: str, base_url: str = "") -> list[HtmlForm]:
    """Every form in `html`, with actions made absolute against `base_url`."""
    parser = _FormParser(base_url)
    parser.feed(html)
    return parser.forms


def submit_form(client: httpx.Client, form: HtmlForm) -> httpx.Response:
    """Submit a parsed form as a browser would."""
    if form.method == "post":
        page = urlsplit(form.page_url)
        headers = {"Origin": f"{page.scheme}://{page.netloc}"} if page.netloc else {}
        return client.post(form.action, data=form.fields, headers=headers)
    return client.get(form.action, params=form.fields)


def follow_launch(client: httpx.Client, login_url: str, max_steps: int = 10) -> httpx.Response:
    """GET the tool's login URL, follow redirects, and post each auto-post form on the way.

    Stops at the first answer that is neither a redirect nor a page holding the platform's
    auto-post form, and returns it (the tool's launch answer, or an error page).
    """
    resp = client.get(login_url)
    for _ in range(max_steps):
        if resp.is_redirect:
            resp = client.get(urljoin(str(resp.url), resp.headers["location"]))
            continue
        forms = [f for f in parse_forms(resp.text, str(resp.url)) if f.id == AUTO_POST_FORM_ID]
        if not forms:
            return resp
        resp = submit_form(client, forms[0])
    return resp
