"""The course's default scale is stored once, however many first requests store it at once."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, func, select

from lti_app.db import Database
from lti_app.mastery.models import MasteryLevel, MasteryScale
from lti_app.mastery.scales import get_or_create_scale, store_default_scale
from tests.domain_fixtures import make_course


def test_two_first_requests_of_a_course_store_one_default_scale(
    engine: Engine, database_url: str
) -> None:
    """Two requests of a new course each find no scale and store one at the same moment: the
    second waits for the first (PostgreSQL's unique index, SQLite's write lock), then stores
    nothing and fails nothing; both go on with the same levels. (`engine`: the migrated
    database.)"""
    db = Database(database_url)
    try:
        with db.begin() as s:
            course = make_course(s)
        stored: list[bool] = []
        errors: list[BaseException] = []

        def second() -> None:
            try:
                with db.begin() as s:
                    stored.append(store_default_scale(s, context_id=course.context_id))
            except BaseException as err:  # the thread cannot fail the test itself
                errors.append(err)

        with db.begin() as s:
            stored.append(store_default_scale(s, context_id=course.context_id))
            worker = threading.Thread(target=second)
            worker.start()
            time.sleep(0.5)  # the second is now waiting on the first's uncommitted scale
        worker.join(timeout=60)
        assert not errors, errors
        assert stored == [True, False]
        with db.begin() as s:
            scale = get_or_create_scale(s, context_id=course.context_id)
            assert [lv.name for lv in scale.levels] == [
                "Emerging",
                "Developing",
                "Proficient",
                "Advanced",
            ]
            assert scale.mastery_level.name == "Proficient"
            scales = s.scalar(
                select(func.count())
                .select_from(MasteryScale)
                .where(MasteryScale.context_id == course.context_id)
            )
            levels = s.scalar(
                select(func.count())
                .select_from(MasteryLevel)
                .where(MasteryLevel.scale_id == scale.id)
            )
        assert (scales, levels) == (1, 4)
    finally:
        db.dispose()
