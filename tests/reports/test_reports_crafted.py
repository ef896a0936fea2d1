"""Family reports as teachers, students and families really meet them: names in any script and
of any length in the files they save, hostile LMS names, invisible characters and double
clicks on the reflection, and text from the LMS or teachers that must stay text."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import select

from lti_app.db import Database
from lti_app.demo.launches import LaunchTweaks
from lti_app.demo.server import RunningPlatform
from lti_app.pathways.choices import choose_option
from lti_app.pathways.options import OptionInput, create_option
from lti_app.pathways.services import create_pathway, create_step
from lti_app.reports.models import StudentReflection
from tests.conftest import LtiActions, ToolServer
from tests.courses.frames import Ids, second_lms
from tests.insights.conftest import Seeded
from tests.progress.pages import form, person_id, post, unit_of_work, url
from tests.reports.pdftext import pdf_text


def _path(seeded: Seeded, sub: str, suffix: str = "") -> str:
    return f"/reports/students/{seeded.students[sub]}{suffix}"


def _disposition(response: httpx.Response) -> tuple[str, str]:
    """The plain filename and the decoded UTF-8 filename* of a Content-Disposition header."""
    header = response.headers["content-disposition"]
    plain = utf8 = ""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "filename":
            plain = value.strip('"')
        elif key == "filename*":
            assert value.lower().startswith("utf-8''"), header
            utf8 = unquote(value[7:], encoding="utf-8", errors="strict")
    return plain, utf8


# --- file names a family or teacher saves -------------------------------------------------------


def test_pdf_file_name_keeps_the_students_name_readable(lti: LtiActions, seeded: Seeded) -> None:
    """A teacher saving thirty PDFs needs to tell them apart by name: "José Núñez" must not
    become "jos-n-ez", nor "李小龍" a bare "student". Product decision: the ASCII file name
    (for old clients) spells the name without accents, and the UTF-8 file name (RFC 6266
    filename*, which every current browser uses) keeps the name as the LMS writes it."""
    home = lti.launch("user-t01")
    jose = home.client.get(url(home.response, _path(seeded, "user-s01", "/report.pdf")))
    assert jose.status_code == 200
    plain, utf8 = _disposition(jose)
    assert plain == f"report-jose-nunez-{seeded.students['user-s01']}-en.pdf"
    assert "José" in utf8
    assert "Núñez" in utf8
    assert utf8.endswith(f"-{seeded.students['user-s01']}-en.pdf")
    li = home.client.get(url(home.response, _path(seeded, "user-s03", "/report.pdf")) + "&lang=es")
    assert li.status_code == 200
    plain, utf8 = _disposition(li)
    assert plain.isascii()
    assert plain.endswith(f"-{seeded.students['user-s03']}-es.pdf")
    assert "李小龍" in utf8


HOSTILE = '../..\\Ève "O\'Neil"\r\nX-Evil: 1 <b>:*?|' + "Bartholomew" * 30


@pytest.fixture(scope="module")
def club_lms(tool_server: ToolServer, database_url: str) -> Iterator[RunningPlatform]:
    """A second LMS, so renaming its students touches no other test's people."""
    with second_lms(tool_server, database_url) as running:
        yield running


def test_class_zip_entries_are_safe_short_and_distinct_for_hostile_names(
    club_lms: RunningPlatform, tool_server: ToolServer, db: Database
) -> None:
    """Two students whose LMS names are the same path-like, quote-and-newline-laden, 400-letter
    text: the ZIP holds two PDFs a family's computer can extract (no folders, no characters
    Windows refuses, a name well under the 255-byte limit of file systems), told apart."""
    lti = LtiActions(club_lms, tool_server)
    try:
        teacher = lti.launch("user-t02", context_id="course-chem-club")
        # The teacher's launch syncs the roster (with the LMS's own names) in the background:
        # let it finish before the students arrive with theirs.
        for _ in range(100):
            index = teacher.client.get(url(teacher.response, "/reports/"))
            if index.text.count("Open report<") == 2:
                break
            time.sleep(0.05)
        for sub in ("user-s01", "user-s02"):
            launched = lti.launch(
                sub,
                context_id="course-chem-club",
                tweaks=LaunchTweaks(claims={"name": HOSTILE}),
            )
            assert launched.response.status_code == 200, launched.text[:500]
        index = teacher.client.get(url(teacher.response, "/reports/"))
        assert index.status_code == 200
        assert index.text.count("Bartholomew") >= 2
        assert "<b>" not in index.text  # the LMS name is shown as text
        response = teacher.client.get(url(teacher.response, "/reports/class.zip"))
        assert response.status_code == 200
        names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
        assert len(names) == 2
        assert len(set(names)) == 2
        for name in names:
            assert name.endswith("-en.pdf")
            assert len(name.encode("utf-8")) <= 150, name
            assert not set(name) & set('/\\:*?"<>|\r\n\t'), name
            assert not name.startswith((".", "-"))
            assert "Bartholomew" in name  # still recognisably the student's report
        pdf_id = Ids.of(db, club_lms).person("user-s01")
        pdf = teacher.client.get(url(teacher.response, f"/reports/students/{pdf_id}/report.pdf"))
        assert pdf.status_code == 200
        header = pdf.headers["content-disposition"]
        assert "\r" not in header
        assert "\n" not in header
        plain, utf8 = _disposition(pdf)
        assert not set(plain) & set('/\\"\r\n')
        assert not set(utf8) & set('/\\:*?"<>|\r\n')
        assert len(utf8.encode("utf-8")) <= 150
    finally:
        for sub in ("user-s01", "user-s02"):  # give the club's students their names back
            lti.launch(sub, context_id="course-chem-club")
        lti.close()


