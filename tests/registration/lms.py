"""A test LMS implementing the platform side of LTI Dynamic Registration 1.0, on loopback.

Two flavours: "canvas" (the configuration GET needs `Authorization: Bearer <token>`; placements
listed as Canvas names; `$Canvas.*` variables) and "moodle" (configuration open to GET; the
registered tool stays "pending" until an admin activates it; deep linking offered in
`ContentArea`). It also signs OIDC launches, so a registration can be used end to end.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

from lti_app.tool.keys import public_jwk

TOOL_CONFIG = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIG = "https://purl.imsglobal.org/spec/lti-platform-configuration"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
ADMIN_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
TEACHER_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"


_PORTS_HANDED_OUT: set[int] = set()
"""An LMS's issuer is its base URL: a port used again in the same run would make a later test's
LMS the issuer of an earlier test's registrations."""


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    while server.server_port in _PORTS_HANDED_OUT:
        fresh = make_server("127.0.0.1", 0, app, threaded=True)
        server.server_close()
        server = fresh
    _PORTS_HANDED_OUT.add(server.server_port)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@dataclass
class RegisteredTool:
    client_id: str
    deployment_id: str
    """What launches carry; "" until the tool is installed (`answers_deployment_id`)."""
    body: dict[str, Any]
    status: str
    """"active", or "pending" (Moodle, until the admin activates the tool)."""


@dataclass
class PlatformDouble:
    flavour: str
    base_url: str = ""
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    answer: Any = None
    """When set, (status, body or text) to answer the registration POST with instead."""
    answers_deployment_id: bool = True
    """False: answer as Canvas does, with no deployment_id. Canvas makes the deployment when
    its admin enables the tool, after the tool's POST (`install`)."""
    config_overrides: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, RegisteredTool] = field(default_factory=dict)
    config_requests: list[dict[str, str]] = field(default_factory=list)
    registration_requests: list[dict[str, str]] = field(default_factory=list)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    @property
    def config_path(self) -> str:
        if self.flavour == "moodle":
            return "/mod/lti/openid-configuration.php"
        return "/api/lti/security/openid-configuration"

    @property
    def paths(self) -> dict[str, str]:
        if self.flavour == "moodle":
            return {
                "authorization_endpoint": "/mod/lti/auth.php",
                "token_endpoint": "/mod/lti/token.php",
                "jwks_uri": "/mod/lti/certs.php",
                "registration_endpoint": "/mod/lti/openid-registration.php",
            }
        return {
            "authorization_endpoint": "/api/lti/authorize_redirect",
            "token_endpoint": "/login/oauth2/token",
            "jwks_uri": "/api/lti/security/jwks",
            "registration_endpoint": "/api/lti/registrations",
        }

    @property
    def config_url(self) -> str:
        return self.base_url + self.config_path

    def start_again(self) -> None:
        """The admin starts another registration: Canvas issues a new registration token each
        time (and accepts each for an hour); Moodle's is single-use anyway."""
        self.token = secrets.token_urlsafe(24)

    def registration_url(self, tool_register_url: str) -> str:
        """What the LMS opens: the tool's registration URL with the two parameters."""
        query = {"openid_configuration": self.config_url, "registration_token": self.token}
        return tool_register_url + "?" + urlencode(query)

    def openid_configuration(self) -> dict[str, Any]:
        base = self.base_url
        if self.flavour == "moodle":
            lti: dict[str, Any] = {
                "product_family_code": "moodle",
                "version": "4.4",
                "messages_supported": [
                    {"type": "LtiResourceLinkRequest"},
                    {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]},
                ],
                "variables": ["basic-lti-launch-request", "Context.id", "User.id"],
            }
            endpoints = {name: base + path for name, path in self.paths.items()}
        else:
            lti = {
                "product_family_code": "canvas",
                "version": "OpenSource",
                "messages_supported": [
                    {
                        "type": "LtiResourceLinkRequest",
                        "placements": [
                            "https://canvas.instructure.com/lti/account_navigation",
                            "course_navigation",
                        ],
                    },
                    {
                        "type": "LtiDeepLinkingRequest",
                        "placements": ["link_selection", "assignment_selection", "editor_button"],
                    },
                ],
                "variables": ["Canvas.user.id", "Canvas.course.id", "Canvas.account.id"],
                "https://canvas.instructure.com/lti/account_name": "Test School",
            }
            endpoints = {name: base + path for name, path in self.paths.items()}
            # As Canvas's security_controller.rb: Lti::Oidc.auth_domain, a bare host.
            endpoints["authorization_server"] = urlsplit(base).netloc
        config = {
            "issuer": base,
            **endpoints,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "scopes_supported": [
                "openid",
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
            ],
            "response_types_supported": ["id_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
            "subject_types_supported": ["public"],
            PLATFORM_CONFIG: lti,
        }
        config.update(self.config_overrides)
        return config

    def activate(self, client_id: str) -> None:
        self.tools[client_id].status = "active"

    def install(self, client_id: str) -> str:
        """Install the tool in an account or course, as Canvas's Enable does: a new
        deployment, which the tool's launches from now on carry."""
        tool = self.tools[client_id]
        tool.deployment_id = f"{secrets.randbelow(1000)}:{secrets.token_hex(8)}"
        return tool.deployment_id

    def app(self) -> Flask:
        app = Flask(f"test-lms-{self.flavour}")

        def bearer() -> str:
            header = request.headers.get("Authorization", "")
            return header[7:] if header.startswith("Bearer ") else ""

        @app.get(self.config_path)
        def openid_configuration() -> Response | tuple[Response, int]:
            self.config_requests.append(dict(request.headers))
            if self.flavour == "canvas" and bearer() != self.token:
                return jsonify({"errors": [{"message": "Invalid registration token"}]}), 401
            return jsonify(self.openid_configuration())

        def register() -> Response | tuple[Any, int]:
            self.registration_requests.append(dict(request.headers))
            if bearer() != self.token:
                return jsonify({"error": "invalid_token"}), 401
            if self.answer is not None:
                status, body = self.answer
                if isinstance(body, str):
                    return Response(body, status=status, content_type="text/html"), status
                return jsonify(body), status
            body = request.get_json(force=True)
            problems = check_client_registration(body)
            if problems:
                return jsonify(
                    {"error": "invalid_client_metadata", "error_description": "; ".join(problems)}
                ), 400
            client_id = f"{self.flavour}-{secrets.token_hex(4)}"
            deployment_id = str(len(self.tools) + 1) if self.answers_deployment_id else ""
            self.tools[client_id] = RegisteredTool(
                client_id,
                deployment_id,
                body,
                "pending" if self.flavour == "moodle" else "active",
            )
            if self.flavour == "moodle":
                self.token = secrets.token_urlsafe(24)  # Moodle's token is single-use
            answer = dict(body)
            answer["client_id"] = client_id
            answer[TOOL_CONFIG] = dict(body[TOOL_CONFIG])
            if deployment_id:
                answer[TOOL_CONFIG]["deployment_id"] = deployment_id
            return jsonify(answer), 200

        app.add_url_rule(
            self.paths["registration_endpoint"], "register", register, methods=["POST"]
        )

        @app.get(self.paths["jwks_uri"])
        def jwks() -> Response:
            return jsonify({"keys": [public_jwk(self.key.public_key(), "lms-key-1")]})

        @app.get(self.paths["authorization_endpoint"])
        def authorize() -> Response | tuple[str, int]:
            return self._authorize()

        return app

    def _authorize(self) -> Response | tuple[str, int]:
        args = request.args
        tool = self.tools.get(args.get("client_id", ""))
        if tool is None:
            return "unknown client_id", 400
        if tool.status != "active":
            return "This tool is pending: an administrator must activate it.", 403
        if not tool.deployment_id:
            return "This tool is not installed anywhere yet.", 403
        if args.get("redirect_uri") not in tool.body["redirect_uris"]:
            return "redirect_uri is not registered", 400
        hint = args.get("login_hint", "admin")
        roles = [ADMIN_ROLE] if hint == "admin" else [TEACHER_ROLE]
        now = int(time.time())
        claims = {
            "iss": self.base_url,
            "aud": tool.client_id,
            "sub": f"user-{hint}",
            "iat": now,
            "exp": now + 300,
            "nonce": args.get("nonce", ""),
            "name": f"Test {hint}",
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": tool.deployment_id,
            CLAIM + "target_link_uri": tool.body[TOOL_CONFIG]["target_link_uri"],
            CLAIM + "resource_link": {"id": "admin-nav"},
            CLAIM + "roles": roles,
            CLAIM + "context": {"id": "account-1", "title": "Test School"},
        }
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "lms-key-1"})
        # The test posts these fields to redirect_uri, as the LMS's auto-submitting form would.
        return jsonify({"id_token": token, "state": args.get("state", "")})


