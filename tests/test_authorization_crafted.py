"""Authorization review by crafted requests: every id-taking route and every form, probed
across courses, platforms, roles, launch tokens and CSRF tokens; output escaping and exports.

Course V ("victim") is Biology 9 (teacher user-t01; user-s03 and user-s04 are only there).
Course X ("attacker") is Chemistry Club on the same LMS (teacher user-t02; user-s01 and
user-s02, who are also Biology students). A second registered LMS gives the cross-platform
attacker with the very same user and course ids.
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from flask_wtf.csrf import generate_csrf
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select, text

from lti_app.competencies.services import create_competency
from lti_app.db import Database
from lti_app.demo.browser import follow_launch
from lti_app.demo.launches import MessageType
from lti_app.demo.server import RunningPlatform
from lti_app.insights.groups import create_group
from lti_app.launch_tokens import make_launch_token
from lti_app.learners.goals_and_check_ins import add_check_in, add_goal
from lti_app.learners.services import update_profile
from lti_app.mastery.models import EvidenceSource
from lti_app.mastery.scales import get_or_create_scale
from lti_app.mastery.services import record_evidence
from lti_app.pathways.choices import choose_option
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.services import create_pathway, create_step
from lti_app.reports.services import save_reflection
from lti_app.tool.models import (
    Context,
    Deployment,
    DeploymentStatus,
    LaunchSession,
    Membership,
    MembershipStatus,
    Person,
    Platform,
)
from tests.conftest import LtiActions, ToolServer, registration_of
from tests.courses.frames import Ids, second_lms, token_in, unique

M = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INST_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
V_COURSE, X_COURSE = "course-bio9", "course-chem-club"
DENIED = {403, 404}
REFUSED = {400, 403, 404}


# --- frames ------------------------------------------------------------------------------------


@dataclass
class Frame:
    """One launch's requests, with its launch token and a valid CSRF token of that launch."""

    client: httpx.Client
    base: str
    token: str
    csrf: str
    launch_id: str = ""

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(self.base + path, params={"lt": self.token, **params})

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = None
    ) -> httpx.Response:
        fields: dict[str, Any] = {"lt": self.token, **(data or {})}
        token = self.csrf if csrf is None else csrf
        if token:
            fields["csrf_token"] = token
        return self.client.post(self.base + path, data=fields)

    def send(self, method: str, path: str, data: dict[str, Any]) -> httpx.Response:
        return self.get(path, **data) if method == "GET" else self.post(path, data)


def _launch_id(tool: ToolServer, token: str) -> str:
    ser = URLSafeTimedSerializer(tool.settings.secret_key, salt="pathways-launch")
    return str(ser.loads(token))


def _csrf_for(tool: ToolServer, token: str) -> str:
    with tool.app.test_request_context(f"/?lt={token}"):
        return str(generate_csrf())


def make_frame(tool: ToolServer, client: httpx.Client, response: httpx.Response) -> Frame:
    assert response.status_code == 200, response.text[:1500]
    token = token_in(response.text)
    return Frame(client, tool.url, token, _csrf_for(tool, token), _launch_id(tool, token))


def launch(
    actions: LtiActions, tool: ToolServer, user: str, context_id: str | None = V_COURSE, **kw: Any
) -> Frame:
    launched = actions.launch(user, context_id=context_id, **kw)
    return make_frame(tool, launched.client, launched.response)


def launch_on(
    platform: RunningPlatform, actions: LtiActions, tool: ToolServer, user: str, **kw: Any
) -> Frame:
    spec = platform.platform.make_launch(user, **kw)
    client = actions.browser()
    return make_frame(tool, client, follow_launch(client, platform.platform.login_url(spec)))


def frame_by_session(actions: LtiActions, tool: ToolServer, db: Database, person_id: int) -> Frame:
    """For pages that show no link (a guest's home): the newest launch of this person."""
    with db.begin() as s:
        launch_id = s.scalars(
            select(LaunchSession.id)
            .where(LaunchSession.person_id == person_id)
            .order_by(LaunchSession.created_at.desc())
            .limit(1)
        ).one()
    with tool.app.app_context():
        token = make_launch_token(launch_id)
    return Frame(actions.browser(), tool.url, token, _csrf_for(tool, token), launch_id)


# --- the world ---------------------------------------------------------------------------------


@dataclass
class Course:
    context: int
    teacher: int
    competency: int
    pathway: int
    step: int
    option: int
    group: int
    evidence: int
    students: dict[str, int] = field(default_factory=dict)
    choices: dict[str, int] = field(default_factory=dict)
    goals: dict[str, int] = field(default_factory=dict)
    levels: list[int] = field(default_factory=list)


@dataclass
class World:
    db: Database
    tool: ToolServer
    lms: RunningPlatform
    v: Course
    x: Course


