"""LMSs started one after another at one loopback address: each test's LMS is its own.

Loopback ports are reused within a run, and the demo LMS's issuer is its address. The run
failed when a test's "fresh" course held another test's competency, and could fail when a
helper found two registrations of one issuer or skipped a launch an earlier LMS had made."""

from __future__ import annotations

from urllib.parse import urlsplit

from lti_app.db import Database
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Ids, ensure_launched, frame, make_competency, second_lms


def test_lms_after_lms_at_one_address_each_opens_a_course_of_its_own(
    tool_server: ToolServer, database_url: str, db: Database
) -> None:
    with second_lms(tool_server, database_url) as first:
        port = urlsplit(first.base_url).port
        assert port is not None
        ensure_launched(first, tool_server, ("user-s01",))
        with db.begin() as s:
            make_competency(s, Ids.of(db, first).context(), "CP.EARLIER")
    for _ in range(2):  # the third LMS meets keys two earlier ones left for its address
        with second_lms(tool_server, database_url, port=port) as later:
            assert later.base_url == first.base_url
            ensure_launched(later, tool_server, ("user-s01",))
            ids = Ids.of(db, later)
            assert ids.person("user-s01")  # the student opened Pathways from this LMS too
            actions = LtiActions(later, tool_server)
            try:
                teacher = frame(actions.launch("user-t01"), tool_server.url)
                page = teacher.get("/competencies/")
            finally:
                actions.close()
            assert page.status_code == 200
            assert "CP.EARLIER" not in page.text
            assert ids.context() != Ids.of(db, first).context()
