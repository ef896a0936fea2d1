"""Teachers a roster listed before 0022 (which started every membership unlisted) are ended by
the first sync after the upgrade that no longer lists them; teachers known from launches only
still are not."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import Session

from lti_app.db import UtcDateTime, make_engine, utcnow
from lti_app.migrate import alembic_config
from lti_app.roster import syncing
from lti_app.tool.models import Membership, MembershipStatus

BEFORE_BACKFILL = "0022_membership_first_listed_at"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"

_membership = sa.table(
    "membership",
    sa.column("context_id", sa.Integer()),
    sa.column("person_id", sa.Integer()),
    sa.column("roles", sa.JSON()),
    sa.column("status", sa.String()),
    sa.column("is_teacher", sa.Boolean()),
    sa.column("is_learner", sa.Boolean()),
    sa.column("first_launch_at", UtcDateTime()),
    sa.column("last_launch_at", UtcDateTime()),
    sa.column("first_listed_at", UtcDateTime()),
    sa.column("created_at", UtcDateTime()),
    sa.column("updated_at", UtcDateTime()),
)
_roster_sync = sa.table(
    "roster_sync",
    sa.column("platform_id", sa.Integer()),
    sa.column("context_id", sa.Integer()),
    sa.column("nrps_url", sa.String()),
    sa.column("status", sa.String()),
    sa.column("started_at", UtcDateTime()),
    sa.column("finished_at", UtcDateTime()),
    sa.column("succeeded_at", UtcDateTime()),
    sa.column("member_count", sa.Integer()),
    sa.column("last_error", sa.Text()),
)

SYNCED = utcnow() - timedelta(days=3)
"""When each course's last sync before the upgrade began."""
BEFORE = SYNCED - timedelta(days=7)

# (course, person): (teacher?, made at, first launch, last launch, listed since 0022)
MEMBERS: dict[tuple[int, int], tuple[bool, datetime, datetime | None, datetime | None, bool]] = {
    # Course 1: its last sync, before 0022, succeeded.
    (1, 1): (False, BEFORE, None, None, False),  # a student the roster listed
    (1, 2): (True, BEFORE, BEFORE, SYNCED - timedelta(days=1), False),  # removed since
    (1, 3): (True, BEFORE, BEFORE, SYNCED + timedelta(hours=1), False),  # launched after it
    (1, 4): (True, BEFORE, BEFORE, SYNCED - timedelta(seconds=2), False),  # her launch began it
    (1, 5): (True, BEFORE, None, None, False),  # listed, never opened Pathways here
    # Course 2: its last sync failed; this teacher was made by an earlier roster.
    (2, 1): (False, BEFORE, None, None, False),
    (2, 6): (True, BEFORE, BEFORE + timedelta(days=1), BEFORE + timedelta(days=1), False),
    (2, 7): (True, BEFORE, BEFORE, BEFORE, False),  # known from her launch only
    # Course 3: synced since 0022, which listed its students but not this teacher.
    (3, 1): (False, BEFORE, None, None, True),
    (3, 8): (True, BEFORE, BEFORE, SYNCED - timedelta(days=1), False),
    # Course 4 (Moodle): its last sync, before 0022, succeeded, but its roster listed
    # students only, so it ended no teacher. A category teacher (the role on the category,
    # not enrolled) is known from her launches; a non-editing teacher the roster made as a
    # Learner became a teacher by her launch (Moodle's roster understates teaching).
    (4, 1): (False, BEFORE, None, None, False),
    (4, 9): (True, BEFORE, BEFORE, SYNCED - timedelta(days=1), False),
    (4, 10): (True, BEFORE, BEFORE + timedelta(days=1), BEFORE + timedelta(days=1), False),
    # Course 5: its last sync, before 0022, ended a teacher (11), so it listed a teacher;
    # 12, known from launches only, was still teaching after it.
    (5, 1): (False, BEFORE, None, None, False),
    (5, 11): (True, BEFORE, BEFORE, BEFORE, False),
    (5, 12): (True, BEFORE, BEFORE, SYNCED - timedelta(days=1), False),
}
ENDED_BY_LAST_SYNC = {(5, 11)}
MOODLE_ROSTER = "https://moodle.example/mod/lti/services.php/CourseSection/4/bindings/7/memberships"


COURSES = sorted({course for course, _person in MEMBERS})


