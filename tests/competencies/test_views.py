"""The competency editor through real launches: editing, import, export, copy."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from lti_app.competencies.models import Competency
from lti_app.competencies.queries import prerequisite_map
from lti_app.db import Database
from lti_app.demo.browser import follow_launch
from lti_app.demo.launches import COURSE_OFFERING, LaunchTweaks
from lti_app.demo.server import RunningPlatform
from lti_app.pathways.models import Pathway
from lti_app.pathways.services import create_pathway
from tests.competencies.conftest import competencies_by_code
from tests.conftest import Launched, LtiActions, ToolServer
from tests.courses.frames import Frame, Ids, frame, make_competency, second_lms, unique


@pytest.fixture
def fresh_lms(tool_server: ToolServer, database_url: str) -> Iterator[RunningPlatform]:
    with second_lms(tool_server, database_url) as running:
        yield running


def test_csv_import_with_errors_lists_every_line_and_changes_nothing(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    p = unique("BAD")
    text = (
        "code,title,parent_code,prerequisite_codes\n"
        f"{p}.1,Cells,,\n"
        f"{p}.2,,{p}.1,\n"  # line 3: no title
        f"{p}.3,Organs,{p}.9,\n"  # line 4: unknown parent
        f"{p}.1,Again,,\n"  # line 5: duplicate code
    )
    response = teacher.post("/competencies/import", {"format": "csv", "text": text})
    assert response.status_code == 400
    assert "Nothing was imported" in response.text
    for line in ("Line 3", "Line 4", "Line 5"):
        assert line in response.text
    assert "parent_code" in response.text  # the column is named
    assert competencies_by_code(db, ids.context(), p) == {}


def test_csv_import_from_a_file_then_export_round_trips(
    teacher: Frame, db: Database, ids: Ids
) -> None:
    p = unique("RT")
    text = (
        "code,title,description,parent_code,prerequisite_codes,kind\n"
        f"{p}.A,Ecology <basics>,About ecosystems,,,academic\n"
        f"{p}.A1,Food webs,,{p}.A,,academic\n"
        f"{p}.A2,Energy flow,,{p}.A,{p}.A1,academic\n"
        f"{p}.W,Teamwork,,,,non_academic\n"
    )
    response = teacher.post(
        "/competencies/import",
        {"format": "csv"},
        files={"file": ("framework.csv", text.encode(), "text/csv")},
    )
    page = teacher.follow(response).text
    assert "Imported: 4 competencies created or changed." in page
    assert "Ecology &lt;basics&gt;" in page
    imported = competencies_by_code(db, ids.context(), p)
    assert imported[f"{p}.A1"].parent_id == imported[f"{p}.A"].id

    exported = teacher.get("/competencies/export.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    mine = [row for row in csv.reader(io.StringIO(exported.text)) if row[0].startswith(p)]
    original = list(csv.reader(io.StringIO(text)))[1:]
    assert mine == original
    # Importing the exported rows again changes nothing.
    again_text = "code,title,description,parent_code,prerequisite_codes,kind\n" + "".join(
        ",".join(f'"{v}"' for v in row) + "\n" for row in mine
    )
    again = teacher.post("/competencies/import", {"format": "csv", "text": again_text})
    assert "Imported: 0 competencies created or changed." in teacher.follow(again).text


@pytest.mark.parametrize(
    ("label", "plain", "written"),
    [
        ("Matemáticas 2º ESO", "competencies-matematicas-2o-eso.csv", "Matemáticas-2º-ESO"),
        ("Français 6e", "competencies-francais-6e.csv", "Français-6e"),
        ("数学 一年", "competencies-course.csv", "数学-一年"),
    ],
)
def test_export_file_name_keeps_the_course_label_readable(
    lti: LtiActions,
    tool_server: ToolServer,
    fresh_lms: RunningPlatform,
    label: str,
    plain: str,
    written: str,
) -> None:
    """A teacher of several courses tells the downloads apart by the course's label, accents
    and all (RFC 6266 filename*, which browsers use); old clients get it without accents."""
    context = {"id": "course-bio9", "label": label, "title": label, "type": [COURSE_OFFERING]}
    tweaks = LaunchTweaks(claims={"https://purl.imsglobal.org/spec/lti/claim/context": context})
    platform, client = fresh_lms.platform, lti.browser()
    spec = platform.make_launch("user-t01", tweaks=tweaks)
    launched = Launched(follow_launch(client, platform.login_url(spec)), client)
    teacher = frame(launched, tool_server.url)
    exported = teacher.get("/competencies/export.csv")
    assert exported.status_code == 200
    parts = dict(
        part.strip().partition("=")[::2]
        for part in exported.headers["content-disposition"].split(";")
    )
    assert parts["filename"] == f'"{plain}"'
    encoding, _, name = parts["filename*"].partition("''")
    assert (encoding, unquote(name, errors="strict")) == ("UTF-8", f"competencies-{written}.csv")


def test_case_json_import_problems_name_the_identifier(teacher: Frame) -> None:
    response = teacher.post(
        "/competencies/import", {"format": "case", "text": '{"CFDocument": {}, "CFItems": 5}'}
    )
    assert response.status_code == 400
    assert "Nothing was imported" in response.text or "problems" in response.text


def test_editor_creates_edits_reorders_and_archives(teacher: Frame, db: Database, ids: Ids) -> None:
    cid, p = ids.context(), unique("ED")
    with db.begin() as s:
        parent = make_competency(s, cid, f"{p}.P")
    for code in ("1", "2"):
        created = teacher.post(
            "/competencies/",
            {
                "code": f"{p}.{code}",
                "title": f"Sub {code}",
                "kind": "academic",
                "parent_id": str(parent),
            },
        )
        assert "The competency is added." in teacher.follow(created).text
    duplicate = teacher.post("/competencies/", {"code": f"{p}.1", "title": "Again"})
    assert duplicate.status_code == 400
    assert "already used" in duplicate.text
    rows = competencies_by_code(db, cid, p)
    first, second = rows[f"{p}.1"], rows[f"{p}.2"]
    assert first.position < second.position
    teacher.follow(teacher.post(f"/competencies/{second.id}/move", {"direction": "up"}))
    rows = competencies_by_code(db, cid, p)
    assert rows[f"{p}.2"].position < rows[f"{p}.1"].position

    edit = teacher.get(f"/competencies/{first.id}/edit")
    assert f'value="{p}.1"' in edit.text
    saved = teacher.post(
        f"/competencies/{first.id}/edit",
        {
            "code": f"{p}.1",
            "title": "Renamed",
            "kind": "non_academic",
            "parent_id": str(parent),
            "prerequisite_ids": [str(second.id)],
        },
    )
    teacher.follow(saved)
    cycle = teacher.post(
        f"/competencies/{second.id}/edit",
        {
            "code": f"{p}.2",
            "title": "Sub 2",
            "kind": "academic",
            "parent_id": str(parent),
            "prerequisite_ids": [str(first.id)],
        },
    )
    assert cycle.status_code == 400
    with db.begin() as s:
        assert prerequisite_map(s, context_id=cid)[first.id] == {second.id}
    assert competencies_by_code(db, cid, p)[f"{p}.1"].title == "Renamed"

    teacher.follow(teacher.post(f"/competencies/{parent}/archive"))
    assert all(c.is_archived for c in competencies_by_code(db, cid, p).values())
    refused = teacher.post(f"/competencies/{first.id}/unarchive")
    assert refused.status_code == 400  # its parent is archived
    teacher.follow(teacher.post(f"/competencies/{parent}/unarchive"))
    assert not any(c.is_archived for c in competencies_by_code(db, cid, p).values())


def test_copy_framework_and_pathways_from_another_course_the_teacher_teaches(
    lti: LtiActions, tool_server: ToolServer, fresh_lms: RunningPlatform, database_url: str
) -> None:
    platform = fresh_lms.platform
    client = lti.browser()
    bio = Launched(
        follow_launch(client, platform.login_url(platform.make_launch("user-t01"))), client
    )
    assert bio.response.status_code == 200
    chem_spec = platform.make_launch(
        "user-t01",
        context_id="course-chem-club",
        roles=["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
    )
    chem = frame(
        Launched(follow_launch(client, platform.login_url(chem_spec)), client), tool_server.url
    )
    database = Database(database_url)
    fresh = Ids.of(database, fresh_lms)
    try:
        bio_id, chem_id = fresh.context(), fresh.context("course-chem-club")
        with database.begin() as s:
            top = make_competency(s, bio_id, "CP.1")
            make_competency(s, bio_id, "CP.1.a", parent_id=top)
            create_pathway(s, context_id=bio_id, title="Copied pathway", competency_ids=[top])
        page = chem.get("/competencies/copy").text
        assert "Biology 9" in page
        copied = chem.post(
            "/competencies/copy", {"source_context_id": str(bio_id), "pathways": "on"}
        )
        assert "Copied 2 competencies and the pathways." in chem.follow(copied).text
        with database.begin() as s:
            codes = set(s.scalars(select(Competency.code).where(Competency.context_id == chem_id)))
            titles = set(s.scalars(select(Pathway.title).where(Pathway.context_id == chem_id)))
        assert {"CP.1", "CP.1.a"} <= codes
        assert "Copied pathway" in titles
        # A course this person does not teach cannot be a source.
        other = fresh.context("course-chem-club")
        refused = frame(bio, tool_server.url).post(
            "/competencies/copy", {"source_context_id": str(other + 10_000)}
        )
        assert refused.status_code == 404
    finally:
        database.dispose()
