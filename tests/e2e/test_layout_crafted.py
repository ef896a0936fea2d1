"""Layout probes with hostile but real data (helper set): every teacher, student and admin page
of a course whose LMS sends a 300-character title, a 200-character name without a space, and
Arabic, Hebrew and Chinese names, and whose teacher wrote a 40-character competency code, 40
competencies, the longest option title the editor takes and long URLs in notes.

Each page is opened in the LMS's cross-site frame at 700 px and at 390 px, and checked for what
a teacher or student would notice: the whole page scrolling sideways, text cut off with no way
to read it, text drawn over other text, buttons and fields out of reach or covered, a focused
control with no visible focus, and axe-core's serious or critical violations.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from lti_app.demo.launches import ROLE_SCOPE_MENTOR, LaunchTweaks
from lti_app.demo.platform import DemoPlatform
from lti_app.demo.seed import PARENT
from tests.e2e.conftest import SCREENSHOTS, Demo, serious_axe_violations, tool_frame
from tests.e2e.hostile_course import (
    ADMIN,
    CONTEXT_ID,
    LINK_ID,
    OTHERS,
    STUDENT,
    TEACHER,
    Seeded,
    hostile_lms,
    seed_hostile_course,
)
from tests.e2e.test_pages import LMS_WIDTH, WIDTHS, fit_frame

LAYOUT_PROBLEMS = r"""() => {
  const problems = [];
  const root = document.scrollingElement || document.documentElement;
  const W = root.clientWidth;
  const name = el => {
    const text = (el.innerText || el.value || el.getAttribute('aria-label') || '')
      .trim().replace(/\s+/g, ' ').slice(0, 40);
    const cls = typeof el.className === 'string' && el.className.trim()
      ? '.' + el.className.trim().split(/\s+/).join('.') : '';
    return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + cls + (text ? ` "${text}"` : '');
  };
  const style = el => getComputedStyle(el);
  const hiddenByCss = el => {
    for (let e = el; e && e !== document.body; e = e.parentElement) {
      const s = style(e);
      if (s.display === 'none' || s.visibility === 'hidden') { return true; }
      const cl = e.classList;
      if (cl.contains('visually-hidden') || cl.contains('skip-link')) { return true; }
      if (e.tagName === 'DETAILS' && !e.open && e !== el.closest('summary')?.parentElement) {
        return true;
      }
    }
    return false;
  };
  const clips = e => {
    const s = style(e);
    return s.overflowX !== 'visible' || s.overflowY !== 'visible';
  };
  const scrolls = v => v === 'auto' || v === 'scroll';
  // The part of a box that ancestors with overflow other than visible let show.
  const shown = (el, box) => {
    let r = {left: box.left, top: box.top, right: box.right, bottom: box.bottom};
    for (let e = el.parentElement; e && e !== document.documentElement; e = e.parentElement) {
      if (!clips(e)) { continue; }
      const c = e.getBoundingClientRect();
      r = {left: Math.max(r.left, c.left), top: Math.max(r.top, c.top),
           right: Math.min(r.right, c.right), bottom: Math.min(r.bottom, c.bottom)};
      if (r.right - r.left < 1 || r.bottom - r.top < 1) { return null; }
    }
    return r;
  };
  const inScroller = el => {
    for (let e = el.parentElement; e && e !== document.body; e = e.parentElement) {
      const s = style(e);
      if (scrolls(s.overflowX) || scrolls(s.overflowY)) { return e; }
    }
    return null;
  };

  // 1. The whole page scrolls sideways.
  if (root.scrollWidth > W + 1) {
    const culprits = [];
    for (const el of document.body.querySelectorAll('*')) {
      if (hiddenByCss(el) || inScroller(el)) { continue; }
      const box = el.getBoundingClientRect();
      const wide = c => c.getBoundingClientRect().right > W + 1;
      if (wide(el) && ![...el.children].some(wide)) {
        culprits.push(name(el) + ' (right edge ' + Math.round(box.right) + ')');
      }
    }
    problems.push(`the page scrolls sideways (${root.scrollWidth} px in ${W} px): `
                  + culprits.slice(0, 4).join('; '));
  }

  // 2. Text cut off: a box that hides what overflows it, with no title and no scrollbar.
  for (const el of document.body.querySelectorAll('*')) {
    if (!clips(el) || hiddenByCss(el)) { continue; }
    const s = style(el);
    const box = el.getBoundingClientRect();
    if (box.width < 3 || box.height < 3) { continue; }
    const cutX = el.scrollWidth > el.clientWidth + 1 && !scrolls(s.overflowX);
    const cutY = el.scrollHeight > el.clientHeight + 1 && !scrolls(s.overflowY);
    if (!(cutX || cutY) || !(el.innerText || '').trim()) { continue; }
    if (el.closest('[title]')) { continue; }
    problems.push(`text cut off with no way to read it: ${name(el)}`
                  + ` (${el.scrollWidth}x${el.scrollHeight} shown in`
                  + ` ${el.clientWidth}x${el.clientHeight})`);
  }

  // 3. Text drawn over other text or over a control.
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const owner = node.parentElement;
    if (!node.data.trim() || !owner || hiddenByCss(owner)
        || ['SCRIPT', 'STYLE', 'OPTION', 'TEXTAREA'].includes(owner.tagName)) { continue; }
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const rect of range.getClientRects()) {
      if (rect.width < 2 || rect.height < 2) { continue; }
      const r = shown(owner, rect);
      if (r) { boxes.push({el: owner, r}); }
    }
  }
  for (const el of document.body.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (hiddenByCss(el)) { continue; }
    const box = el.getBoundingClientRect();
    const r = box.width > 2 && shown(el, box);
    if (r) { boxes.push({el, r}); }
  }
  const overlaps = [];
  for (let i = 0; i < boxes.length && overlaps.length < 4; i++) {
    const a = boxes[i];
    for (let j = i + 1; j < boxes.length; j++) {
      const b = boxes[j];
      if (a.el === b.el || a.el.contains(b.el) || b.el.contains(a.el)) { continue; }
      const x = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
      const y = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
      if (x > 3 && y > 3) {
        overlaps.push(`${name(a.el)} and ${name(b.el)}`);
        break;
      }
    }
  }
  for (const o of overlaps) { problems.push('text drawn over other text: ' + o); }

  // 4. Controls out of reach: off the page's sides, covered, or too small to hit.
  const perScroller = new Map();
  const controls = document.body.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary');
  for (const el of controls) {
    if (hiddenByCss(el) || el.tabIndex < 0 && !el.closest('table.grid')) { continue; }
    const scroller = inScroller(el);
    if (scroller) {
      const n = perScroller.get(scroller) || 0;
      if (n >= 12) { continue; }
      perScroller.set(scroller, n + 1);
      el.scrollIntoView({block: 'nearest', inline: 'nearest'});
    }
    let whole = el.getBoundingClientRect();
    if (whole.top < 0 || whole.bottom > window.innerHeight) {
      // The frame is shorter than its page.
      el.scrollIntoView({block: 'center', inline: 'nearest'});
      whole = el.getBoundingClientRect();
    }
    // A link broken over lines: aim at its first line, where its text is.
    const box = el.getClientRects()[0] || whole;
    if (whole.width < 1 || whole.height < 1) { continue; }
    if (whole.left < -1 || whole.right > W + 1) {
      problems.push(`out of reach beyond the page's side: ${name(el)}`
                    + ` (${Math.round(whole.left)}..${Math.round(whole.right)} in ${W})`);
      continue;
    }
    if (box.left < -1 || box.right > W + 1) {
      problems.push(`out of reach beyond the page's side: ${name(el)}`
                    + ` (${Math.round(box.left)}..${Math.round(box.right)} in ${W})`);
      continue;
    }
    const big = ['BUTTON', 'SELECT', 'TEXTAREA'].includes(el.tagName)
      || el.tagName === 'INPUT' && !['checkbox', 'radio'].includes(el.type);
    if (big && (box.width < 24 || box.height < 24)) {
      const size = `${Math.round(box.width)}x${Math.round(box.height)}`;
      problems.push(`too small to hit (${size}): ${name(el)}`);
    }
    const x = Math.min(Math.max(box.left + box.width / 2, 0), W - 1);
    const y = box.top + Math.min(box.height / 2, 10);
    const hit = document.elementFromPoint(x, y);
    const label = el.id ? document.querySelector(`label[for="${CSS.escape(el.id)}"]`) : null;
    const around = el.closest('label');
    if (!hit || !(el.contains(hit) || hit.contains(el) && hit.tagName === 'LABEL'
                  || label && label.contains(hit) || around && around.contains(hit))) {
      problems.push(`covered by ${hit ? name(hit) : 'nothing'}: ${name(el)}`);
    }
  }
  for (const scroller of perScroller.keys()) { scroller.scrollLeft = 0; scroller.scrollTop = 0; }
  window.scrollTo(0, 0);
  return problems;
}"""

FOCUS_PROBLEMS = r"""() => {
  const problems = [];
  const name = el => {
    const text = (el.innerText || el.value || el.getAttribute('aria-label') || '')
      .trim().replace(/\s+/g, ' ').slice(0, 40);
    return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (text ? ` "${text}"` : '');
  };
  const focusables = [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex="0"]')]
    .filter(el => el.tabIndex >= 0 && !el.disabled && el.getClientRects().length > 0
                  && getComputedStyle(el).visibility !== 'hidden');
  for (const el of focusables.slice(0, 80)) {
    el.focus();
    if (document.activeElement !== el) { continue; }
    const s = getComputedStyle(el);
    const ring = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2
      || s.boxShadow !== 'none';
    if (!el.matches(':focus-visible') || !ring) {
      problems.push(`no visible focus on ${name(el)}`);
      continue;
    }
    const box = el.getClientRects()[0];
    const x = box.left + Math.min(box.width / 2, 10), y = box.top + Math.min(box.height / 2, 10);
    const hit = document.elementFromPoint(x, y);
    const label = el.closest('label')
      || (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`));
    if (!hit || !(el.contains(hit) || label && (label.contains(hit) || hit.contains(label)))) {
      problems.push(`focused but hidden under ${hit ? name(hit) : 'nothing'}: ${name(el)}`);
    }
  }
  document.activeElement?.blur();
  return problems;
}"""


@dataclass
class Role:
    """One launch in one browser page, reused for every page of that role."""

    page: Any
    frame: Any
    token: str

    def url(self, path: str) -> str:
        """A page opened the way in-frame links open it: with the launch token."""
        parts = urlsplit(self.frame.url)
        sep = "&" if "?" in path else "?"
        return f"{parts.scheme}://{parts.netloc}{path}{sep}lt={self.token}"


@dataclass
class Course:
    demo: Demo
    ids: Seeded
    roles: dict[str, Role] = field(default_factory=dict)


@pytest.fixture(scope="module")
def course(demo: Demo, database_url: str) -> Iterator[Course]:
    """The hostile course in the demo LMS, seeded once; a launch per role, made when needed."""
    platform: DemoPlatform = demo.lms.platform
    with hostile_lms(platform):
        ids = seed_hostile_course(database_url, demo.lms)
        hostile = Course(demo, ids)
        yield hostile
        for role in hostile.roles.values():
            role.page.context.close()


USERS = {
    "teacher": TEACHER.user_id,
    "student": STUDENT.user_id,
    "admin": ADMIN.user_id,
    "mentor": PARENT.user_id,
}
MENTOR_LAUNCH = {
    "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"],
    # Observing the student with the 200-character name and an Arabic one: the list page.
    "tweaks": LaunchTweaks(claims={ROLE_SCOPE_MENTOR: [STUDENT.user_id, OTHERS[0].user_id]}),
}


def _role(course: Course, chromium: Any, role: str) -> Role:
    if role not in course.roles:
        context = chromium.new_context(viewport={"width": LMS_WIDTH, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        platform: DemoPlatform = course.demo.lms.platform
        extra: dict[str, Any] = MENTOR_LAUNCH if role == "mentor" else {}
        spec = platform.make_launch(USERS[role], CONTEXT_ID, resource_link_id=LINK_ID, **extra)
        page.goto(course.demo.course_url(CONTEXT_ID))
        page.evaluate(
            "url => { document.getElementById('tool-frame').src = url; }",
            platform.login_url(spec),
        )
        frame = tool_frame(page)
        link = frame.eval_on_selector("a[href*='lt=']", "a => a.href")
        course.roles[role] = Role(page, frame, parse_qs(urlsplit(link).query)["lt"][0])
    return course.roles[role]


# (role, page name, path; {name} fields are Seeded's ids)
PAGES: list[tuple[str, str, str]] = [
    ("teacher", "course-overview", "/course/"),
    ("teacher", "student-page", "/course/students/{student_id}"),
    ("teacher", "student-page-arabic", "/course/students/{arabic_id}"),
    ("teacher", "evidence-history", "/mastery/evidence/{evidence_id}"),
    ("teacher", "student-profile", "/profile/students/{student_id}"),
    ("teacher", "student-progress", "/insights/students/{student_id}/progress"),
    ("teacher", "competencies", "/competencies/"),
    ("teacher", "competency-editor", "/competencies/{long_code_id}/edit"),
    ("teacher", "competencies-import", "/competencies/import"),
    ("teacher", "competencies-copy", "/competencies/copy"),
    ("teacher", "evidence-bulk", "/mastery/evidence/bulk"),
    ("teacher", "mastery-scale", "/mastery/scale"),
    ("teacher", "pathways-manage", "/pathways/manage"),
    ("teacher", "pathway-editor", "/pathways/manage/{pathway_id}"),
    ("teacher", "step-editor", "/pathways/manage/steps/{step_id}"),
    ("teacher", "option-editor", "/pathways/manage/options/{option_id}"),
    ("teacher", "option-new", "/pathways/manage/steps/{step_id}/options/new"),
    ("teacher", "dashboard", "/insights/"),
    ("teacher", "dashboard-cell", "/insights/students/{student_id}/competencies/{long_code_id}"),
    ("teacher", "class-progress", "/insights/progress"),
    ("teacher", "attention", "/insights/attention"),
    ("teacher", "groups", "/insights/groups"),
    ("teacher", "group", "/insights/groups/{group_id}"),
    ("teacher", "groups-propose", "/insights/groups/propose"),
    ("teacher", "family-reports", "/reports/"),
    ("teacher", "family-report", "/reports/students/{student_id}"),
    ("teacher", "gradebook", "/grades/"),
    ("teacher", "gradebook-sync", "/grades/sync"),
    ("teacher", "roster", "/roster/"),
    ("teacher", "error-404", "/course/students/999999999"),
    ("student", "home", "/pathways/"),
    ("student", "pathway", "/pathways/{pathway_id}"),
    ("student", "progress", "/progress/"),
    ("student", "profile", "/profile/"),
    ("student", "reflection", "/reports/reflection"),
    ("student", "error-403", "/course/"),
    ("admin", "admin-console", "/admin/"),
    ("mentor", "mentor-reports", "/reports/"),
    ("mentor", "mentor-family-report", "/reports/students/{student_id}"),
]


@pytest.mark.parametrize(
    ("role", "path"), [(r, p) for r, _, p in PAGES], ids=[n for _, n, _ in PAGES]
)
def test_page_fits_and_stays_readable_with_hostile_data(
    course: Course, chromium: Any, role: str, path: str
) -> None:
    who = _role(course, chromium, role)
    page, frame = who.page, who.frame
    fit_frame(page, frame, WIDTHS[0])
    # Navigate from inside the frame, as an in-frame link does (a navigation Playwright starts
    # itself is not one the page made, and the admin console refuses to be framed for it).
    with frame.expect_navigation():
        frame.evaluate(
            "url => { window.location.href = url; }", who.url(path.format(**vars(course.ids)))
        )
    frame.wait_for_selector("main h1")
    problems: list[str] = []
    for violation in serious_axe_violations(frame):
        targets = [str(node.get("target")) for node in violation.get("nodes", [])][:3]
        problems.append(
            f"axe {violation['id']} ({violation['impact']}): {violation.get('help')}"
            f" at {', '.join(targets)}"
        )
    for width in WIDTHS:
        fit_frame(page, frame, width)
        problems += [f"{width} px: {p}" for p in frame.evaluate(LAYOUT_PROBLEMS)]
        if width == WIDTHS[-1]:
            # Keyboard first, so that focus moved by script shows as keyboard focus does.
            frame.locator("body").press("Tab")
            problems += [f"{width} px: {p}" for p in frame.evaluate(FOCUS_PROBLEMS)]
        if problems or os.environ.get("LTI_APP_LAYOUT_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = path.strip("/").replace("/", "_").replace("{", "").replace("}", "") or "root"
            box = page.locator("iframe#tool-frame").bounding_box()
            page.screenshot(path=str(SCREENSHOTS / f"layout-{role}-{name}-{width}.png"), clip=box)
    assert problems == [], "\n".join(problems)
