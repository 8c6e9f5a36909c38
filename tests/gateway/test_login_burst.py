"""Login under a burst: authentication hashes at most what fits in its memory, the gateway's per-client limit
lets through no more than waits for a hash slot, and what exceeds the bound is told the service is busy (503
with Retry-After), never crashed or answered 502."""

from __future__ import annotations

import math
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
import pytest

from deploy.loopback import LocalSuite, nginx_command
from deploy.model.suite import GATEWAY
from deploy.render.gateway import GatewayConfig
from suitekit.passwords import MIB, parse_memory
from tests.infra import ServiceProcess, free_port_block, start_service, wait_for_port, wait_ready

LIMIT = "256Mi"  # deploy/model/suite.py's SERVICE_MEMORY_LIMIT, the container's limit


def gateway(suite: LocalSuite, tmp_path: Path, **overrides) -> Iterator[str]:
    """A gateway with the shipped login limits (and `overrides`) in front of the suite's services."""
    port = free_port_block(1)
    config = suite.gateway_config(
        listen=f"127.0.0.1:{port}",
        runtime_dir=str(tmp_path / "nginx"),
        login_rate=GatewayConfig(upstreams=suite.gateway_config().upstreams).login_rate,
        login_burst=GatewayConfig(upstreams=suite.gateway_config().upstreams).login_burst,
        **overrides,
    )
    process = subprocess.Popen(nginx_command(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def from_address(url: str, address: str) -> httpx.Client:
    """A client whose connections come from `address` (127.0.0.x): another client for the gateway's limit."""
    return httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=address), timeout=120)


def log_in(url: str, address: str, email: str, password: str) -> httpx.Response:
    with from_address(url, address) as http:
        return http.post("/login", data={"emailaddress": email, "password": password})


def at_once(calls: list[tuple[str, str, str]], url: str) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: log_in(url, *call), calls))


def peak_memory(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    assert found, status
    return int(found.group(1)) * 1024


@pytest.fixture
def shipped_gateway(suite: LocalSuite, tmp_path: Path) -> Iterator[str]:
    yield from gateway(suite, tmp_path)


def test_a_burst_of_wrong_logins_then_right_ones_from_five_clients_gets_no_5xx(
    suite: LocalSuite, shipped_gateway: str
) -> None:
    authentication = suite.processes["authentication"]
    started = time.monotonic()
    wrong = at_once([("127.0.0.50", "admin@test.com", f"guess{i}") for i in range(50)], shipped_gateway)
    seconds = time.monotonic() - started
    right = at_once([(f"127.0.0.{51 + i % 5}", "admin@test.com", "admin") for i in range(20)], shipped_gateway)
    assert not [a for a in wrong + right if a.status_code >= 500], [(a.status_code, a.text) for a in wrong + right]
    burst = GatewayConfig(upstreams=suite.gateway_config().upstreams).login_burst
    # nginx lets the burst through (each a wrong password, 401, or the account's own lock, 429), and one more
    # every 3 s (20r/m) while the 50 arrive; the rest 429
    assert {answer.status_code for answer in wrong} == {401, 429}
    assert [answer.status_code for answer in wrong].count(401) <= burst + 1 + math.ceil(seconds / 3)
    assert [answer.status_code for answer in right] == [302] * 20  # 4 from each client: within its burst
    assert log_in(shipped_gateway, "127.0.0.56", "admin@test.com", "admin").status_code == 302
    assert authentication.poll() is None, "authentication exited"  # the same process: never restarted
    assert peak_memory(authentication.pid) < parse_memory(LIMIT), f"{peak_memory(authentication.pid) / MIB:.0f} MiB"


@pytest.fixture
def busy_authentication(sqlite_suite: LocalSuite, tmp_path: Path) -> Iterator[ServiceProcess]:
    """authentication with the memory for one hash at a time, and a second's wait for it; it believes the shared
    suite's gateway (the same keys)."""
    service = start_service(
        "authentication",
        tmp_path,
        {"DATABASE_PATH": str(tmp_path / "authentication.db"), "MEMORY_LIMIT": "130Mi", "HASH_WAIT_SECONDS": "1"},
        keys=sqlite_suite.key_file(GATEWAY).parent,
    )
    try:
        wait_ready(service)
        yield service
    finally:
        service.stop()


def test_logins_beyond_the_hash_bound_get_429_over_a_clients_share_and_503_when_the_queue_is_full(
    busy_authentication: ServiceProcess,
) -> None:
    assert "memory limit 130 MiB: 1 hashes at once, 4 more may wait" in busy_authentication.log()

    def direct(i: int, source: str) -> httpx.Response:
        data = {"emailaddress": f"guesser{i}@test.com", "password": "guess"}
        headers = {**busy_authentication.token(GATEWAY), "X-Real-IP": source}
        return httpx.post(f"{busy_authentication.url}/api/authentication", data=data, headers=headers, timeout=60)

    one_client, twenty_clients = ["127.0.1.1"] * 20, [f"127.0.2.{i}" for i in range(20)]
    for sources, refused in ((one_client, 429), (twenty_clients, 503)):
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(direct, range(20), sources))
        statuses = [answer.status_code for answer in answers]
        # one client: beyond its share of the queue (slots + 1 waiting), refused without a hash; many clients:
        # the queue (4) full of clients with as many waiting as each newcomer
        assert refused in statuses and set(statuses) <= {401, 429, 503}, statuses  # 503: a wait bound passed
        assert statuses.count(429) + statuses.count(503) >= 10, statuses
        for answer in answers:
            if answer.status_code in (429, 503):
                assert answer.text.startswith("too many logins at once")
                assert answer.headers["retry-after"] == "1"
    answer = httpx.post(
        f"{busy_authentication.url}/api/authentication",
        data={"emailaddress": "admin@test.com", "password": "admin"},
        headers=busy_authentication.token(GATEWAY),
    )
    assert answer.status_code == 200
    assert jwt.decode(answer.text, options={"verify_signature": False})["sub"] == "1"  # the proof for session
    assert busy_authentication.process.poll() is None


def test_the_login_page_says_there_are_too_many_logins(
    sqlite_suite: LocalSuite, busy_authentication: ServiceProcess, tmp_path: Path
) -> None:
    upstreams = {**sqlite_suite.gateway_config().upstreams, "authentication": f"127.0.0.1:{busy_authentication.port}"}
    for url in gateway(sqlite_suite, tmp_path, upstreams=upstreams):
        answers = at_once([("127.0.0.60", f"guesser{i}@test.com", "guess") for i in range(7)], url)
        refused = [answer for answer in answers if answer.status_code == 429]
        assert refused, [answer.status_code for answer in answers]
        assert {answer.status_code for answer in answers} <= {401, 429, 503}  # 503: a wait bound passed
        assert all("retry-after" in answer.headers for answer in answers if answer.status_code in (429, 503))
        for answer in refused:
            assert "Too many login attempts. Try again in a few minutes." in answer.text
            assert answer.headers["retry-after"] == "1"


def test_a_strangers_wrong_passwords_through_the_gateway_leave_the_owner_able_to_log_in(suite: LocalSuite) -> None:
    """The gateway names the client to authentication: the stranger's address is locked, not the account."""
    stranger = [log_in(suite.url, "127.0.0.70", "user@test.com", f"guess{i}").status_code for i in range(20)]
    assert stranger == [401] * 5 + [429] * 15
    assert log_in(suite.url, "127.0.0.70", "user@test.com", "user").status_code == 429
    assert log_in(suite.url, "127.0.0.71", "user@test.com", "user").status_code == 302
