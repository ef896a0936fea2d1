"""The tool's signing keys: created on first use, encrypted at rest, loaded once per process."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.tool.key_files import (
    KEY_FILE_SETTING,
    NEXT_KEY_FILE_SETTING,
    PREVIOUS_KEY_FILE_SETTING,
    parse_key_file,
    read_key_file,
)
from lti_app.tool.key_files import ToolKeyError as ToolKeyError  # what callers catch
from lti_app.tool.models import KeyStatus, ToolKey

if TYPE_CHECKING:
    from lti_app.settings import Settings

LOG = logging.getLogger(__name__)

# Re-read the key table this often so a rotation in one worker reaches the others.
KEY_REFRESH_SECONDS = 30.0
# How long platforms may cache our key set (the JWKS endpoint's Cache-Control max-age).
JWKS_MAX_AGE_SECONDS = 300
ISSUED_AT_SKEW_SECONDS = 30
"""How far back the messages we sign date their `iat`: Moodle checks iat with no leeway at
all (php-jwt), so a Pathways clock a second ahead of the LMS's would have it refuse the
deep-linking response and the service-token request."""
# A new key signs only once every worker publishes it and every platform's cached copy of
# our key set has expired: a platform must never meet a kid it cannot find.
PUBLISH_BEFORE_SIGNING = timedelta(seconds=JWKS_MAX_AGE_SECONDS + 2 * KEY_REFRESH_SECONDS)
FIRST_KEY_LOCK = 0x70617468  # "path": PostgreSQL advisory lock id for making the first key
SECRET_SETTING = "LTI_APP_KEY_ENCRYPTION_SECRET"  # noqa: S105 - the name, not a secret


def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(b"pathways-tool-key:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def public_jwk(public_key: rsa.RSAPublicKey, kid: str) -> dict[str, Any]:
    """The JWK Canvas and others require: kid, alg and use on every key."""
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(public_key))
    # PyJWT adds key_ops ["verify"]; RFC 7517 §4.3: "use" and "key_ops" SHOULD NOT be used
    # together, and "use" is the member platforms read (Canvas requires it).
    jwk.pop("key_ops", None)
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk


def thumbprint_kid(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 thumbprint, so the same key always gets the same kid."""
    jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode()[:43]


