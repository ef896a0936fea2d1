"""A launch that names nobody (Moodle's "Share launcher's name with tool: Delegate to teacher",
set per activity) keeps the student's name in the class list, as a roster without names does;
email and picture withheld are still cleared."""

from __future__ import annotations

from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo.launches import DELETE, LaunchTweaks
from lti_app.demo.seed import STUDENTS
from lti_app.roster.services import list_students
from lti_app.tool.models import Person, Platform
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import second_lms

STUDENT = STUDENTS[1]  # Siobhán O'Brien
NAMES = ("name", "given_name", "family_name")


def test_a_launch_without_name_claims_keeps_the_name_the_class_list_shows(
    tool_server: ToolServer, database_url: str, db: Database
) -> None:
    with second_lms(tool_server, database_url) as lms:
        lti = LtiActions(lms, tool_server)
        try:

            def launch(tweaks: LaunchTweaks) -> None:
                launched = lti.launch(STUDENT.user_id, context_id="course-bio9", tweaks=tweaks)
                assert launched.response.status_code == 200, launched.text[:2000]

            launch(LaunchTweaks())
            launch(LaunchTweaks(claims={**dict.fromkeys(NAMES, DELETE), "email": DELETE}))
            with db.session_factory() as s:
                context_id = lti.course_id(s)
                person = s.scalars(
                    select(Person)
                    .join(Platform, Platform.id == Person.platform_id)
                    .where(
                        Platform.issuer == lms.platform.config.issuer,
                        Platform.client_id == lms.platform.config.client_id,
                        Person.sub == STUDENT.user_id,
                    )
                ).one()
                class_list = {x.name for x in list_students(s, context_id=context_id)}
            assert STUDENT.name == "Siobhán O'Brien"
            assert STUDENT.name in class_list
            assert (person.given_name, person.family_name, person.email) == (
                "Siobhán",
                "O'Brien",
                "",
            )

            # A launch that names them differently still says the name now.
            launch(LaunchTweaks(claims={"name": "Siobhán Walsh", "given_name": DELETE}))
            with db.session_factory() as s:
                class_list = {x.name for x in list_students(s, context_id=context_id)}
            assert "Siobhán Walsh" in class_list
        finally:
            lti.close()


def test_a_first_launch_without_names_shows_the_email_or_the_lms_id(
    tool_server: ToolServer, database_url: str
) -> None:
    with second_lms(tool_server, database_url) as lms:
        lti = LtiActions(lms, tool_server)
        try:
            for student, removed, shown in (
                (STUDENTS[2], NAMES, STUDENTS[2].email),
                (STUDENTS[3], (*NAMES, "email"), f"User {STUDENTS[3].user_id}"),
            ):
                tweaks = LaunchTweaks(claims=dict.fromkeys(removed, DELETE))
                launched = lti.launch(student.user_id, context_id="course-bio9", tweaks=tweaks)
                assert launched.response.status_code == 200, launched.text[:2000]
                assert str(shown) in launched.text
        finally:
            lti.close()
