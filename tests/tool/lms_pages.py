"""What a fake LMS's tests read off Pathways' pages: the home, the deep-linking picker, and
the signed answer the picker posts back (shared by the Canvas- and Moodle-shaped tests)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from lti_app.demo.browser import HtmlForm, parse_forms, submit_form
from tests.conftest import Launched

CONTEXT = "https://purl.imsglobal.org/spec/lti/claim/context"


def assert_home(launched: Launched, badge: str, *phrases: str) -> None:
    response = launched.response
    assert response.status_code == 200, response.text[:2000]
    assert "Traceback" not in response.text
    assert f'role-badge">{badge}<' in response.text, response.text[:2000]
    for phrase in phrases:
        assert phrase in response.text, response.text[:2000]


def picker_form(launched: Launched) -> HtmlForm:
    return next(
        f
        for f in parse_forms(launched.text, str(launched.response.url))
        if f.action.endswith("/lti/deep-link")
    )


def submit_picks(launched: Launched, item: str = "home") -> HtmlForm:
    """Pick one item in the picker; the auto-post form that carries the JWT back."""
    form = picker_form(launched)
    form.fields["item"] = item
    autopost = submit_form(launched.client, form)
    assert autopost.status_code == 200, autopost.text[:2000]
    (back,) = parse_forms(autopost.text, str(autopost.url))
    return back


def add_competency(database_url: str, claims: dict[str, Any], code: str = "LS1") -> int:
    """A competency in the course a launch with these claims opened (Pathways has recorded
    the course by then), so the picker offers its mastery column; returns its id."""
    from lti_app.competencies.errors import CompetencyNotFoundError
    from lti_app.competencies.queries import get_competency_by_code
    from lti_app.competencies.services import create_competency
    from lti_app.db import Database
    from lti_app.tool.models import Context, Platform

    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    db = Database(database_url)
    try:
        with db.begin() as s:
            context_id = s.scalar(
                select(Context.id)
                .join(Platform, Platform.id == Context.platform_id)
                .where(
                    Platform.issuer == claims["iss"],
                    Platform.client_id == claims.get("azp", aud[0]),
                    Context.context_id == claims[CONTEXT]["id"],
                )
            )
            assert context_id is not None, "launch the course before adding to it"
            try:
                return get_competency_by_code(s, context_id=context_id, code=code).id
            except CompetencyNotFoundError:
                return create_competency(
                    s, context_id=context_id, code=code, title="Explains how cells divide"
                ).id
    finally:
        db.dispose()
