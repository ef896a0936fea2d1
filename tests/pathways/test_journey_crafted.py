"""A student's journey through a pathway and the teachers' answers to it, probed as people really
meet it: a refused hand-in, two teachers on the same work, a student and a teacher on the same
choice at the same moment, a stale overview, hostile option text and links, recommendations, and
what every page says at each state."""

from __future__ import annotations

import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from markupsafe import escape
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lti_app.db import Database
from lti_app.learners.services import update_profile
from lti_app.pathways import choices as ch
from lti_app.pathways import options, reviewing, services
from lti_app.pathways.errors import ChoiceNotAllowedError
from lti_app.pathways.models import Choice, ChoiceStatus
from lti_app.pathways.options import OptionInput
from lti_app.tool.models import Context, Membership, MembershipStatus, Person, Platform
from tests.conftest import LtiActions
from tests.pathways.test_views import STUDENT, TEACHER, Built
from tests.progress.pages import form, has_form, link, person_id, post, unique, unit_of_work, url

# --- two people on the same choice at the same moment (services, committed rows) -------------


@dataclass(frozen=True)
class Room:
    """A committed course with a teacher, a second teacher and a student, and one open step
    whose two options need the teacher's approval and a third that does not."""

    context_id: int
    teacher_id: int
    co_teacher_id: int
    student_id: int
    step_id: int
    option_a: int
    option_b: int
    free_option: int


@pytest.fixture
def room(db: Database, engine: Engine) -> Room:
    key = unique()
    with db.begin() as s:
        platform = Platform(
            issuer=f"https://lms-{key}.example.edu",
            client_id="journey",
            auth_login_url="https://lms.example.edu/auth",
            token_url="https://lms.example.edu/token",
            jwks_url="https://lms.example.edu/jwks",
        )
        s.add(platform)
        s.flush()
        ctx = Context(platform_id=platform.id, context_id=f"c-{key}", title="Journey")
        people = [Person(platform_id=platform.id, sub=sub, name=sub) for sub in ("t", "t2", "s")]
        s.add_all([ctx, *people])
        s.flush()
        pathway = services.create_pathway(s, context_id=ctx.id, title="P")
        step = services.create_step(s, context_id=ctx.id, pathway_id=pathway.id, title="S")

        def option(title: str, approval: bool) -> int:
            data = OptionInput(title, requires_approval=approval)
            return options.create_option(s, context_id=ctx.id, step_id=step.id, data=data).id

        return Room(
            ctx.id,
            people[0].id,
            people[1].id,
            people[2].id,
            step.id,
            option("Option A", True),
            option("Option B", True),
            option("Free option", False),
        )


def _meanwhile(
    db: Database, first: Callable[[Session], object], second: Callable[[Session], object]
) -> BaseException | None:
    """Run `first` and keep its transaction open while `second` runs in another connection
    and tries to commit; then commit `first`. Return what `second` raised, if anything."""
    raised: list[BaseException] = []

    def run_second() -> None:
        try:
            with db.begin() as s:
                second(s)
        except BaseException as err:  # handed to the test
            raised.append(err)

    with db.begin() as s:
        first(s)
        s.flush()
        thread = threading.Thread(target=run_second)
        thread.start()
        time.sleep(0.4)  # the second request arrives while the first is still being saved
    thread.join(timeout=30)
    assert not thread.is_alive()
    return raised[0] if raised else None


def _choice(db: Database, room: Room) -> Choice:
    with db.begin() as s:
        row = s.scalars(
            select(Choice).where(
                Choice.person_id == room.student_id, Choice.step_id == room.step_id
            )
        ).one()
        s.expunge(row)
        return row


def _pick(db: Database, room: Room, option_id: int) -> int:
    with db.begin() as s:
        return ch.choose_option(
            s,
            context_id=room.context_id,
            person_id=room.student_id,
            option_id=option_id,
            mastered_ids=set(),
        ).id


