"""What a fake LMS's tests read off Pathways' pages: the home, the deep-linking picker, and
the signed answer the picker posts back (shared by the Canvas- and Moodle-shaped tests)."""

from __future__ import annotations

from lti_app.demo.browser import HtmlForm, parse_forms, submit_form
from tests.conftest import Launched


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


def submit_picks(launched: Launched, *, gradebook: bool, score_maximum: str = "10") -> HtmlForm:
    """Pick the Pathways home in the picker; the auto-post form that carries the JWT back."""
    form = picker_form(launched)
    form.fields["item"] = "home"
    if gradebook:
        form.fields["gradebook"] = "on"
        form.fields["score_maximum"] = score_maximum
    else:
        form.fields.pop("gradebook", None)
    autopost = submit_form(launched.client, form)
    assert autopost.status_code == 200, autopost.text[:2000]
    (back,) = parse_forms(autopost.text, str(autopost.url))
    return back