def _seed(
    db: Database, ids: Ids, course: str, teacher_sub: str, subs: list[str], tag: str
) -> Course:
    cid = ids.context(course)
    teacher = ids.person(teacher_sub)
    students = {sub: ids.person(sub) for sub in subs}
    with db.begin() as s:
        comp = create_competency(
            s, context_id=cid, code=unique(f"{tag}-"), title=f"{tag} competency"
        ).id
        pathway = create_pathway(s, context_id=cid, title=f"{tag} pathway", competency_ids=[comp])
        step = create_step(s, context_id=cid, pathway_id=pathway.id, title=f"{tag} step")
        option = create_option(
            s, context_id=cid, step_id=step.id, data=OptionInput(f"{tag} option")
        )
        choices, goals = {}, {}
        for sub, pid in students.items():
            choices[sub] = choose_option(s, context_id=cid, person_id=pid, option_id=option.id).id
            goals[sub] = add_goal(
                s,
                context_id=cid,
                person_id=pid,
                text=f"{tag} goal of {sub}",
                created_by_id=pid,
                editor_is_teacher=False,
            ).id
            save_reflection(s, context_id=cid, person_id=pid, text=f"{tag}-REFLECTION-{sub}")
            update_profile(
                s,
                context_id=cid,
                person_id=pid,
                editor_is_teacher=True,
                teacher_notes=f"{tag}-TEACHER-NOTE-{sub}",
            )
            add_check_in(
                s,
                context_id=cid,
                person_id=pid,
                author_id=teacher,
                held_on=datetime.now(UTC).date(),
                note=f"{tag}-PRIVATE-CHECKIN-{sub}",
                is_private=True,
            )
        first = next(iter(students.values()))
        record_evidence(
            s,
            context_id=cid,
            competency_id=comp,
            student_ids=[first],
            points=Decimal(2),
            source=EvidenceSource.TEACHER,
            note=f"{tag} evidence",
            recorded_by_id=teacher,
        )
        evidence = s.execute(
            text("SELECT id FROM evidence WHERE competency_id = :c"), {"c": comp}
        ).scalar_one()
        group = create_group(
            s,
            context_id=cid,
            name=f"{tag} group",
            person_ids=list(students.values()),
            created_by_id=teacher,
        ).id
        scale = get_or_create_scale(s, context_id=cid)
        levels = [lv.id for lv in scale.levels]
    return Course(
        cid,
        teacher,
        comp,
        pathway.id,
        step.id,
        option.id,
        group,
        evidence,
        students,
        choices,
        goals,
        levels,
    )


@pytest.fixture(scope="module")
def world(lms: RunningPlatform, tool_server: ToolServer, db: Database) -> Iterator[World]:
    actions = LtiActions(lms, tool_server)
    try:
        for user, course in [
            ("user-t01", V_COURSE),
            ("user-s01", V_COURSE),
            ("user-s03", V_COURSE),
            ("user-s04", V_COURSE),
            ("user-s10", V_COURSE),
            ("user-t02", X_COURSE),
            ("user-s01", X_COURSE),
            ("user-s02", X_COURSE),
        ]:
            assert actions.launch(user, context_id=course).response.status_code == 200
        ids = Ids.of(db, lms)
        v = _seed(db, ids, V_COURSE, "user-t01", ["user-s03", "user-s04", "user-s01"], "V")
        x = _seed(db, ids, X_COURSE, "user-t02", ["user-s01", "user-s02"], "X")
        yield World(db, tool_server, lms, v, x)
    finally:
        actions.close()


@pytest.fixture(scope="module")
def other_lms(tool_server: ToolServer, database_url: str) -> Iterator[RunningPlatform]:
    with second_lms(tool_server, database_url) as running:
        yield running


@pytest.fixture
def actions(lms: RunningPlatform, tool_server: ToolServer) -> Iterator[LtiActions]:
    acts = LtiActions(lms, tool_server)
    yield acts
    acts.close()


# --- "nothing changed": every row a course owns --------------------------------------------

COURSE_TABLES = [
    "competency",
    "competency_prerequisite",
    "learner_profile",
    "mastery_scale",
    "pathway",
    "student_reflection",
    "evidence",
    "evidence_revision",
    "learner_check_in",
    "learner_goal",
    "line_item",
    "pathway_step",
    "pathway_option",
    "pathway_step_unlock",
    "pathway_choice",
    "student_competency_level",
    "score_outbox",
    "student_group",
    "student_group_member",
]


def fingerprint(db: Database, context_id: int) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.begin() as s:
        for table in COURSE_TABLES:
            rows = s.execute(
                text(f"SELECT * FROM {table} WHERE context_id = :c"),  # noqa: S608 - fixed names
                {"c": context_id},
            ).all()
            out[table] = sorted(tuple(str(v) for v in r) for r in rows)
        for table, parent, key in [
            ("pathway_competency", "pathway", "pathway_id"),
            ("pathway_step_prerequisite", "pathway_step", "step_id"),
            ("mastery_level", "mastery_scale", "scale_id"),
        ]:
            rows = s.execute(
                text(
                    f"SELECT t.* FROM {table} t JOIN {parent} p ON p.id = t.{key} "  # noqa: S608
                    "WHERE p.context_id = :c"
                ),
                {"c": context_id},
            ).all()
            out[table] = sorted(tuple(str(v) for v in r) for r in rows)
    return out


def assert_refused_and_unchanged(
    world: World,
    attacker: Frame,
    requests: list[tuple[str, str, dict[str, Any]]],
    allowed: set[int],
    contexts: list[int],
) -> None:
    before = {c: fingerprint(world.db, c) for c in contexts}
    wrong = []
    for method, path, data in requests:
        response = attacker.send(method, path, data)
        if response.status_code not in allowed:
            wrong.append((method, path, data, response.status_code))
    assert not wrong, wrong
    for c in contexts:
        after = fingerprint(world.db, c)
        changed = {t for t in after if after[t] != before[c][t]}
        assert not changed, (c, changed)


# --- requests that name the victim course's ids ---------------------------------------------


