"""id_token validation: the launch that completes an OIDC login (tool.login).

The LTI message's own claims are checked in tool.messages (pylti1p3's message validators and
more); this module checks the token around them, with what pylti1p3 2.0 does not check:
`aud`/`azp`, a single-use nonce bound to the login, a state bound to the browser that started
the login, `target_link_uri`, clock-skew leeway, RS256 only, and cached platform keys.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.utils import base64url_decode, base64url_encode
from sqlalchemy.orm import Session

from lti_app.errors import LaunchError
from lti_app.tool.jwks import JwksCache, JwksUnavailableError, UnknownKeyError
from lti_app.tool.key_files import MIN_RSA_KEY_BITS
from lti_app.tool.login import LoginState, browser_hash, login_was_used
from lti_app.tool.messages import (
    CLAIM,
    DEEP_LINKING_REQUEST,
    id_claim,
    validate_message,
)
from lti_app.tool.models import Deployment, Platform
from lti_app.tool.registrations import (
    ADMIN_HINT,
    find_platform_and_deployment,
    resolve_deployment,
)

USED = "This launch was already used. Open Pathways again from the course."
EXPIRED = "The launch took too long and expired. Open Pathways again."
STARTED_ELSEWHERE = (
    "This launch was started in a different browser window, or your browser blocked "
    "Pathways' cookie."
)
STARTED_ELSEWHERE_HINT = (
    "Open Pathways again from the course. If your browser blocks third-party cookies, open "
    "Pathways in a new window."
)


@dataclass(frozen=True)
class ValidatedLaunch:
    platform: Platform
    deployment: Deployment
    claims: dict[str, Any]
    login_nonce: str
    """Stored with the launch session, whose unique column makes the login single-use."""

    @property
    def message_type(self) -> str:
        return str(self.claims[CLAIM + "message_type"])


_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
    """PyJWT 2.15's strict segment check with one regular expression instead of a Python
    loop over every character (~0.1 ms for a 3 KB id_token, a twentieth of a launch). The
    same rules: at most two '=' and only where the length needs them, nothing outside the
    base64url alphabet, and the canonical encoding."""
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if (
        padding > 2
        or (padding and len(segment) % 4)
        or len(stripped) % 4 == 1
        or _BASE64URL.fullmatch(stripped) is None
    ):
        raise jwt.DecodeError(f"Invalid {name} padding")
    try:
        decoded = base64url_decode(stripped)
    except (TypeError, binascii.Error) as err:
        raise jwt.DecodeError(f"Invalid {name} padding") from err
    if base64url_encode(decoded) != stripped:
        raise jwt.DecodeError(f"Invalid {name} padding")
    return decoded


def _id_token_decoder() -> jwt.PyJWT:
    decoder = jwt.PyJWT()
    jws = getattr(decoder, "_jws", None)
    # Only where this PyJWT has the slow check (2.15+); older ones decode segments directly.
    if jws is not None and hasattr(jws, "_decode_base64url_segment"):
        jws._decode_base64url_segment = _decode_base64url_segment
    return decoder


ID_TOKEN_DECODER = _id_token_decoder()


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf
        raise ValueError(f"{text} is out of range")
    return value


def _json_segment(segment: str) -> Any:
    """One JWT segment as strict JSON (RFC 8259, I-JSON RFC 7493 §2.1): Python's json also
    takes NaN, Infinity, numbers that overflow to inf and lone surrogates (\\ud800). None of
    those can be stored (PostgreSQL's json type refuses NaN; no database encodes a lone
    surrogate as UTF-8), so a launch carrying one was a 500 instead of a refusal."""
    value = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)),
        parse_constant=_not_json,
        parse_float=_finite_float,
    )
    # A lone surrogate anywhere (keys too) fails to encode: UnicodeEncodeError is a ValueError.
    json.dumps(value, ensure_ascii=False).encode()
    return value


def _unverified(id_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before the signature is checked, to find the registration and key.

    Plain base64 and json here: PyJWT's strict decoding, which checks the token character by
    character in Python, runs once, when the signature is verified.
    """
    parts = id_token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three segments")
        header, body = _json_segment(parts[0]), _json_segment(parts[1])
    except (ValueError, binascii.Error, RecursionError) as err:  # json's are ValueErrors
        raise LaunchError("The launch message is not a valid JWT.", hint=ADMIN_HINT) from err
    if not isinstance(header, dict) or not isinstance(body, dict):
        raise LaunchError("The launch message is not a valid JWT.", hint=ADMIN_HINT)
    return header, body


