"""Pathways on a phone, opened top-level as the Canvas Student and Moodle apps do (their web
view or the phone's browser): 360 x 740 CSS px, touch, a mobile user agent.

Charts keep labels a person can read, a collapsed section shows that it opens, and a teacher
sees what each waiting item is, and can tick it, without swiping a table sideways.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Demo
from tests.e2e.test_pages import seed

PHONE = {"width": 360, "height": 740}
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)

CHART_TEXT = """() => [...document.querySelectorAll('main svg[viewBox]')].flatMap(svg => {
  const box = svg.getBoundingClientRect();
  const scale = box.width / svg.viewBox.baseVal.width;  // how much the picture is shrunk
  return [...svg.querySelectorAll('text')].map(t => ({
    text: t.textContent.trim(),
    px: +(parseFloat(t.getAttribute('font-size')) * scale).toFixed(1),
    pastRightEdge: +(t.getBoundingClientRect().right - box.right).toFixed(1),
  }));
})"""

PAGE_SCROLLS_SIDEWAYS = "() => document.documentElement.scrollWidth > window.innerWidth"

MARKER = "summary => getComputedStyle(summary, '::before').content"


@pytest.fixture(scope="module")
def seeded(demo: Demo, database_url: str) -> Demo:
    seed(demo, database_url)
    return demo


@pytest.fixture
def on_phone(chromium: Any, seeded: Demo) -> Iterator[Any]:
    """Launch a user into the demo's Biology 9 in a phone's browser, top-level (no LMS frame)."""
    contexts: list[Any] = []

    def launch(user: str, *, wide: bool = False) -> Any:
        # wide: the same browser on a tablet's or a touch laptop's screen, to compare.
        context = chromium.new_context(
            viewport={"width": 1280, "height": 900} if wide else PHONE,
            is_mobile=not wide,
            has_touch=True,
            user_agent=PHONE_UA,
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        spec = seeded.lms.platform.make_launch(user, "course-bio9")
        page.goto(seeded.lms.platform.login_url(spec))
        page.wait_for_selector("main h1")
        return page

    yield launch
    for context in contexts:
        context.close()


def go_to(page: Any, label: str) -> None:
    nav = page.get_by_role("navigation", name="Pathways")
    with page.expect_navigation():
        nav.get_by_role("link", name=label, exact=True).tap()
    page.wait_for_selector("main h1")


def assert_charts_readable(page: Any) -> None:
    texts = page.evaluate(CHART_TEXT)
    assert texts, "the page draws charts"
    small = sorted({(t["text"], t["px"]) for t in texts if t["px"] < 12})
    assert small == [], f"chart text under 12 px on a 360 px phone: {small[:6]}"
    cut = [t["text"] for t in texts if t["pastRightEdge"] > 0.5]
    assert cut == [], f"chart labels running off the chart's right edge: {cut}"
    assert not page.evaluate(PAGE_SCROLLS_SIDEWAYS), "a chart pushes the page sideways"
    # The chart scrolls in its own box instead: a named region a keyboard can reach.
    scroller = page.locator("main .chart-scroll").first
    assert scroller.get_attribute("tabindex") == "0"
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth"), "the chart fits?"
    scroller.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("el => el.scrollLeft > 0", arg=scroller.element_handle())
    # Nothing else shows that the chart goes on past the box's edge: a line under it says so.
    hint = page.locator("main .chart-scroll + .swipe-hint").first
    assert hint.is_visible(), "no hint that the chart scrolls sideways"
    assert hint.inner_text() == (
        "Swipe the chart sideways to see it all; the table below has the same results."
    )


def assert_no_swipe_hint(page: Any) -> None:
    """On a wide screen the whole chart shows: no hint to swipe it."""
    assert page.locator("main .chart-scroll").count() > 0, "the page draws charts"
    scroller = page.locator("main .chart-scroll").first
    assert not scroller.evaluate("el => el.scrollWidth > el.clientWidth")
    hints = page.locator("main .swipe-hint")
    assert hints.count() > 0
    assert [h.is_visible() for h in hints.all()] == [False] * hints.count()


def test_my_progress_charts_keep_readable_labels_on_a_phone(on_phone: Any) -> None:
    page = on_phone("user-s01")
    go_to(page, "My progress")
    assert_charts_readable(page)
    region = page.get_by_role("region", name="Your results on").first
    assert region.locator("svg").count() == 1


def test_class_progress_charts_keep_readable_labels_and_their_last_date(on_phone: Any) -> None:
    page = on_phone("user-t01")
    go_to(page, "Progress over time")
    assert_charts_readable(page)


def test_the_swipe_hint_is_for_narrow_screens_only(on_phone: Any) -> None:
    for user, label in (("user-s01", "My progress"), ("user-t01", "Progress over time")):
        page = on_phone(user, wide=True)
        go_to(page, label)
        assert_no_swipe_hint(page)


def test_a_students_collapsed_section_shows_that_it_opens(on_phone: Any) -> None:
    page = on_phone("user-s01")
    go_to(page, "My progress")
    summary = page.locator("main details > summary", has_text="Show results as a table").first
    summary.scroll_into_view_if_needed()
    assert "\u25b8" in summary.evaluate(MARKER), "a closed section shows no arrow"
    summary.tap()
    page.wait_for_function(
        "el => el.parentElement.open"
        " && getComputedStyle(el, '::before').content.includes('\u25be')",
        arg=summary.element_handle(),
    )


def test_a_teacher_sees_and_ticks_waiting_items_without_swiping(on_phone: Any) -> None:
    page = on_phone("user-t01")
    width = page.evaluate("window.innerWidth")
    rows = page.locator("#pending ~ form table tbody tr")
    assert rows.count() > 0, "the demo course has items waiting"
    row = rows.first
    row.scroll_into_view_if_needed()
    # Each cell is named by its column (the headings are hidden) and lies on the screen.
    cells = row.locator("td[data-label]").evaluate_all(
        """tds => tds.map(td => ({
          label: getComputedStyle(td, '::before').content,
          right: td.getBoundingClientRect().right,
          shown: td.getClientRects().length > 0}))"""
    )
    labels = [c["label"] for c in cells]
    for name in ("Option", "Since", "Work handed in"):
        assert f'"{name}: "' in labels, f"no {name!r} on the card: {labels}"
    off = [c["label"] for c in cells if not c["shown"] or c["right"] > width]
    assert off == [], f"beyond the {width} px screen: {off}"
    assert not page.evaluate(PAGE_SCROLLS_SIDEWAYS)

    # The tick box keeps its name, and its tap target (the box, or a label around it that
    # ticks it too) is at least 24 px square (WCAG 2.5.8).
    box = row.get_by_role("checkbox", name="Select:")
    assert not box.is_checked()
    target = box.evaluate(
        """box => [box, ...box.labels].map(el => el.getBoundingClientRect())
             .map(r => ({x: r.x, y: r.y, width: r.width, height: r.height}))
             .sort((a, b) => b.width * b.height - a.width * a.height)[0]"""
    )
    assert target["width"] >= 24, f"tap target {target}"
    assert target["height"] >= 24, f"tap target {target}"
    # A mouse click, not a tap: Chromium moves a tap that misses onto the nearest target.
    page.mouse.click(target["x"] + target["width"] - 2, target["y"] + target["height"] - 2)
    assert box.is_checked(), f"a click at the corner of {target} missed the box"
    # "Select all" still shows on a phone, above the cards.
    select_all = page.get_by_role("checkbox", name="Select all waiting items")
    assert select_all.is_visible()