def teacher_id_requests(
    v: Course, victim_student: int, x: Course
) -> list[tuple[str, str, dict[str, Any]]]:
    """Teacher pages and forms naming course V's ids (victim_student is only in V)."""
    p, st, o, g, c, e = v.pathway, v.step, v.option, v.group, v.competency, v.evidence
    s = victim_student
    return [
        ("GET", f"/pathways/manage/{p}", {}),
        ("GET", f"/pathways/manage/steps/{st}", {}),
        ("GET", f"/pathways/manage/steps/{st}/options/new", {}),
        ("GET", f"/pathways/manage/options/{o}", {}),
        ("GET", "/insights/cell", {"cell": f"{s}-{c}"}),
        ("GET", "/insights/cell", {"cell": f"{s}-{x.competency}"}),
        ("GET", f"/insights/students/{s}/competencies/{c}", {}),
        ("GET", f"/insights/students/{s}/competencies/{x.competency}", {}),
        ("GET", f"/insights/groups/{g}", {}),
        ("GET", "/insights/groups/propose", {"competency": str(c)}),
        ("GET", "/insights/groups/propose", {"step": str(st)}),
        ("GET", f"/insights/students/{s}/progress", {}),
        ("GET", f"/reports/students/{s}", {}),
        ("GET", f"/reports/students/{s}/report.pdf", {}),
        ("GET", f"/profile/students/{s}", {}),
        ("GET", f"/course/students/{s}", {}),
        ("GET", f"/mastery/evidence/{e}", {}),
        ("GET", f"/competencies/{c}/edit", {}),
        ("POST", f"/pathways/manage/{p}", {"title": "HACKED", "description": "x"}),
        ("POST", f"/pathways/manage/{p}/steps", {"title": "HACKED"}),
        ("POST", f"/pathways/manage/steps/{st}", {"title": "HACKED"}),
        ("POST", f"/pathways/manage/steps/{st}/unlock", {"student_ids": str(s)}),
        (
            "POST",
            f"/pathways/manage/steps/{st}/options/new",
            {"title": "HACKED", "modality": "online", "challenge": "2"},
        ),
        (
            "POST",
            f"/pathways/manage/options/{o}",
            {"title": "HACKED", "modality": "online", "challenge": "2"},
        ),
        ("POST", f"/pathways/manage/pathway/{p}/archive", {}),
        ("POST", f"/pathways/manage/pathway/{p}/down", {}),
        ("POST", f"/pathways/manage/step/{st}/archive", {}),
        ("POST", f"/pathways/manage/step/{st}/up", {}),
        ("POST", f"/pathways/manage/option/{o}/archive", {}),
        ("POST", f"/pathways/manage/option/{o}/restore", {}),
        # the attacker's own items, pointing at V's competency, students or group
        ("POST", "/pathways/manage", {"title": "Mine", "competency_ids": str(c)}),
        ("POST", f"/pathways/manage/{x.pathway}", {"title": "Mine", "competency_ids": str(c)}),
        ("POST", f"/pathways/manage/{x.pathway}/steps", {"title": "Mine", "competency_id": str(c)}),
        (
            "POST",
            f"/pathways/manage/steps/{x.step}",
            {"title": "Mine", "prerequisite_ids": str(c)},
        ),
        ("POST", f"/pathways/manage/steps/{x.step}/unlock", {"student_ids": str(s)}),
        ("POST", f"/pathways/manage/steps/{x.step}/unlock", {"group_id": str(g)}),
        ("POST", f"/insights/groups/{g}", {"name": "HACKED", "member": str(s)}),
        ("POST", f"/insights/groups/{x.group}", {"name": "Mine", "member": str(s)}),
        ("POST", f"/insights/groups/{g}/archive", {}),
        ("POST", f"/insights/groups/{g}/archive", {"restore": "1"}),
        (
            "POST",
            "/insights/groups/propose",
            {"competency": str(c), "keep-0": "1", "name-0": "H", "assign-" + str(s): "0"},
        ),
        ("POST", "/insights/groups/propose", {"step": str(st), "keep-0": "1"}),
        (
            "POST",
            "/insights/groups/propose",
            {"competency": str(x.competency), "keep-0": "1", "name-0": "H", f"assign-{s}": "0"},
        ),
        (
            "POST",
            "/mastery/evidence/bulk",
            {"student": str(s), "competency_id": str(x.competency), "points": "3"},
        ),
        (
            "POST",
            "/mastery/evidence/bulk",
            {"group_id": str(g), "competency_id": str(x.competency), "points": "3"},
        ),
        ("POST", "/mastery/evidence/bulk", {"all": "on", "competency_id": str(c), "points": "3"}),
        (
            "POST",
            f"/mastery/students/{s}/evidence",
            {"competency_id": str(x.competency), "points": "3"},
        ),
        ("POST", f"/mastery/evidence/{e}/correct", {"points": "4", "note": "x"}),
        ("POST", f"/mastery/evidence/{e}/withdraw", {}),
        ("POST", f"/profile/students/{s}", {"teacher_notes": "HACKED"}),
        ("POST", f"/profile/students/{s}/goals", {"text": "HACKED"}),
        ("POST", f"/course/students/{s}/goals", {"text": "x", "goal_id": str(v.goals["user-s03"])}),
        ("POST", "/course/pending", {"action": "approve", "choice": str(v.choices["user-s03"])}),
        (
            "POST",
            "/course/pending",
            {"action": "done", "choice": str(v.choices["user-s03"]), "level": "3"},
        ),
        ("POST", f"/competencies/{c}/archive", {}),
        ("POST", "/competencies/copy", {"source_context_id": str(v.context), "pathways": "on"}),
    ]


def student_id_requests(
    v: Course, own_sub: str, victim_sub: str
) -> list[tuple[str, str, dict[str, Any]]]:
    """Student forms and pages naming course V's rows (another student's, or the attacker's own
    rows of V used from a launch in another course)."""
    reqs: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/pathways/{v.pathway}", {}),
        ("POST", f"/pathways/options/{v.option}/choose", {}),
        ("GET", f"/reports/students/{v.students[victim_sub]}", {}),
        ("GET", f"/reports/students/{v.students[victim_sub]}/report.pdf", {}),
        ("GET", f"/insights/students/{v.students[victim_sub]}/progress", {}),
        (
            "POST",
            "/progress/self-assessment",
            {"competency_id": str(v.competency), "level_id": str(v.levels[0])},
        ),
    ]
    for sub in (own_sub, victim_sub):
        if sub not in v.choices:
            continue
        for action in ("withdraw", "start", "submit"):
            reqs.append(("POST", f"/pathways/choices/{v.choices[sub]}/{action}", {"note": "x"}))
        reqs.append(("POST", f"/profile/goals/{v.goals[sub]}", {"text": "HACKED", "status": "met"}))
    return reqs