def test_two_teachers_answering_the_same_pick_at_once_do_not_both_succeed(
    db: Database, room: Room
) -> None:
    """One teacher sends a pick back while a colleague approves it. Whoever comes second must
    be told it changed, not be told "Approved" while the student sees "Not approved" (or the
    other way round) with the first teacher's note under an approval."""
    choice_id = _pick(db, room, room.option_a)
    err = _meanwhile(
        db,
        lambda s: reviewing.return_choices(
            s,
            context_id=room.context_id,
            choice_ids=[choice_id],
            decided_by_id=room.teacher_id,
            note="Pick one with a lab",
        ),
        lambda s: reviewing.approve_choices(
            s, context_id=room.context_id, choice_ids=[choice_id], decided_by_id=room.co_teacher_id
        ),
    )
    assert isinstance(err, ChoiceNotAllowedError), err
    assert "rejected cannot be approved" in str(err)
    after = _choice(db, room)
    assert (after.status, after.decided_by_id) == (ChoiceStatus.REJECTED, room.teacher_id)


def test_a_teacher_marking_work_done_while_a_colleague_sends_it_back_keeps_one_answer(
    db: Database, room: Room
) -> None:
    """A submission marked done by one teacher cannot at the same moment be sent back by the
    other: the student must not find "Done" with a note asking for changes, or the reverse."""
    choice_id = _pick(db, room, room.free_option)
    with db.begin() as s:
        ch.submit_choice(
            s, context_id=room.context_id, person_id=room.student_id, choice_id=choice_id, note="x"
        )
    err = _meanwhile(
        db,
        lambda s: reviewing.complete_choices(
            s, context_id=room.context_id, choice_ids=[choice_id], closed_by_id=room.teacher_id
        ),
        lambda s: reviewing.return_choices(
            s,
            context_id=room.context_id,
            choice_ids=[choice_id],
            decided_by_id=room.co_teacher_id,
            note="Add a diagram",
        ),
    )
    assert isinstance(err, ChoiceNotAllowedError), err
    after = _choice(db, room)
    assert (after.status, after.teacher_feedback) == (ChoiceStatus.DONE, "")


def test_a_student_handing_in_while_the_teacher_rejects_the_pick_is_told_so(
    db: Database, room: Room
) -> None:
    """The teacher declines a pick at the moment the student hands work in on it. The student
    must be told the pick was sent back, not "Handed in" over the teacher's decision."""
    choice_id = _pick(db, room, room.free_option)
    err = _meanwhile(
        db,
        lambda s: reviewing.return_choices(
            s,
            context_id=room.context_id,
            choice_ids=[choice_id],
            decided_by_id=room.teacher_id,
            note="Not this one",
        ),
        lambda s: ch.submit_choice(
            s,
            context_id=room.context_id,
            person_id=room.student_id,
            choice_id=choice_id,
            note="my work",
        ),
    )
    assert isinstance(err, ChoiceNotAllowedError), err
    assert "sent this choice back" in str(err)
    after = _choice(db, room)
    assert (after.status, after.submission_note) == (ChoiceStatus.REJECTED, "")


def test_a_student_switching_while_the_teacher_marks_done_does_not_undo_done(
    db: Database, room: Room
) -> None:
    """The teacher marks a pick done (offline work observed) while the student switches to
    another option: the step stays done, and the student hears it is done."""
    choice_id = _pick(db, room, room.free_option)
    err = _meanwhile(
        db,
        lambda s: reviewing.complete_choices(
            s, context_id=room.context_id, choice_ids=[choice_id], closed_by_id=room.teacher_id
        ),
        lambda s: ch.choose_option(
            s,
            context_id=room.context_id,
            person_id=room.student_id,
            option_id=room.option_a,
            mastered_ids=set(),
        ),
    )
    assert isinstance(err, ChoiceNotAllowedError), err
    assert "it is done" in str(err)
    after = _choice(db, room)
    assert (after.status, after.option_id) == (ChoiceStatus.DONE, room.free_option)