def _seed(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO platform (id, issuer, client_id, name, auth_login_url, token_url,"
                " jwks_url, auto_approve_deployments, is_active) VALUES (1, 'https://lms.example',"
                " 'c', 'LMS', 'https://lms.example/a', 'https://lms.example/t',"
                " 'https://lms.example/j', true, true)"
            )
        )
        for course in COURSES:
            conn.execute(
                sa.text(
                    "INSERT INTO context (id, platform_id, context_id, title, label)"
                    " VALUES (:id, 1, :lms_id, 'Biology', 'BIO')"
                ),
                {"id": course, "lms_id": f"ctx-{course}"},
            )
            ok = course != 2
            conn.execute(
                _roster_sync.insert().values(
                    platform_id=1,
                    context_id=course,
                    nrps_url=MOODLE_ROSTER if course == 4 else f"https://lms.example/{course}/nrps",
                    status="ok" if ok else "failed",
                    started_at=SYNCED,
                    finished_at=SYNCED + timedelta(seconds=5),
                    succeeded_at=SYNCED + timedelta(seconds=5) if ok else BEFORE,
                    member_count=1,
                    last_error="" if ok else "The LMS roster service is busy",
                )
            )
        for person in range(1, 13):
            conn.execute(
                sa.text(
                    "INSERT INTO person (id, platform_id, sub, name, given_name, family_name,"
                    " email, picture) VALUES (:id, 1, :sub, '', '', '', '', '')"
                ),
                {"id": person, "sub": f"u{person}"},
            )
        for (course, person), (teacher, made, first, last, listed) in MEMBERS.items():
            ended = (course, person) in ENDED_BY_LAST_SYNC
            conn.execute(
                _membership.insert().values(
                    context_id=course,
                    person_id=person,
                    roles=[INSTRUCTOR if teacher else LEARNER],
                    status="inactive" if ended else "active",
                    is_teacher=teacher,
                    is_learner=not teacher,
                    first_launch_at=first,
                    last_launch_at=last,
                    first_listed_at=SYNCED if listed else None,
                    created_at=made,
                    updated_at=SYNCED + timedelta(seconds=3) if ended else made,
                )
            )
    engine.dispose()


def test_a_teacher_removed_in_the_lms_before_the_upgrade_is_ended_by_the_next_sync(
    empty_database_url: str,
) -> None:
    """Before, the sync after the upgrade left every teacher teaching: none was "listed",
    so one the LMS had removed kept the course in Pathways for good."""
    config = alembic_config(empty_database_url)
    command.upgrade(config, BEFORE_BACKFILL)
    _seed(empty_database_url)

    command.upgrade(config, "head")

    engine = make_engine(empty_database_url)
    with Session(engine) as session:
        for course in COURSES:
            # A full sync nobody's launch started; the LMS lists the student, no teacher of
            # these (a colleague it lists is not stored here).
            syncing.deactivate_missing(
                session,
                context_id=course,
                seen_person_ids={1},
                listed_since=utcnow(),
                teachers=True,
            )
        session.commit()
        statuses = {
            (m.context_id, m.person_id): m.status for m in session.scalars(sa.select(Membership))
        }
    engine.dispose()
    ended = {key for key, status in statuses.items() if status is MembershipStatus.INACTIVE}
    assert ended == {(1, 2), (1, 5), (2, 6), (4, 10), (5, 11), (5, 12)}
    command.downgrade(config, BEFORE_BACKFILL)
    command.upgrade(config, "head")


def test_a_teacher_no_pre_upgrade_sync_could_have_ended_stays_teaching(
    empty_database_url: str,
) -> None:
    """Moodle's category teacher: its roster lists enrolments only, so syncs before 0022
    never ended her. Marked "listed" by the upgrade, she was ended by every full sync she did
    not start once an editing teacher was enrolled, her open page answering 403 mid-work."""
    config = alembic_config(empty_database_url)
    command.upgrade(config, BEFORE_BACKFILL)
    _seed(empty_database_url)

    command.upgrade(config, "head")

    engine = make_engine(empty_database_url)
    with Session(engine) as session:
        # The editing teacher enrolled since (3, made here by the roster) is listed now.
        session.execute(
            sa.insert(Membership).values(
                context_id=4,
                person_id=3,
                roles=[INSTRUCTOR],
                status=MembershipStatus.ACTIVE,
                is_teacher=True,
                is_learner=False,
                first_listed_at=utcnow(),
            )
        )
        syncing.deactivate_missing(
            session, context_id=4, seen_person_ids={1, 3}, listed_since=utcnow(), teachers=True
        )
        session.commit()
        category_teacher = session.scalars(
            sa.select(Membership).where(Membership.context_id == 4, Membership.person_id == 9)
        ).one()
    engine.dispose()
    assert category_teacher.first_listed_at is None
    assert category_teacher.status is MembershipStatus.ACTIVE