TEACHER_PAGES = [
    ("GET", "/course/", {}),
    ("GET", "/competencies/", {}),
    ("GET", "/competencies/export.csv", {}),
    ("GET", "/competencies/import", {}),
    ("GET", "/competencies/copy", {}),
    ("GET", "/mastery/evidence/bulk", {}),
    ("GET", "/mastery/scale", {}),
    ("GET", "/pathways/manage", {}),
    ("GET", "/insights/", {}),
    ("GET", "/insights/dashboard.csv", {}),
    ("GET", "/insights/evidence.csv", {}),
    ("GET", "/insights/attention", {}),
    ("GET", "/insights/groups", {}),
    ("GET", "/insights/progress", {}),
    ("GET", "/reports/class.zip", {}),
    ("GET", "/roster/", {}),
    ("GET", "/grades/", {}),
    ("GET", "/grades/sync", {}),
    ("POST", "/roster/refresh", {}),
    ("POST", "/grades/columns", {"competency": "1"}),
    ("POST", "/grades/display", {"display": "percent"}),
    ("POST", "/grades/retry", {}),
    ("POST", "/mastery/scale", {"method": "highest"}),
    ("POST", "/competencies/", {"code": "HACK", "title": "x"}),
    ("POST", "/competencies/import", {"format": "csv", "text": "code,title\nHACK,x\n"}),
    ("POST", "/pathways/manage", {"title": "HACKED"}),
    ("POST", "/course/pending", {"action": "approve", "choice": "1"}),
]


# --- 1. another course's teacher ------------------------------------------------------------


def test_other_courses_teacher_is_refused_every_id_and_nothing_changes(
    world: World, actions: LtiActions
) -> None:
    attacker = launch(actions, world.tool, "user-t02", X_COURSE)
    for path in ("/grades/", "/grades/sync", "/mastery/scale", "/insights/", "/pathways/manage"):
        assert attacker.get(path).status_code == 200, path  # warm up X's lazily made rows
    victim_only = world.v.students["user-s03"]
    assert_refused_and_unchanged(
        world,
        attacker,
        teacher_id_requests(world.v, victim_only, world.x),
        REFUSED,
        [world.v.context, world.x.context],
    )


def test_gradebook_forms_ignore_another_courses_ids(world: World, actions: LtiActions) -> None:
    attacker = launch(actions, world.tool, "user-t02", X_COURSE)
    attacker.get("/grades/")
    with world.db.begin() as s:
        outbox = [
            r[0]
            for r in s.execute(
                text("SELECT id FROM score_outbox WHERE context_id = :c"), {"c": world.v.context}
            )
        ]
    before = fingerprint(world.db, world.v.context)
    r = attacker.post("/grades/columns", {"competency": str(world.v.competency)})
    assert r.status_code == 303
    r = attacker.post("/grades/retry", {"id": [str(i) for i in outbox] or ["1"]})
    assert r.status_code == 303
    r = attacker.client.get(attacker.base + r.headers["location"])
    assert "0 result(s)" in r.text
    assert fingerprint(world.db, world.v.context) == before
    with world.db.begin() as s:
        leaked = s.execute(
            text("SELECT count(*) FROM line_item WHERE competency_id = :c AND context_id <> :v"),
            {"c": world.v.competency, "v": world.v.context},
        ).scalar_one()
    assert leaked == 0


# --- 2. another platform, same LMS ids --------------------------------------------------------


def test_other_platforms_teacher_with_same_ids_is_refused(
    world: World, actions: LtiActions, other_lms: RunningPlatform
) -> None:
    attacker = launch_on(other_lms, actions, world.tool, "user-t01", context_id=V_COURSE)
    assert attacker.get("/course/").status_code == 200
    # The same LMS user and course ids are another course here: none of V's rows shows up.
    assert "V pathway" not in attacker.get("/pathways/manage").text
    assert "V-" not in attacker.get("/insights/evidence.csv").text
    assert_refused_and_unchanged(
        world,
        attacker,
        teacher_id_requests(world.v, world.v.students["user-s03"], world.x),
        REFUSED,
        [world.v.context, world.x.context],
    )


def test_other_platforms_student_with_same_sub_reads_nothing(
    world: World, actions: LtiActions, other_lms: RunningPlatform
) -> None:
    attacker = launch_on(other_lms, actions, world.tool, "user-s03", context_id=V_COURSE)
    assert "V-REFLECTION" not in attacker.get("/reports/reflection").text
    assert_refused_and_unchanged(
        world,
        attacker,
        student_id_requests(world.v, "user-s03", "user-s04"),
        REFUSED,
        [world.v.context],
    )


# --- 3. students ------------------------------------------------------------------------------


def test_student_cannot_reach_classmates_rows(world: World, actions: LtiActions) -> None:
    attacker = launch(actions, world.tool, "user-s04", V_COURSE)
    own = world.v.students["user-s04"]
    assert attacker.get(f"/reports/students/{own}").status_code == 200
    requests = student_id_requests(world.v, "none", "user-s03")
    # the pathway and option are the student's own course's: those may succeed; the rest not
    requests = [
        r
        for r in requests
        if "/pathways/options/" not in r[1] and r[1] != f"/pathways/{world.v.pathway}"
    ]
    requests = [r for r in requests if r[1] != "/progress/self-assessment"]
    assert_refused_and_unchanged(world, attacker, requests, DENIED, [world.v.context])


def test_student_launched_in_another_course_cannot_use_own_rows_of_this_course(
    world: World, actions: LtiActions
) -> None:
    # user-s01 studies in both courses; their Chemistry launch must not act on Biology rows.
    attacker = launch(actions, world.tool, "user-s01", X_COURSE)
    assert_refused_and_unchanged(
        world,
        attacker,
        student_id_requests(world.v, "user-s01", "user-s03"),
        REFUSED,
        [world.v.context, world.x.context],
    )
    # Their own Chemistry reflection is all they read.
    page = attacker.get("/reports/reflection").text
    assert "X-REFLECTION-user-s01" in page
    assert "V-REFLECTION" not in page


