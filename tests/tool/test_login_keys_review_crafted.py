"""The tool's own keys, probed from RFC 7517 by an independent review, for rules the other key
tests leave open.

RFC 7517 §4.2/§4.3: "use" and "key_ops" both say what a key is for, and "SHOULD NOT be used
together". Platforms read "use" (Canvas requires it, PLATFORMS.md), so the key set carries
"use": "sig" and no "key_ops". Checked at both key set URLs, and for a key from a PEM file; an
unusable PEM file (LTI_APP_TOOL_KEY_FILE) is named as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from lti_app.tool.keys import KeyRing, ToolKeyError
from tests.conftest import ToolServer
from tests.tool.test_keys import write_key_file

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _assert_public_signing_key(key: dict[str, Any]) -> None:
    assert key["kty"] == "RSA"
    assert (key["alg"], key["use"]) == ("RS256", "sig")
    assert "key_ops" not in key, "use and key_ops SHOULD NOT be used together (RFC 7517 4.3)"
    assert not PRIVATE_MEMBERS & set(key)


@pytest.mark.parametrize("path", ["/.well-known/jwks.json", "/lti/jwks"])
def test_published_keys_say_use_sig_without_key_ops(tool_server: ToolServer, path: str) -> None:
    keys = httpx.get(tool_server.url + path, timeout=30).json()["keys"]
    assert keys
    for key in keys:
        _assert_public_signing_key(key)


def test_a_key_from_a_pem_file_is_published_with_use_sig_without_key_ops(
    tmp_path: Path, session: Session
) -> None:
    key_file = tmp_path / "tool.pem"
    write_key_file(key_file)
    [key] = KeyRing(secret="unused", key_file=str(key_file)).snapshot(session).jwks["keys"]
    _assert_public_signing_key(key)


def test_a_passphrase_protected_key_file_is_a_clear_key_error(
    tmp_path: Path, session: Session
) -> None:
    # The key file must be unencrypted (the passphrase would be a second secret to manage); one
    # made with `openssl genrsa -aes256` must be named as unreadable, not fail with a TypeError.
    key_file = tmp_path / "tool.pem"
    write_key_file(key_file, passphrase=b"a passphrase")
    with pytest.raises(ToolKeyError, match=r"cannot read the tool key file .*encrypted"):
        KeyRing(secret="unused", key_file=str(key_file)).snapshot(session)
