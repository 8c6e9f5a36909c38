"""The smoke stage against the real suite, whole and with one part stopped at a time."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator

import httpx
import pytest

from deploy.loopback import LocalSuite, SuiteSettings
from deploy.model.errors import ExitCode
from deploy.model.suite import service
from deploy.smoke import HttpSmoke, NoSmoke, SmokeFailed, reference_keys
from tests.conftest import GENEROUS
from tests.infra import free_port_block


def test_smoke_passes_on_a_working_suite(sqlite_suite: LocalSuite) -> None:
    lines: list[str] = []
    report = HttpSmoke(say=lines.append).run(sqlite_suite.url)
    assert report.checks == tuple(line.removeprefix("smoke: ") for line in lines)
    assert "internal APIs answer 404 from outside" in report.checks
    assert "user@test.com is refused what it may not do" in report.checks


class StaleRoute(httpx.BaseTransport):
    """The route to a gateway pod just gone: its first `stale` connections are never answered (ConnectTimeout, as
    kube-proxy sends them to the old pod's address until it has synced), then the real suite answers."""

    def __init__(self, stale: int):
        self.stale, self.refused, self.real = stale, 0, httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.refused < self.stale:
            self.refused += 1
            raise httpx.ConnectTimeout("timed out", request=request)
        return self.real.handle_request(request)


def test_a_connection_sent_to_a_gone_pod_is_made_again_within_the_route_grace(sqlite_suite: LocalSuite) -> None:
    route = StaleRoute(stale=3)
    report = HttpSmoke(transport=route, route_grace=30).run(sqlite_suite.url)
    assert route.refused == 3 and "people listed (" in " ".join(report.checks)


def test_a_gateway_that_cannot_be_connected_to_fails_after_the_route_grace(sqlite_suite: LocalSuite) -> None:
    with pytest.raises(SmokeFailed) as failed:
        HttpSmoke(transport=StaleRoute(stale=10**6), route_grace=1).run(sqlite_suite.url)
    assert failed.value.hop == "gateway" and "while connecting" in str(failed.value)


@pytest.mark.parametrize(
    ("url", "host", "authority"),
    [
        ("https://34.1.2.3:443", "", "34.1.2.3"),
        ("https://34.1.2.3:443", "auth.test", "auth.test"),
        ("https://127.0.0.1:8443", "auth.test", "auth.test:8443"),
        ("http://127.0.0.1:8080", "", "127.0.0.1:8080"),
    ],
)
def test_the_origin_sent_is_the_site_of_the_host_asked_for(url: str, host: str, authority: str) -> None:
    """The gateway refuses a POST whose Origin is not scheme://Host. A load balancer's https://IP:443 is asked
    with Host `IP` (httpx leaves the scheme's port out), so Origin leaves it out too; with `hosts`, both name it."""
    smoke = HttpSmoke(host=host)
    with smoke.client(url) as http:
        sent = http.build_request("GET", "/login").headers["host"]
    assert sent == authority
    assert smoke.origin(url) == f"{httpx.URL(url).scheme}://{authority}"


def test_no_smoke_does_nothing() -> None:
    assert NoSmoke().run("http://127.0.0.1:1") is None


@pytest.fixture(scope="module")
def breakable_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSuite]:
    suite = LocalSuite(
        SuiteSettings(work_dir=tmp_path_factory.mktemp("breakable"), base_port=free_port_block(6), **GENEROUS)
    ).start()
    yield suite
    suite.stop()


@pytest.mark.parametrize("stopped", ["authorisation", "person", "session", "authentication", "frontend", "nginx-lua"])
def test_smoke_names_the_stopped_hop(breakable_suite: LocalSuite, stopped: str) -> None:
    process = breakable_suite.processes[stopped]
    process.send_signal(signal.SIGQUIT if stopped == "nginx-lua" else signal.SIGKILL)
    process.wait(timeout=10)
    try:
        with pytest.raises(SmokeFailed) as failure:
            HttpSmoke(timeout=3, references=reference_keys(breakable_suite.identity)).run(breakable_suite.url)
    finally:
        restart(breakable_suite, stopped)
    assert failure.value.hop == ("gateway" if stopped == "nginx-lua" else stopped)
    assert failure.value.exit_code == ExitCode.SMOKE
    assert f"at the {failure.value.hop} while" in str(failure.value)


def restart(suite: LocalSuite, name: str) -> None:
    if name == "nginx-lua":
        suite.start_gateway()
        suite.wait_ready(name, f"{suite.url}/login", 120)  # a bound on a loaded machine
        return
    part = service(name)
    suite.start_process(name, [sys.executable, "-m", part.module], suite.service_env(part))
    suite.wait_ready(name, f"http://{suite.settings.address(name)}/readyz", 120)
