"""Tool keys: created once, encrypted at rest, rotated with a grace period."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.tool.key_rotation import MIN_PUBLISHED_AFTER_ROTATION, rotate_keys
from lti_app.tool.keys import PUBLISH_BEFORE_SIGNING, KeyRing, ToolKeyError
from lti_app.tool.models import KeyStatus, ToolKey

SECRET = "a-key-encryption-secret"


@pytest.fixture
def clean_keys(session: Session) -> Session:
    session.query(ToolKey).delete()
    session.flush()
    return session


def test_first_use_creates_one_key_with_kid_alg_and_use(clean_keys: Session) -> None:
    ring = KeyRing(secret=SECRET)
    jwks = ring.snapshot(clean_keys).jwks
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert {key["kty"], key["alg"], key["use"]} == {"RSA", "RS256", "sig"}
    assert key["kid"] == ring.snapshot(clean_keys).signing.kid


def test_private_key_is_not_stored_in_clear(clean_keys: Session) -> None:
    KeyRing(secret=SECRET).snapshot(clean_keys)
    row = clean_keys.scalars(select(ToolKey)).one()
    assert "PRIVATE KEY" not in row.private_pem_encrypted


def test_wrong_secret_is_a_clear_error_when_signing_but_the_key_set_is_served(
    clean_keys: Session,
) -> None:
    kid = KeyRing(secret=SECRET).snapshot(clean_keys).signing.kid
    snap = KeyRing(secret="another secret").snapshot(clean_keys)
    assert [k["kid"] for k in snap.jwks["keys"]] == [kid]
    with pytest.raises(ToolKeyError, match="cannot be decrypted"):
        _ = snap.signing


def test_after_a_new_secret_the_new_key_signs_at_once_and_the_old_stays_published(
    clean_keys: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """`lti-app keys rotate --new-secret`: the key that would sign while platforms fetch the
    new one is encrypted with the old secret, which the servers no longer have."""
    old_kid = KeyRing(secret=SECRET).snapshot(clean_keys).signing.kid
    old = clean_keys.scalars(select(ToolKey).where(ToolKey.kid == old_kid)).one()
    old.created_at = utcnow() - timedelta(days=30)
    new, _ = rotate_keys(clean_keys, secret="the new secret", grace_days=7)
    ring = KeyRing(secret="the new secret")
    snap = ring.snapshot(clean_keys)
    assert snap.signing.kid == new.kid
    assert {k["kid"] for k in snap.jwks["keys"]} == {old_kid, new.kid}
    ring.invalidate()
    assert ring.snapshot(clean_keys).signing.kid == new.kid
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in warnings] == [
        f"tool key kid={old_kid} cannot be decrypted with LTI_APP_KEY_ENCRYPTION_SECRET (or "
        "LTI_APP_SECRET_KEY): it stays published but signs nothing"
    ]


def test_rotation_publishes_the_new_key_first_and_signs_with_it_once_platforms_saw_it(
    clean_keys: Session,
) -> None:
    old_kid = KeyRing(secret=SECRET).snapshot(clean_keys).signing.kid
    new, retired = rotate_keys(clean_keys, secret=SECRET, grace_days=7)
    assert retired == []
    # Another worker, or a platform's cached key set, may not know the new key yet.
    snap = KeyRing(secret=SECRET).snapshot(clean_keys)
    assert snap.signing.kid == old_kid
    assert {k["kid"] for k in snap.jwks["keys"]} == {old_kid, new.kid}

    new.created_at = utcnow() - PUBLISH_BEFORE_SIGNING - timedelta(seconds=1)
    clean_keys.flush()
    snap = KeyRing(secret=SECRET).snapshot(clean_keys)
    assert snap.signing.kid == new.kid
    assert {k["kid"] for k in snap.jwks["keys"]} == {old_kid, new.kid}


def test_two_rotations_in_a_row_keep_signing_with_the_key_platforms_know(
    clean_keys: Session,
) -> None:
    """A double click on Rotate: neither new key has been published long enough, so the key
    platforms have cached keeps signing (not the first new one, published a moment ago)."""
    ring = KeyRing(secret=SECRET)
    old_kid = ring.snapshot(clean_keys).signing.kid
    old = clean_keys.scalars(select(ToolKey).where(ToolKey.kid == old_kid)).one()
    old.created_at = utcnow() - timedelta(days=30)
    first, _ = rotate_keys(clean_keys, secret=SECRET, grace_days=7)
    second, _ = rotate_keys(clean_keys, secret=SECRET, grace_days=7)
    snap = KeyRing(secret=SECRET).snapshot(clean_keys)
    assert snap.signing.kid == old_kid
    assert {k["kid"] for k in snap.jwks["keys"]} == {old_kid, first.kid, second.kid}
    second.created_at = utcnow() - PUBLISH_BEFORE_SIGNING - timedelta(seconds=1)
    clean_keys.flush()
    assert KeyRing(secret=SECRET).snapshot(clean_keys).signing.kid == second.kid


def test_a_rotation_without_grace_days_still_publishes_the_new_key_before_it_signs(
    clean_keys: Session,
) -> None:
    """`keys rotate --grace-days 0` (or LTI_APP_KEY_ROTATION_GRACE_DAYS=0) dropped the old key
    from the key set at once, so the new one signed at once: every platform holding the key
    set it had cached refused Pathways' signatures for up to five minutes."""
    old_kid = KeyRing(secret=SECRET).snapshot(clean_keys).signing.kid
    rotated_at = utcnow()
    new, _ = rotate_keys(clean_keys, secret=SECRET, grace_days=0)
    snap = KeyRing(secret=SECRET).snapshot(clean_keys)
    assert snap.signing.kid == old_kid
    assert {k["kid"] for k in snap.jwks["keys"]} == {old_kid, new.kid}
    old = clean_keys.scalars(select(ToolKey).where(ToolKey.kid == old_kid)).one()
    assert old.retire_after is not None
    assert old.retire_after >= rotated_at + MIN_PUBLISHED_AFTER_ROTATION

    # The new key signs once platforms can have seen it; the old one is still published.
    new.created_at = utcnow() - PUBLISH_BEFORE_SIGNING - timedelta(seconds=1)
    clean_keys.flush()
    snap = KeyRing(secret=SECRET).snapshot(clean_keys)
    assert snap.signing.kid == new.kid
    assert {k["kid"] for k in snap.jwks["keys"]} == {old_kid, new.kid}


