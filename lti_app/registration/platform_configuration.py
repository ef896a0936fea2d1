"""Read and check what an LMS sends while Pathways registers with it: its OpenID
configuration, the configuration address, the registration token, and names and labels.

No database, no HTTP (check_public_hosts asks only the resolver). What Pathways registers
is in registration.configuration.
Spec: https://www.imsglobal.org/spec/lti-dr/v1p0
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lti_app.http import is_http_url
from lti_app.registration.errors import PlatformRefusedError, RegistrationError

PLATFORM_CONFIG = "https://purl.imsglobal.org/spec/lti-platform-configuration"
CANVAS_ACCOUNT_NAME = "https://canvas.instructure.com/lti/account_name"
RESOURCE_LINK = "LtiResourceLinkRequest"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class PlatformConfiguration:
    """The parts of a platform's OpenID configuration that registration uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    authorization_server: str | None
    product_family_code: str
    version: str
    messages: dict[str, tuple[str, ...] | None]
    """Supported message types, with their placements when the platform lists them."""
    scopes_supported: frozenset[str] | None
    variables: frozenset[str]
    account_name: str = ""
    """Canvas names the school's account; shown in the console (Canvas shares one issuer)."""

    @property
    def display_name(self) -> str:
        family = self.product_family_code or "LMS"
        host = urlsplit(self.issuer).netloc
        return f"{self.account_name} ({family})" if self.account_name else f"{family} {host}"


# RFC 6750's b64token: what a bearer token may be made of (Canvas and Moodle send JWTs).
BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MAX_TOKEN_LENGTH = 4096
MAX_ISSUER_LENGTH = 255
MAX_URL_LENGTH = 1024
"""The lengths of the columns an issuer and the LMS's URLs are kept in (tool.models.Platform)."""


def plain_text(value: Any, limit: int) -> str:
    """A name or label from the LMS as text: numbers as written, no control characters
    (PostgreSQL refuses NUL; the rest only hides or garbles text), trimmed and cut to size.
    Markup stays: it is escaped where it is shown."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    text = "".join(c for c in str(value) if unicodedata.category(c) != "Cc")
    return text.strip()[:limit]


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def _is_url(value: Any, *, allow_loopback_http: bool) -> bool:
    # Stored, an address no request can use would break every launch (and PostgreSQL
    # refuses NUL): the same check as a platform registered by hand (`lti-app platform add`).
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH or not is_http_url(value):
        return False
    parts = urlsplit(value)
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and allow_loopback_http and parts.hostname in LOOPBACK_HOSTS


def check_configuration_url(url: str, *, allow_loopback_http: bool) -> None:
    """Refuse anything but an https URL (http on loopback only when allowed)."""
    if not _is_url(url, allow_loopback_http=allow_loopback_http):
        raise RegistrationError(
            "The LMS gave Pathways a configuration address that is not a secure web address.",
            hint="Start the registration again from the LMS. If it keeps happening, the LMS's "
            "own address must start with https://.",
        )


def check_public_hosts(*urls: str) -> None:
    """Refuse addresses whose host is, or resolves to, an address off the public internet.

    The registration page is public: without this, anyone could have Pathways fetch from (and
    post to) hosts on its own network, such as a cloud's metadata service. A name that does not
    resolve is left to the request itself, which then says the LMS cannot be reached.
    """
    for url in urls:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            found = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError, ValueError):
            continue
        for *_, sockaddr in found:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if not address.is_global:
                raise RegistrationError(
                    f"The LMS's address {host} is on a private network, and this Pathways "
                    "registers only LMSs it reaches on the internet.",
                    hint="If the LMS runs on the school's own network, the Pathways operator "
                    "can allow that with LTI_APP_REGISTRATION_PRIVATE_HOSTS=true.",
                )


def check_registration_token(token: str) -> None:
    """Refuse a token that cannot travel as a bearer token (RFC 6750), before it travels."""
    if token and (len(token) > MAX_TOKEN_LENGTH or not BEARER_TOKEN.fullmatch(token)):
        raise RegistrationError(
            "The registration link from the LMS carries a registration token Pathways cannot "
            "use (it is damaged or far too long).",
            hint="Start the registration again from the LMS; copy the whole link if you "
            "pasted it by hand.",
        )


def configuration_url_to_keep(config_url: str, token: str) -> str:
    """The configuration address without the registration token some LMSs put in it (Canvas:
    `?registration_token=...`): a credential for the LMS's registration API, not a record."""
    parts = urlsplit(config_url)
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key != "registration_token" and not (token and value == token)
    ]
    kept = urlunsplit(parts._replace(query=urlencode(query), fragment=""))
    if token and token in kept:
        kept = kept.replace(token, "")
    return kept[:1024]


