"""The demo platform's signing keys and the JWT encodings its test hooks need."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


@dataclass(frozen=True)
class SigningKey:
    """One RSA key, parsed once: lti1p3platform re-parses its PEM on every signature (~57 ms)."""

    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        """Make a fresh 2048-bit key with a random kid."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid=kid or f"demo-{secrets.token_hex(6)}", private_key=key)

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK carrying kid, alg and use (Canvas requires all three)."""
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return jwk

    @property
    def public_pem(self) -> str:
        """The public key as PEM text."""
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @property
    def private_pem(self) -> str:
        """The private key as unencrypted PKCS#8 PEM (for lti1p3platform's Registration)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def sign(self, payload: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        """Sign RS256 with this key; the header carries this key's kid."""
        header = {"kid": self.kid, **(headers or {})}
        return jwt.encode(payload, self.private_key, algorithm="RS256", headers=header)


class HeaderTweak(StrEnum):
    """Ways a launch's JWT header (and signature) can be made wrong on purpose."""

    NONE = "none"
    NO_KID = "no_kid"
    UNKNOWN_KID = "unknown_kid"
    ALG_NONE = "alg_none"
    """Unsigned token (`alg: none`, empty signature)."""
    HS256_PUBLIC_KEY = "hs256_public_key"
    """HMAC-signed with the platform's public PEM as secret: the classic algorithm confusion."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], payload: dict[str, Any]) -> str:
    def dump(obj: dict[str, Any]) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    return f"{_b64(dump(header))}.{_b64(dump(payload))}"


def encode_with_tweak(
    key: SigningKey,
    payload: dict[str, Any],
    tweak: HeaderTweak = HeaderTweak.NONE,
    extra_headers: dict[str, Any] | None = None,
    kid: str | None = None,
) -> str:
    """Encode `payload` signed by `key`, bent by `tweak`; `kid` overrides the header's kid."""
    header: dict[str, Any] = {"kid": kid or key.kid}
    if tweak is HeaderTweak.UNKNOWN_KID:
        header["kid"] = f"unknown-{secrets.token_hex(4)}"
    elif tweak is HeaderTweak.NO_KID:
        header.pop("kid")
    header.update(extra_headers or {})
    if tweak is HeaderTweak.ALG_NONE:
        # PyJWT refuses to emit this for a real key, so build the compact form by hand.
        return _segments({"typ": "JWT", **header, "alg": "none"}, payload) + "."
    if tweak is HeaderTweak.HS256_PUBLIC_KEY:
        # PyJWT also refuses PEM text as an HMAC secret; that refusal is what we test the tool for.
        signing_input = _segments({"typ": "JWT", **header, "alg": "HS256"}, payload)
        mac = hmac.new(key.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"
    return jwt.encode(payload, key.private_key, algorithm="RS256", headers=header)