def test_student_own_report_hides_teacher_only_data(world: World, actions: LtiActions) -> None:
    student = launch(actions, world.tool, "user-s03", V_COURSE)
    pid = world.v.students["user-s03"]
    for path in (
        f"/reports/students/{pid}",
        "/profile/",
        "/progress/",
        f"/insights/students/{pid}/progress",
    ):
        page = student.get(path)
        assert page.status_code == 200, path
        assert "TEACHER-NOTE" not in page.text, path
        assert "PRIVATE-CHECKIN" not in page.text, path
        assert "user-s04" not in page.text, path
        assert "V group" not in page.text, path


def test_student_is_refused_every_teacher_page_and_form(world: World, actions: LtiActions) -> None:
    attacker = launch(actions, world.tool, "user-s03", V_COURSE)
    requests = [
        *teacher_id_requests(world.v, world.v.students["user-s04"], world.v),
        *TEACHER_PAGES,
    ]
    # the student's own progress page is theirs to read
    requests = [
        r for r in requests if not r[1].endswith("/progress") or r[1] == "/insights/progress"
    ]
    requests = [r for r in requests if not r[1].startswith("/reports/students/")]
    assert_refused_and_unchanged(world, attacker, requests, {403}, [world.v.context])
    assert attacker.get("/admin/").status_code == 403


@pytest.mark.parametrize(
    ("user", "roles"),
    [
        # user-a01 is enrolled nowhere, so these launches change no seeded membership
        ("user-a01", [M + "Mentor"]),  # an observer / parent
        ("user-a01", []),  # no role at all
        ("user-a01", [INST_ADMIN]),  # an LMS admin with no role in this course
    ],
)
def test_guests_observers_and_lms_admins_reach_no_course_data(
    world: World, actions: LtiActions, user: str, roles: list[str]
) -> None:
    launched = actions.launch(user, context_id=V_COURSE, roles=roles)
    assert launched.response.status_code == 200, launched.text[:500]
    with world.db.begin() as s:
        person = s.scalars(
            select(Person.id)
            .join(Platform, Platform.id == Person.platform_id)
            .where(registration_of(world.lms), Person.sub == user)
        ).one()
    attacker = frame_by_session(actions, world.tool, world.db, person)
    assert attacker.get("/home").status_code == 200
    requests = [
        *teacher_id_requests(world.v, world.v.students["user-s03"], world.v),
        *TEACHER_PAGES,
        *student_id_requests(world.v, "user-s03", "user-s04"),
        ("GET", "/pathways/", {}),
        ("GET", "/progress/", {}),
        ("GET", "/profile/", {}),
        ("GET", "/reports/reflection", {}),
        ("POST", "/reports/reflection", {"reflection": "x"}),
        ("POST", "/profile/", {"interests": "x"}),
        ("POST", "/profile/goals", {"text": "x"}),
        ("GET", "/insights/scale.css", {}),
        ("GET", f"/insights/students/{person}/progress", {}),
        ("GET", f"/reports/students/{person}", {}),
    ]
    if M + "Mentor" not in roles:
        requests.append(("GET", "/reports/", {}))
    assert_refused_and_unchanged(world, attacker, requests, DENIED, [world.v.context])
    if M + "Mentor" in roles:
        # A parent's reports page, where the LMS named none of their children: no student.
        page = attacker.get("/reports/")
        assert page.status_code == 200
        assert "/reports/students/" not in page.text
        for sub in ("user-s01", "user-s03", "user-s04"):
            assert f"V goal of {sub}" not in page.text


def test_lms_admin_console_shows_only_its_own_platform(
    world: World, actions: LtiActions, other_lms: RunningPlatform
) -> None:
    with world.db.begin() as s:
        main = s.scalars(select(Platform).where(registration_of(world.lms))).first()
        assert main is not None
        main_id = main.id
        main_deployment = s.scalars(
            select(Deployment.id).where(Deployment.platform_id == main_id)
        ).first()
        status_before = s.get(Deployment, main_deployment).status  # type: ignore[union-attr]
    admin = launch_on(other_lms, actions, world.tool, "user-a01", context_id=None)
    page = admin.get("/admin/")
    assert page.status_code == 200
    assert other_lms.platform.config.issuer in page.text
    assert world.lms.platform.config.issuer not in page.text
    assert world.lms.platform.config.issuer not in admin.get("/admin/", platform=main_id).text
    assert admin.post(f"/admin/deployments/{main_deployment}/disable").status_code == 404
    assert admin.post("/admin/keys/rotate").status_code == 403
    with world.db.begin() as s:
        assert s.get(Deployment, main_deployment).status == status_before  # type: ignore[union-attr]
    # A course teacher's launch is not an admin's.
    teacher = launch(actions, world.tool, "user-t01", V_COURSE)
    assert teacher.get("/admin/").status_code == 403
    assert teacher.post(f"/admin/deployments/{main_deployment}/disable").status_code == 403


# --- 4. launch tokens -------------------------------------------------------------------------


def _forged(world: World, launch_id: str, age_seconds: int) -> str:
    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_seconds

    ser = URLSafeTimedSerializer(
        world.tool.settings.secret_key, salt="pathways-launch", signer=PastSigner
    )
    return str(ser.dumps(launch_id))


def test_launch_token_missing_tampered_forged_or_expired_is_refused(
    world: World, actions: LtiActions
) -> None:
    teacher = launch(actions, world.tool, "user-t01", V_COURSE)
    assert teacher.get("/course/").status_code == 200
    ttl = world.tool.settings.launch_token_ttl
    bad_tokens = {
        "missing": "",
        "tampered": teacher.token[:-2] + ("AA" if not teacher.token.endswith("AA") else "BB"),
        "other key": URLSafeTimedSerializer("another-secret", salt="pathways-launch").dumps(
            teacher.launch_id
        ),
        "other salt": URLSafeTimedSerializer(world.tool.settings.secret_key, salt="other").dumps(
            teacher.launch_id
        ),
        "expired": _forged(world, teacher.launch_id, ttl + 60),
        "unknown session": _forged(world, "no-such-launch-session", 0),
    }
    assert (
        teacher.client.get(
            world.tool.url + "/course/", params={"lt": _forged(world, teacher.launch_id, 5)}
        ).status_code
        == 200
    )
    before = fingerprint(world.db, world.v.context)
    for name, token in bad_tokens.items():
        for method, path, data in [
            ("GET", "/course/", {}),
            ("GET", f"/course/students/{world.v.students['user-s03']}", {}),
            ("GET", "/insights/evidence.csv", {}),
            ("POST", "/competencies/", {"code": unique("T"), "title": "x"}),
            ("POST", f"/mastery/evidence/{world.v.evidence}/withdraw", {}),
        ]:
            params = {"lt": token} if token else {}
            if method == "GET":
                r = teacher.client.get(world.tool.url + path, params={**params, **data})
            else:
                r = teacher.client.post(
                    world.tool.url + path, data={**params, "csrf_token": teacher.csrf, **data}
                )
            assert r.status_code in {400, 401}, (name, path, r.status_code)
            assert "V pathway" not in r.text
        r = teacher.client.get(
            world.tool.url + "/course/", headers={"X-Launch-Token": token or "x"}
        )
        assert r.status_code == 401, name
    assert fingerprint(world.db, world.v.context) == before


