"""Every teacher and student page, reached through the in-frame navigation and links of a
seeded course: no serious or critical axe violations, nothing wider than a 700 px frame or a
390 px phone, no table heading or status word broken across lines, and a screenshot of each
at both widths (artifacts/screenshots/, kept by CI).

Pages of features still being built elsewhere (roster, gradebook, dashboard, family reports)
are left to those features' tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo.content import seed_demo_course
from lti_app.tool.models import Platform
from tests.conftest import registration_of
from tests.e2e.conftest import SCREENSHOTS, Demo, serious_axe_violations, tool_frame

WIDTHS = (700, 390)
"""The frame an LMS gives a tool beside its own menus, and a phone."""

SIZE_FRAME = """([width, height]) => {
  const frame = document.getElementById('tool-frame');
  for (const [name, value] of [['width', width + 'px'], ['min-width', width + 'px'],
                               ['max-width', 'none'], ['border', '0'], ['height', height + 'px']]) {
    frame.style.setProperty(name, value, 'important');
  }
}"""

WIDER_THAN_THE_FRAME = """() => {
  const root = document.documentElement;
  const width = root.clientWidth;
  if (root.scrollWidth <= width) { return []; }
  const culprits = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.table-wrap')) { continue; }  // tables scroll inside their own wrapper
    const box = el.getBoundingClientRect();
    if (box.right > width + 1) {
      const classes = typeof el.className === 'string' && el.className
        ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
      culprits.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + classes
                    + ' (right edge ' + Math.round(box.right) + ')');
    }
  }
  return ['page is ' + root.scrollWidth + ' px wide in ' + width + ' px', ...culprits.slice(0, 6)];
}"""

BROKEN_WORDS = """() => {
  // Table headings and status words are Pathways' own: none may break across lines.
  const broken = [];
  for (const cell of document.querySelectorAll('table:not(.grid) thead th, td.status')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const word of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, word.index);
        range.setEnd(node, word.index + word[0].length);
        const lines = new Set([...range.getClientRects()].filter(r => r.width > 0)
                                                           .map(r => Math.round(r.top)));
        if (lines.size > 1) { broken.push(word[0]); }
      }
    }
  }
  return broken;
}"""

LMS_WIDTH = 1400
"""The LMS page's width: its people list beside a frame of any of the WIDTHS."""

NEXT_FRAME = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def seed(demo: Demo, database_url: str) -> None:
    """Give the demo LMS's Biology 9 its Pathways content, as `lti-app demo` does."""
    db = Database(database_url)
    with db.begin() as session:
        platform = session.scalars(select(Platform).where(registration_of(demo.lms))).one()
        seed_demo_course(session, platform)
    db.dispose()


def fit_frame(page: Any, frame: Any, width: int) -> None:
    """Make the LMS's frame `width` wide and exactly as tall as the page in it, all in view."""
    # Short first, so the frame's document is only as tall as its content, then that tall.
    page.evaluate(SIZE_FRAME, [width, 60])
    frame.evaluate(NEXT_FRAME)
    height = frame.evaluate("document.documentElement.scrollHeight")
    page.evaluate(SIZE_FRAME, [width, height])
    # Chromium paints a cross-site frame only where it is in view: make all of it visible.
    top = page.evaluate("document.getElementById('tool-frame').offsetTop")
    page.set_viewport_size({"width": LMS_WIDTH, "height": max(900, top + height + 16)})
    page.evaluate("window.scrollTo(0, 0)")
    frame.evaluate(NEXT_FRAME)