def test_a_teacher_approves_only_the_option_they_saw(db: Database, room: Room) -> None:
    """The teacher opens the overview and approves "Option A"; the student has just switched
    to "Option B", which also needs approval. Approving must not approve B unseen: the teacher
    is told the student changed their choice, and B still waits for the teacher."""
    choice_id = _pick(db, room, room.option_a)
    err = _meanwhile(
        db,
        lambda s: ch.choose_option(
            s,
            context_id=room.context_id,
            person_id=room.student_id,
            option_id=room.option_b,
            mastered_ids=set(),
        ),
        lambda s: reviewing.approve_choices(
            s,
            context_id=room.context_id,
            choice_ids=[choice_id],
            decided_by_id=room.teacher_id,
            seen_option_ids={choice_id: room.option_a},
        ),
    )
    assert isinstance(err, ChoiceNotAllowedError), err
    assert "changed their choice" in str(err)
    after = _choice(db, room)
    assert (after.status, after.option_id) == (ChoiceStatus.CHOSEN, room.option_b)
    # Sending back from the same stale page is refused too; from a fresh page both work.
    with db.begin() as s, pytest.raises(ChoiceNotAllowedError, match="changed their choice"):
        reviewing.return_choices(
            s,
            context_id=room.context_id,
            choice_ids=[choice_id],
            decided_by_id=room.teacher_id,
            note="no",
            seen_option_ids={choice_id: room.option_a},
        )
    with db.begin() as s:
        reviewing.approve_choices(
            s,
            context_id=room.context_id,
            choice_ids=[choice_id],
            decided_by_id=room.teacher_id,
            seen_option_ids={choice_id: room.option_b},
        )
    assert _choice(db, room).status is ChoiceStatus.APPROVED


def test_double_click_on_hand_in_keeps_one_submission_and_no_error(
    db: Database, room: Room
) -> None:
    """A student double-clicks "Hand in": the second click finds the same work handed in with
    the same note and link and is a success, not "This work is already handed in"."""
    choice_id = _pick(db, room, room.free_option)
    kwargs = {
        "context_id": room.context_id,
        "person_id": room.student_id,
        "choice_id": choice_id,
        "note": "My poster",
        "url": "https://example.org/poster",
    }
    with db.begin() as s:
        first = ch.submit_choice(s, **kwargs)  # type: ignore[arg-type]
        submitted_at = first.submitted_at
    with db.begin() as s:
        again = ch.submit_choice(s, **kwargs)  # type: ignore[arg-type]
        assert (again.status, again.submitted_at) == (ChoiceStatus.SUBMITTED, submitted_at)
    with db.begin() as s, pytest.raises(ChoiceNotAllowedError, match="already handed in"):
        ch.submit_choice(s, **{**kwargs, "note": "Something else"})  # type: ignore[arg-type]


# --- pages ------------------------------------------------------------------------------------


def _approval_options(database_url: str, built: Built) -> tuple[int, int]:
    with unit_of_work(database_url) as s:
        return tuple(  # type: ignore[return-value]
            options.create_option(
                s,
                context_id=built.context_id,
                step_id=built.open_step_id,
                data=OptionInput(title, requires_approval=True, interest_tags=["lab"]),
            ).id
            for title in ("Build a cell model", "Interview a nurse")
        )


def _student(lti: LtiActions, built: Built) -> tuple[httpx.Client, httpx.Response, str]:
    home = lti.launch(STUDENT)
    page = home.client.get(link(home.response, f"/pathways/{built.pathway_id}?"))
    assert page.status_code == 200
    home_url = link(home.response, "/pathways/?")
    return home.client, page, home_url


def _my_choice(database_url: str, lti: LtiActions, built: Built) -> Choice:
    with unit_of_work(database_url) as s:
        me = person_id(s, lti.lms, STUDENT)
        row = s.scalars(
            select(Choice).where(Choice.person_id == me, Choice.step_id == built.open_step_id)
        ).one()
        s.expunge(row)
        return row


def _pending_form_fields(page: httpx.Response) -> dict[str, str]:
    """The overview's pending form as the teacher's browser would post it (hidden fields)."""
    return dict(form(page, "/course/pending").fields)


