"""A small Flask adapter for lti1p3platform (it ships Django and FastAPI ones only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flask
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request
from werkzeug.wrappers import Response as WerkzeugResponse

from lti_app.demo.launches import (
    COURSE_OFFERING,
    DEPLOYMENT_ID,
    FOR_USER,
    MESSAGE_TYPE,
    RESOURCE_LINK,
    ROLE_SCOPE_MENTOR,
    SCOPE_LINEITEM,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
    LaunchSpec,
    MessageType,
)
from lti_app.demo.seed import COURSES, PEOPLE, observed_in, roles_for

if TYPE_CHECKING:
    from lti_app.demo.platform import DemoPlatform


class FlaskRequest(Request):  # type: ignore[misc]  # lti1p3platform ships no type hints
    """lti1p3platform's request view of a Flask request."""

    def build_metadata(self, request: flask.Request) -> dict[str, Any]:
        """Copy what lti1p3platform reads from the request."""
        return {
            "method": request.method,
            "form_data": request.form.to_dict(),
            "get_data": request.args.to_dict(),
            "headers": request.headers,
            "content_type": request.content_type,
            "path": request.path,
            "json": request.get_json(silent=True) if request.is_json else None,
        }


class DemoRegistration(Registration):  # type: ignore[misc]
    """A registration that signs with an already-parsed key instead of re-reading PEM text."""

    def __init__(
        self, sign: Callable[[dict[str, Any]], str], jwks: Callable[[], list[dict[str, Any]]]
    ) -> None:
        self._sign = sign
        self._jwks = jwks

    def platform_encode_and_sign(
        self, payload: dict[str, Any], expiration: int | None = None
    ) -> str:
        """Sign with the platform's current key (lti1p3platform would parse PEM twice here)."""
        return self._sign(payload)

    def get_jwks(self) -> list[dict[str, Any]]:
        """The platform's published public keys."""
        return self._jwks()


class DemoPlatformConf(LTI1P3PlatformConfAbstract):  # type: ignore[misc]
    """The platform configuration: one registration, the Pathways tool."""

    def init_platform_config(self, **kwargs: Any) -> None:
        """Keep the registration handed in by DemoPlatform."""
        self._registration = kwargs["registration"]

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        """The one registration."""
        return self._registration


class DemoOIDCLogin(OIDCLoginAbstract):  # type: ignore[misc]
    """Builds the third-party login initiation URL for a launch."""

    def set_lti_message_hint(self, **kwargs: Any) -> None:
        """The hint is the LaunchSpec's key."""
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str) -> WerkzeugResponse:
        """Redirect the browser to the tool's login initiation URL."""
        return flask.redirect(url)


class DemoMessageLaunch(LTIAdvantageMessageLaunchAbstract):  # type: ignore[misc]
    """Answers the tool's authentication request with a form that posts the id_token."""

    def __init__(
        self,
        request: FlaskRequest,
        platform_config: DemoPlatformConf,
        *,
        platform: DemoPlatform,
        spec: LaunchSpec,
    ) -> None:
        super().__init__(request, platform_config)
        self._platform = platform
        self._spec = spec

    def prepare_launch(self, preflight_response: dict[str, Any]) -> None:
        """Fill the LTI claims from the launch spec and the seed."""
        spec, platform = self._spec, self._platform
        person = PEOPLE[spec.user_id]
        course = COURSES.get(spec.context_id) if spec.context_id else None
        roles = spec.roles if spec.roles is not None else roles_for(person, course)
        self.set_launch_url(spec.target_link_uri or platform.config.tool_launch_url)
        self.set_user_data(person.user_id, roles, person.name, person.email)
        self.set_extra_claims(
            {
                k: v
                for k, v in (("given_name", person.given_name), ("family_name", person.family_name))
                if v
            }
        )
        observed = observed_in(person, course) if course is not None else []
        if observed:
            # Canvas: the observed students' LTI ids (jwt_message.rb current_observee_list).
            self.set_extra_claims({ROLE_SCOPE_MENTOR: observed})
        self.set_launch_presentation_claim("iframe", spec.return_url)
        if spec.custom:
            self.set_custom_parameters_claim(dict(spec.custom))
        if spec.resource_link_id and spec.message_type is not MessageType.DEEP_LINKING:
            self.set_resource_link_claim(spec.resource_link_id, title=spec.resource_link_title)
        if spec.message_type is MessageType.DEEP_LINKING:
            # No default title or text, as Canvas's course placements (instructure/canvas-lms
            # lib/lti/messages/deep_linking_request.rb); lti1p3platform then sends them empty,
            # as Moodle does before the teacher types a name. A default "Pathways" named every
            # single placed item so, a mastery column's link too, and it became one of several
            # "Pathways" in the course page's list of links.
            self.set_dl(
                platform.url("/deep_link_return"),
                accept_types={"ltiResourceLink", "link", "html"},
                # The spec's `data` is an opaque string the tool must echo back.
                extra_data=spec.hint,
            )
        if course is None:
            return
        self.set_launch_context_claim(
            course.context_id, [COURSE_OFFERING], course.title, course.label
        )
        if spec.include_nrps:
            self.set_nrps(platform.memberships_url(course.context_id))
        if spec.include_ags:
            lineitem = (
                platform.line_item_url(course.context_id, spec.line_item_id)
                if spec.line_item_id is not None
                else None
            )
            # The claim lists what the token endpoint grants, as Moodle's (its tool's permitted
            # scopes) and Canvas's (its developer key's) do: Pathways asks for those.
            granted = platform.granted_scopes
            self.set_ags(
                platform.line_items_url(course.context_id),
                lineitem,
                allow_creating_lineitems=SCOPE_LINEITEM in granted,
                results_service_enabled=SCOPE_RESULT_READONLY in granted,
                scores_service_enabled=SCOPE_SCORE in granted,
            )

    def generate_launch_request(self) -> dict[str, str]:
        """Build the message and sign it, applying the spec's deliberate defects."""
        message, state = self.get_launch_data()
        if self._spec.message_type is MessageType.DEEP_LINKING:
            message[MESSAGE_TYPE] = str(MessageType.DEEP_LINKING)
            message.pop(RESOURCE_LINK, None)
            message.update(self._deep_linking_launch_data or {})
        if self._spec.message_type is MessageType.SUBMISSION_REVIEW:
            message[MESSAGE_TYPE] = str(MessageType.SUBMISSION_REVIEW)
            message[FOR_USER] = self._for_user()
        if self._spec.deployment_id:
            message[DEPLOYMENT_ID] = self._spec.deployment_id
        return {"state": state, "id_token": self._platform.sign_id_token(message, self._spec)}

    def _for_user(self) -> dict[str, Any]:
        """The reviewed student. Moodle sends only `user_id` (mod/lti/locallib.php maps
        `for_user_id` alone); the spec's optional names, email and roles are added here."""
        user_id = self._spec.for_user_id or self._spec.user_id
        claim: dict[str, Any] = {"user_id": user_id}
        person = PEOPLE.get(user_id)
        if person is not None:
            course = COURSES.get(self._spec.context_id or "")
            claim.update(
                {
                    "name": person.name,
                    "given_name": person.given_name,
                    "family_name": person.family_name,
                    "email": person.email,
                    "roles": roles_for(person, course),
                }
            )
        return claim

    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> str:
        """An auto-submitting form (with a visible button for browsers without JavaScript)."""
        return flask.render_template(
            "demo/launch_form.html",
            action=launch_data["launch_url"],
            id_token=launch_data["id_token"],
            state=launch_data["state"],
        )