def generate_key(session: Session, *, secret: str) -> ToolKey:
    """Create and store a new active RSA-2048 key pair."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = ToolKey(
        kid=thumbprint_kid(private.public_key()),
        public_pem=public_pem,
        private_pem_encrypted=_fernet(secret).encrypt(private_pem).decode(),
        status=KeyStatus.ACTIVE,
    )
    session.add(key)
    session.flush()
    LOG.info("created tool key kid=%s", key.kid)
    return key


def secret_opens_keys(session: Session, secret: str) -> bool:
    """Whether `secret` decrypts one of the keys still published (or there are none yet).

    `lti-app keys rotate` runs in an operator's shell, not in the servers' environment: with
    another LTI_APP_KEY_ENCRYPTION_SECRET (or none, so LTI_APP_SECRET_KEY stands in) it would
    store a key the servers cannot open, and once that key is due to sign every signature
    (service tokens, deep linking) fails. The keys already there show which secret is right.
    """
    rows = session.scalars(select(ToolKey).where(ToolKey.status != KeyStatus.RETIRED)).all()
    fernet = _fernet(secret)
    for row in rows:
        try:
            fernet.decrypt(row.private_pem_encrypted.encode())
        except InvalidToken:
            continue
        return True
    return not rows


def _signing_row(published: list[ToolKey], now: datetime) -> ToolKey:
    """The newest active key published long enough; until then the key it replaced.

    :param published: the keys in the key set, newest first; at least one.
    """
    active = [k for k in published if k.status is KeyStatus.ACTIVE]
    ready = [k for k in active if k.created_at <= now - PUBLISH_BEFORE_SIGNING]
    if ready:
        return ready[0]
    replaced = [k for k in published if k.status is KeyStatus.RETIRING]
    # Two rotations in a row (a double click on Rotate) leave a replaced key as new as the
    # active one: sign with the newest that platforms have had time to see.
    seen = [k for k in replaced if k.created_at <= now - PUBLISH_BEFORE_SIGNING]
    return (seen or replaced or active)[0]


def _is_published(key: ToolKey, now: datetime) -> bool:
    past_grace = key.retire_after is not None and key.retire_after <= now
    return not (key.status is KeyStatus.RETIRING and past_grace)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class KeySnapshot:
    signing_key: SigningKey | None
    """None when this process's secret opens none of the published keys: the key set, made
    of public keys only, is still served."""
    jwks: dict[str, Any]
    loaded_at: float

    @property
    def signing(self) -> SigningKey:
        """:raises ToolKeyError: no published key can be decrypted with this secret."""
        if self.signing_key is None:
            raise ToolKeyError(
                f"the tool's private key cannot be decrypted: is {SECRET_SETTING} "
                "(or LTI_APP_SECRET_KEY) the one it was created with?",
                setting=SECRET_SETTING,
            )
        return self.signing_key


def _unretired_keys(session: Session) -> list[ToolKey]:
    """The keys still published or due to be, newest first."""
    return list(
        session.scalars(
            select(ToolKey)
            .where(ToolKey.status != KeyStatus.RETIRED)
            .order_by(ToolKey.created_at.desc(), ToolKey.id.desc())
        )
    )


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class KeyRing:
    """Per-process cache of the signing key and the published JWKS.

    Loading and validating a PEM costs ~28 ms, so it happens once per key per process; the
    key table is re-read every KEY_REFRESH_SECONDS (one cheap query) to notice rotations.
    """

    def __init__(
        self,
        *,
        secret: str,
        key_file: str = "",
        next_key_file: str = "",
        previous_key_file: str = "",
    ) -> None:
        self._secret = secret
        self._key_file = key_file
        self._next_key_file = next_key_file
        self._previous_key_file = previous_key_file
        self._from_files: tuple[tuple[bytes, ...], KeySnapshot] | None = None
        self._lock = threading.Lock()
        self._snapshot: KeySnapshot | None = None
        self._private_by_kid: dict[str, rsa.RSAPrivateKey] = {}
        self._undecryptable_kids: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """The process's key ring, its key files read now (start-up).

        :raises ToolKeyError: as `load_key_file`.
        """
        ring = cls(
            secret=settings.effective_key_secret,
            key_file=settings.tool_key_file,
            next_key_file=settings.tool_next_key_file,
            previous_key_file=settings.tool_previous_key_file,
        )
        ring.load_key_file()
        return ring

    def load_key_file(self) -> None:
        """Read the key files now (start-up), so an unusable one stops Pathways from starting
        instead of failing the first launch or key set request.

        :raises ToolKeyError: a file cannot be read or holds no RSA private key of 2048 bits
            or more, or a next or previous key file is named without a current one.
        """
        for path, setting in self._key_files()[1:]:
            if path and not self._key_file:
                raise ToolKeyError(
                    f"{setting} is set without {KEY_FILE_SETTING} (keys kept in the database "
                    "rotate with `lti-app keys rotate`)",
                    setting=setting,
                )
        if self._key_file:
            with self._lock:
                self._snapshot = self._load_from_file()

    def invalidate(self) -> None:
        with self._lock:
            self._snapshot = None

    def snapshot(self, session: Session) -> KeySnapshot:
        snap = self._snapshot
        if snap is not None and time.monotonic() - snap.loaded_at < KEY_REFRESH_SECONDS:
            return snap
        if not self._key_file:
            # The database first, this lock second, in every caller: on SQLite a transaction
            # holds the write lock from its start, so a job holding this lock while it waited
            # for the database stalled a request waiting for this lock (busy timeout: 30 s).
            session.connection()
        with self._lock:
            snap = self._snapshot
            if snap is not None and time.monotonic() - snap.loaded_at < KEY_REFRESH_SECONDS:
                return snap
            snap = self._load_from_file() if self._key_file else self._load_from_db(session)
            self._snapshot = snap
            return snap

    def snapshot_without_session(self, database: Any) -> KeySnapshot:
        """The snapshot for code outside a request (jobs); opens a session only when needed."""
        snap = self._snapshot
        if snap is not None and time.monotonic() - snap.loaded_at < KEY_REFRESH_SECONDS:
            return snap
        with database.begin() as session:  # commits a key made on first use
            return self.snapshot(session)

    def _key_files(self) -> list[tuple[str, str]]:
        """The key files and their settings: the one that signs first, then those only
        published. The next key is published ahead of a rotation: platforms cache the key set
        (JWKS_MAX_AGE_SECONDS), and a key that signed the moment it was swapped in was one
        they did not know yet. The previous key stays published after the swap, so what it
        signed just before still verifies."""
        return [
            (self._key_file, KEY_FILE_SETTING),
            (self._next_key_file, NEXT_KEY_FILE_SETTING),
            (self._previous_key_file, PREVIOUS_KEY_FILE_SETTING),
        ]

    def _load_from_file(self) -> KeySnapshot:
        try:
            return self._read_key_files()
        except ToolKeyError as err:
            known = self._from_files
            if known is None:  # start-up: refuse to start
                raise
            # A file deleted, or read half-written while a secret store swapped it: the keys
            # read before keep signing and stay published. Failing instead answered 500 for
            # the key set and every signature until the file was whole again.
            LOG.error("%s; still using the tool keys read before it", err)
            return replace(known[1], loaded_at=time.monotonic())

    def _read_key_files(self) -> KeySnapshot:
        named = [(path, setting) for path, setting in self._key_files() if path]
        contents = tuple(read_key_file(path, setting) for path, setting in named)
        # The files are read every refresh so that a swapped file is noticed, but parsed only
        # when they changed: parsing costs ~28 ms a key, under the lock a request waits on.
        known = self._from_files
        if known is not None and known[0] == contents:
            return replace(known[1], loaded_at=time.monotonic())
        keys = [
            parse_key_file(pem, path, setting)
            for pem, (path, setting) in zip(contents, named, strict=True)
        ]
        published: dict[str, dict[str, Any]] = {}
        for key in keys:
            kid = thumbprint_kid(key.public_key())
            published.setdefault(kid, public_jwk(key.public_key(), kid))
        snap = KeySnapshot(
            signing_key=SigningKey(thumbprint_kid(keys[0].public_key()), keys[0]),
            jwks={"keys": list(published.values())},
            loaded_at=time.monotonic(),
        )
        self._from_files = (contents, snap)
        return snap

    def _load_from_db(self, session: Session) -> KeySnapshot:
        now = utcnow()
        keys = _unretired_keys(session)
        if not any(k.status is KeyStatus.ACTIVE for k in keys) and _is_postgresql(session):
            # Two processes' first requests at once each made a key: two active keys, and a
            # platform that had cached one process's key set met the other's kid. They take
            # turns here, and the second finds the first's key once it is committed (SQLite's
            # BEGIN IMMEDIATE already makes their transactions take turns).
            session.execute(select(func.pg_advisory_xact_lock(FIRST_KEY_LOCK)))
            keys = _unretired_keys(session)
        if not any(k.status is KeyStatus.ACTIVE for k in keys):
            # First use: created in the caller's transaction (a second connection would wait
            # on SQLite's write lock); the caller commits. Not cached until it is seen stored.
            generate_key(session, secret=self._secret)
            snap = self._load_from_db(session)
            return replace(snap, loaded_at=-KEY_REFRESH_SECONDS)
        published = [k for k in keys if _is_published(k, now)]
        jwks = []
        for row in published:
            pub = serialization.load_pem_public_key(row.public_pem.encode())
            if isinstance(pub, rsa.RSAPublicKey):
                jwks.append(public_jwk(pub, row.kid))
        return KeySnapshot(
            signing_key=self._signing_key(published, now),
            jwks={"keys": jwks},
            loaded_at=time.monotonic(),
        )

    def _signing_key(self, published: list[ToolKey], now: datetime) -> SigningKey | None:
        """The key `_signing_row` picks among those this process's secret can decrypt."""
        candidates = [k for k in published if k.kid not in self._undecryptable_kids]
        while candidates:
            row = _signing_row(candidates, now)
            private = self._private_key(row)
            if private is not None:
                return SigningKey(row.kid, private)
            # `lti-app keys rotate --new-secret`: the servers' new secret cannot open the key
            # that would sign until platforms have cached the new one, so the new key signs at
            # once. A platform holding a key set cached before the rotation refuses these
            # signatures until its copy expires (JWKS_MAX_AGE_SECONDS); that beats failing
            # every signature, and the key set with them, for the whole wait.
            candidates.remove(row)
        return None

    def _private_key(self, row: ToolKey) -> rsa.RSAPrivateKey | None:
        """The decrypted private key of `row`, or None if this secret cannot decrypt it."""
        private = self._private_by_kid.get(row.kid)
        if private is not None:
            return private
        try:
            pem = _fernet(self._secret).decrypt(row.private_pem_encrypted.encode())
        except InvalidToken:
            self._undecryptable_kids.add(row.kid)  # the secret is fixed: warn once a process
            LOG.warning(
                "tool key kid=%s cannot be decrypted with LTI_APP_KEY_ENCRYPTION_SECRET (or "
                "LTI_APP_SECRET_KEY): it stays published but signs nothing",
                row.kid,
            )
            return None
        loaded = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):  # pragma: no cover - we only store RSA
            raise ToolKeyError("stored tool key is not RSA", setting=SECRET_SETTING)
        self._private_by_kid = {row.kid: loaded}
        return loaded
