"""The family report writes dates in the reader's own order: "3 March 2030" for a parent whose
LMS says en-GB (UK, Ireland, Australia, New Zealand, India...), "March 3, 2030" for en-US."""

from __future__ import annotations

import re
from datetime import date

import pytest

from lti_app.db import Database
from lti_app.demo.browser import follow_launch
from lti_app.demo.launches import LaunchTweaks
from lti_app.demo.server import RunningPlatform
from lti_app.learners.goals_and_check_ins import add_goal
from lti_app.reports.i18n import date_locale
from tests.conftest import Launched, LtiActions, ToolServer
from tests.courses.conftest import fresh_lms
from tests.courses.frames import Ids, frame

__all__ = ["fresh_lms"]

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


def _launch(lti: LtiActions, lms: RunningPlatform, sub: str, locale: str = "") -> Launched:
    client = lti.browser()
    tweaks = None
    if locale:
        presentation = {"locale": locale, "document_target": "iframe"}
        tweaks = LaunchTweaks(claims={CLAIM + "launch_presentation": presentation})
    spec = lms.platform.make_launch(sub, tweaks=tweaks)
    return Launched(follow_launch(client, lms.platform.login_url(spec)), client)


@pytest.mark.parametrize(
    ("locale", "written"),
    [
        ("en-GB", "3 March 2030"),
        ("en_au", "3 March 2030"),  # Moodle's spelling
        ("en-IN", "3 March 2030"),
        ("en-US", "March 3, 2030"),
        ("es-MX", "3 de marzo de 2030"),
    ],
)
def test_the_family_report_writes_dates_in_the_readers_order(
    lti: LtiActions,
    tool_server: ToolServer,
    fresh_lms: RunningPlatform,
    db: Database,
    locale: str,
    written: str,
) -> None:
    assert _launch(lti, fresh_lms, "user-s01").response.status_code == 200
    teacher = frame(_launch(lti, fresh_lms, "user-t01", locale), tool_server.url)
    ids = Ids.of(db, fresh_lms)
    course, student, teacher_id = ids.context(), ids.person("user-s01"), ids.person("user-t01")
    with db.begin() as s:
        add_goal(
            s,
            context_id=course,
            person_id=student,
            text="Read two books",
            target_date=date(2030, 3, 3),
            created_by_id=teacher_id,
            editor_is_teacher=True,
        )
    page = teacher.get(f"/reports/students/{student}").text
    assert "Read two books" in page
    shown = re.findall(r"(?:Target date|Fecha prevista)[^<]*", page)
    assert any(shown_line.rstrip().endswith(written) for shown_line in shown), shown


def test_the_date_locale_keeps_the_region_only_for_the_reports_language() -> None:
    assert date_locale("en", "en-GB") == "en_GB"
    assert date_locale("es", "es_mx") == "es_MX"
    # A Spanish report asked for by a British reader (?lang=es): Spanish dates.
    assert date_locale("es", "en-GB") == "es"
    assert date_locale("en", None) == "en"
    assert date_locale("en", "en-ZZ-nonsense!") == "en"
