"""The demo LMS: an LTI 1.3 Advantage platform built on lti1p3platform, with test hooks."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app, g

from lti_app.demo.buttons import rebuild_button_launch
from lti_app.demo.keys import SigningKey, encode_with_tweak
from lti_app.demo.launches import (
    ALL_SCOPES,
    LaunchSpec,
    LaunchTweaks,
    MessageType,
    apply_claim_overrides,
)
from lti_app.demo.lti import DemoOIDCLogin, DemoPlatformConf, DemoRegistration
from lti_app.demo.seed import COURSES, PEOPLE, default_resource_link_id
from lti_app.demo.state import (
    Counters,
    EndpointKind,
    Fault,
    PlatformState,
    ResourceLink,
)
from lti_app.demo.tool_keys import ToolJwksCache

EXTENSION_KEY = "lti_app.demo.platform"
_UNSET: Any = object()


@dataclass(frozen=True)
class PlatformConfig:
    """How the demo platform is registered with the tool, and how it behaves."""

    issuer: str
    """The platform's own base URL (no trailing slash); also its `iss`."""
    tool_login_url: str
    tool_launch_url: str
    tool_jwks_url: str
    client_id: str = "pathways-demo"
    deployment_id: str = "demo-deployment-1"
    extra_redirect_uris: tuple[str, ...] = ()
    delay_ms: int = 0
    """Added before every answer."""
    nrps_page_size: int = 10
    """Default and maximum members per NRPS page (Canvas caps at 50)."""
    ags_page_size: int = 10
    jwks_max_age: int = 300
    token_ttl: int = 3600
    granted_scopes: frozenset[str] = ALL_SCOPES
    """Scopes the token endpoint may grant (Moodle grants only what its admin enabled)."""
    line_item_url_query: str = ""
    """Appended to line item URLs, e.g. "type_id=3", as Moodle does."""
    canvas_line_items: bool = False
    """Line items at Canvas's addresses (/api/lti/courses/<id>/line_items/<id>), by which
    the tool knows an LMS that adds every score's comment to the earlier ones."""
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)

    @property
    def tool_origin(self) -> str:
        """scheme://host:port of the tool, for postMessage origin checks."""
        parts = urlsplit(self.tool_login_url)
        return f"{parts.scheme}://{parts.netloc}"


