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

from lti_app.tool.keys import KeyRing, ToolKeyError, thumbprint_kid
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


def test_a_key_file_rotation_publishes_the_previous_key_and_signs_with_the_new(
    tmp_path: Path, session: Session
) -> None:
    """Rotating a key kept in a file: what the old key signed just before the swap (a deep
    linking answer, a token request) must still verify, so the old key stays published
    beside the new one until LTI_APP_TOOL_PREVIOUS_KEY_FILE is cleared; it never signs."""
    old, new = tmp_path / "old.pem", tmp_path / "new.pem"
    old_key, new_key = write_key_file(old), write_key_file(new)
    ring = KeyRing(secret="unused", key_file=str(new), previous_key_file=str(old))
    ring.load_key_file()
    snapshot = ring.snapshot(session)
    kids = [key["kid"] for key in snapshot.jwks["keys"]]
    assert kids == [thumbprint_kid(new_key.public_key()), thumbprint_kid(old_key.public_key())]
    for key in snapshot.jwks["keys"]:
        _assert_public_signing_key(key)
    assert snapshot.signing.kid == thumbprint_kid(new_key.public_key())


@pytest.mark.parametrize(
    ("current", "previous", "words"),
    [
        ("new.pem", "missing.pem", "LTI_APP_TOOL_PREVIOUS_KEY_FILE: cannot read"),
        ("", "old.pem", "LTI_APP_TOOL_PREVIOUS_KEY_FILE is set without LTI_APP_TOOL_KEY_FILE"),
    ],
    ids=["previous-unreadable", "previous-alone"],
)
def test_a_previous_key_file_that_cannot_serve_is_named_at_start_up(
    tmp_path: Path, current: str, previous: str, words: str
) -> None:
    write_key_file(tmp_path / "new.pem")
    write_key_file(tmp_path / "old.pem")
    ring = KeyRing(
        secret="unused",
        key_file=str(tmp_path / current) if current else "",
        previous_key_file=str(tmp_path / previous),
    )
    with pytest.raises(ToolKeyError, match=words):
        ring.load_key_file()


def test_a_key_file_is_parsed_again_only_when_it_changed(
    tmp_path: Path, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key file is looked at on every refresh, so a swapped file is noticed without a
    restart; parsing it (~28 ms, while requests wait) happens only when its bytes changed."""
    from cryptography.hazmat.primitives import serialization

    parsed: list[bytes] = []
    parse = serialization.load_pem_private_key

    def counting(pem: bytes, password: bytes | None) -> Any:
        parsed.append(pem)
        return parse(pem, password)

    monkeypatch.setattr(serialization, "load_pem_private_key", counting)
    key_file = tmp_path / "tool.pem"
    first = write_key_file(key_file)
    ring = KeyRing(secret="unused", key_file=str(key_file))
    ring.load_key_file()
    for _ in range(3):
        ring.invalidate()  # as the refresh every KEY_REFRESH_SECONDS does
        assert ring.snapshot(session).signing.kid == thumbprint_kid(first.public_key())
    assert len(parsed) == 1
    second = write_key_file(key_file)
    ring.invalidate()
    assert ring.snapshot(session).signing.kid == thumbprint_kid(second.public_key())
    assert len(parsed) == 2


def test_a_key_file_shorter_than_2048_bits_is_refused_naming_the_setting(tmp_path: Path) -> None:
    """Pathways refuses an LMS's 1024-bit key; its own from a file was taken without a word."""
    key_file = tmp_path / "tool.pem"
    write_key_file(key_file, bits=1024)
    ring = KeyRing(secret="unused", key_file=str(key_file))
    with pytest.raises(ToolKeyError, match=r"LTI_APP_TOOL_KEY_FILE: .* 1024-bit RSA key; .* 2048"):
        ring.load_key_file()


def test_a_next_key_file_is_published_and_signs_nothing(tmp_path: Path, session: Session) -> None:
    """Rotating a key kept in a file: swapped in at once, the new key signed while platforms'
    cached key sets (up to five minutes old) did not hold it. Named in
    LTI_APP_TOOL_NEXT_KEY_FILE first, it is published without signing until it is swapped in."""
    from lti_app.settings import load_settings

    old, new = tmp_path / "old.pem", tmp_path / "new.pem"
    old_kid = thumbprint_kid(write_key_file(old).public_key())
    new_kid = thumbprint_kid(write_key_file(new).public_key())
    settings = load_settings(
        {
            "LTI_APP_SECRET_KEY": "s" * 48,
            "LTI_APP_TOOL_KEY_FILE": str(old),
            "LTI_APP_TOOL_NEXT_KEY_FILE": str(new),
        },
        env="test",
    )
    ahead = KeyRing.from_settings(settings).snapshot(session)
    assert [key["kid"] for key in ahead.jwks["keys"]] == [old_kid, new_kid]
    assert ahead.signing.kid == old_kid
    swapped = KeyRing(secret="unused", key_file=str(new), previous_key_file=str(old))
    swapped.load_key_file()
    assert swapped.snapshot(session).signing.kid == new_kid
    alone = KeyRing(secret="unused", next_key_file=str(new))
    with pytest.raises(ToolKeyError, match="LTI_APP_TOOL_NEXT_KEY_FILE is set without"):
        alone.load_key_file()


def test_key_files_that_break_after_start_up_leave_the_keys_read_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The previous key file deleted before the restart that clears its setting, or the
    current one read while a secret store rewrote it: the key set answered 500, and every
    signature failed, until the file was whole again."""
    from lti_app import create_app
    from lti_app.settings import load_settings

    current, previous = tmp_path / "tool.pem", tmp_path / "old.pem"
    kid = thumbprint_kid(write_key_file(current).public_key())
    write_key_file(previous)
    app = create_app(
        load_settings(
            {},
            env="test",
            secret_key="s" * 48,
            database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
            instance_path=str(tmp_path),
            tool_key_file=str(current),
            tool_previous_key_file=str(previous),
        )
    )
    ring: KeyRing = app.extensions["lti_app.keyring"]
    client = app.test_client()
    try:
        published = client.get("/.well-known/jwks.json").get_json()
        assert len(published["keys"]) == 2
        kept = previous.read_bytes()
        previous.unlink()
        ring.invalidate()  # as the refresh every KEY_REFRESH_SECONDS does
        answer = client.get("/.well-known/jwks.json")
        assert (answer.status_code, answer.get_json()) == (200, published)
        assert "LTI_APP_TOOL_PREVIOUS_KEY_FILE: cannot read" in capsys.readouterr().err
        previous.write_bytes(kept)
        current.write_bytes(current.read_bytes()[:100])
        ring.invalidate()
        answer = client.get("/.well-known/jwks.json")
        assert (answer.status_code, answer.get_json()) == (200, published)
        assert ring.snapshot_without_session(app.extensions["lti_app.db"]).signing.kid == kid
        assert "LTI_APP_TOOL_KEY_FILE: cannot read" in capsys.readouterr().err
        # Whole again (the swap finished): the new key is read.
        swapped_kid = thumbprint_kid(write_key_file(current).public_key())
        ring.invalidate()
        assert ring.snapshot_without_session(app.extensions["lti_app.db"]).signing.kid == (
            swapped_kid
        )
    finally:
        app.extensions["lti_app.db"].dispose()
        app.extensions["lti_app.http"].close()
