"""Which LMS hosts Pathways may reach when private networks are closed to strangers.

A platform registered through the public /lti/register page chose every address Pathways
later calls: its key set, its token endpoint, and, in each launch, its roster and gradebook.
With `registration_private_hosts` off, those must stay on the public internet when each
connection opens, not only when the registration was checked (a host's DNS can be pointed
inside the school's network afterwards, and launch claims are never checked at all). A
platform an operator registered by hand may live on the school's own network; its addresses
stay reachable, on the ports the operator named.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.db import Database
from lti_app.http import AddressPolicy
from lti_app.registration.models import PlatformRegistration, RegistrationMethod
from lti_app.settings import Settings
from lti_app.tool.models import Platform

_DEFAULT_PORTS = {"http": 80, "https": 443}


def outbound_policy(settings: Settings, database: Database) -> AddressPolicy:
    """The policy for every connection to an LMS (key sets, tokens, roster, scores)."""

    def operator_origins() -> frozenset[tuple[str, int]]:
        with database.session_factory() as session:
            return operator_named_origins(session)

    return AddressPolicy(
        private_allowed=settings.registration_private_hosts, operator_origins=operator_origins
    )


def operator_named_origins(session: Session) -> frozenset[tuple[str, int]]:
    """(host, port) of every address of platforms registered by hand (CLI or console)."""
    rows = session.execute(
        select(
            Platform.issuer,
            Platform.auth_login_url,
            Platform.token_url,
            Platform.token_audience,
            Platform.jwks_url,
        )
        .outerjoin(PlatformRegistration, PlatformRegistration.platform_id == Platform.id)
        .where(
            (PlatformRegistration.id.is_(None))
            | (PlatformRegistration.method != RegistrationMethod.DYNAMIC)
        )
    )
    origins = set()
    for row in rows:
        for url in row:
            origin = _host_and_port(url or "")
            if origin is not None:
                origins.add(origin)
    return frozenset(origins)


def _host_and_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.hostname.rstrip(".").lower(), port
