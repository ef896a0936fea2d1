"""Family reports: the page (printable), its PDF, a class set as a ZIP, and the student's
reflection. A teacher reaches any student of their course; a student their own, and those of
the students the launch says they observe (a sibling); a parent those of their children."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import chain
from typing import cast

from flask import (
    Blueprint,
    Flask,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
)
from flask.blueprints import BlueprintSetupState
from flask_babel import force_locale
from werkzeug.wrappers import Response

from lti_app.db import release_before_slow_work, utcnow
from lti_app.display import course_zone
from lti_app.errors import NotFoundError, PermissionDeniedError, request_id
from lti_app.insights.grouping import level_band
from lti_app.reports import services
from lti_app.reports.downloads import attachment, file_name_part
from lti_app.reports.fonts import strings_in, unprintable
from lti_app.reports.i18n import (
    LANGUAGES,
    TEMPLATE_HELPERS,
    choose_language,
    date_locale,
    language_of_locale,
)
from lti_app.reports.pdf import A4, paper_for, render_pdf
from lti_app.reports.zip_stream import streamed_zip
from lti_app.roster.services import Student, list_students, student_ids_in_course
from lti_app.timezones import local_date
from lti_app.tool.models import MembershipStatus
from lti_app.tool.services import LaunchContext
from lti_app.web import (
    add_nav_item,
    current_launch,
    current_launch_or_none,
    db_session,
    launch_url,
    require_role,
    set_current_launch,
)

LOG = logging.getLogger(__name__)
bp = Blueprint("reports", __name__, url_prefix="/reports")
TEACHER, LEARNER, MENTOR = "teacher", "learner", "mentor"


@bp.record_once
def _register_nav(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    add_nav_item(app, "reports.index", "Family reports", (TEACHER,), order=18)
    add_nav_item(app, "reports.index", "My report", (LEARNER,), order=40)
    add_nav_item(app, "reports.my_reflection", "My reflection", (LEARNER,), order=41)
    add_nav_item(app, "reports.index", "Reports", (MENTOR,), order=10)
    # A parent's (Canvas observer's) launch lands on the family report: what families see.
    app.extensions.setdefault("lti_app.home_renderers", {})[MENTOR] = render_mentor_home


def _mentees(
    ctx: LaunchContext, context_id: int, *, include_inactive: bool = False
) -> list[Student]:
    """The students of this course the launch names as observed (`role_scope_mentor`): a
    parent's children, or the sibling a student also observes; with `include_inactive`, also
    those no longer active in the course."""
    subs = ctx.launch.mentees or []
    if not subs:
        return []
    return list_students(
        db_session(), context_id=context_id, subs=subs, include_inactive=include_inactive
    )


def render_mentor_home(ctx: LaunchContext) -> str:
    set_current_launch(ctx)
    if not ctx.launch.mentees:
        # Canvas names an observer's students only to tools at privacy level Public
        # (jwt_message.rb add_mentorship_claims!); Pathways registers at Name only.
        LOG.info(
            "mentor launch names no students platform=%s context=%s",
            ctx.launch.platform_id,
            ctx.launch.context_id,
        )
    return _mentor_page(ctx)


def _mentor_page(ctx: LaunchContext) -> str:
    """One student: their report; several: the list; none: why there is nothing to show."""
    context_id = _course(ctx)
    named = _mentees(ctx, context_id, include_inactive=True)
    students = [s for s in named if s.status is MembershipStatus.ACTIVE]
    # The LMS may still name a child whose membership here has ended (the roster saw them
    # leave while the parent's link to them remains): the parent is told they left, not that
    # their report is coming, and a parent of two is not taken silently to the other's report.
    left = [s for s in named if s.status is not MembershipStatus.ACTIVE]
    if len(students) == 1 and not left:
        return _student_report_page(ctx, context_id, students[0].person_id)
    return render_template(
        "reports/mentor.html",
        title="Reports",
        students=students,
        left=left,
        # Students named whom Pathways does not know as learners here (never launched and
        # no roster sync yet, or of another course): the parent needs another answer than
        # "named nobody".
        named_unknown=len(ctx.launch.mentees or []) > len(named),
        lang=_language(),
    )


def _language() -> str:
    """The language asked for (?lang), else the user's own as the LMS named it at launch, else
    the default: a Spanish-speaking parent lands on the report in Spanish."""
    asked = request.args.get("lang")
    if asked is None:
        asked = language_of_locale(current_launch().launch.locale)
    return choose_language(asked)


def _course(ctx: LaunchContext) -> int:
    if ctx.context is None:
        raise PermissionDeniedError("Open Pathways from a course to see this page.")
    return ctx.context.id


def _authorize(person_id: int) -> tuple[LaunchContext, int]:
    """The course, if this launch may read this student's report: their teacher, themself, or
    someone the launch says observes them (a parent, or a student observing a sibling)."""
    ctx = current_launch()
    context_id = _course(ctx)
    if ctx.launch.role == TEACHER:
        known = student_ids_in_course(db_session(), context_id=context_id, person_ids=[person_id])
        if person_id not in known:
            raise NotFoundError("That student is not in this course.")
    elif ctx.launch.role == LEARNER:
        # Canvas lets one user be a student and an observer (of a sibling) in one course;
        # the launch then says Learner, and names the sibling in `role_scope_mentor`.
        if person_id != ctx.person.id and person_id not in {
            s.person_id for s in _mentees(ctx, context_id)
        }:
            raise PermissionDeniedError("You can see only your own report.")
    elif ctx.launch.role == MENTOR:
        if person_id not in {s.person_id for s in _mentees(ctx, context_id)}:
            raise PermissionDeniedError(
                "You can see only the reports of the students the LMS lists for you in this course."
            )
    else:
        raise PermissionDeniedError("This page is not available to you in this course.")
    return ctx, context_id


def _course_title(ctx: LaunchContext) -> str:
    context = ctx.context
    return (context.title or context.label) if context else ""


def _render(template: str, report: services.FamilyReport, lang: str, **extra: object) -> str:
    g.report_language = lang
    launch = current_launch_or_none()
    g.report_date_locale = date_locale(lang, launch.launch.locale if launch else None)
    now = utcnow()
    with force_locale(lang):
        return render_template(
            template,
            report=report,
            lang=lang,
            page_lang=lang,
            languages=LANGUAGES,
            now=now,
            # The course's date decides an overdue goal: after 5 pm in Los Angeles, UTC is
            # already on the next day and a goal due today would read "Overdue".
            today=local_date(now, course_zone()),
            level_bands={lv.name: level_band(lv.points, report.levels) for lv in report.levels},
            **TEMPLATE_HELPERS,
            **extra,
        )


def _report(ctx: LaunchContext, context_id: int, person_id: int) -> services.FamilyReport:
    return services.family_report(
        db_session(), context_id=context_id, person_id=person_id, course_title=_course_title(ctx)
    )


def _filename(report: services.FamilyReport, lang: str, *, ascii_only: bool = False) -> str:
    name = file_name_part(report.student_name, ascii_only=ascii_only, fallback="student")
    return f"report-{name}-{report.person_id}-{lang}.pdf"


def _attachment(report: services.FamilyReport, lang: str) -> str:
    """Content-Disposition naming the file after the student."""
    return attachment(_filename(report, lang, ascii_only=True), _filename(report, lang))


def pdf_bytes(report: services.FamilyReport, lang: str, paper: str = A4) -> bytes:
    """The PDF of one report, from the same body the page shows."""
    missing = unprintable("".join(strings_in(report)))
    if missing:
        # Count only: the letters are a student's name or words.
        LOG.warning("family report PDF with %d letters no installed font has", len(missing))
    return render_pdf(_render("reports/family_pdf.html", report, lang), paper)


def _viewer_paper() -> str:
    """Letter for a viewer in the US, Canada, Mexico... and A4 elsewhere: by the locale the LMS
    gave with the launch (en-US, fr-CA, Moodle's es_mx), else by the languages their browser
    asks for (a bare "en" names no country)."""
    locale = current_launch().launch.locale
    browser = (tag for tag, _quality in request.accept_languages)
    return paper_for(chain([locale] if locale else [], browser))


@bp.get("/")
@require_role(TEACHER, LEARNER, MENTOR)
def index() -> str | Response:
    """Teachers: every student's report and the class set; students: their own report;
    mentors: the reports of their students."""
    ctx = current_launch()
    context_id = _course(ctx)
    if ctx.launch.role == LEARNER:
        return redirect(launch_url("reports.student_report", person_id=ctx.person.id), 303)
    if ctx.launch.role == MENTOR:
        return _mentor_page(ctx)
    students = list_students(db_session(), context_id=context_id)
    return render_template(
        "reports/index.html",
        title="Family reports",
        students=students,
        unprintable_letters=unprintable("".join(s.name for s in students)),
        languages=LANGUAGES,
        lang=_language(),
    )


@bp.get("/students/<int:person_id>")
def student_report(person_id: int) -> str:
    """The family report page, printable, in the chosen language."""
    ctx, context_id = _authorize(person_id)
    return _student_report_page(ctx, context_id, person_id)


def _student_report_page(ctx: LaunchContext, context_id: int, person_id: int) -> str:
    lang = _language()
    report = _report(ctx, context_id, person_id)
    is_teacher = ctx.launch.role == TEACHER
    # The teacher, and the student about to download their own PDF (an emoji in a goal or a
    # reflection prints as an empty box where no emoji font is installed), are told.
    warned = ctx.launch.role in (TEACHER, LEARNER)
    is_student = ctx.launch.role == LEARNER
    # A student who also observes a sibling here moves between the two reports.
    followed = _mentees(ctx, context_id) if is_student else []
    return _render(
        "reports/family.html",
        report,
        lang,
        is_teacher=is_teacher,
        unprintable_letters=unprintable("".join(strings_in(report))) if warned else "",
        my_report_id=ctx.person.id if is_student and person_id != ctx.person.id else None,
        also_following=[s for s in followed if s.person_id not in (person_id, ctx.person.id)],
    )


@bp.get("/students/<int:person_id>/report.pdf")
def student_pdf(person_id: int) -> Response:
    """The family report as a PDF download."""
    ctx, context_id = _authorize(person_id)
    lang = _language()
    report = _report(ctx, context_id, person_id)
    paper = _viewer_paper()
    release_before_slow_work(db_session())
    return Response(
        pdf_bytes(report, lang, paper),
        mimetype="application/pdf",
        headers={
            "Content-Disposition": _attachment(report, lang),
            "Cache-Control": "private, no-store",
        },
    )


def _class_zip_chunks(
    context_id: int, course_title: str, person_ids: list[int], lang: str, paper: str
) -> Iterator[bytes]:
    """The ZIP of every report, one student's PDF at a time (memory holds one PDF)."""
    session = db_session()

    def pdfs() -> Iterator[tuple[str, bytes]]:
        for person_id in person_ids:
            report = services.family_report(
                session, context_id=context_id, person_id=person_id, course_title=course_title
            )
            release_before_slow_work(session)  # a class's PDFs take a minute
            yield _filename(report, lang), pdf_bytes(report, lang, paper)

    return streamed_zip(pdfs())


def _aborting_on_error(chunks: Iterator[bytes], total: int) -> Iterator[bytes]:
    """Pass the chunks on; on an error, log it and let it end the response unfinished, so the
    browser shows a failed download instead of a complete-looking, shorter ZIP."""
    sent = 0
    try:
        for chunk in chunks:
            yield chunk
            sent += 1
    except Exception:
        LOG.exception(
            "class ZIP stopped rid=%s after %d of %d reports; the download is cut off",
            request_id(),
            sent,
            total,
        )
        raise


@bp.get("/class.zip")
@require_role(TEACHER)
def class_zip() -> Response:
    """One PDF per active student of the course, in a ZIP that streams as the PDFs are made
    (a class of a hundred takes longer than a proxy waits for a first byte)."""
    ctx = current_launch()
    context_id = _course(ctx)
    lang = _language()
    person_ids = [s.person_id for s in list_students(db_session(), context_id=context_id)]
    chunks = _class_zip_chunks(context_id, _course_title(ctx), person_ids, lang, _viewer_paper())
    # The first report is made before answering: a failure there (fonts, WeasyPrint) is the
    # usual error page with its request id, not a broken download.
    first = next(chunks)
    return Response(
        stream_with_context(_aborting_on_error(chain([first], chunks), len(person_ids))),
        mimetype="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="family-reports-{lang}.zip"',
            "Cache-Control": "private, no-store",
            # nginx would otherwise gather the whole ZIP before passing any of it on.
            "X-Accel-Buffering": "no",
        },
    )


@bp.route("/reflection", methods=["GET", "POST"])
@require_role(LEARNER)
def my_reflection() -> str | Response:
    """The student writes what they want their family to read about their learning."""
    ctx = current_launch()
    context_id = _course(ctx)
    session = db_session()
    error = ""
    if request.method == "POST":
        text = request.form.get("reflection", "")
        try:
            services.save_reflection(
                session, context_id=context_id, person_id=ctx.person.id, text=text
            )
        except services.InvalidReflectionError as err:
            error = str(err)
        else:
            session.commit()
            return redirect(launch_url("reports.my_reflection", saved=1), 303)
    else:
        text = services.get_reflection(session, context_id=context_id, person_id=ctx.person.id)
    return render_template(
        "reports/reflection.html",
        title="My reflection",
        text=text,
        error=error,
        saved=request.args.get("saved") == "1",
    )
