"""Every teacher page and form refuses students, other courses' teachers and other LMSs."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from lti_app.competencies.models import Competency
from lti_app.db import Database
from lti_app.demo.browser import follow_launch
from lti_app.demo.server import RunningPlatform
from lti_app.learners.goals_and_check_ins import add_goal
from lti_app.mastery.models import Evidence, EvidenceSource
from lti_app.mastery.services import record_evidence
from lti_app.pathways.choices import choose_option
from lti_app.pathways.models import Choice, ChoiceStatus
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.services import create_pathway, create_step
from tests.conftest import Launched, LtiActions, ToolServer
from tests.courses.frames import Frame, Ids, frame, make_competency, unique


@dataclass(frozen=True)
class Biology:
    student: int
    competency: int
    evidence: int
    choice: int
    goal: int
    context: int


@pytest.fixture
def biology(db: Database, ids: Ids, bio_students: tuple[str, ...], teacher: Frame) -> Biology:
    """Biology 9 rows of user-s03 (who is not in Chemistry Club)."""
    cid, student, teacher_id = ids.context(), ids.person("user-s03"), ids.person("user-t01")
    with db.begin() as s:
        competency = make_competency(s, cid, unique("ACC"))
        record_evidence(
            s,
            context_id=cid,
            competency_id=competency,
            student_ids=[student],
            points=Decimal(2),
            source=EvidenceSource.TEACHER,
            note="",
            recorded_by_id=teacher_id,
        )
        evidence = s.scalars(select(Evidence.id).where(Evidence.competency_id == competency)).one()
        pathway = create_pathway(s, context_id=cid, title="Access")
        step = create_step(s, context_id=cid, pathway_id=pathway.id, title="Step")
        option = create_option(
            s, context_id=cid, step_id=step.id, data=OptionInput("Opt", requires_approval=True)
        )
        choice = choose_option(s, context_id=cid, person_id=student, option_id=option.id).id
        goal = add_goal(
            s,
            context_id=cid,
            person_id=student,
            text="Goal",
            created_by_id=teacher_id,
            editor_is_teacher=True,
        ).id
    return Biology(student, competency, evidence, choice, goal, cid)


def id_requests(b: Biology) -> list[tuple[str, str, dict[str, Any]]]:
    """Every page and form that names a Biology 9 id."""
    s, c, e = b.student, b.competency, b.evidence
    return [
        ("GET", f"/course/students/{s}", {}),
        ("GET", f"/competencies/{c}/edit", {}),
        ("GET", f"/mastery/evidence/{e}", {}),
        ("POST", "/course/pending", {"action": "approve", "choice": str(b.choice)}),
        ("POST", "/course/pending", {"action": "done", "choice": str(b.choice), "note": "x"}),
        ("POST", f"/course/students/{s}/profile", {"teacher_notes": "x"}),
        ("POST", f"/course/students/{s}/goals", {"text": "x", "goal_id": str(b.goal)}),
        ("POST", f"/course/students/{s}/check-ins", {"note": "x"}),
        ("POST", f"/mastery/students/{s}/evidence", {"competency_id": str(c), "points": "3"}),
        (
            "POST",
            "/mastery/evidence/bulk",
            {"student": str(s), "competency_id": "1", "points": "3"},
        ),
        ("POST", f"/mastery/evidence/{e}/correct", {"points": "4.00", "note": "x"}),
        ("POST", f"/mastery/evidence/{e}/withdraw", {}),
        ("POST", "/competencies/", {"code": unique("X"), "title": "x", "parent_id": str(c)}),
        ("POST", f"/competencies/{c}/edit", {"code": "HACK", "title": "x"}),
        ("POST", f"/competencies/{c}/move", {"direction": "up"}),
        ("POST", f"/competencies/{c}/archive", {}),
        ("POST", f"/competencies/{c}/unarchive", {}),
        ("POST", "/competencies/copy", {"source_context_id": str(b.context)}),
    ]


PAGES_WITHOUT_IDS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/course/", {}),
    ("GET", "/competencies/", {}),
    ("GET", "/competencies/import", {}),
    ("GET", "/competencies/export.csv", {}),
    ("GET", "/competencies/copy", {}),
    ("GET", "/mastery/evidence/bulk", {}),
    ("GET", "/mastery/scale", {}),
    ("POST", "/competencies/import", {"format": "csv", "text": "code,title\nZ,z\n"}),
    ("POST", "/mastery/scale", {"method": "highest"}),
]


def _send(page: Frame, method: str, path: str, data: dict[str, Any]) -> int:
    if method == "GET":
        return page.get(path).status_code
    return page.post(path, data).status_code


def _unchanged(db: Database, b: Biology) -> None:
    with db.begin() as s:
        competency = s.get(Competency, b.competency)
        evidence = s.get(Evidence, b.evidence)
        choice = s.get(Choice, b.choice)
        assert competency is not None
        assert evidence is not None
        assert choice is not None
        assert (competency.code.startswith("ACC"), competency.archived_at) == (True, None)
        assert (evidence.points, evidence.withdrawn_at) == (Decimal(2), None)
        assert choice.status is ChoiceStatus.CHOSEN


def test_another_courses_teacher_gets_not_found_for_every_id(
    lti: LtiActions, tool_server: ToolServer, db: Database, biology: Biology
) -> None:
    chem = frame(lti.launch("user-t02", context_id="course-chem-club"), tool_server.url)
    for method, path, data in id_requests(biology):
        assert _send(chem, method, path, data) in {403, 404}, (method, path)
    _unchanged(db, biology)


def test_another_platforms_teacher_gets_not_found_for_every_id(
    lti: LtiActions,
    tool_server: ToolServer,
    fresh_lms: RunningPlatform,
    db: Database,
    biology: Biology,
) -> None:
    # The same user and course ids on another LMS are other people and another course.
    spec = fresh_lms.platform.make_launch("user-t01")
    client = lti.browser()
    other = frame(
        Launched(follow_launch(client, fresh_lms.platform.login_url(spec)), client),
        tool_server.url,
    )
    for method, path, data in id_requests(biology):
        assert _send(other, method, path, data) in {403, 404}, (method, path)
    _unchanged(db, biology)


def test_a_students_launch_is_refused_everywhere(
    lti: LtiActions, tool_server: ToolServer, db: Database, biology: Biology
) -> None:
    student = frame(lti.launch("user-s03"), tool_server.url)
    # A valid CSRF token for the student's launch, so the role check is what refuses.
    with tool_server.app.test_request_context(f"/?lt={student.token}"):
        student.csrf = generate_csrf()
    for method, path, data in [*id_requests(biology), *PAGES_WITHOUT_IDS]:
        assert _send(student, method, path, data) == 403, (method, path)
    _unchanged(db, biology)


def test_forms_need_the_csrf_token_and_pages_the_launch_token(
    teacher: Frame, biology: Biology
) -> None:
    teacher.csrf = "forged"
    assert teacher.post(f"/mastery/evidence/{biology.evidence}/withdraw").status_code == 400
    assert teacher.client.get(teacher.base + "/course/").status_code == 401
