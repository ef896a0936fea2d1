"""A roster that withholds email and picture clears them, as a launch without the claims does.

An LMS admin may turn data sharing down (Canvas: Public to Name only, as docs/admin/canvas.md
suggests considering); a student who has left the course never launches again, so only the
roster can clear what an earlier sync stored.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from lti_app.roster.client import Member
from lti_app.roster.syncing import apply_members
from lti_app.tool.models import Person
from tests.domain_fixtures import make_course, make_platform

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


def _member(*, name: str | None, email: str | None, picture: str | None) -> Member:
    return Member(
        user_id="nrps-only-student",
        roles=(LEARNER,),
        status="Active",
        name=name,
        given_name=None if name is None else "Ana",
        family_name=None if name is None else "Example",
        email=email,
        picture=picture,
    )


def test_a_roster_without_email_and_picture_clears_those_an_earlier_roster_stored(
    session: Session,
) -> None:
    platform = make_platform(session)
    course = make_course(session, platform, students=0)

    def sync(member: Member) -> Person:
        apply_members(
            session, platform_id=platform.id, context_id=course.context_id, members=[member]
        )
        return session.query(Person).filter_by(platform_id=platform.id, sub=member.user_id).one()

    person = sync(
        _member(name="Ana Example", email="ana@school.example", picture="https://lms.example/a.jpg")
    )
    assert (person.email, person.picture) == ("ana@school.example", "https://lms.example/a.jpg")

    # The LMS withholds email and picture now, and names too: the names stay, so the class
    # list still says who she is; email and picture go.
    person = sync(_member(name=None, email=None, picture=None))
    assert (person.email, person.picture) == ("", "")
    assert (person.name, person.given_name, person.family_name) == ("Ana Example", "Ana", "Example")
