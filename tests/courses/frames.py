"""Teacher-page test helpers: a launched frame that follows links and posts forms like a
browser, ids on a platform, and students who have opened Pathways."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import ColumnElement, event, select
from sqlalchemy.orm import Session

from lti_app.db import Database
from lti_app.demo.browser import parse_forms
from lti_app.demo.run import register_demo_platform
from lti_app.demo.server import RunningPlatform, start_demo_platform
from lti_app.tool.models import Context, Person, Platform
from tests.conftest import Launched, LtiActions, ToolServer, forget_cached_keys

TOKEN = re.compile(r"""[?&;]lt=([A-Za-z0-9_.\-]+)|name="lt" value="([^"]+)\"""")


def token_in(html: str) -> str:
    match = TOKEN.search(html)
    assert match, "no launch token in the page"
    return match.group(1) or match.group(2)


@dataclass
class Frame:
    """One launch's pages: GET and POST with its launch token and CSRF token."""

    client: httpx.Client
    base: str
    token: str
    csrf: str = ""

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(self.base + path, params={"lt": self.token, **params})

    def csrf_token(self) -> str:
        if not self.csrf:
            for path in ("/competencies/", "/mastery/scale", "/"):
                forms = parse_forms(self.get(path).text)
                found = [f.fields["csrf_token"] for f in forms if "csrf_token" in f.fields]
                if found:
                    self.csrf = found[0]
                    break
        return self.csrf

    def post(
        self, path: str, data: dict[str, Any] | None = None, files: Any = None
    ) -> httpx.Response:
        fields = {"lt": self.token, "csrf_token": self.csrf_token(), **(data or {})}
        return self.client.post(self.base + path, data=fields, files=files)

    def follow(self, response: httpx.Response) -> httpx.Response:
        assert response.status_code == 303, (response.status_code, response.text[:2000])
        return self.client.get(self.base + response.headers["location"])


def frame(launched: Launched, base: str) -> Frame:
    assert launched.response.status_code == 200, launched.text[:2000]
    return Frame(launched.client, base, token_in(launched.text))


@dataclass(frozen=True)
class Ids:
    """Database ids on one LMS's registration, looked up by the LMS's ids.

    By issuer and client_id: loopback ports are reused, so an LMS that stopped earlier in the
    run may have had this one's address, hence its issuer, under another client_id."""

    db: Database
    issuer: str
    client_id: str

    @classmethod
    def of(cls, db: Database, lms: RunningPlatform) -> Ids:
        config = lms.platform.config
        return cls(db, config.issuer, config.client_id)

    def platform(self) -> int:
        with self.db.begin() as s:
            return int(s.scalars(select(Platform.id).where(*self._registration())).one())

    def context(self, context_id: str = "course-bio9") -> int:
        with self.db.begin() as s:
            return int(
                s.scalars(
                    select(Context.id)
                    .join(Platform, Platform.id == Context.platform_id)
                    .where(*self._registration(), Context.context_id == context_id)
                ).one()
            )

    def person(self, sub: str) -> int:
        with self.db.begin() as s:
            return int(
                s.scalars(
                    select(Person.id)
                    .join(Platform, Platform.id == Person.platform_id)
                    .where(*self._registration(), Person.sub == sub)
                ).one()
            )

    def _registration(self) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        return Platform.issuer == self.issuer, Platform.client_id == self.client_id


_LAUNCHED: set[tuple[str, str, str, str]] = set()
BIO_STUDENTS = ("user-s01", "user-s02", "user-s03", "user-s10")


def ensure_launched(
    lms: RunningPlatform, tool: ToolServer, subs: tuple[str, ...], context_id: str = "course-bio9"
) -> None:
    """Have these students open Pathways once per run, so the course roster knows them."""
    actions = LtiActions(lms, tool)
    try:
        for sub in subs:
            config = lms.platform.config
            key = (config.issuer, config.client_id, context_id, sub)
            if key not in _LAUNCHED:
                launched = actions.launch(sub, context_id=context_id)
                assert launched.response.status_code == 200, launched.text[:500]
                _LAUNCHED.add(key)
    finally:
        actions.close()


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6].upper()}"


def make_competency(session: Session, context_id: int, code: str, **kw: Any) -> int:
    from lti_app.competencies.services import create_competency

    return create_competency(
        session, context_id=context_id, code=code, title=kw.pop("title", f"Title {code}"), **kw
    ).id


@contextmanager
def second_lms(tool: ToolServer, database_url: str, port: int = 0) -> Iterator[RunningPlatform]:
    """A second registered LMS: same user and course ids, different people and courses.

    Its client_id is new each time: loopback ports are reused, so an LMS started later can have
    an earlier one's address, hence its issuer, and would find that LMS's courses and people
    (and Pathways would hold that LMS's keys for its key set address)."""
    running = start_demo_platform(tool.url, port=port, client_id=unique("pathways-demo-"))
    database = Database(database_url)
    with database.begin() as session:
        forget_cached_keys(tool, session, running)
        register_demo_platform(session, running.platform)
    database.dispose()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module", name="lms")
def lms_of_the_module(tool_server: ToolServer, database_url: str) -> Iterator[RunningPlatform]:
    """An LMS of the test module's own, in place of the run's shared one, for folders whose tests
    write competencies, pathways, evidence and goals into Biology 9: those rows stay in this
    LMS's Biology 9, so the course the rest of the run shares (the family report tests read
    all of it) does not grow with every test. A conftest imports it to apply it to its folder."""
    with second_lms(tool_server, database_url) as running:
        yield running


@contextmanager
def counted(tool_server: ToolServer) -> Iterator[list[str]]:
    """The statements the app's requests run inside the block, as its engine sends them.

    A teacher's launch syncs the roster in a thread of its own (roster.jobs), which may still
    be running: its statements are not the request's.
    """
    engine = tool_server.app.extensions["lti_app.db"].engine
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not threading.current_thread().name.startswith("roster-sync-"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def field_marks(page: str, field_id: str) -> tuple[bool, bool, bool]:
    """(says it is invalid, is described by the error summary, is linked from it) of a field of
    a refused form's page."""
    tag = re.search(rf'<(?:textarea|input|select)\b[^>]*\bid="{field_id}"[^>]*>', page)
    assert tag is not None, field_id
    summary = re.search(r'<div[^>]*id="error-summary".*?</div>', page, re.S)
    assert summary is not None, "no error summary"
    described = re.search(r'aria-describedby="([^"]*)"', tag.group(0))
    return (
        'aria-invalid="true"' in tag.group(0),
        described is not None and "error-summary" in described.group(1).split(),
        f'href="#{field_id}"' in summary.group(0) and "Go to the field" in summary.group(0),
    )