# --- the student's reflection ---------------------------------------------------------------------


def test_reflection_with_invisible_characters_is_saved_and_reads_cleanly(
    lti: LtiActions, seeded: Seeded
) -> None:
    """Text pasted from another app can carry NUL and other control characters: PostgreSQL
    refuses NUL (an error page for the student), and a family would see garbage. They are
    dropped; line breaks and tabs stay."""
    me = lti.launch("user-s02")
    page = me.client.get(url(me.response, "/reports/reflection"))
    saved = post(
        me.client,
        form(page, "/reports/reflection"),
        {"reflection": "I am proud\x00 of my\x07 lab\r\nNext:\tplants\x1b"},
    )
    assert saved.status_code == 200, saved.text[-800:]
    assert "Your reflection is saved" in saved.text
    report = me.client.get(url(me.response, _path(seeded, "user-s02")))
    assert "I am proud of my lab\nNext:\tplants" in report.text
    assert "\x00" not in report.text
    assert "\x1b" not in report.text


def test_a_too_long_reflection_is_refused_but_what_was_written_stays(
    lti: LtiActions, seeded: Seeded
) -> None:
    """A student who wrote too much must not lose it: the page says why and keeps the text;
    line breaks count once, as the browser's own counter shows them."""
    me = lti.launch("user-s02")
    page = me.client.get(url(me.response, "/reports/reflection"))
    target = form(page, "/reports/reflection")
    too_long = "My week. " * 445  # 4005 characters
    refused = post(me.client, target, {"reflection": too_long})
    assert "at most 4000" in refused.text
    assert too_long.strip() in refused.text
    # Browsers send line breaks as CRLF; the textarea's own counter counts them once.
    fits = "\r\n".join(["abc"] * 1000)  # 4999 sent, 3999 as the student typed it
    saved = post(me.client, target, {"reflection": fits})
    assert "Your reflection is saved" in saved.text


def _click(
    client: httpx.Client,
    action: str,
    data: dict[str, str],
    barrier: threading.Barrier,
    codes: list[int],
) -> None:
    barrier.wait()
    codes.append(client.post(action, data=data).status_code)


