"""Ids in addresses beyond any row's: a plain "not found", never a database error.

A link edited by hand, or a scanner, can put any number in a path; SQLite cannot even bind an
integer past 2**63, and PostgreSQL's integer columns end at 2**31.
"""

from __future__ import annotations

import pytest

from tests.conftest import LtiActions
from tests.progress.pages import url

HUGE = "9" * 25
TEACHER_PAGES = [
    f"/competencies/{HUGE}/edit",
    f"/course/students/{HUGE}",
    f"/reports/students/{HUGE}",
    f"/reports/students/{HUGE}/report.pdf",
    f"/mastery/evidence/{HUGE}",
    f"/insights/students/{HUGE}/competencies/1",
    f"/insights/students/1/competencies/{HUGE}",
    f"/insights/groups/{HUGE}",
    f"/insights/students/{HUGE}/progress",
    "/competencies/2147483648/edit",
    "/mastery/evidence/9223372036854775808",
]


@pytest.mark.parametrize("path", TEACHER_PAGES)
def test_an_id_past_any_row_is_not_found(lti: LtiActions, path: str) -> None:
    home = lti.launch("user-t01")
    answer = home.client.get(url(home.response, path))
    assert answer.status_code == 404, answer.text[-500:]
    assert "unexpected problem" not in answer.text
