"""Real headless Chromium (Debian's package) driving the demo LMS, with Pathways in its frame
on another site, as a teacher or student would see it."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from lti_app import create_app
from lti_app.db import Database
from lti_app.demo.run import register_demo_platform
from lti_app.demo.server import RunningPlatform, serve_in_thread, start_demo_platform
from lti_app.settings import Settings, load_settings

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This machine's network is closed: without these Chromium keeps dialling out.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Keep the cross-site tool frame in the LMS page's renderer. With site isolation a
    # platform-storage launch moves the frame between processes three times within a second
    # (Pathways' login, the LMS's /auth form, Pathways' launch); on a loaded machine Playwright
    # sometimes misses the last move and keeps reporting the /auth document while Chromium
    # already shows the home (seen with CDP Target.getTargets: an iframe target on
    # /lti/launch, the LMS page resized by the home's lti.frameResize), so tool_frame() timed
    # out. Cookies, partitioning and postMessage origins do not depend on processes.
    "--disable-site-isolation-trials",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM) or shutil.which("chromium") is None:
        if os.environ.get("LTI_APP_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here but /usr/bin/chromium is missing")
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass(frozen=True)
class Demo:
    tool_url: str
    lms: RunningPlatform
    settings: Settings

    def course_url(self, context_id: str = "course-bio9", **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"{self.lms.base_url}/courses/{context_id}" + (f"?{query}" if query else "")


class FramesKeepNoCookies:
    """Safari before 26.2, on the server's side: a request a cross-site frame makes carries no
    cookie, and a cookie its answer sets is not kept. (Chromium keeps partitioned cookies in
    such a frame, and has no switch to refuse them too.) Top-level pages keep their cookies."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_SEC_FETCH_DEST") not in ("iframe", "frame"):
            return self.app(environ, start_response)
        environ.pop("HTTP_COOKIE", None)

        def start_without_cookies(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            kept = [(name, value) for name, value in headers if name.lower() != "set-cookie"]
            return start_response(status, kept, exc_info)

        return self.app(environ, start_without_cookies)


def _start_demo(
    database_url: str,
    instance: Path,
    *,
    secure_cookies: bool,
    frames_keep_cookies: bool = True,
    tool_host: str = "127.0.0.1",
) -> Iterator[Demo]:
    settings = load_settings(
        {},
        env="test",
        secret_key="e2e-secret-" + "y" * 32,
        key_encryption_secret="pathways-test-keys",
        database_url=database_url,
        instance_path=str(instance),
        secure_cookies=secure_cookies,
    )
    app = create_app(settings)
    if not frames_keep_cookies:
        app.wsgi_app = FramesKeepNoCookies(app.wsgi_app)  # type: ignore[method-assign]
    tool_url, stop_tool = serve_in_thread(app, tool_host)
    # Its own client_id: a loopback port an earlier test's LMS had gives the same issuer, and
    # its courses and people (a student's goals, self-assessments) would be this LMS's too.
    lms = start_demo_platform(
        tool_url, host="localhost", client_id=f"pathways-e2e-{uuid.uuid4().hex[:8]}"
    )
    db = Database(database_url)
    with db.begin() as session:
        register_demo_platform(session, lms.platform)
    db.dispose()
    yield Demo(tool_url, lms, settings)
    lms.stop()
    stop_tool()
    app.extensions["lti_app.db"].dispose()


@pytest.fixture(scope="session")
def demo(
    database_url: str, engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """Pathways on 127.0.0.1 and the demo LMS on localhost: two sites, as in production.

    Chromium accepts Secure cookies on http://127.0.0.1, so the cookies are as in production.
    """
    yield from _start_demo(database_url, tmp_path_factory.mktemp("e2e"), secure_cookies=True)


@pytest.fixture(scope="session")
def demo_without_cookies(
    database_url: str, engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """As `demo`, but Pathways' cookies are SameSite=Lax, so the browser never sends them
    in the LMS's cross-site frame: what a browser that blocks third-party cookies does."""
    yield from _start_demo(database_url, tmp_path_factory.mktemp("e2e-nc"), secure_cookies=False)


@pytest.fixture(scope="session")
def demo_like_safari(
    database_url: str, engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """As `demo`, but no cookie reaches Pathways in the LMS's frame, partitioned or not; a
    window of its own keeps them: Safari before 26.2."""
    yield from _start_demo(
        database_url,
        tmp_path_factory.mktemp("e2e-safari"),
        secure_cookies=True,
        frames_keep_cookies=False,
    )


@pytest.fixture
def page_factory(chromium: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def make(width: int = 1100, height: int = 900) -> Any:
        context = chromium.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


LAUNCH_ADDRESS_REPLACED = (
    "location.pathname !== '/lti/launch' || !document.body.hasAttribute('data-history-url')"
)


def tool_frame(page: Any, *, timeout: float = 15000) -> Any:
    """The Pathways frame inside the demo LMS page, once its page has a main heading.

    A launch through platform storage passes several documents through the frame (login,
    LMS, storage page, home); the frame object found during one of them can go stale, so it
    is looked up again until the deadline.
    """
    deadline = time.monotonic() + timeout / 1000
    # A frame locator finds the iframe's current document on every try, whatever came before.
    heading = page.frame_locator("iframe#tool-frame").locator("main h1").first
    while True:
        left_ms = max(1.0, (deadline - time.monotonic()) * 1000)
        try:
            heading.wait_for(state="visible", timeout=min(2000.0, left_ms))
            frame = page.wait_for_selector("iframe#tool-frame", timeout=left_ms).content_frame()
            if frame is not None and frame.query_selector("main h1") is not None:
                # The launch page's own address replaces /lti/launch once frame.js runs; a
                # loaded machine's test reads frame.url (its token) before that.
                wait_until(frame, LAUNCH_ADDRESS_REPLACED, timeout=max(1.0, left_ms / 1000))
                return frame
        except PlaywrightError:  # timeouts, and a document replaced while we looked
            pass
        if time.monotonic() >= deadline:
            urls = [f.url for f in page.frames if f is not page.main_frame]
            raise PlaywrightTimeoutError(
                f"the Pathways frame never showed a main heading (its documents now: {urls})"
            )
        page.wait_for_timeout(100)


def wait_until(
    frame_or_page: Any, expression: str, arg: Any = None, *, timeout: float = 15.0
) -> None:
    """Wait until `expression` (a JavaScript expression, or a function of `arg`) is true.

    Not Playwright's wait_for_function: when the first check fails, its polling goes on in
    the page through eval(), which Pathways' Content-Security-Policy refuses; on a loaded
    machine the first check often fails, and the wait then errs. Each evaluate() here is a
    single DevTools call, which the policy does not govern.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if frame_or_page.evaluate(expression, arg):
                return
        except PlaywrightError:  # a document replaced while we looked
            pass
        if time.monotonic() >= deadline:
            raise PlaywrightTimeoutError(f"never true within {timeout} s: {expression}")
        time.sleep(0.05)


def serious_axe_violations(frame_or_page: Any) -> list[dict[str, Any]]:
    """axe-core run in the page; only serious and critical violations count."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(frame_or_page)
    violations = results.response.get("violations", [])
    return [v for v in violations if v.get("impact") in {"serious", "critical"}]