def test_a_rotation_for_a_leaked_key_unpublishes_it_and_signs_with_the_new_at_once(
    clean_keys: Session,
) -> None:
    """The way to replace a key that may have leaked, now that a grace of 0 days keeps the
    old key published until platforms know the new one."""
    old_kid = KeyRing(secret=SECRET).snapshot(clean_keys).signing.kid
    new, retired = rotate_keys(clean_keys, secret=SECRET, grace_days=7, leaked=True)
    assert retired == [old_kid]
    snap = KeyRing(secret=SECRET).snapshot(clean_keys)
    assert snap.signing.kid == new.kid
    assert [k["kid"] for k in snap.jwks["keys"]] == [new.kid]


def test_old_key_is_dropped_after_its_grace_period(clean_keys: Session) -> None:
    old_kid = KeyRing(secret=SECRET).snapshot(clean_keys).signing.kid
    rotate_keys(clean_keys, secret=SECRET, grace_days=7)
    old = clean_keys.scalars(select(ToolKey).where(ToolKey.kid == old_kid)).one()
    old.retire_after = utcnow() - timedelta(seconds=1)
    clean_keys.flush()
    snap = KeyRing(secret=SECRET).snapshot(clean_keys)
    assert old_kid not in {k["kid"] for k in snap.jwks["keys"]}
    _, retired = rotate_keys(clean_keys, secret=SECRET, grace_days=7)
    assert old_kid in retired
    assert old.status is KeyStatus.RETIRED


def write_key_file(
    path: Path, passphrase: bytes | None = None, *, bits: int = 2048
) -> rsa.RSAPrivateKey:
    """A new RSA key written to `path` as PEM (PKCS#8), as `LTI_APP_TOOL_KEY_FILE` names one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return key


def test_key_from_a_pem_file_is_used_instead_of_the_database(
    clean_keys: Session, tmp_path: Path
) -> None:
    path = tmp_path / "tool.pem"
    key = write_key_file(path)
    snap = KeyRing(secret=SECRET, key_file=str(path)).snapshot(clean_keys)
    assert snap.signing.private_key.private_numbers() == key.private_numbers()
    assert clean_keys.scalars(select(ToolKey)).first() is None


def test_a_job_refreshing_the_keys_never_stalls_a_request_on_sqlite(tmp_path: Path) -> None:
    """A request holds SQLite's write lock from its first statement; a job (roster sync, grade
    sending) refreshing the key ring at that moment must not hold the ring while it waits for
    the database, or the request, asking for the ring, waits out the busy timeout."""
    from lti_app.db import Database
    from lti_app.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
    upgrade(url)
    database = Database(url)
    ring = KeyRing(secret=SECRET)
    with database.begin() as setup:
        ring.snapshot(setup)  # the first key exists; the ring is stale again below
    ring.invalidate()
    request = database.session_factory()
    request.connection()  # the request's transaction: SQLite's write lock is taken
    job = threading.Thread(target=ring.snapshot_without_session, args=(database,), daemon=True)
    job.start()
    time.sleep(0.3)  # the job now waits for the database
    answered: list[str] = []
    signer = threading.Thread(
        target=lambda: answered.append(ring.snapshot(request).signing.kid), daemon=True
    )
    signer.start()
    signer.join(timeout=10)
    assert answered, "the request waited for the job, which waited for the request"
    request.commit()
    request.close()
    job.join(timeout=10)
    assert not job.is_alive()
    database.dispose()


def test_two_processes_making_the_first_key_at_once_store_one(empty_database_url: str) -> None:
    """Two workers' first requests at once on PostgreSQL each stored a key: two active keys,
    and a platform that had cached one worker's key set met the other's kid."""
    from lti_app.db import Database
    from lti_app.migrate import upgrade

    upgrade(empty_database_url)
    database = Database(empty_database_url)
    made = threading.Event()
    published: dict[str, set[str]] = {}

    def first_request(name: str, wait_for: threading.Event | None) -> None:
        if wait_for is not None:
            wait_for.wait(10)
        with database.begin() as session:
            snap = KeyRing(secret=SECRET).snapshot(session)
            published[name] = {k["kid"] for k in snap.jwks["keys"]}
            if wait_for is None:
                made.set()
                time.sleep(0.5)  # not committed yet while the other process asks

    threads = [
        threading.Thread(target=first_request, args=("a", None), daemon=True),
        threading.Thread(target=first_request, args=("b", made), daemon=True),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with database.session_factory() as session:
        stored = session.scalars(select(ToolKey.kid)).all()
    database.dispose()
    assert len(stored) == 1
    assert published == {"a": set(stored), "b": set(stored)}