def check_client_registration(body: Any) -> list[str]:
    """The checks Canvas and Moodle make on a client registration (LTI-DR 3.3)."""
    if not isinstance(body, dict):
        return ["body is not an object"]
    problems = []
    if body.get("application_type") != "web":
        problems.append("application_type must be web")
    grants = body.get("grant_types") or []
    if not {"implicit", "client_credentials"} <= set(grants):
        problems.append("grant_types must include implicit and client_credentials")
    if "id_token" not in (body.get("response_types") or []):
        problems.append("response_types must include id_token")
    if not body.get("redirect_uris"):
        problems.append("redirect_uris is required")
    for name in ("initiate_login_uri", "client_name", "jwks_uri"):
        if not isinstance(body.get(name), str) or not body[name]:
            problems.append(f"{name} is required")
    if body.get("token_endpoint_auth_method") != "private_key_jwt":
        problems.append("token_endpoint_auth_method must be private_key_jwt")
    tool = body.get(TOOL_CONFIG)
    if not isinstance(tool, dict):
        return [*problems, f"{TOOL_CONFIG} is required"]
    for name in ("domain", "messages", "claims"):
        if name not in tool:
            problems.append(f"{TOOL_CONFIG}.{name} is required")
    if "://" in str(tool.get("domain", "")):
        problems.append("domain must not include the protocol")
    for message in tool.get("messages", []):
        if message.get("type") not in {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}:
            problems.append(f"unknown message type {message.get('type')}")
    return problems