def test_expired_launch_session_is_refused_even_with_a_fresh_token(
    world: World, actions: LtiActions
) -> None:
    teacher = launch(actions, world.tool, "user-t02", X_COURSE)
    with world.db.begin() as s:
        row = s.get(LaunchSession, teacher.launch_id)
        assert row is not None
        row.expires_at = datetime(2000, 1, 1, tzinfo=UTC)
    assert teacher.get("/course/").status_code == 401


def test_a_courses_token_never_reaches_another_course(world: World, actions: LtiActions) -> None:
    # Nothing in a URL or form names the course: extra course parameters are ignored.
    teacher = launch(actions, world.tool, "user-t02", X_COURSE)
    for params in (
        {"context_id": V_COURSE},
        {"context": str(world.v.context)},
        {"course": str(world.v.context)},
    ):
        page = teacher.get("/pathways/manage", **params).text
        assert "X pathway" in page
        assert "V pathway" not in page
        csv_text = teacher.get("/insights/evidence.csv", **params).text
        assert "V evidence" not in csv_text


def test_deep_linking_launch_token_grants_nothing_more(world: World, actions: LtiActions) -> None:
    dl = launch(actions, world.tool, "user-t02", X_COURSE, message_type=MessageType.DEEP_LINKING)
    # Same person, same course, same role: the teacher's pages of X, and nothing of V.
    assert_refused_and_unchanged(
        world,
        dl,
        teacher_id_requests(world.v, world.v.students["user-s03"], world.x),
        REFUSED,
        [world.v.context],
    )
    # A student's deep-linking launch is refused outright, and a normal launch cannot sign
    # a deep-linking response.
    refused = actions.launch("user-s01", context_id=X_COURSE, message_type=MessageType.DEEP_LINKING)
    assert refused.response.status_code == 403
    normal = launch(actions, world.tool, "user-t02", X_COURSE)
    assert normal.post("/lti/deep-link", {"item": "home"}).status_code == 403


# --- 5. CSRF ----------------------------------------------------------------------------------


def _teacher_posts(x: Course) -> list[tuple[str, dict[str, Any]]]:
    s = x.students["user-s02"]
    return [
        ("/pathways/manage", {"title": "CSRF"}),
        (f"/pathways/manage/{x.pathway}", {"title": "CSRF"}),
        (f"/pathways/manage/{x.pathway}/steps", {"title": "CSRF"}),
        (f"/pathways/manage/steps/{x.step}", {"title": "CSRF"}),
        (f"/pathways/manage/steps/{x.step}/unlock", {"student_ids": str(s)}),
        (
            f"/pathways/manage/steps/{x.step}/options/new",
            {"title": "CSRF", "modality": "online", "challenge": "2"},
        ),
        (
            f"/pathways/manage/options/{x.option}",
            {"title": "CSRF", "modality": "online", "challenge": "2"},
        ),
        (f"/pathways/manage/pathway/{x.pathway}/archive", {}),
        (f"/pathways/manage/step/{x.step}/archive", {}),
        (f"/pathways/manage/option/{x.option}/archive", {}),
        (f"/insights/groups/{x.group}", {"name": "CSRF", "member": str(s)}),
        (f"/insights/groups/{x.group}/archive", {}),
        (
            "/insights/groups/propose",
            {"competency": str(x.competency), "keep-0": "1", f"assign-{s}": "0"},
        ),
        (f"/profile/students/{s}", {"teacher_notes": "CSRF"}),
        (f"/profile/students/{s}/goals", {"text": "CSRF"}),
        ("/course/pending", {"action": "approve", "choice": str(x.choices["user-s02"])}),
        (f"/course/students/{s}/profile", {"teacher_notes": "CSRF"}),
        (f"/course/students/{s}/goals", {"text": "CSRF"}),
        (f"/course/students/{s}/check-ins", {"note": "CSRF"}),
        (f"/mastery/students/{s}/evidence", {"competency_id": str(x.competency), "points": "3"}),
        (
            "/mastery/evidence/bulk",
            {"student": str(s), "competency_id": str(x.competency), "points": "3"},
        ),
        (f"/mastery/evidence/{x.evidence}/correct", {"points": "4"}),
        (f"/mastery/evidence/{x.evidence}/withdraw", {}),
        ("/mastery/scale", {"method": "highest"}),
        ("/competencies/", {"code": "CSRF", "title": "x"}),
        (f"/competencies/{x.competency}/edit", {"code": "CSRF", "title": "x"}),
        (f"/competencies/{x.competency}/move", {"direction": "down"}),
        (f"/competencies/{x.competency}/archive", {}),
        (f"/competencies/{x.competency}/unarchive", {}),
        ("/competencies/import", {"format": "csv", "text": "code,title\nCSRF,x\n"}),
        ("/competencies/copy", {"source_context_id": "1"}),
        ("/grades/columns", {"competency": str(x.competency)}),
        ("/grades/display", {"display": "percent"}),
        ("/grades/retry", {}),
        ("/roster/refresh", {}),
        ("/lti/deep-link", {"item": "home"}),
    ]