def test_double_click_on_save_reflection_keeps_one_reflection_and_no_error(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """Two saves of a first reflection at the same moment (a double click, a slow network):
    both answers are the saved page, and the student has one reflection."""
    me = lti.launch("user-s03")
    with unit_of_work(database_url) as s:
        mine = person_id(s, lti.lms, "user-s03")
    for round_ in range(3):
        with unit_of_work(database_url) as s:
            for row in s.scalars(
                select(StudentReflection).where(StudentReflection.person_id == mine)
            ):
                s.delete(row)
        page = me.client.get(url(me.response, "/reports/reflection"))
        target = form(page, "/reports/reflection")
        fields = {"lt": target.fields["lt"], "csrf_token": target.fields["csrf_token"]}
        barrier = threading.Barrier(4)
        codes: list[int] = []
        data = {**fields, "reflection": f"round {round_}"}
        threads = [
            threading.Thread(target=_click, args=(me.client, target.action, data, barrier, codes))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes == [303] * 4, (round_, codes)
        with unit_of_work(database_url) as s:
            rows = s.scalars(
                select(StudentReflection.text).where(StudentReflection.person_id == mine)
            ).all()
        assert len(rows) == 1
        assert rows[0] == f"round {round_}"


# --- text from the LMS, teachers and students stays text ---------------------------------------


def test_titles_with_markup_stay_text_in_the_spanish_page_and_pdf(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """A step or option titled with markup appears in translated sentences ("Termina el
    trabajo actual: ..."): it must show as the typed text, never as markup."""
    with unit_of_work(database_url) as s:
        pathway = create_pathway(s, context_id=seeded.context_id, title="<i>Plants</i>")
        step = create_step(
            s, context_id=seeded.context_id, pathway_id=pathway.id, title="<b>Leaf lab</b>"
        )
        option = create_option(
            s,
            context_id=seeded.context_id,
            step_id=step.id,
            data=OptionInput('<img src="x" onerror="alert(1)">Microscope'),
        )
        choose_option(
            s,
            context_id=seeded.context_id,
            person_id=seeded.students["user-s03"],
            option_id=option.id,
        )
    home = lti.launch("user-t01")
    page = home.client.get(url(home.response, _path(seeded, "user-s03")) + "&lang=es")
    assert page.status_code == 200
    assert "<b>Leaf lab</b>" not in page.text
    assert "<img src" not in page.text
    assert "&lt;b&gt;Leaf lab&lt;/b&gt;: &lt;img" in page.text
    pdf = home.client.get(url(home.response, _path(seeded, "user-s03", "/report.pdf")) + "&lang=es")
    assert pdf.status_code == 200
    text = pdf_text(pdf.content)
    assert "<b>Leaf lab</b>" in text.replace("\n", "")


@pytest.mark.parametrize(
    "query",
    ["lang=", "lang=ES", "lang=es%00", "lang=" + "e" * 5000, "lang=es&lang=en", "lang[]=es"],
)
def test_odd_language_parameters_give_a_report_not_an_error(
    lti: LtiActions, seeded: Seeded, query: str
) -> None:
    """A hand-edited or truncated link still opens the report (Spanish only when asked)."""
    home = lti.launch("user-t01")
    page = home.client.get(url(home.response, _path(seeded, "user-s01")) + "&" + query)
    assert page.status_code == 200
    expected = '<html lang="es">' if query in ("lang=ES", "lang=es&lang=en") else '<html lang="en">'
    assert expected in page.text


def test_teacher_comments_hold_only_what_teachers_wrote_on_competencies_in_the_report(
    seeded: Seeded, database_url: str
) -> None:
    """A family reads "Teacher comments" as the teacher's words: a student's own notes on a
    self-assessment are not among them, and comments on archived competencies (not in the
    report) do not take the places of the eight most recent ones."""
    from decimal import Decimal

    from lti_app.competencies.services import archive_competency, create_competency
    from lti_app.mastery.models import EvidenceSource
    from lti_app.mastery.services import record_evidence
    from lti_app.reports.services import RECENT_COMMENTS, family_report

    student = seeded.students["user-s02"]
    tag = str(time.monotonic_ns())
    with unit_of_work(database_url) as s:
        old = create_competency(s, context_id=seeded.context_id, code=f"OLD{tag}", title="Old")
        for n in range(RECENT_COMMENTS):
            record_evidence(
                s,
                context_id=seeded.context_id,
                competency_id=seeded.c1,
                student_ids=[student],
                points=Decimal(2),
                source=EvidenceSource.TEACHER,
                note=f"Teacher said {n} {tag}",
                recorded_by_id=seeded.teacher_id,
            )
        for n in range(3):
            record_evidence(
                s,
                context_id=seeded.context_id,
                competency_id=old.id,
                student_ids=[student],
                points=Decimal(3),
                source=EvidenceSource.TEACHER,
                note=f"On an archived competency {n} {tag}",
                recorded_by_id=seeded.teacher_id,
            )
        record_evidence(
            s,
            context_id=seeded.context_id,
            competency_id=seeded.c1,
            student_ids=[student],
            points=Decimal(4),
            source=EvidenceSource.SELF_ASSESSMENT,
            note=f"I think I am great {tag}",
            recorded_by_id=student,
        )
        archive_competency(s, context_id=seeded.context_id, competency_id=old.id)
    with unit_of_work(database_url) as s:
        report = family_report(
            s, context_id=seeded.context_id, person_id=student, course_title="Biology"
        )
    notes = [c.note for c in report.comments]
    assert len(notes) == RECENT_COMMENTS, notes
    assert all(note.startswith("Teacher said") for note in notes), notes
