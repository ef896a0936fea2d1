"""Pathways: a personalized-learning LTI 1.3 tool."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect
from gunicorn.errors import AppImportError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from lti_app import errors
from lti_app.db import DATABASE_ID_MAX, Database
from lti_app.http import AddressPolicy, make_guarded_http_client, make_http_client
from lti_app.logs import configure_logging
from lti_app.registration.reach import outbound_policy
from lti_app.settings import Settings, SettingsError, load_settings, parse_forwarded_allow_ips
from lti_app.tool.jwks import JwksCache
from lti_app.tool.key_checks import start_up_keyring
from lti_app.tool.keys import ToolKeyError

csrf = CSRFProtect()


class StartUpError(SettingsError, AppImportError):  # type: ignore[misc]
    """A setting keeps Pathways from starting. gunicorn prints an AppImportError as its message
    alone and stops (gunicorn/arbiter.py, spawn_worker); any other error is a traceback from
    every worker, which `gunicorn 'lti_app:create_app()'` would show an operator."""


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in every route: a number past any row's id is a 404, not a database error."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", DATABASE_ID_MAX)
        super().__init__(url_map, *args, **kwargs)


# Everything the pages need comes from Pathways itself; the LMS (any origin) may frame us.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "style-src": "'self'",
    "script-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "*",
}


class TrustedProxyFix:
    """ProxyFix only for requests from a configured proxy: anyone else's X-Forwarded-* is
    ignored, so a forged X-Forwarded-Host cannot change the URLs Pathways gives out."""

    def __init__(self, app: Any, trusted: str) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1)
        self.networks = parse_forwarded_allow_ips(trusted)

    def is_trusted(self, peer: str) -> bool:
        if self.networks is None:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            # Not an IP address: gunicorn bound to a unix socket, which only processes on this
            # host (the proxy) can reach; gunicorn trusts such a peer too (HeaderPolicy).
            return True
        return any(address in network for network in self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.is_trusted(environ.get("REMOTE_ADDR", "")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def _operator_pages_not_framable(response: Response) -> Response:
    """The admin console opened by an LMS launch lives in the LMS frame, also when its launch
    token has expired; the operator's sign-in and console are framed by no one."""
    from lti_app.admin.views import may_be_framed  # views load with the app (create_app)

    if request.blueprint == "admin" and g.get("_launch_ctx") is None and not may_be_framed():
        csp = response.headers.get("Content-Security-Policy", "")
        response.headers["Content-Security-Policy"] = re.sub(
            r"frame-ancestors [^;]*", "frame-ancestors 'none'", csp
        )
        response.headers["X-Frame-Options"] = "DENY"
    return response


def create_app(settings: Settings | None = None) -> Flask:
    """Build a configured app. Tests pass `settings`; servers read the environment."""
    try:
        settings = settings or load_settings()
    except SettingsError as err:
        raise StartUpError(str(err)) from err
    configure_logging(settings.log_level)
    app = Flask(__name__, instance_path=str(Path(settings.instance_path).resolve()))
    app.url_map.converters["int"] = DatabaseIdConverter  # before any route is added
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="pathways_session",
        WTF_CSRF_TIME_LIMIT=None,  # the launch token already limits a session's life
        WTF_CSRF_SSL_STRICT=False,  # the Referer of a framed page is the LMS, not us
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,
        # Flask caps each text field of a multipart form at 500 kB by default: a pasted
        # framework (up to 2,000,000 characters) in the import form, which has a file field, was
        # dropped.
        MAX_FORM_MEMORY_SIZE=8 * 1024 * 1024,
    )
    app.wsgi_app = TrustedProxyFix(  # type: ignore[method-assign]
        app.wsgi_app, settings.forwarded_allow_ips
    )
    app.extensions["lti_app.settings"] = settings
    database = Database(settings.effective_database_url)
    app.extensions["lti_app.db"] = database
    try:
        # One query per process: `gunicorn 'lti_app:create_app()'` and the demo start here
        # without `lti-app serve`'s checks.
        app.extensions["lti_app.keyring"] = start_up_keyring(settings, database)
    except ToolKeyError as err:
        database.dispose()
        raise StartUpError(str(err)) from err
    policy = outbound_policy(settings, database)
    app.extensions["lti_app.address_policy"] = policy
    http = make_http_client(settings, policy)
    app.extensions["lti_app.http"] = http
    # The public registration page fetches from whatever LMS address a visitor names.
    app.extensions["lti_app.registration_http"] = make_guarded_http_client(
        settings, policy=AddressPolicy(private_allowed=settings.registration_private_hosts)
    )
    app.extensions["lti_app.jwks"] = JwksCache(
        # Fetched while a launch waits: a key set that drips its headers must not hold it.
        make_guarded_http_client(settings, policy=policy),
        min_ttl=settings.jwks_min_ttl,
        max_ttl=settings.jwks_max_ttl,
        default_ttl=settings.jwks_default_ttl,
    )
    # Registered before Talisman, so it runs after Talisman has set its headers.
    app.after_request(_operator_pages_not_framable)
    Talisman(
        app,
        force_https=False,  # TLS ends at the proxy; ProxyFix gives us the scheme
        frame_options=None,  # X-Frame-Options would forbid the LMS frame
        strict_transport_security=settings.env == "production",
        content_security_policy=CONTENT_SECURITY_POLICY,
        session_cookie_secure=settings.secure_cookies,
        session_cookie_samesite="None" if settings.secure_cookies else "Lax",
        referrer_policy="strict-origin-when-cross-origin",
    )
    app.config["SESSION_COOKIE_PARTITIONED"] = settings.secure_cookies
    csrf.init_app(app)

    from lti_app import display, health, history, web
    from lti_app.admin import views as admin_views
    from lti_app.competencies import views as competencies_views
    from lti_app.courses import views as courses_views
    from lti_app.grades import views as grades_views
    from lti_app.insights import views as insights_views
    from lti_app.learners import views as learners_views
    from lti_app.mastery import views as mastery_views
    from lti_app.pathways import views as pathways_views
    from lti_app.progress import views as progress_views
    from lti_app.registration import views as registration_views
    from lti_app.reports import views as reports_views
    from lti_app.reports.i18n import init_babel
    from lti_app.roster import views as roster_views
    from lti_app.tool import login_views as tool_login_views
    from lti_app.tool import views as tool_views

    web.init_web(app)
    history.init_history(app)
    display.init_display(app)
    init_babel(app)
    errors.register_error_handlers(app)
    app.register_blueprint(tool_views.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(registration_views.bp)
    app.register_blueprint(admin_views.bp)
    app.register_blueprint(roster_views.bp)
    app.register_blueprint(grades_views.bp)
    app.register_blueprint(courses_views.bp)
    app.register_blueprint(competencies_views.bp)
    app.register_blueprint(mastery_views.bp)
    app.register_blueprint(pathways_views.bp)
    app.register_blueprint(progress_views.bp)
    app.register_blueprint(learners_views.bp)
    app.register_blueprint(insights_views.bp)
    app.register_blueprint(reports_views.bp)
    # The LMS posts these cross-site; state, nonce and the signed JWT protect them instead.
    csrf.exempt(tool_login_views.login)
    csrf.exempt(tool_views.launch)
    return app
