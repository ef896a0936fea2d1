import pytest

from lti_app.tool.roles import CourseRole, course_role

M = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INST = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
SYS = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([M + "Instructor"], CourseRole.TEACHER),
        (["Instructor"], CourseRole.TEACHER),  # deprecated short name
        ([M + "Learner"], CourseRole.LEARNER),
        (["Learner"], CourseRole.LEARNER),
        ([M + "ContentDeveloper"], CourseRole.TEACHER),
        ([M + "Administrator"], CourseRole.TEACHER),
        (
            ["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"],
            CourseRole.TEACHER,
        ),
        ([M + "Learner", INST + "Administrator"], CourseRole.LEARNER),
        ([INST + "Administrator"], CourseRole.ADMIN),
        ([SYS + "Administrator"], CourseRole.ADMIN),
        ([INST + "Instructor"], CourseRole.GUEST),  # an institution role is not this course's
        ([], CourseRole.GUEST),
        (["http://example.com/unknown#Role"], CourseRole.GUEST),
        ([M + "Mentor"], CourseRole.MENTOR),
        ([M + "Learner", M + "Instructor"], CourseRole.TEACHER),
    ],
)
def test_context_roles_decide_what_a_launch_may_do(roles: list[str], expected: CourseRole) -> None:
    assert course_role(roles) is expected