def _client_id_from_aud(body: dict[str, Any]) -> str:
    aud = body.get("aud")
    azp = body.get("azp")
    if isinstance(aud, str) and aud:
        client_id = aud
    elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        if len(aud) == 1:
            client_id = str(aud[0])
        elif not isinstance(azp, str) or azp not in aud:
            raise LaunchError(
                "The launch names several audiences but no authorized party (azp) among them.",
                hint=ADMIN_HINT,
            )
        else:
            client_id = azp
    else:
        raise LaunchError("The launch message has no audience (aud).", hint=ADMIN_HINT)
    if azp is not None and azp != client_id:
        # Security Framework 1.0 §5.1.3 step 6 (OIDC Core §3.1.3.7): "If an azp Claim is
        # present, the Tool SHOULD verify that its client_id is the Claim's value", with one
        # audience too: the token was issued to the tool azp names, not to us.
        raise LaunchError(
            "The launch was issued to another tool (its authorized party, azp, is not the "
            "client ID it is addressed to).",
            hint=ADMIN_HINT,
        )
    return client_id


def validate_launch(
    session: Session,
    *,
    id_token: str,
    login: LoginState,
    presented_secret: str | None,
    jwks: JwksCache,
    leeway: int,
) -> ValidatedLaunch:
    """Check everything about an id_token (its login is consumed later, by the launch
    session's insert in tool.services.sync_launch); raise LaunchError otherwise."""
    header, unverified = _unverified(id_token)
    if header.get("alg") != "RS256":
        raise LaunchError(
            f"The launch is signed with {header.get('alg')!r}; Pathways accepts only RS256.",
            hint=ADMIN_HINT,
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise LaunchError("The launch JWT has no key id (kid) in its header.", hint=ADMIN_HINT)

    issuer = unverified.get("iss")
    client_id = _client_id_from_aud(unverified)
    platform, deployment = find_platform_and_deployment(
        session,
        issuer if isinstance(issuer, str) and "\x00" not in issuer else "",
        client_id,
        id_claim(unverified.get(CLAIM + "deployment_id"), "deployment_id"),
    )

    now = time.time()
    if login.platform_id != platform.id:
        raise LaunchError("This launch came from a different LMS than its login.", hint=ADMIN_HINT)
    if login.expires_at <= now:
        raise LaunchError(EXPIRED)
    if not presented_secret or not hmac.compare_digest(
        browser_hash(presented_secret), login.browser_hash
    ):
        if login_was_used(session, login):  # the browser's state cookie went with the launch
            raise LaunchError(USED)
        raise LaunchError(STARTED_ELSEWHERE, hint=STARTED_ELSEWHERE_HINT)

    try:
        published = jwks.get_keys(session, platform.jwks_url, kid)
    except UnknownKeyError as err:
        raise LaunchError(
            f"The launch is signed with a key ({kid}) the LMS does not publish.", hint=ADMIN_HINT
        ) from err
    except JwksUnavailableError as err:
        raise LaunchError(
            "Pathways could not fetch the LMS's public keys to check this launch.",
            hint=f"An LMS administrator can check that the key set URL {platform.jwks_url} "
            "is right and reachable from the Pathways server.",
        ) from err
    candidates = _rs256_keys(kid, published)
    try:
        claims = _decode_with_any(id_token, candidates, client_id, platform.issuer, leeway)
    except jwt.ExpiredSignatureError as err:
        raise LaunchError("The launch message has expired (exp).", hint=ADMIN_HINT) from err
    except jwt.ImmatureSignatureError as err:
        which = "nbf" if "nbf" in str(err) else "iat"
        raise LaunchError(
            f"The launch message is dated in the future ({which}).", hint=ADMIN_HINT
        ) from err
    except jwt.InvalidAudienceError as err:
        raise LaunchError("The launch is meant for another tool (aud).", hint=ADMIN_HINT) from err
    except jwt.MissingRequiredClaimError as err:
        raise LaunchError(
            f"The launch message lacks the {err.claim} claim.", hint=ADMIN_HINT
        ) from err
    except jwt.InvalidSignatureError as err:
        raise LaunchError("The launch signature does not verify.", hint=ADMIN_HINT) from err
    except jwt.InvalidTokenError as err:
        raise LaunchError(f"The launch message is invalid: {err}.", hint=ADMIN_HINT) from err
    for name in ("exp", "iat", "nbf"):
        # NumericDate (RFC 7519): PyJWT would take "9999999999" as a number.
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise LaunchError(f"The launch's {name} claim is not a number.", hint=ADMIN_HINT)
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat > now + leeway:
        raise LaunchError("The launch message is dated in the future (iat).", hint=ADMIN_HINT)

    nonce = claims.get("nonce")
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    if not isinstance(nonce, str) or not hmac.compare_digest(
        nonce.encode(errors="surrogatepass"), login.nonce.encode()
    ):
        raise LaunchError("The launch nonce does not match its login.", hint=ADMIN_HINT)
    target = claims.get(CLAIM + "target_link_uri")
    # Deep Linking 2.0 does not list target_link_uri among a deep-linking request's claims, so
    # a platform may leave it out there; the login's own target_link_uri was checked already.
    # When the claim is present it must match, in every message.
    leaves_it_out = target is None and claims.get(CLAIM + "message_type") == DEEP_LINKING_REQUEST
    if target != login.target_link_uri and not leaves_it_out:
        raise LaunchError(
            "The launch points somewhere other than its login asked for (target_link_uri).",
            hint=ADMIN_HINT,
        )
    validate_message(claims)
    deployment = resolve_deployment(
        session, platform, deployment, str(claims[CLAIM + "deployment_id"])
    )
    # The login is consumed by the launch session's insert (tool.services.sync_launch).
    return ValidatedLaunch(
        platform=platform, deployment=deployment, claims=claims, login_nonce=login.nonce
    )


def _rs256_keys(kid: str, published: list[tuple[str, RSAPublicKey]]) -> list[RSAPublicKey]:
    """The keys under kid that may check an RS256 signature: published for RS256 (a key is for
    one algorithm, RFC 8725 §3.1) and of at least 2048 bits."""
    for_rs256 = [key for alg, key in published if alg == "RS256"]
    if not for_rs256:
        algs = ", ".join(sorted({alg for alg, _key in published}))
        raise LaunchError(
            f"The LMS publishes its key {kid} for {algs}, not for RS256.", hint=ADMIN_HINT
        )
    strong = [key for key in for_rs256 if key.key_size >= MIN_RSA_KEY_BITS]
    if not strong:
        raise LaunchError(
            f"The LMS signs with a {for_rs256[0].key_size}-bit key; Pathways needs "
            f"{MIN_RSA_KEY_BITS} bits or more.",
            hint=ADMIN_HINT,
        )
    return strong


def _decode_with_any(
    id_token: str, keys: list[RSAPublicKey], client_id: str, issuer: str, leeway: int
) -> dict[str, Any]:
    """The verified claims; each key published under the kid is tried in turn."""
    for key in keys[:-1]:
        try:
            return _decode(id_token, key, client_id, issuer, leeway)
        except jwt.InvalidSignatureError:
            continue
    return _decode(id_token, keys[-1], client_id, issuer, leeway)


def _decode(
    id_token: str, key: RSAPublicKey, client_id: str, issuer: str, leeway: int
) -> dict[str, Any]:
    claims: dict[str, Any] = ID_TOKEN_DECODER.decode(
        id_token,
        key,
        algorithms=["RS256"],
        audience=client_id,
        issuer=issuer,
        leeway=leeway,
        options={"require": ["exp", "iat", "iss", "aud", "nonce"]},
    )
    return claims