class DemoPlatform:
    """The platform object: launches, keys, in-memory state, and the hooks tests pull."""

    def __init__(self, config: PlatformConfig, key: SigningKey | None = None) -> None:
        self.config = config
        self.state = PlatformState()
        self.delay_ms = config.delay_ms
        self.granted_scopes = config.granted_scopes
        self.canvas_line_items = config.canvas_line_items
        self.token_refusal: tuple[int, str] | None = None
        """When set, (status, OAuth error code) answered to every token request."""
        self.ags_in_flight_limit: int | None = None
        """When set, gradebook requests beyond this many at once are throttled as Canvas
        does: each request in flight holds a share of the developer key's quota
        (instructure/canvas-lms app/middleware/request_throttle.rb, the pre-flight cost)."""
        self.ags_throttled = 0
        """Gradebook requests refused by `ags_in_flight_limit`."""
        self._ags_in_flight = 0
        self._keys: list[SigningKey] = [key or SigningKey.generate()]
        self._foreign_key: SigningKey | None = None
        self._launches: dict[str, LaunchSpec] = {}
        self._lock = threading.Lock()
        self.tool_jwks = ToolJwksCache(config.tool_jwks_url, on_fetch=self._count_tool_jwks)
        self.registration = DemoRegistration(self._sign_plain, self.public_jwks)
        (
            self.registration.set_iss(config.issuer)
            .set_client_id(config.client_id)
            .set_deployment_id(config.deployment_id)
            .set_launch_url(config.tool_launch_url)
            .set_deeplink_launch_url(config.tool_launch_url)
            .set_oidc_login_url(config.tool_login_url)
            .set_tool_key_set_url(config.tool_jwks_url)
        )
        self.lti_conf = DemoPlatformConf(registration=self.registration)
        for course in COURSES.values():
            link_id = default_resource_link_id(course)
            self.state.resource_links[link_id] = ResourceLink(
                link_id, course.context_id, "Pathways"
            )

    # -- URLs -------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        """Absolute URL of a platform path."""
        return self.config.issuer + path

    @property
    def token_url(self) -> str:
        """The token endpoint; the tool's client assertion must use exactly this as `aud`."""
        return self.url("/token")

    @property
    def redirect_uris(self) -> tuple[str, ...]:
        """The registered redirect URIs (exact match)."""
        return (self.config.tool_launch_url, *self.config.extra_redirect_uris)

    def memberships_url(self, context_id: str) -> str:
        """The NRPS context memberships URL."""
        return self.url(f"/api/contexts/{context_id}/memberships")

    def line_items_url(self, context_id: str) -> str:
        """The AGS line items container URL."""
        if self.canvas_line_items:
            return self.url(f"/api/lti/courses/{context_id}/line_items")
        return self.url(f"/api/contexts/{context_id}/lineitems")

    def line_item_url(self, context_id: str, item_id: int) -> str:
        """One line item's URL (with the configured query, Moodle style)."""
        query = self.config.line_item_url_query
        return f"{self.line_items_url(context_id)}/{item_id}" + (f"?{query}" if query else "")

    # -- keys --------------------------------------------------------------------------------
    @property
    def current_key(self) -> SigningKey:
        """The key new tokens are signed with."""
        return self._keys[0]

    def public_jwks(self) -> list[dict[str, Any]]:
        """The published public keys, newest first."""
        with self._lock:
            return [k.public_jwk for k in self._keys]

    def rotate_key(self, *, keep_old: bool = True, key: SigningKey | None = None) -> SigningKey:
        """Sign with a new key (new kid); the JWKS publishes it, and the old ones if `keep_old`."""
        new = key or SigningKey.generate()
        with self._lock:
            self._keys = [new, *self._keys] if keep_old else [new]
        return new

    def retire_old_keys(self) -> None:
        """Stop publishing every key but the current one."""
        with self._lock:
            self._keys = self._keys[:1]

    def _sign_plain(self, payload: dict[str, Any]) -> str:
        return self.current_key.sign(payload)

    def sign_id_token(self, message: dict[str, Any], spec: LaunchSpec) -> str:
        """Stamp iat/exp, apply the spec's tweaks, and sign."""
        tweaks = spec.tweaks
        now = int(time.time())
        message["iat"] = now + tweaks.iat_shift
        message["exp"] = now + tweaks.lifetime + tweaks.exp_shift
        apply_claim_overrides(message, tweaks.claims)
        key = self.current_key
        if tweaks.foreign_key:
            if self._foreign_key is None:
                self._foreign_key = SigningKey.generate()
            key = self._foreign_key
        with self.state.lock:
            self.state.counters.id_tokens_issued += 1
        return encode_with_tweak(
            key, message, tweaks.header, tweaks.extra_headers, kid=self.current_key.kid
        )

    # -- launches ----------------------------------------------------------------------------
    def make_launch(
        self,
        user_id: str,
        context_id: str | None = "course-bio9",
        *,
        message_type: MessageType = MessageType.RESOURCE_LINK,
        resource_link_id: str | None = _UNSET,
        resource_link_title: str | None = None,
        roles: list[str] | None = None,
        custom: dict[str, str] | None = None,
        return_url: str | None = _UNSET,
        include_nrps: bool = True,
        include_ags: bool = True,
        line_item_id: int | None = _UNSET,
        target_link_uri: str | None = None,
        deployment_id: str | None = None,
        storage_target: str | None = None,
        for_user_id: str | None = None,
        tweaks: LaunchTweaks | None = None,
        hint: str | None = None,
    ) -> LaunchSpec:
        """Register a launch and return its spec; `spec.hint` is its `lti_message_hint`.

        Defaults: the course's seeded Pathways link (and its line item, if any), seeded roles,
        NRPS and AGS claims, and a return URL on this platform.
        """
        if user_id not in PEOPLE:
            raise KeyError(f"no seeded user {user_id!r}")
        if context_id is not None and context_id not in COURSES:
            raise KeyError(f"no seeded course {context_id!r}")
        if resource_link_id is _UNSET:
            resource_link_id = (
                None
                if message_type is MessageType.DEEP_LINKING
                else default_resource_link_id(COURSES[context_id])
                if context_id
                else "rl-no-context"
            )
        link = self.state.resource_links.get(resource_link_id or "")
        if line_item_id is _UNSET:
            line_item_id = link.line_item_id if link else None
        if return_url is _UNSET:
            return_url = self.url("/return" + (f"?context_id={context_id}" if context_id else ""))
        spec = LaunchSpec(
            hint=hint or secrets.token_urlsafe(12),
            user_id=user_id,
            context_id=context_id,
            message_type=message_type,
            resource_link_id=resource_link_id,
            resource_link_title=resource_link_title or (link.title if link else None),
            roles=roles,
            custom={**(link.custom if link else {}), **(custom or {})},
            target_link_uri=target_link_uri or (link.url if link else None),
            return_url=return_url,
            include_nrps=include_nrps,
            include_ags=include_ags,
            line_item_id=line_item_id,
            deployment_id=deployment_id,
            storage_target=storage_target,
            for_user_id=for_user_id,
            tweaks=tweaks or LaunchTweaks(),
        )
        with self._lock:
            self._launches[spec.hint] = spec
        return spec

    def get_launch(self, hint: str) -> LaunchSpec | None:
        """The spec registered under this hint, or the course page button's that it names."""
        with self._lock:
            spec = self._launches.get(hint)
        # The page may have been shown by this LMS before a restart, which forgot its launches.
        return spec if spec is not None else rebuild_button_launch(self, hint)

    def login_url(self, spec: LaunchSpec) -> str:
        """The tool's login initiation URL for this launch (third-party initiated login)."""
        login = DemoOIDCLogin(None, self.lti_conf)
        login.set_lti_message_hint(hint=spec.hint)
        login.set_launch_url(spec.target_link_uri or self.config.tool_launch_url)
        url: str = login.prepare_preflight_url(spec.user_id)
        extra: dict[str, str] = {}
        if spec.deployment_id:
            extra["lti_deployment_id"] = spec.deployment_id
        if spec.storage_target:
            extra["lti_storage_target"] = spec.storage_target
        if not extra:
            return url
        # Replace rather than append: a repeated parameter is read as its first value.
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query, keep_blank_values=True)) | extra
        return urlunsplit(parts._replace(query=urlencode(params)))

    # -- hooks -------------------------------------------------------------------------------
    @property
    def counters(self) -> Counters:
        """Live counters (jwks_fetches, token_requests, scores_received, ...)."""
        return self.state.counters

    def queue_faults(self, kind: EndpointKind, *faults: Fault) -> None:
        """Answer the next requests to `kind` endpoints with these faults, in order."""
        self.state.queue_faults(kind, *faults)

    def set_outage(self, kind: EndpointKind, fault: Fault | None) -> None:
        """Answer every `kind` request with `fault` until cleared with None."""
        self.state.set_outage(kind, fault)

    def reset_hooks(self) -> None:
        """Undo every test hook except key rotation: faults, delay, scopes, token refusal,
        line item addresses."""
        self.state.clear_faults()
        self.delay_ms = self.config.delay_ms
        self.granted_scopes = self.config.granted_scopes
        self.canvas_line_items = self.config.canvas_line_items
        self.token_refusal = None
        self.ags_in_flight_limit = None

    def enter_ags(self) -> bool:
        """Count a gradebook request in flight; False when `ags_in_flight_limit` refuses it."""
        with self._lock:
            limit = self.ags_in_flight_limit
            if limit is not None and self._ags_in_flight >= limit:
                self.ags_throttled += 1
                return False
            self._ags_in_flight += 1
        g.ags_in_flight = True
        return True

    def leave_ags(self) -> None:
        with self._lock:
            self._ags_in_flight -= 1

    def revoke_tokens(self) -> None:
        """Invalidate all access tokens issued so far."""
        self.state.revoke_tokens()

    def _count_tool_jwks(self) -> None:
        with self.state.lock:
            self.state.counters.tool_jwks_fetches += 1


def current_platform() -> DemoPlatform:
    """The DemoPlatform of the running app."""
    platform: DemoPlatform = current_app.extensions[EXTENSION_KEY]
    return platform
