"""Tool keys from PEM files named by settings (a school's own secret store): read, checked,
and refused with the name of the setting that names the file."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_FILE_SETTING = "LTI_APP_TOOL_KEY_FILE"
NEXT_KEY_FILE_SETTING = "LTI_APP_TOOL_NEXT_KEY_FILE"
PREVIOUS_KEY_FILE_SETTING = "LTI_APP_TOOL_PREVIOUS_KEY_FILE"
MIN_RSA_KEY_BITS = 2048  # RFC 7518 §3.3, for the LMSs' keys and ours alike


class ToolKeyError(Exception):
    """The tool's key material is missing or cannot be decrypted."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting
        """The setting the operator must fix; named to whoever meets the error."""

    @property
    def for_people(self) -> str:
        """What a teacher or an LMS's gradebook is told: no path, no detail, the setting."""
        return (
            "Pathways cannot sign its messages to the LMS: its server setting "
            f"{self.setting} is not right, which only whoever runs Pathways can fix."
        )


def read_key_file(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ToolKeyError(
            f"{setting}: cannot read the tool key file {path}: {err}", setting=setting
        ) from err


def parse_key_file(pem: bytes, path: str, setting: str) -> rsa.RSAPrivateKey:
    """The RSA key in a PEM file's bytes; errors name the setting that names the file."""
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as err:
        # TypeError: a passphrase-protected PEM (`openssl genrsa -aes256`); it must say so
        # like any other unreadable key file, not fail as an unexplained TypeError.
        raise ToolKeyError(
            f"{setting}: cannot read the tool key file {path}: {err}", setting=setting
        ) from err
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ToolKeyError(
            f"{setting}: the tool key file {path} must hold an RSA private key", setting=setting
        )
    if private.key_size < MIN_RSA_KEY_BITS:
        # Pathways refuses an LMS's key this short (tool.launch); LMSs may refuse ours too.
        raise ToolKeyError(
            f"{setting}: the tool key file {path} holds a {private.key_size}-bit RSA key; "
            f"Pathways needs {MIN_RSA_KEY_BITS} bits or more "
            f"(`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:{MIN_RSA_KEY_BITS}`)",
            setting=setting,
        )
    return private
