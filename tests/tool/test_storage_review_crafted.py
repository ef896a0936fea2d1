"""LTI Platform Storage and the login's browser binding, reviewed against the 1EdTech client
side postMessages specs (https://www.imsglobal.org/spec/lti-cs-oidc/v0p1) and Canvas
(ui/shared/lti/jquery/*, app/controllers/lti/platform_storage_controller.rb).

Launches go through the demo LMS over loopback HTTP, each browser an httpx client of its own.
"""

from __future__ import annotations

import html
import re

import httpx

from lti_app.demo.browser import AUTO_POST_FORM_ID, HtmlForm, parse_forms
from tests.conftest import Launched, LtiActions
from tests.tool.test_launch import STUDENT, assert_refused

ATTACKER_SITE = "https://attacker.example"


def _storage_login(lti: LtiActions, browser: httpx.Client) -> tuple[str, HtmlForm]:
    """A login with `lti_storage_target` in `browser`, up to the LMS's auto-post form.

    Returns the browser secret the storage page hands to the platform (anyone can read it
    in their own browser) and the form that would carry the id_token to Pathways.
    """
    spec = lti.spec(STUDENT, storage_target="_parent")
    page = browser.get(lti.platform.login_url(spec))
    assert page.status_code == 200, page.text[:2000]
    data = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', page.text))
    assert data["mode"] == "put"
    auth = browser.get(html.unescape(data["auth-url"]))
    (form,) = [f for f in parse_forms(auth.text, str(auth.url)) if f.id == AUTO_POST_FORM_ID]
    return html.unescape(data["value"]), form


def test_a_storage_secret_posted_from_another_site_does_not_open_pathways_in_that_browser(
    lti: LtiActions,
) -> None:
    # Mallory starts a launch in her own browser and stops before it reaches Pathways: she
    # holds her id_token, its state and the secret her browser put in platform storage.
    secret, form = _storage_login(lti, lti.browser())
    # Her page then makes Alice's browser post all three to Pathways (login CSRF). Were it
    # taken, Alice would work in Pathways as Mallory: her evidence and choices Mallory's.
    alice = lti.browser()
    response = alice.post(
        form.action,
        data={**form.fields, "lti_storage_secret": secret},
        headers={"Origin": ATTACKER_SITE},
    )
    assert_refused(Launched(response, alice), 400, "different browser window")
    assert 'name="lt"' not in response.text  # no launch token: Pathways did not open
