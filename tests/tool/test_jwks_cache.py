"""The platform key cache: one fetch per URL, Cache-Control bounds, refetch on rotation."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from lti_app.db import Database
from lti_app.tool.jwks import JwksCache, JwksUnavailableError, UnknownKeyError
from lti_app.tool.keys import public_jwk
from lti_app.tool.models import JwksCacheEntry

URL = "https://lms.example/jwks"


def make_key(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, public_jwk(key.public_key(), kid)


class FakePlatform:
    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.cache_control = "max-age=600"
        self.down = False
        self.calls = 0
        self.lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.calls += 1
        if self.down:
            return httpx.Response(503, text="down")
        return httpx.Response(
            200,
            headers={"Cache-Control": self.cache_control},
            content=json.dumps({"keys": self.keys}),
        )


@pytest.fixture
def database(engine: Engine, database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    with db.begin() as session:
        session.execute(delete(JwksCacheEntry))
    db.dispose()


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


class BoundCache:
    """A JwksCache plus the database session a request would hand it."""

    def __init__(self, cache: JwksCache, database: Database) -> None:
        self.cache = cache
        self.database = database

    def get_key(self, url: str, kid: str) -> tuple[str, Any]:
        # As the launch view does: the request's session, which the cache may commit.
        session = self.database.session_factory()
        try:
            found = self.cache.get_key(session, url, kid)
            session.commit()
            return found
        finally:
            session.close()

    def _ttl(self, header: str) -> int:
        return self.cache._ttl(header)

    @property
    def _entries(self) -> Any:
        return self.cache._entries


@pytest.fixture
def make_cache(database: Database, platform: FakePlatform) -> Callable[[], BoundCache]:
    def build() -> BoundCache:
        client = httpx.Client(transport=httpx.MockTransport(platform.handler))
        cache = JwksCache(client, min_ttl=60, max_ttl=3600, default_ttl=300)
        return BoundCache(cache, database)

    return build


def test_keys_are_fetched_once_and_then_served_from_memory(
    platform: FakePlatform, make_cache: Callable[[], BoundCache]
) -> None:
    _, jwk = make_key("k1")
    platform.keys = [jwk]
    cache = make_cache()
    for _ in range(20):
        assert cache.get_key(URL, "k1")[0] == "RS256"
    assert platform.calls == 1


def test_a_second_worker_reuses_the_stored_key_set(
    platform: FakePlatform, make_cache: Callable[[], BoundCache]
) -> None:
    _, jwk = make_key("k1")
    platform.keys = [jwk]
    make_cache().get_key(URL, "k1")
    make_cache().get_key(URL, "k1")  # a fresh process-level cache, same database
    assert platform.calls == 1


def test_unknown_kid_refetches_once_and_finds_the_rotated_key(
    platform: FakePlatform, make_cache: Callable[[], BoundCache]
) -> None:
    _, old = make_key("old")
    _, new = make_key("new")
    platform.keys = [old]
    cache = make_cache()
    cache.get_key(URL, "old")
    platform.keys = [old, new]
    assert cache.get_key(URL, "new")
    assert platform.calls == 2


def test_forged_kids_do_not_cause_a_fetch_each(
    platform: FakePlatform, make_cache: Callable[[], BoundCache]
) -> None:
    _, jwk = make_key("k1")
    platform.keys = [jwk]
    cache = make_cache()
    cache.get_key(URL, "k1")
    for i in range(10):
        with pytest.raises(UnknownKeyError):
            cache.get_key(URL, f"forged-{i}")
    assert platform.calls == 2


def test_concurrent_first_launches_fetch_once(
    platform: FakePlatform, make_cache: Callable[[], BoundCache]
) -> None:
    _, jwk = make_key("k1")
    platform.keys = [jwk]
    cache = make_cache()
    threads = [threading.Thread(target=cache.get_key, args=(URL, "k1")) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert platform.calls == 1


def test_platform_down_with_cached_keys_still_verifies(
    platform: FakePlatform, make_cache: Callable[[], BoundCache]
) -> None:
    _, jwk = make_key("k1")
    platform.keys = [jwk]
    platform.cache_control = "max-age=0"  # clamped to the minimum, then expired below
    cache = make_cache()
    cache.get_key(URL, "k1")
    cache._entries[URL].expires_at = 0
    platform.down = True
    assert cache.get_key(URL, "k1")


def test_platform_down_with_nothing_cached_is_a_clear_error(
    platform: FakePlatform, make_cache: Callable[[], BoundCache]
) -> None:
    platform.down = True
    with pytest.raises(JwksUnavailableError):
        make_cache().get_key(URL, "k1")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("max-age=5", 60),
        ("max-age=600", 600),
        ("max-age=999999", 3600),
        ("no-store", 60),
        ("", 300),
    ],
)
def test_cache_control_is_honoured_within_bounds(
    make_cache: Callable[[], BoundCache], header: str, expected: int
) -> None:
    assert make_cache()._ttl(header) == expected
