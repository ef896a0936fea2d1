"""Where private networks are closed to strangers (production), a platform that registered
itself through the public /lti/register page cannot make Pathways connect inside the school's
network: not for its key set, nor its token endpoint, nor the roster and gradebook addresses
its launches name, whatever its DNS answers by then. Platforms an operator registered by hand
stay reachable where they are, on the ports the operator named.

Every LMS here listens on loopback, a private address: the hand-registered test LMS plays the
school's own Moodle, and a second LMS, marked as dynamically registered, plays the stranger.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import httpx
import pytest
import urllib3
from sqlalchemy import select

from lti_app import create_app
from lti_app.db import Database, make_engine
from lti_app.demo.browser import follow_launch
from lti_app.demo.run import register_demo_platform
from lti_app.demo.server import RunningPlatform, serve_in_thread, start_demo_platform
from lti_app.grades.jobs import build_worker
from lti_app.http import (
    AddressPolicy,
    PrivateAddressError,
    is_public_address,
    make_http_client,
    make_score_pool,
)
from lti_app.models import Base
from lti_app.registration.models import PlatformRegistration, RegistrationMethod
from lti_app.registration.reach import operator_named_origins
from lti_app.roster.models import RosterSync, SyncStatus
from lti_app.settings import Settings
from lti_app.tool.models import Platform
from tests.conftest import ToolServer, _scratch_database
from tests.tool.test_launch import assert_refused


class _Answering(BaseHTTPRequestHandler):
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def inside_host() -> Iterator[tuple[str, list[str]]]:
    """A web server on the "school's network" (loopback), recording what reaches it."""
    seen: list[str] = []
    handler = type("Handler", (_Answering,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def closed(*named: tuple[str, int]) -> AddressPolicy:
    return AddressPolicy(private_allowed=False, operator_origins=lambda: frozenset(named))


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_roster_and_token_client_reach_only_hosts_an_operator_named(
    tool_settings: Settings, inside_host: tuple[str, list[str]]
) -> None:
    url, seen = inside_host
    with make_http_client(tool_settings, closed()) as http:
        with pytest.raises(httpx.ConnectError) as refused:
            http.get(url + "/memberships")
        assert isinstance(refused.value.__cause__, PrivateAddressError)
    another_port = closed(("127.0.0.1", port_of(url) + 1))  # the operator named another port
    with make_http_client(tool_settings, another_port) as http, pytest.raises(httpx.ConnectError):
        http.get(url + "/another-port")
    with make_http_client(tool_settings, closed(("127.0.0.1", port_of(url)))) as http:
        assert http.get(url + "/named").text == "ok"
    assert seen == ["/named"]


def test_score_pool_reaches_only_hosts_an_operator_named(
    tool_settings: Settings, inside_host: tuple[str, list[str]]
) -> None:
    url, seen = inside_host
    pool = make_score_pool(tool_settings, 1, closed())
    with pytest.raises(urllib3.exceptions.NewConnectionError, match="off the public internet"):
        pool.request("GET", url + "/scores")
    pool = make_score_pool(tool_settings, 1, closed(("127.0.0.1", port_of(url))))
    assert pool.request("GET", url + "/named").data == b"ok"
    assert seen == ["/named"]


def test_private_hosts_allowed_means_anywhere(
    tool_settings: Settings, inside_host: tuple[str, list[str]]
) -> None:
    url, seen = inside_host
    open_policy = AddressPolicy(private_allowed=True)
    with make_http_client(tool_settings, open_policy) as http:
        assert http.get(url + "/a").text == "ok"
    assert make_score_pool(tool_settings, 1, open_policy).request("GET", url + "/b").data == b"ok"
    assert seen == ["/a", "/b"]


# --- the wiring: a Pathways with private hosts closed, as in production ----------------------


@pytest.fixture(scope="module")
def closed_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this module's own: in the run's, every loopback LMS an earlier test
    registered by hand names its port, and the stranger's new port may be one of them."""
    for url in _scratch_database(tmp_path_factory.mktemp("closed") / "closed.sqlite3"):
        engine = make_engine(url, sqlite_immediate=False)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="module")
def closed_db(closed_database_url: str) -> Iterator[Database]:
    db = Database(closed_database_url)
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def closed_tool(tool_settings: Settings, closed_database_url: str) -> Iterator[ToolServer]:
    settings = dataclasses.replace(
        tool_settings, registration_private_hosts=False, database_url=closed_database_url
    )
    app = create_app(settings)
    url, stop = serve_in_thread(app)
    yield ToolServer(url, app, settings)
    stop()
    app.extensions["lti_app.db"].dispose()