def _student_posts(x: Course, sub: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"/pathways/options/{x.option}/choose", {}),
        (f"/pathways/choices/{x.choices[sub]}/withdraw", {}),
        (f"/pathways/choices/{x.choices[sub]}/start", {}),
        (f"/pathways/choices/{x.choices[sub]}/submit", {"note": "CSRF"}),
        (
            "/progress/self-assessment",
            {"competency_id": str(x.competency), "level_id": str(x.levels[-1])},
        ),
        ("/profile/", {"interests": "CSRF"}),
        ("/profile/goals", {"text": "CSRF"}),
        (f"/profile/goals/{x.goals[sub]}", {"text": "CSRF", "status": "met"}),
        ("/reports/reflection", {"reflection": "CSRF"}),
    ]


def test_every_form_needs_its_own_launchs_csrf_token(world: World, actions: LtiActions) -> None:
    teacher = launch(actions, world.tool, "user-t02", X_COURSE)
    student = launch(actions, world.tool, "user-s01", X_COURSE)
    other = launch(actions, world.tool, "user-t01", V_COURSE)  # a valid token of another launch
    before = fingerprint(world.db, world.x.context)
    wrong = []
    for frame, posts in (
        (teacher, _teacher_posts(world.x)),
        (student, _student_posts(world.x, "user-s01")),
    ):
        for path, data in posts:
            for csrf in ("", other.csrf, "forged"):
                r = (
                    frame.post(path, data, csrf=csrf)
                    if csrf
                    else frame.client.post(world.tool.url + path, data={"lt": frame.token, **data})
                )
                if r.status_code != 400:
                    wrong.append((path, csrf[:6], r.status_code))
    assert not wrong, wrong
    after = fingerprint(world.db, world.x.context)
    assert {t for t in after if after[t] != before[t]} == set()
    # The student's own launch token in a header, with another launch's CSRF: still refused.
    r = student.client.post(
        world.tool.url + "/reports/reflection",
        data={"reflection": "CSRF", "csrf_token": teacher.csrf},
        headers={"X-Launch-Token": student.token},
    )
    assert r.status_code == 400


def test_operator_forms_need_csrf_too(world: World, actions: LtiActions) -> None:
    # Without a launch token the admin forms fall back to the operator cookie, which needs CSRF.
    client = actions.browser()
    for path in ("/admin/keys/rotate", "/admin/deployments/1/disable", "/admin/logout"):
        r = client.post(world.tool.url + path, data={})
        assert r.status_code in {400, 401, 403}, path


# --- 6. escaping ------------------------------------------------------------------------------

PAYLOAD = (
    '<script>alert("x")</script><img src=x onerror="alert(1)">'
    '<a href="javascript:alert(2)">l</a><strong>ok</strong>'
)


def test_teacher_and_lms_text_is_escaped_or_sanitized(world: World, actions: LtiActions) -> None:
    teacher = launch(actions, world.tool, "user-t02", X_COURSE)
    title = '<i id="xss-title">T</i>'
    r = teacher.post(
        "/pathways/manage",
        {"title": title, "description": PAYLOAD, "competency_ids": str(world.x.competency)},
    )
    assert r.status_code in {302, 303}, r.text[:500]
    manage = teacher.get("/pathways/manage").text
    assert title not in manage
    assert "&lt;i id=" in manage
    pathway_id = int(r.headers["location"].split("/pathways/manage/")[1].split("?")[0])
    r = teacher.post(
        f"/pathways/manage/{pathway_id}/steps", {"title": title, "description": PAYLOAD}
    )
    assert r.status_code in {302, 303}
    step_id = int(r.headers["location"].split("/steps/")[1].split("?")[0])
    r = teacher.post(
        f"/pathways/manage/steps/{step_id}/options/new",
        {
            "title": title,
            "description": PAYLOAD,
            "modality": "online",
            "challenge": "2",
            "links": "Click | javascript:alert(3)",
        },
    )
    assert r.status_code == 400  # a javascript: link is refused
    r = teacher.post(
        f"/pathways/manage/steps/{step_id}/options/new",
        {"title": title, "description": PAYLOAD, "modality": "online", "challenge": "2"},
    )
    assert r.status_code in {302, 303}, r.text[:500]
    student = launch(actions, world.tool, "user-s02", X_COURSE)
    for page in (
        student.get(f"/pathways/{pathway_id}").text,
        student.get("/pathways/").text,
        teacher.get(f"/pathways/manage/{pathway_id}").text,
        teacher.get(f"/pathways/manage/steps/{step_id}").text,
    ):
        low = page.lower()
        assert "<script>alert" not in low
        assert "onerror" not in low
        assert "javascript:" not in low
        assert title not in page
    assert (
        "<strong>ok</strong>" in student.get(f"/pathways/{pathway_id}").text
    )  # allowed formatting stays
    # Student-written text on the teacher's pages.
    r = student.post("/profile/goals", {"text": PAYLOAD})
    assert r.status_code in {302, 303}
    r = student.post("/reports/reflection", {"reflection": PAYLOAD})
    assert r.status_code in {302, 303}
    pid = world.x.students["user-s02"]
    choice = world.x.choices["user-s02"]
    student.post(f"/pathways/choices/{choice}/start")
    bad = student.post(
        f"/pathways/choices/{choice}/submit", {"note": PAYLOAD, "url": "javascript:alert(1)"}
    )
    assert bad.status_code == 400
    for page in (
        teacher.get(f"/course/students/{pid}").text,
        teacher.get(f"/profile/students/{pid}").text,
        teacher.get(f"/reports/students/{pid}").text,
        teacher.get("/course/").text,
    ):
        assert "<script>alert" not in page
        assert "onerror=" not in page.replace("onerror=&#34;", "")