def issuer_matches(config_url: str, issuer: str) -> bool:
    """The configuration URL starts with the issuer at a path boundary (LTI-DR 3.5.1)."""
    if not issuer or not config_url.startswith(issuer):
        return False
    rest = config_url[len(issuer) :]
    return issuer.endswith("/") or rest == "" or rest[0] in "/?#"


def parse_platform_configuration(
    config_url: str, body: Any, *, allow_loopback_http: bool
) -> PlatformConfiguration:
    """Check a platform's OpenID configuration and keep what registration needs."""
    if not isinstance(body, dict):
        raise PlatformRefusedError(
            "The LMS's configuration is not a JSON object, so Pathways cannot read it."
        )
    missing = [
        name
        for name in (
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "registration_endpoint",
        )
        if not _is_url(body.get(name), allow_loopback_http=allow_loopback_http)
    ]
    if missing:
        raise PlatformRefusedError(
            "The LMS's configuration lacks a valid " + ", ".join(missing) + ".",
            hint="The LMS may not support LTI Dynamic Registration; register Pathways by hand "
            "(see the admin guide).",
        )
    issuer = str(body["issuer"])
    if len(issuer) > MAX_ISSUER_LENGTH:
        # Any URL may be an issuer, but Pathways keeps issuers in 255 characters (PostgreSQL
        # refuses longer ones): refused only when stored, the LMS had already created the tool.
        raise PlatformRefusedError(
            f"The LMS's issuer is {len(issuer)} characters long; Pathways keeps issuers of at "
            f"most {MAX_ISSUER_LENGTH}.",
            hint="Please tell the Pathways operator this message.",
        )
    if not issuer_matches(config_url, issuer):
        raise PlatformRefusedError(
            f"The LMS says it is {issuer!r}, but its configuration comes from another address.",
            hint="For your safety Pathways only registers with an LMS whose configuration "
            "address starts with its issuer. Start again from the LMS's own admin pages.",
        )
    lti = body.get(PLATFORM_CONFIG)
    if not isinstance(lti, dict):
        raise PlatformRefusedError(
            "The LMS's configuration does not describe its LTI support "
            f"({PLATFORM_CONFIG} is missing)."
        )
    messages: dict[str, tuple[str, ...] | None] = {}
    supported = lti.get("messages_supported")
    for item in supported if isinstance(supported, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            continue
        raw = item.get("placements")
        listed = tuple(_bare(p) for p in raw if isinstance(p, str)) if isinstance(raw, list) else ()
        kind = item["type"]
        if kind in messages and (messages[kind] is None or not listed):
            messages[kind] = None
        else:
            messages[kind] = (messages.get(kind) or ()) + listed if listed else None
    if RESOURCE_LINK not in messages:
        raise PlatformRefusedError(
            "The LMS does not say it can launch tools (LtiResourceLinkRequest is not among its "
            "supported messages)."
        )
    _require_capability(body, "token_endpoint_auth_methods_supported", "private_key_jwt")
    _require_capability(body, "id_token_signing_alg_values_supported", "RS256")
    _require_capability(body, "response_types_supported", "id_token")
    scopes = body.get("scopes_supported")
    server = body.get("authorization_server")
    if (
        isinstance(server, str)
        and server
        and (len(server) > MAX_URL_LENGTH or has_control_characters(server))
    ):
        # It becomes the `aud` of every client assertion for this LMS (and PostgreSQL refuses
        # NUL and over-long values): say so before the LMS creates the tool, not after.
        raise PlatformRefusedError("The LMS's configuration has an unusable authorization_server.")
    variables = lti.get("variables")
    account_name = lti.get(CANVAS_ACCOUNT_NAME)
    return PlatformConfiguration(
        issuer=issuer,
        authorization_endpoint=str(body["authorization_endpoint"]),
        token_endpoint=str(body["token_endpoint"]),
        jwks_uri=str(body["jwks_uri"]),
        registration_endpoint=str(body["registration_endpoint"]),
        authorization_server=server if isinstance(server, str) and server else None,
        product_family_code=plain_text(lti.get("product_family_code"), 64),
        version=plain_text(lti.get("version"), 64),
        messages=messages,
        scopes_supported=(
            frozenset(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else None
        ),
        variables=(
            frozenset(v for v in variables if isinstance(v, str))
            if isinstance(variables, list)
            else frozenset()
        ),
        account_name=plain_text(account_name, 200) if isinstance(account_name, str) else "",
    )


def _require_capability(body: dict[str, Any], name: str, needed: str) -> None:
    offered = body.get(name)
    if isinstance(offered, list) and offered and needed not in offered:
        raise PlatformRefusedError(
            f"The LMS does not support {needed} ({name}), which LTI 1.3 tools need."
        )


def _bare(placement: str) -> str:
    """Canvas may list its placements as URIs (https://canvas.instructure.com/lti/<name>)."""
    prefix = "https://canvas.instructure.com/lti/"
    return placement[len(prefix) :] if placement.startswith(prefix) else placement