@pytest.fixture(scope="module")
def stranger(closed_tool: ToolServer, closed_database_url: str) -> Iterator[RunningPlatform]:
    """An LMS that registered itself through /lti/register, on a private address."""
    running = start_demo_platform(closed_tool.url)
    db = Database(closed_database_url)
    with db.begin() as session:
        platform = register_demo_platform(session, running.platform)
        session.add(
            PlatformRegistration(platform_id=platform.id, method=RegistrationMethod.DYNAMIC)
        )
    db.dispose()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def school_lms(closed_tool: ToolServer, closed_database_url: str) -> Iterator[RunningPlatform]:
    """The school's own LMS, registered by hand (`lti-app platform add`), on its network."""
    running = start_demo_platform(closed_tool.url)
    db = Database(closed_database_url)
    with db.begin() as session:
        register_demo_platform(session, running.platform)
    db.dispose()
    yield running
    running.stop()


def launch(lms: RunningPlatform, user_id: str) -> httpx.Response:
    spec = lms.platform.make_launch(user_id)
    with httpx.Client(timeout=30) as browser:
        return follow_launch(browser, lms.platform.login_url(spec))


def test_a_self_registered_lms_cannot_have_its_key_set_fetched_from_inside(
    closed_tool: ToolServer,
    stranger: RunningPlatform,
    school_lms: RunningPlatform,
    closed_db: Database,
) -> None:
    db = closed_db
    before = stranger.platform.counters.jwks_fetches
    response = launch(stranger, "user-t01")
    assert_refused(_launched(response), 400, "could not fetch", "public keys", "reachable")
    assert stranger.platform.counters.jwks_fetches == before  # no request left Pathways

    school = launch(school_lms, "user-t01")
    assert school.status_code == 200, school.text[:500]
    # The teacher's launch started a roster sync: the school's LMS answers it on its network.
    issuer = school_lms.platform.config.issuer
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with db.session_factory() as session:
            sync = session.scalar(
                select(RosterSync)
                .join(Platform, Platform.id == RosterSync.platform_id)
                .where(Platform.issuer == issuer, RosterSync.finished_at.is_not(None))
            )
            if sync is not None:
                break
        time.sleep(0.1)
    assert sync is not None
    assert sync.status is SyncStatus.OK, sync.last_error


def test_only_hand_registered_platforms_name_reachable_hosts(
    closed_tool: ToolServer,
    stranger: RunningPlatform,
    school_lms: RunningPlatform,
    closed_db: Database,
) -> None:
    db = closed_db
    with db.session_factory() as session:
        origins = operator_named_origins(session)
        jwks_of = {
            row.issuer: row.jwks_url
            for row in session.execute(select(Platform.issuer, Platform.jwks_url))
        }
    school_port = port_of(school_lms.base_url.rstrip("/"))
    stranger_port = port_of(stranger.base_url.rstrip("/"))
    assert ("127.0.0.1", school_port) in origins
    assert ("127.0.0.1", stranger_port) not in origins
    assert jwks_of[stranger.platform.config.issuer].startswith(stranger.base_url.rstrip("/"))


def test_the_apps_service_clients_and_grade_worker_keep_the_policy(
    closed_tool: ToolServer, stranger: RunningPlatform, school_lms: RunningPlatform
) -> None:
    http: httpx.Client = closed_tool.app.extensions["lti_app.http"]
    with pytest.raises(httpx.ConnectError):
        http.get(stranger.platform.token_url)
    assert http.get(school_lms.base_url.rstrip("/") + "/jwks").status_code == 200
    worker = build_worker(closed_tool.app)
    try:
        pool = worker.ags._pool  # the pool the worker sends scores through
        with pytest.raises(urllib3.exceptions.NewConnectionError):
            pool.request("GET", stranger.base_url.rstrip("/") + "/jwks")
    finally:
        worker.close()


def _launched(response: httpx.Response) -> object:
    from tests.conftest import Launched

    return Launched(response, httpx.Client())


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"])
def test_a_proxy_for_other_addresses_leaves_the_guard_on(
    tool_settings: Settings,
    inside_host: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    """A school's proxy for outbound traffic carries what it is named for; the rest (another
    scheme, NO_PROXY's hosts, typically the internal ones) still meets the guard."""
    url, seen = inside_host
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv(variable, "http://proxy.school.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with make_http_client(tool_settings, closed()) as http, pytest.raises(httpx.ConnectError):
        http.get(url + "/behind-no-proxy")
    assert seen == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("::a00:1", False),  # IPv4-compatible 10.0.0.1
        ("::ffff:169.254.169.254", False),  # IPv4-mapped metadata service
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2606:4700::1", True),
        ("93.184.215.14", True),
    ],
)
def test_ipv6_forms_of_private_ipv4_addresses_are_private(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_the_score_pool_tries_each_address_the_name_has(
    tool_settings: Settings, inside_host: tuple[str, list[str]]
) -> None:
    """A dual-stack LMS whose first address does not answer is reached at its next one."""
    url, seen = inside_host

    class TwoAddresses(AddressPolicy):
        def addresses(self, host: str, port: int) -> list[str]:
            return ["::1", "127.0.0.1"]  # the server listens on IPv4 only

    pool = make_score_pool(tool_settings, 1, TwoAddresses(private_allowed=False))
    assert pool.request("GET", url + "/second").data == b"ok"
    assert seen == ["/second"]
