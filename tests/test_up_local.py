"""`k8sdeploy up`, `status`, `smoke` and `down` on the real Docker Engine, with the suite's real images.

The steps run in order against one environment: up single-pod, up again (no change), a browser
login at the printed URL, a layout switch, a crashing image, down twice.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from deploy.model.suite import suite_ports
from tests.browser.test_login_browser import CHROMIUM_FLAGS
from tests.deploy.conftest import git, make_source_repo
from tests.gateway.test_login_burst import at_once, log_in
from tests.helpers import k8sdeploy
from tests.infra import LocalEnvironment
from tests.load import loaded

LOCAL = LocalEnvironment.new("uptest")  # its own name and ports: it runs beside `make demo`'s environment
ENV, OWNED, GATEWAY = LOCAL.name, LOCAL.owned, LOCAL.gateway


@pytest.fixture(scope="module", autouse=True)
def state_of_its_own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Its release history, lease and mounted files in a directory of its own, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
        yield


@pytest.fixture(scope="module")
def single_pod_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "k8sdeploy.toml"
    path.write_text(LOCAL.table("single-pod"))
    return path


SUITE_PORTS = LOCAL.ports  # the gateway and the five services (deploy/model/suite.py's suite_ports)


def listening(ports: range) -> dict[int, str]:
    """Port -> local address of the listening TCP sockets on `ports`, as `ss -ltn` shows them."""
    lines = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout.splitlines()
    found = {}
    for line in lines:
        address, _, port = line.split()[3].rpartition(":")
        if int(port) in ports:
            found[int(port)] = address.strip("[]")
    return found


def container_ids(engine: docker.DockerClient) -> dict[str, str]:
    return {c.name: c.id for c in engine.containers.list(all=True, filters=OWNED)}


class TestUpOnTheLocalEngine:
    def test_up_single_pod_passes_the_smoke_test(
        self, single_pod_config: Path, suite_engine: docker.DockerClient
    ) -> None:
        result = k8sdeploy("up", "--layout", "single-pod", env=ENV, config=single_pod_config)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"gateway: {GATEWAY}",
            "  log in as admin@test.com / admin",
            "  log in as user@test.com / user",
        ]
        assert "smoke: user@test.com is refused what it may not do" in result.stderr
        pods = {c.labels["k8sdeploy.io/pod"] for c in suite_engine.containers.list(filters=OWNED)}
        assert pods == {"auth-suite"}
        assert len(container_ids(suite_engine)) == 7  # the infra container and six

    def test_every_port_of_the_suite_listens_on_loopback_only(self) -> None:
        """The containers share the host's network: a service on 0.0.0.0 would take requests from anyone who
        reaches the machine (a POST to the session service's /api/sessions is an admin session)."""
        assert listening(SUITE_PORTS) and set(listening(SUITE_PORTS).values()) == {"127.0.0.1"}

    def test_second_up_changes_nothing(self, single_pod_config: Path, suite_engine: docker.DockerClient) -> None:
        before = container_ids(suite_engine)
        result = k8sdeploy("up", env=ENV, config=single_pod_config)
        assert result.exit_code == 0, result.stderr
        assert "no change: auth-suite already up to date" in result.stderr
        assert "loaded into the engine" not in result.stderr
        assert result.stderr.count("already in the engine as") == 6
        assert container_ids(suite_engine) == before

    def test_a_login_burst_leaves_authentication_running_within_its_memory(
        self, suite_engine: docker.DockerClient
    ) -> None:
        """50 wrong logins at once from one client, then 20 right ones from five: no 5xx, and the authentication
        container (256 MiB) is neither OOM-killed nor restarted; an honest login right after succeeds."""
        url = GATEWAY
        wrong = at_once([("127.0.0.50", "admin@test.com", f"guess{i}") for i in range(50)], url)
        right = at_once([(f"127.0.0.{51 + i % 5}", "admin@test.com", "admin") for i in range(20)], url)
        statuses = [answer.status_code for answer in wrong + right]
        assert not [status for status in statuses if status >= 500], statuses
        assert [answer.status_code for answer in right] == [302] * 20
        assert log_in(url, "127.0.0.56", "admin@test.com", "admin").status_code == 302
        [container] = [
            c
            for c in suite_engine.containers.list(all=True, filters=OWNED)
            if c.labels.get("k8sdeploy.io/container") == "authentication"
        ]
        container.reload()
        assert container.attrs["HostConfig"]["Memory"] == 256 * 1024 * 1024
        assert container.attrs["RestartCount"] == 0 and not container.attrs["State"]["OOMKilled"]
        assert container.attrs["State"]["Running"]

    def test_status_lists_six_ready_services(self, single_pod_config: Path) -> None:
        result = k8sdeploy("status", env=ENV, config=single_pod_config)
        assert result.exit_code == 0, result.stderr
        rows = [line.split() for line in result.stdout.splitlines()[1:] if not line.startswith("schemas")]
        assert sorted(row[0] for row in rows) == [
            "authentication",
            "authorisation",
            "frontend",
            "nginx-lua",
            "person",
            "session",
        ]
        assert all(row[3] == "yes" and row[2].startswith("sha256:") for row in rows)

    def test_a_key_rotation_reaches_the_running_suite_without_a_restart(
        self, single_pod_config: Path, suite_engine: docker.DockerClient
    ) -> None:
        before = container_ids(suite_engine)
        rotated = k8sdeploy("keys", "rotate", env=ENV, config=single_pod_config)
        assert rotated.exit_code == 0, rotated.stderr
        assert "rewrote keys of volume nginx-lua-identity in the running pod auth-suite" in rotated.stderr
        newest, previous = rotated.stdout.splitlines()
        assert newest.endswith("  signing") and previous.endswith("  verifying only")
        time.sleep(1.5)  # each part reads its key file again within a second
        assert k8sdeploy("smoke", env=ENV, config=single_pod_config).exit_code == 0
        assert container_ids(suite_engine) == before
        # a process on the host that reaches a service directly has no proof
        session = f"http://127.0.0.1:{suite_ports(LOCAL.port_base)['session']}/api/sessions"
        assert httpx.post(session, content=b"3").status_code == 401
        again = k8sdeploy("up", env=ENV, config=single_pod_config)
        assert again.exit_code == 0, again.stderr
        assert "no change: auth-suite already up to date" in again.stderr
        assert container_ids(suite_engine) == before

    def test_a_browser_logs_in_at_the_printed_url(self) -> None:
        from playwright.sync_api import expect, sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
            page = browser.new_page()
            page.goto(f"{GATEWAY}/")
            expect(page).to_have_url(f"{GATEWAY}/login")
            page.fill("input[name=emailaddress]", "admin@test.com")
            page.fill("input[name=password]", "admin")
            page.click("button[type=submit]")
            page.click("text=People")
            expect(page.locator("table")).to_contain_text("Hopper")
            browser.close()

    def test_a_new_version_costs_what_the_docs_say(self, single_pod_config: Path, tmp_path: Path) -> None:
        """docs/layouts.md, "Deploys without a gap": on the local target every changed container is replaced in
        place, `up` says so first, logged-in users stay logged in, and requests fail only while `up` runs."""
        source = make_source_repo(tmp_path / "next")
        with loaded(GATEWAY) as load:
            result = k8sdeploy(
                "up", "--source", str(source), "--wait-timeout", "120", env=ENV, config=single_pod_config
            )
            returned = time.monotonic()
        assert result.exit_code == 0, result.stderr
        [said] = [line for line in result.stderr.splitlines() if line.startswith("gap: ")]
        assert said.startswith("gap: the local target runs one container of each part on its own host port"), said
        assert said.index("gap: ") < result.stderr.index("smoke: ")  # said before, not after
        assert load.logged_out == 0, load.report()  # the session outlived the containers
        assert load.failed, load.report()  # a gap, as said
        assert all(when < returned for when, _ in load.failed), load.report()  # and only while `up` ran
        assert load.served > 0

    def test_switching_layout_removes_the_single_pod(
        self, single_pod_config: Path, suite_engine: docker.DockerClient
    ) -> None:
        result = k8sdeploy("up", "--layout", "split-pods", env=ENV, config=single_pod_config)
        assert result.exit_code == 0, result.stderr
        assert "removed auth-suite" in result.stderr
        pods = {c.labels["k8sdeploy.io/pod"] for c in suite_engine.containers.list(all=True, filters=OWNED)}
        assert pods == {"nginx-lua", "frontend", "authentication", "authorisation", "session", "person"}
        assert k8sdeploy("smoke", env=ENV, config=single_pod_config).exit_code == 0
        assert set(listening(SUITE_PORTS).values()) == {"127.0.0.1"}

    def test_a_crashing_service_is_named_with_its_last_log_lines(self, single_pod_config: Path, tmp_path: Path) -> None:
        source = make_source_repo(tmp_path / "broken")
        main_module = source / "services" / "person" / "__main__.py"
        main_module.write_text("raise RuntimeError('person: the flux capacitor is missing')\n")
        git(source, "commit", "-qam", "break person")
        result = k8sdeploy(
            "up",
            "--layout",
            "single-pod",
            "--source",
            str(source),
            "--wait-timeout",
            "120",
            env=ENV,
            config=single_pod_config,
        )
        assert result.exit_code == 5, result.stderr
        assert "error: person crashed; fix the cause shown below" in result.stderr
        assert "RuntimeError: person: the flux capacitor is missing" in result.stderr
        assert "frontend crashed" not in result.stderr

    def test_down_removes_everything_and_again_is_a_no_op(
        self, single_pod_config: Path, suite_engine: docker.DockerClient
    ) -> None:
        first = k8sdeploy("down", "--volumes", "--yes", env=ENV, config=single_pod_config)
        assert first.exit_code == 0, first.stderr
        assert f"removed k8sdeploy-{ENV}-auth-suite-person" in first.stdout
        assert suite_engine.containers.list(all=True, filters=OWNED) == []
        assert suite_engine.volumes.list(filters=OWNED) == []
        second = k8sdeploy("down", "--yes", env=ENV, config=single_pod_config)
        assert second.exit_code == 0 and second.stdout == ""
