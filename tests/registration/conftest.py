"""Pathways and a test LMS, both served over real HTTP on loopback."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lti_app import create_app
from lti_app.settings import Settings, load_settings
from lti_app.tool.models import Platform
from tests.registration.lms import PlatformDouble, serve

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of a page's forms, unescaped, as a browser would post them."""
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page)}


@pytest.fixture
def tool_settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        secret_key="registration-test-secret",
        key_encryption_secret="pathways-test-keys",
        database_url=database_url,
        env="test",
        secure_cookies=False,
        instance_path=str(tmp_path),
        admin_secret="operator-secret",
    )


@pytest.fixture
def tool_app(tool_settings: Settings, engine: Engine) -> Iterator[Flask]:
    app = create_app(tool_settings)
    yield app
    app.extensions["lti_app.http"].close()
    app.extensions["lti_app.db"].dispose()


@pytest.fixture
def tool_url(tool_app: Flask) -> Iterator[str]:
    with serve(tool_app) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        yield client


def serve_fresh_lms(stack: ExitStack, engine: Engine, app: Flask) -> str:
    """Serve a test LMS whose issuer (its loopback address) nobody has registered yet.

    The database lives for the whole run and the operating system hands freed ports out
    again, so an earlier test's LMS may have registered this very address.
    """
    base_url = stack.enter_context(serve(app))
    with Session(engine) as session, session.begin():
        for stale in session.scalars(select(Platform).where(Platform.issuer == base_url)):
            session.delete(stale)
    return base_url


@pytest.fixture
def make_lms(engine: Engine) -> Iterator[Callable[[str], PlatformDouble]]:
    with ExitStack() as stack:

        def factory(flavour: str) -> PlatformDouble:
            lms = PlatformDouble(flavour)
            lms.base_url = serve_fresh_lms(stack, engine, lms.app())
            return lms

        yield factory