def test_lms_names_are_escaped_on_every_list(world: World, actions: LtiActions) -> None:
    teacher = launch(actions, world.tool, "user-t01", V_COURSE)
    with world.db.begin() as s:
        bobby = s.scalars(
            select(Person.id)
            .join(Platform, Platform.id == Person.platform_id)
            .where(registration_of(world.lms), Person.sub == "user-s10")
        ).one()
    for path in (
        "/course/",
        "/roster/",
        "/insights/",
        "/insights/attention",
        "/reports/",
        "/mastery/evidence/bulk",
        f"/pathways/manage/steps/{world.v.step}",
        f"/course/students/{bobby}",
        f"/insights/students/{bobby}/progress",
        f"/reports/students/{bobby}",
        f"/profile/students/{bobby}",
    ):
        page = teacher.get(path)
        assert page.status_code == 200, path
        assert "<b>Tables</b>" not in page.text, path


# --- 7. exports -------------------------------------------------------------------------------

FORMULAS = ('=HYPERLINK("http://evil.test","x")', "+SUM(1,2)", "-2+3", "@SUM(1,2)")


def _cells(csv_text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(csv_text)) for cell in row]


@pytest.fixture(scope="module")
def formula_course(
    other_lms: RunningPlatform, tool_server: ToolServer, db: Database
) -> Iterator[tuple[int, LtiActions]]:
    """A course on the second LMS with students whose names (and a teacher's note and
    competency) start with formula characters."""
    acts = LtiActions(other_lms, tool_server)
    assert acts.launch("user-t01", context_id=V_COURSE).response.status_code == 200
    with db.begin() as s:
        platform_id = s.scalars(select(Platform.id).where(registration_of(other_lms))).one()
        cid = s.scalars(
            select(Context.id).where(
                Context.platform_id == platform_id, Context.context_id == V_COURSE
            )
        ).one()
        teacher = s.scalars(
            select(Person.id).where(Person.platform_id == platform_id, Person.sub == "user-t01")
        ).one()
        comp = create_competency(s, context_id=cid, code=FORMULAS[0], title=FORMULAS[1]).id
        people = []
        for n, name in enumerate(FORMULAS):
            person = Person(
                platform_id=platform_id, sub=f"formula-{n}", name=name, family_name=name
            )
            s.add(person)
            s.flush()
            s.add(
                Membership(
                    context_id=cid,
                    person_id=person.id,
                    roles=[M + "Learner"],
                    status=MembershipStatus.ACTIVE,
                    is_learner=True,
                )
            )
            people.append(person.id)
        s.flush()
        record_evidence(
            s,
            context_id=cid,
            competency_id=comp,
            student_ids=people,
            points=Decimal(3),
            source=EvidenceSource.TEACHER,
            note=FORMULAS[3],
            recorded_by_id=teacher,
        )
    yield cid, acts
    acts.close()


def _formula_cells(cells: list[str]) -> list[str]:
    return [c for c in cells if c[:1] in {"=", "+", "-", "@", "\t", "\r"}]


def test_dashboard_and_evidence_csv_neutralise_formulas(
    world: World, other_lms: RunningPlatform, formula_course: tuple[int, LtiActions]
) -> None:
    _, acts = formula_course
    teacher = launch_on(other_lms, acts, world.tool, "user-t01", context_id=V_COURSE)
    for path, params in (
        ("/insights/dashboard.csv", {"status": "all"}),
        ("/insights/evidence.csv", {}),
    ):
        r = teacher.get(path, **params)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        cells = _cells(r.text)
        assert any("HYPERLINK" in c for c in cells), path  # the rows are there ...
        assert _formula_cells(cells) == [], path  # ... but none is a formula


def test_competency_export_neutralises_formulas(
    world: World, other_lms: RunningPlatform, formula_course: tuple[int, LtiActions]
) -> None:
    _, acts = formula_course
    teacher = launch_on(other_lms, acts, world.tool, "user-t01", context_id=V_COURSE)
    r = teacher.get("/competencies/export.csv")
    assert r.status_code == 200
    cells = _cells(r.text)
    assert any("HYPERLINK" in c for c in cells)
    assert _formula_cells(cells) == []


def test_pages_and_exports_do_not_leak_the_launch_token(world: World, actions: LtiActions) -> None:
    # The token rides in URLs: an external link must get no more than our origin as Referer,
    # and downloads must not be kept by shared caches.
    teacher = launch(actions, world.tool, "user-t02", X_COURSE)
    page = teacher.get("/course/")
    assert page.headers.get("referrer-policy") in {
        "strict-origin-when-cross-origin",
        "strict-origin",
        "no-referrer",
        "same-origin",
    }
    for path in ("/insights/dashboard.csv", "/insights/evidence.csv", "/reports/class.zip"):
        r = teacher.get(path)
        assert "no-store" in r.headers.get("cache-control", "") or "private" in r.headers.get(
            "cache-control", ""
        ), path


def test_class_zip_and_pdfs_hold_only_this_courses_students(
    world: World, actions: LtiActions
) -> None:
    teacher = launch(actions, world.tool, "user-t02", X_COURSE)
    r = teacher.get("/reports/class.zip")
    assert r.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    ids = {int(n.split("-")[-2]) for n in names}
    assert ids == set(world.x.students.values())
    assert "private" in r.headers.get("cache-control", "")
    pdf = teacher.get(f"/reports/students/{world.x.students['user-s01']}/report.pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")


# --- revocation -------------------------------------------------------------------------------


def test_disabling_a_deployment_ends_its_open_sessions(
    world: World, tool_server: ToolServer, database_url: str, db: Database
) -> None:
    with second_lms(tool_server, database_url) as running:
        acts = LtiActions(running, tool_server)
        try:
            teacher = launch_on(running, acts, tool_server, "user-t01", context_id=V_COURSE)
            assert teacher.get("/course/").status_code == 200
            with db.begin() as s:
                row = s.get(LaunchSession, teacher.launch_id)
                assert row is not None
                deployment = s.get(Deployment, row.deployment_id)
                assert deployment is not None
                deployment.status = DeploymentStatus.DISABLED
            assert teacher.get("/course/").status_code in {401, 403}
        finally:
            acts.close()