def frame_screenshot(page: Any, name: str) -> None:
    """Save what the frame shows (fit it first) as artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    box = page.locator("iframe#tool-frame").bounding_box()
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), clip=box)


@pytest.fixture(scope="module")
def seeded(demo: Demo, database_url: str) -> Demo:
    seed(demo, database_url)
    return demo


class PageCheck:
    """Launch once, then visit pages in the frame and collect every problem they show."""

    def __init__(self, page: Any, demo: Demo, user: str, prefix: str) -> None:
        self.page = page
        self.prefix = prefix
        self.problems: list[str] = []
        self.visited: list[str] = []
        page.set_default_timeout(10_000)
        page.goto(demo.course_url(**{"as": user}))
        self.frame = tool_frame(page)

    def nav(self, label: str) -> None:
        nav = self.frame.get_by_role("navigation", name="Pathways")
        with self.frame.expect_navigation():
            nav.get_by_role("link", name=label, exact=True).click()

    def click(self, name: str | re.Pattern[str], *, exact: bool = True) -> None:
        with self.frame.expect_navigation():
            self.frame.get_by_role("link", name=name, exact=exact).first.click()

    def check(self, name: str, heading: str | re.Pattern[str] | None = None) -> None:
        """Check the page now in the frame at both widths and screenshot it."""
        from playwright.sync_api import expect

        h1 = self.frame.locator("main h1")
        if heading is not None:
            expect(h1).to_have_text(heading)
        self.frame.wait_for_load_state()
        self.visited.append(name)
        for violation in serious_axe_violations(self.frame):
            targets = [str(node.get("target")) for node in violation.get("nodes", [])][:4]
            self.problems.append(
                f"{name}: axe {violation['id']} ({violation['impact']}): "
                f"{violation.get('help')} at {', '.join(targets)}"
            )
        for width in WIDTHS:
            fit_frame(self.page, self.frame, width)
            for problem in self.frame.evaluate(WIDER_THAN_THE_FRAME):
                self.problems.append(f"{name} at {width} px: {problem}")
            for word in self.frame.evaluate(BROKEN_WORDS):
                self.problems.append(f"{name} at {width} px: table word broken: {word}")
            frame_screenshot(self.page, f"{self.prefix}-{name}-{width}")
        fit_frame(self.page, self.frame, WIDTHS[0])

    def launch_token_url(self, path: str) -> str:
        """A page no link leads to, opened the way in-frame links are: with the launch token."""
        parts = urlsplit(self.frame.url)
        token = parse_qs(parts.query)["lt"][0]
        return f"{parts.scheme}://{parts.netloc}{path}?lt={token}"

    def open_in_frame(self, path: str) -> None:
        """Go there from the page in the frame, as a link would: the browser marks an address
        typed or opened from outside (Sec-Fetch-Site: none) and Pathways refuses its token."""
        url = self.launch_token_url(path)
        with self.frame.expect_navigation():
            self.frame.evaluate("url => { window.location.href = url; }", url)

    def assert_clean(self) -> None:
        assert self.problems == [], "\n".join(self.problems)


def _teacher_pages(check: PageCheck) -> None:
    frame = check.frame
    check.check("overview", "Biology 9 — Living Systems")
    check.click("José Núñez")
    check.check("student", "José Núñez")
    student_path = urlsplit(frame.url).path
    check.click(re.compile(r"^History, correct or withdraw"), exact=False)
    check.check("evidence", re.compile("Evidence"))
    person_id = student_path.rsplit("/", 1)[-1]
    check.open_in_frame(f"/profile/students/{person_id}")
    check.check("student-profile")

    check.nav("Competencies")
    check.check("competencies", re.compile("Competenc"))
    check.click(re.compile(r"^Edit\W+CELL\.1$"), exact=False)
    check.check("competency-edit")
    check.nav("Competencies")
    check.click("Import CSV or CASE")
    check.check("competencies-import")
    check.nav("Competencies")
    check.click("Copy from another course")
    check.check("competencies-copy")

    check.nav("Record evidence")
    check.check("evidence-bulk")
    check.nav("Mastery scale")
    check.check("mastery-scale")

    check.nav("Pathways")
    check.check("pathways", re.compile("Pathways"))
    check.click("Cells and life")
    check.check("pathway-edit", re.compile("Cells and life"))
    check.click("Meet the cell")
    check.check("step-edit", re.compile("Meet the cell"))
    check.click("Build a 3D cell model")
    check.check("option-edit", re.compile("Build a 3D cell model"))
    check.click("Meet the cell")
    check.click("Add an option")
    check.check("option-new", "New option")

    # Deep linking: the LMS opens the picker in the same frame.
    with frame.expect_navigation():
        check.page.get_by_role("link", name="Add Pathways via Deep Linking").click()
    check.check("deep-link-picker", "Add Pathways to your course")


def _student_pages(check: PageCheck) -> None:
    check.check("home", "My pathways")
    check.click("Open Cells and life pathway")
    check.check("pathway-cells", "Cells and life")
    check.nav("My pathways")
    check.click("Open Ecosystems pathway")
    check.check("pathway-ecosystems", "Ecosystems")
    check.nav("My progress")
    check.check("progress")
    check.nav("My profile")
    check.check("profile")


@pytest.mark.parametrize(
    ("user", "prefix", "visit"),
    [
        ("user-t01", "teacher", _teacher_pages),
        ("user-s01", "student", _student_pages),
    ],
    ids=["teacher", "student"],
)
def test_every_page_is_accessible_and_fits_a_frame_and_a_phone(
    seeded: Demo,
    page_factory: Any,
    user: str,
    prefix: str,
    visit: Callable[[PageCheck], None],
) -> None:
    check = PageCheck(page_factory(LMS_WIDTH, 900), seeded, user, prefix)
    visit(check)
    check.assert_clean()