def test_a_refused_hand_in_keeps_the_note_and_link_the_student_typed(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """A student writes a long note and pastes a link without https://; the hand-in is
    refused in words, and the page comes back with the note and the link as typed (not
    emptied), so fixing the link is all they have to do."""
    client, page, _ = _student(lti, built)
    page = post(client, form(page, f"/options/{built.plain_option_id}/choose"))
    choice_id = _my_choice(database_url, lti, built).id
    page = post(client, form(page, f"/choices/{choice_id}/start"))
    note = f"I compared three cells & drew them <carefully> {unique()}"
    refused = post(
        client,
        form(page, f"/choices/{choice_id}/submit"),
        {"note": note, "url": "docs.example.org/my-work"},
        follow=False,
    )
    assert refused.status_code == 400
    assert "Links must start with http:// or https://" in refused.text
    assert "I compared three cells &amp; drew them &lt;carefully&gt;" in refused.text
    assert 'value="docs.example.org/my-work"' in refused.text
    assert _my_choice(database_url, lti, built).status is ChoiceStatus.IN_PROGRESS
    # Fixing the link hands it in with the note.
    done = post(
        client,
        form(refused, f"/choices/{choice_id}/submit"),
        {"note": note, "url": "https://docs.example.org/my-work"},
    )
    assert "Handed in: waiting for your teacher" in done.text
    assert _my_choice(database_url, lti, built).submission_note == note


def test_the_hand_in_link_label_says_which_links_it_takes(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """The label said "starts with https://" while an http:// link was handed in: what the
    label says and what the hand-in takes are the same."""
    client, page, _ = _student(lti, built)
    page = post(client, form(page, f"/options/{built.plain_option_id}/choose"))
    choice_id = _my_choice(database_url, lti, built).id
    page = post(client, form(page, f"/choices/{choice_id}/start"))
    assert 'Link to your work <span class="hint">(optional, starts with http:// or https://)' in (
        page.text
    )
    done = post(
        client,
        form(page, f"/choices/{choice_id}/submit"),
        {"note": "", "url": "http://docs.example.org/mywork"},
    )
    assert "Handed in: waiting for your teacher" in done.text
    assert _my_choice(database_url, lti, built).submission_url == "http://docs.example.org/mywork"


def test_every_page_tells_where_an_approval_journey_stands(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """Pick (needs approval) -> sent back with a note -> pick again -> approved -> start ->
    hand in -> returned with a note -> hand in again -> done. At each state the student's
    pathway page, their home page and the teacher's pages say the same thing in words."""
    model, interview = _approval_options(database_url, built)
    client, page, home_url = _student(lti, built)
    page = post(client, form(page, f"/options/{model}/choose"))
    assert "Your choice: <bdi>Build a cell model</bdi>" in page.text
    # A named block needs a role: ARIA drops the name of a plain <div>, so a screen reader
    # could not find "Your choice" among the page's groups.
    assert 'class="my-choice" role="group" aria-labelledby=' in page.text
    assert "Chosen: waiting for your teacher&#39;s approval" in page.text
    assert not has_form(page, "/start")
    assert not has_form(page, "/submit")
    home = client.get(home_url)
    assert "Build a cell model: Waiting for your teacher&#39;s approval" in home.text

    teacher = lti.launch(TEACHER)
    overview = teacher.response
    overview_url = link(overview, "/course/?")
    assert "Approval" in overview.text
    assert "Build a cell model" in overview.text
    choice_id = _my_choice(database_url, lti, built).id
    answered = teacher.client.post(
        form(overview, "/course/pending").action,
        data={
            **_pending_form_fields(overview),
            "choice": str(choice_id),
            "action": "return",
            "note": "Too big for one week: pick something smaller",
        },
    )
    assert answered.status_code == 303
    page = client.get(page.url)
    assert "Not approved: choose an option again" in page.text
    assert "Too big for one week: pick something smaller" in page.text
    assert has_form(page, f"/options/{interview}/choose")
    home = client.get(home_url)
    assert "Your teacher asked you to choose again" in home.text

    page = post(client, form(page, f"/options/{interview}/choose"))
    assert "Your choice: <bdi>Interview a nurse</bdi>" in page.text
    assert "Too big for one week" not in page.text  # the old note belonged to the old pick
    overview = teacher.client.get(overview_url)
    answered = teacher.client.post(
        form(overview, "/course/pending").action,
        data={**_pending_form_fields(overview), "choice": str(choice_id), "action": "approve"},
    )
    assert answered.status_code == 303
    page = client.get(page.url)
    assert "Approved by your teacher" in page.text
    page = post(client, form(page, f"/choices/{choice_id}/start"))
    assert "Status:</strong> In progress" in page.text
    page = post(
        client,
        form(page, f"/choices/{choice_id}/submit"),
        {"note": "Transcript attached", "url": "https://example.org/interview"},
    )
    assert "Handed in: waiting for your teacher" in page.text

    overview = teacher.client.get(overview_url)
    assert "Review of submitted work" in overview.text
    assert "Transcript attached" in overview.text
    assert 'href="https://example.org/interview"' in overview.text
    answered = teacher.client.post(
        form(overview, "/course/pending").action,
        data={
            **_pending_form_fields(overview),
            "choice": str(choice_id),
            "action": "return",
            "note": "Add two questions of your own",
        },
    )
    assert answered.status_code == 303
    page = client.get(page.url)
    assert "Returned by your teacher: keep working and hand it in again" in page.text
    assert "Add two questions of your own" in page.text
    assert "Transcript attached</textarea>" in page.text  # the earlier note, ready to extend
    home = client.get(home_url)
    assert "Needs your attention:" in home.text
    page = post(
        client,
        form(page, f"/choices/{choice_id}/submit"),
        {"note": "Transcript attached, with my questions", "url": "https://example.org/interview"},
    )
    assert "Handed in: waiting for your teacher" in page.text
    # The note that sent it back belongs to the version before this hand-in.
    assert "earlier note</h4>" in page.text
    assert "Add two questions of your own" in page.text

    overview = teacher.client.get(overview_url)
    answered = teacher.client.post(
        form(overview, "/course/pending").action,
        data={**_pending_form_fields(overview), "choice": str(choice_id), "action": "done"},
    )
    assert answered.status_code == 303
    page = client.get(page.url)
    assert "Status:</strong> Done" in page.text
    assert not has_form(page, "/submit")
    assert not has_form(page, "/choose")
    home = client.get(home_url)
    assert "1 of 2 steps done" in home.text
    with unit_of_work(database_url) as s:
        me = person_id(s, lti.lms, STUDENT)
    student_page = teacher.client.get(url(overview, f"/course/students/{me}"))
    assert "Interview a nurse" in student_page.text
    assert ">Done<" in student_page.text


def test_approving_from_a_stale_overview_never_approves_an_option_the_teacher_did_not_see(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """The overview lists "Build a cell model" waiting for approval. Before the teacher
    clicks Approve the student switches to "Interview a nurse". The click is refused in words
    naming the change, and the new pick still waits; a fresh overview approves it."""
    model, interview = _approval_options(database_url, built)
    client, page, _ = _student(lti, built)
    page = post(client, form(page, f"/options/{model}/choose"))
    teacher = lti.launch(TEACHER)
    stale = teacher.response
    choice_id = _my_choice(database_url, lti, built).id
    stale_fields = _pending_form_fields(stale)
    post(client, form(page, f"/options/{interview}/choose"))
    answered = teacher.client.post(
        form(stale, "/course/pending").action,
        data={**stale_fields, "choice": str(choice_id), "action": "approve"},
    )
    assert answered.status_code == 400
    assert "changed their choice" in answered.text
    assert _my_choice(database_url, lti, built).status is ChoiceStatus.CHOSEN
    fresh = teacher.client.get(link(stale, "/course/?"))
    answered = teacher.client.post(
        form(fresh, "/course/pending").action,
        data={**_pending_form_fields(fresh), "choice": str(choice_id), "action": "approve"},
    )
    assert answered.status_code == 303
    after = _my_choice(database_url, lti, built)
    assert (after.status, after.option_id) == (ChoiceStatus.APPROVED, interview)


HOSTILE_DESCRIPTION = (
    "<p>Start <strong>here</strong> <a href='https://example.org/ok'>ok</a></p>"
    "<svg><script>alert('svg')</script></svg>"
    "<svg onload=alert('onload')><a xlink:href='javascript:alert(1)'>x</a></svg>"
    "<math><mtext><a href='javascript:alert(2)'>m</a></mtext></math>"
    "<a href='&#106;&#97;vascript:alert(3)'>ent</a>"
    "<a href='jav&#x09;ascript:alert(4)'>tab</a>"
    "<a href=' javascript:alert(5)'>space</a>"
    "<a href='JAVASCRIPT&colon;alert(6)'>colon</a>"
    "<a href='vbscript:msgbox(7)'>vb</a>"
    "<a href='data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoOCk+'>img</a>"
    "<a href='//evil.example/steal'>proto-relative</a>"
    "<a href='/pathways/manage'>relative</a>"
    "<img src=x onerror=alert(9)><iframe srcdoc='<script>alert(10)</script>'></iframe>"
    "<form action='javascript:alert(11)'><button>go</button></form>"
    "<noscript><p title='</noscript><img src=x onerror=alert(12)>'></p></noscript>"
    "<a href='https://example.org/q?a=1&amp;b=2' onclick='alert(13)' style='color:red'>q</a>"
)
BAD_LINKS = (
    "javascript:alert(20)",
    "JaVaScRiPt:alert(21)",
    "data:text/html,<script>alert(22)</script>",
    "https://example.org/a b",
    "//evil.example/x",
    "vbscript:msgbox(23)",
    "https:/\\evil.example",
)


def test_hostile_option_text_and_links_never_run_for_students(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """Whatever a teacher pastes into an option (SVG, MathML, entity-encoded javascript:,
    data: links, event handlers) reaches the student as harmless text with its safe formatting
    and safe links kept; links that are not http(s) are refused in words with the form kept."""
    teacher = lti.launch(TEACHER)
    client = teacher.client
    step_page = client.get(url(teacher.response, f"/pathways/manage/steps/{built.open_step_id}"))
    new_option = client.get(link(step_page, "/options/new?"))
    title = f"Safe {unique()}"
    for bad in BAD_LINKS:
        refused = post(
            client,
            form(new_option, "/options/new"),
            {
                "title": title,
                "description": "<p>kept</p>",
                "links": f"Evil | {bad}",
                "modality": "video",
                "challenge": "2",
            },
            follow=False,
        )
        assert refused.status_code == 400, bad
        assert title in refused.text, bad  # the typed form comes back
    saved = post(
        client,
        form(new_option, "/options/new"),
        {
            "title": title,
            "description": HOSTILE_DESCRIPTION,
            "links": "Guide | https://example.org/guide?x=1&y=<b>",
            "modality": "video",
            "challenge": "2",
        },
    )
    assert saved.status_code == 200
    student_client, page, _ = _student(lti, built)
    text = page.text
    start = text.index(f"<h4><bdi>{title}</bdi>")
    option_html = text[start : text.index('<li class="option', start + 1)]
    lowered = option_html.lower()
    for bad in (
        "javascript",
        "vbscript",
        "data:",
        "alert(",
        "onerror",
        "onload",
        "onclick",
        "<svg",
        "<math",
        "<iframe",
        "<img",
        "<button>go",
        "<script",
        "srcdoc",
        "style=",
        "evil.example",
        'href="/',
    ):
        assert bad not in lowered, bad
    assert "<strong>here</strong>" in option_html
    assert 'href="https://example.org/ok"' in option_html
    assert 'href="https://example.org/q?a=1&amp;b=2"' in option_html
    assert 'href="https://example.org/guide?x=1&amp;y=&lt;b&gt;"' in option_html

    # The student's own link, shown back to the student and to the teacher, stays an attribute.
    page = post(student_client, form(page, f"/options/{built.plain_option_id}/choose"))
    choice_id = _my_choice(database_url, lti, built).id
    sneaky = 'https://example.org/"><script>alert(30)</script>'
    page = post(
        student_client,
        form(page, f"/choices/{choice_id}/submit"),
        {"note": "<img src=x onerror=alert(31)>", "url": sneaky},
    )
    assert "Handed in" in page.text
    overview = client.get(link(teacher.response, "/course/?"))
    for shown in (page.text, overview.text):
        assert "<script>alert(30)" not in shown
        assert "<img src=x" not in shown
        assert "&lt;img src=x onerror=alert(31)&gt;" in shown
    for bad in BAD_LINKS[:3]:
        with unit_of_work(database_url) as s:
            me = person_id(s, lti.lms, STUDENT)
            s.execute(
                update(Choice).where(Choice.id == choice_id).values(status=ChoiceStatus.RETURNED)
            )
        page = student_client.get(page.url)
        refused = post(
            student_client,
            form(page, f"/choices/{choice_id}/submit"),
            {"note": "again", "url": bad},
            follow=False,
        )
        assert refused.status_code == 400, bad
        assert me  # the student's stored link is still the harmless one
        assert _my_choice(database_url, lti, built).submission_url == sneaky


def test_recommendations_name_the_interest_or_career_they_match(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """A student interested in "Animals" and "Écologie" (typed on one keyboard, tagged on
    another: composed and decomposed accents) with the Health Science career cluster sees each
    matching option recommended with its reason; other options, and archived ones, are not."""
    decomposed = unicodedata.normalize("NFD", "écologie")
    with unit_of_work(database_url) as s:
        options.create_option(
            s,
            context_id=built.context_id,
            step_id=built.open_step_id,
            data=OptionInput("Pond survey", interest_tags=[decomposed, "water"]),
        )
        options.create_option(
            s,
            context_id=built.context_id,
            step_id=built.open_step_id,
            data=OptionInput("Shadow a nurse", career_clusters=["Health Science"]),
        )
        gone = options.create_option(
            s,
            context_id=built.context_id,
            step_id=built.open_step_id,
            data=OptionInput("Old zoo visit", interest_tags=["animals"]),
        )
        options.archive_option(s, context_id=built.context_id, option_id=gone.id)
    home = lti.launch(STUDENT)
    with unit_of_work(database_url) as s:
        update_profile(
            s,
            context_id=built.context_id,
            person_id=person_id(s, lti.lms, STUDENT),
            editor_is_teacher=False,
            interests=["Animals", unicodedata.normalize("NFC", "Écologie")],
            career_clusters=["Health Science"],
        )
    page = home.client.get(link(home.response, f"/pathways/{built.pathway_id}?"))
    text = page.text

    def option_block(title: str) -> str:
        start = text.index(f"<h4><bdi>{title}</bdi>")
        return text[start : text.index("</li>", text.index("</form>", start))]

    assert "Matches your interest in Animals" in option_block("Animal cells field guide")
    assert "Matches your interest in Écologie" in option_block("Pond survey")
    assert "Fits your career goal: Health Science" in option_block("Shadow a nurse")
    assert "Recommended for you" not in option_block("Read chapter 3")
    assert "Old zoo visit" not in text


def test_a_student_who_left_keeps_their_work_answerable_and_named(
    lti: LtiActions, built: Built, database_url: str
) -> None:
    """A student hands work in and then leaves the course (the LMS roster says inactive).
    The teacher still sees the work under the student's name, can open their page and mark it
    done; the student's record keeps it."""
    client, page, _ = _student(lti, built)
    page = post(client, form(page, f"/options/{built.plain_option_id}/choose"))
    choice_id = _my_choice(database_url, lti, built).id
    post(client, form(page, f"/choices/{choice_id}/submit"), {"note": "Last piece"})
    with unit_of_work(database_url) as s:
        me = person_id(s, lti.lms, STUDENT)
        name = s.get(Person, me).display_name  # type: ignore[union-attr]
        s.execute(
            update(Membership)
            .where(Membership.person_id == me, Membership.context_id == built.context_id)
            .values(status=MembershipStatus.INACTIVE)
        )
    teacher = lti.launch(TEACHER)
    overview = teacher.response
    assert "Last piece" in overview.text
    assert str(escape(name)) in overview.text
    assert teacher.client.get(url(overview, f"/course/students/{me}")).status_code == 200
    answered = teacher.client.post(
        form(overview, "/course/pending").action,
        data={**_pending_form_fields(overview), "choice": str(choice_id), "action": "done"},
    )
    assert answered.status_code == 303
    assert _my_choice(database_url, lti, built).status is ChoiceStatus.DONE
