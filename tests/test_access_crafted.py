"""Who may still act once access has changed: an operator who walked away from the console,
guesses at the registration access code and at the admin secret. (People the LMS's roster
dropped: tests/roster/test_membership_access_crafted.py.)"""

from __future__ import annotations

import html
import itertools
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from lti_app import create_app
from lti_app.admin import services as admin_services
from lti_app.admin import views as admin_views
from lti_app.db import Database
from lti_app.settings import SettingsError, load_settings
from lti_app.tool.models import ToolKey
from tests.registration.conftest import hidden_fields
from tests.registration.lms import PlatformDouble, serve

LEFT_COURSE = "no longer a member of this course in the LMS"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_numbers = itertools.count(1)


# --- 2. the operator who walked away --------------------------------------------------------------

OPERATOR_SECRET = "operator-secret"
IDLE = "signed out of the admin console after {} minutes without activity"


class Clock:
    """The admin console's clock, moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += minutes * 60


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(admin_views, "time", fake)
    return fake


def _console_app(database_url: str, tmp_path: Path, **overrides: Any) -> Flask:
    settings = load_settings(
        {},
        secret_key="access-test-secret",
        key_encryption_secret="pathways-test-keys",
        database_url=database_url,
        env="test",
        secure_cookies=False,
        instance_path=str(tmp_path),
        admin_secret=OPERATOR_SECRET,
        **overrides,
    )
    return create_app(settings)


@pytest.fixture
def console_app(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[Flask]:
    app = _console_app(database_url, tmp_path)
    yield app
    app.extensions["lti_app.http"].close()
    app.extensions["lti_app.db"].dispose()


def _csrf(page: str) -> str:
    found = CSRF.search(page)
    assert found, "no CSRF field in the page"
    return html.unescape(found.group(1))


def _sign_in(client: FlaskClient) -> None:
    page = client.get("/admin/login").get_data(as_text=True)
    answer = client.post(
        "/admin/login", data={"csrf_token": _csrf(page), "admin_secret": OPERATOR_SECRET}
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/admin/")


def test_an_operator_idle_for_30_minutes_must_sign_in_again(
    console_app: Flask, clock: Clock
) -> None:
    client = console_app.test_client()
    _sign_in(client)
    clock.advance(29)
    assert client.get("/admin/").status_code == 200
    clock.advance(31)
    answer = client.get("/admin/")
    assert answer.status_code == 302
    login = client.get(answer.headers["Location"])
    assert login.status_code == 200
    assert IDLE.format(30) in login.get_data(as_text=True)
    # Signed out for good: going back to the console is no way round it.
    clock.advance(-59)
    assert client.get("/admin/").status_code == 302
    _sign_in(client)
    assert client.get("/admin/").status_code == 200


def test_using_the_console_keeps_the_operator_signed_in(console_app: Flask, clock: Clock) -> None:
    client = console_app.test_client()
    _sign_in(client)
    for _ in range(6):  # two and a half hours, a page every 25 minutes
        clock.advance(25)
        assert client.get("/admin/").status_code == 200


def test_an_idle_operator_changes_nothing(console_app: Flask, clock: Clock, db: Database) -> None:
    client = console_app.test_client()
    _sign_in(client)
    console = client.get("/admin/").get_data(as_text=True)
    with db.begin() as s:
        keys = s.scalar(select(func.count()).select_from(ToolKey))
    clock.advance(31)
    answer = client.post("/admin/keys/rotate", data={"csrf_token": _csrf(console)})
    assert answer.status_code == 401
    assert IDLE.format(30) in answer.get_data(as_text=True)
    with db.begin() as s:
        assert s.scalar(select(func.count()).select_from(ToolKey)) == keys


def test_the_idle_limit_is_a_setting(
    database_url: str, engine: Engine, tmp_path: Path, clock: Clock
) -> None:
    app = _console_app(database_url, tmp_path, admin_idle_minutes=5)
    try:
        client = app.test_client()
        _sign_in(client)
        clock.advance(4)
        assert client.get("/admin/").status_code == 200
        clock.advance(6)
        answer = client.get("/admin/")
        assert answer.status_code == 302
        assert IDLE.format(5) in client.get(answer.headers["Location"]).get_data(as_text=True)
    finally:
        app.extensions["lti_app.http"].close()
        app.extensions["lti_app.db"].dispose()


@pytest.mark.parametrize("value", ["0", "-5", "481", "half an hour"])
def test_an_idle_limit_out_of_bounds_stops_start_up(value: str) -> None:
    with pytest.raises(SettingsError, match="LTI_APP_ADMIN_IDLE_MINUTES"):
        load_settings({"LTI_APP_ADMIN_IDLE_MINUTES": value}, secret_key="s")
    assert (
        load_settings({"LTI_APP_ADMIN_IDLE_MINUTES": "45"}, secret_key="s").admin_idle_minutes == 45
    )


# --- 3. guesses at the registration access code ---------------------------------------------------

ACCESS_CODE = "open-sesame-" + "r" * 12


@pytest.fixture
def registering(
    database_url: str, engine: Engine, tmp_path: Path
) -> Iterator[tuple[str, PlatformDouble]]:
    """Pathways asking for an access code, and an LMS opening its registration page."""
    app = _console_app(database_url, tmp_path, registration_access_code=ACCESS_CODE)
    lms = PlatformDouble("moodle")
    try:
        with serve(app) as url, serve(lms.app()) as lms_url:
            lms.base_url = lms_url
            yield url, lms
    finally:
        app.extensions["lti_app.http"].close()
        app.extensions["lti_app.db"].dispose()


def _address() -> dict[str, str]:
    # Through the trusted loopback proxy: each test guesses from an address of its own.
    return {"X-Forwarded-For": f"198.51.100.{uuid.uuid4().int % 250 + 1}"}


def test_repeated_wrong_access_codes_lock_out_that_address(
    registering: tuple[str, PlatformDouble],
) -> None:
    url, lms = registering
    guesser, admin = _address(), {"X-Forwarded-For": f"203.0.113.{uuid.uuid4().int % 250 + 1}"}
    with httpx.Client(timeout=30) as browser:
        page = browser.get(lms.registration_url(url + "/lti/register"), headers=guesser)
        assert page.status_code == 200, page.text
        fields = hidden_fields(page.text)

        def confirm(code: str, headers: dict[str, str]) -> httpx.Response:
            return browser.post(
                url + "/lti/register", data={**fields, "access_code": code}, headers=headers
            )

        for n in range(10):
            wrong = confirm(f"guess-{n}", guesser)
            assert wrong.status_code == 400
            assert "The access code is not right" in wrong.text
        locked = confirm(ACCESS_CODE, guesser)
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) > 0
        assert "Too many wrong access codes" in locked.text
        assert lms.registration_requests == []
        # The LMS admin at another address is not locked out by someone else's guessing.
        done = confirm(ACCESS_CODE, admin)
        assert done.status_code == 200, done.text
        assert len(lms.registration_requests) == 1


def test_wrong_access_codes_do_not_count_against_the_operator_sign_in(
    registering: tuple[str, PlatformDouble],
) -> None:
    url, lms = registering
    guesser = _address()
    with httpx.Client(timeout=30) as browser:
        page = browser.get(lms.registration_url(url + "/lti/register"), headers=guesser)
        fields = hidden_fields(page.text)
        for n in range(10):
            browser.post(
                url + "/lti/register",
                data={**fields, "access_code": f"guess-{n}"},
                headers=guesser,
            )
        sign_in = browser.get(url + "/admin/login", headers=guesser)
        answer = browser.post(
            url + "/admin/login",
            data={"csrf_token": _csrf(sign_in.text), "admin_secret": OPERATOR_SECRET},
            headers=guesser,
        )
        assert answer.status_code == 302


@pytest.mark.parametrize("given", ["", "x", "a-much-longer-guess-than-the-secret-itself-" * 4])
def test_a_guess_at_a_shared_secret_does_not_reveal_its_length(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """The admin secret and the registration access code are compared as equal-length digests:
    compared as they are, a guess of the wrong length was refused faster than one of the right
    length, which tells a guesser how long the secret is."""
    compared: list[tuple[int, int]] = []
    real = admin_services.hmac.compare_digest

    def watching(a: Any, b: Any) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(admin_services.hmac, "compare_digest", watching)
    assert admin_services.secret_matches(given, "the-operator-secret") is False
    assert admin_services.secret_matches("the-operator-secret", "the-operator-secret") is True
    assert compared
    assert all(a == b for a, b in compared)
