"""`/lti/canvas.json` has the fields Canvas requires, from the source Dynamic Registration uses."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from lti_app.registration.configuration import (
    ToolUrls,
    canvas_configuration,
    client_registration,
)
from lti_app.registration.platform_configuration import parse_platform_configuration

# From Canvas's Schemas::Lti::ToolConfiguration (lib/schemas/lti/tool_configuration.rb).
CANVAS_REQUIRED = ("title", "description", "target_link_uri", "oidc_initiation_url")
CANVAS_PLACEMENTS = {
    "account_navigation",
    "assignment_selection",
    "course_navigation",
    "editor_button",
    "link_selection",
    "resource_selection",
    "user_navigation",
}
CANVAS_PRIVACY_LEVELS = {"public", "email_only", "name_only", "anonymous"}
CANVAS_LTI_SCOPES = {
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
}


def fetch(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/lti/canvas.json", base_url="https://pathways.example")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


def test_canvas_json_has_every_field_canvas_requires(tool_app: Flask) -> None:
    config = fetch(tool_app)
    for name in CANVAS_REQUIRED:
        assert isinstance(config[name], str), name
        assert config[name], name
    assert config["public_jwk_url"].startswith("https://pathways.example/")
    assert config["oidc_initiation_url"] == "https://pathways.example/lti/login"
    assert config["target_link_uri"] == "https://pathways.example/lti/launch"
    assert set(config["scopes"]) <= CANVAS_LTI_SCOPES
    assert config["scopes"]
    assert all(v.startswith(("$Canvas.", "$Person.")) for v in config["custom_fields"].values())
    assert config["custom_fields"]["canvas_user_id"] == "$Canvas.user.id"
    # The zone a teacher's launch sets for the course's dates (tool.services._lms_time_zone).
    assert config["custom_fields"]["timezone"] == "$Person.address.timezone"
    [extension] = config["extensions"]
    assert extension["platform"] == "canvas.instructure.com"
    assert extension["privacy_level"] in CANVAS_PRIVACY_LEVELS
    assert extension["domain"] == "pathways.example"
    placements = extension["settings"]["placements"]
    for placement in placements:
        assert placement["placement"] in CANVAS_PLACEMENTS
        assert placement["message_type"] in {"LtiDeepLinkingRequest", "LtiResourceLinkRequest"}
        assert placement["target_link_uri"] == config["target_link_uri"]
        assert placement["text"]
    by_name = {p["placement"]: p for p in placements}
    assert by_name["link_selection"]["message_type"] == "LtiDeepLinkingRequest"
    assert by_name["assignment_selection"]["message_type"] == "LtiDeepLinkingRequest"
    assert by_name["course_navigation"]["message_type"] == "LtiResourceLinkRequest"
    assert by_name["course_navigation"]["visibility"] == "admins"  # teachers, not students


def test_canvas_json_and_dynamic_registration_agree(tool_app: Flask) -> None:
    canvas = fetch(tool_app)
    urls = ToolUrls(
        login=canvas["oidc_initiation_url"],
        launch=canvas["target_link_uri"],
        jwks=canvas["public_jwk_url"],
    )
    assert canvas_configuration(urls) == canvas  # the view adds nothing of its own
    platform = parse_platform_configuration(
        "https://canvas.example/api/lti/security/openid-configuration",
        {
            "issuer": "https://canvas.example",
            "authorization_endpoint": "https://canvas.example/auth",
            "token_endpoint": "https://canvas.example/token",
            "jwks_uri": "https://canvas.example/jwks",
            "registration_endpoint": "https://canvas.example/register",
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "messages_supported": [
                    {"type": "LtiResourceLinkRequest"},
                    {"type": "LtiDeepLinkingRequest"},
                ],
                "variables": [
                    "Canvas.user.id",
                    "Canvas.course.id",
                    "Canvas.account.id",
                    "Person.address.timezone",
                ],
            },
        },
        allow_loopback_http=False,
    )
    dynamic = client_registration(urls, platform)
    tool = dynamic["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert dynamic["redirect_uris"] == canvas["redirect_uris"] == [canvas["target_link_uri"]]
    assert dynamic["initiate_login_uri"] == canvas["oidc_initiation_url"]
    assert dynamic["jwks_uri"] == canvas["public_jwk_url"]
    assert dynamic["scope"].split() == canvas["scopes"]
    assert tool["custom_parameters"] == canvas["custom_fields"]
    assert (
        tool["https://canvas.instructure.com/lti/privacy_level"]
        == (canvas["extensions"][0]["privacy_level"])
    )
    assert tool["domain"] == urlsplit(canvas["target_link_uri"]).netloc
    dynamic_placements = {(m["type"], p) for m in tool["messages"] for p in m.get("placements", [])}
    canvas_placements = {
        (p["message_type"], p["placement"])
        for p in canvas["extensions"][0]["settings"]["placements"]
    }
    assert dynamic_placements == canvas_placements


def test_canvas_json_follows_public_url(tool_app: Flask) -> None:
    import dataclasses

    from lti_app import create_app

    settings = dataclasses.replace(
        tool_app.extensions["lti_app.settings"], public_url="https://tool.school.example/"
    )
    app = create_app(settings)
    config = fetch(app)
    assert config["oidc_initiation_url"] == "https://tool.school.example/lti/login"
    app.extensions["lti_app.db"].dispose()
    app.extensions["lti_app.http"].close()
