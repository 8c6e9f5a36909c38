"""`k8sdeploy dev` on the real Docker Engine with the suite's real images, as a person runs it in a terminal: a
saved change to a frontend template is served through the gateway; one to the gateway's Lua is served after
nginx reloads (same container); a save that makes the person service crash
is diagnosed (its last log lines) and the loop keeps watching; the fix is served again; no container is
replaced throughout (a restart keeps the container); a second `dev` finds the first one's lease; Ctrl-C stops
watching and leaves the deployment running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import httpx
import pytest

from tests.deploy.conftest import make_source_repo
from tests.helpers import checked_stderr, client, k8sdeploy, login
from tests.infra import ROOT, LocalEnvironment

LOCAL = LocalEnvironment.new("devtest")  # its own name and ports: it runs beside `make demo`'s environment
ENV, OWNED, GATEWAY = LOCAL.name, LOCAL.owned, LOCAL.gateway
APPS = {"label": [*OWNED["label"], "k8sdeploy.io/role=app"]}


class Dev:
    """`k8sdeploy dev` in a process of its own; its stderr in a file the test reads as it grows."""

    def __init__(self, source: Path, config: Path, work: Path):
        self.log = work / "dev.stderr"
        self.environ = {**os.environ, "XDG_STATE_HOME": str(work / "state"), "CI": "true"}
        command = [sys.executable, "-m", "cli", "dev", "--env", ENV, "--config", str(config), "--source", str(source)]
        with self.log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [*command, "--no-smoke"], cwd=ROOT, env=self.environ, stdout=subprocess.PIPE, stderr=stderr
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, what: str, after: int = 0, timeout: float = 60) -> int:
        """Where `what` first appears in stderr at or after offset `after`."""
        deadline = time.monotonic() + timeout
        while (found := self.text().find(what, after)) < 0:
            assert self.process.poll() is None, f"dev exited {self.process.returncode}:\n{self.text()[-4000:]}"
            assert time.monotonic() < deadline, f"no {what!r} after {timeout} s:\n{self.text()[after:][-4000:]}"
            time.sleep(0.1)
        return found


def served(path: str, wanted: str, session: Callable[[], httpx.Client] = lambda: client(GATEWAY)) -> bool:
    try:
        http = session()
    except httpx.HTTPError:
        return False
    try:
        return wanted in http.get(path).text
    except httpx.HTTPError:
        return False
    finally:
        http.close()


def eventually(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not served in time"
        time.sleep(0.1)


def admin() -> httpx.Client:
    http = client(GATEWAY)
    login(http, "admin@test.com", "admin")
    return http


def app_containers(engine: docker.DockerClient) -> dict[str, str]:
    return {c.labels["k8sdeploy.io/container"]: c.id for c in engine.containers.list(all=True, filters=APPS)}


@pytest.fixture
def dev(suite_engine: docker.DockerClient, tmp_path: Path) -> Iterator[tuple[Dev, Path, Path]]:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(LOCAL.table("single-pod"))
    source = make_source_repo(tmp_path / "source")
    running = Dev(source, config, tmp_path)
    yield running, source, config
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()
    checked_stderr(running.text(), ["dev", "--env", ENV])
    k8sdeploy("down", "--yes", "--volumes", env=ENV, config=config, environ=running.environ)


@pytest.mark.timeout(900)
def test_dev_serves_saved_changes_and_survives_a_crash(
    dev: tuple[Dev, Path, Path], suite_engine: docker.DockerClient
) -> None:
    running, source, config = dev
    start = running.wait_for("watching ", timeout=600)
    containers = app_containers(suite_engine)
    assert len(containers) == 6 and served("/login", "Log in")

    template = source / "services" / "frontend" / "templates" / "login.html"
    template.write_text(template.read_text().replace("<h1>Log in</h1>", "<h1>Log in, developer</h1>"))
    eventually(lambda: served("/login", "Log in, developer"))
    running.wait_for("served in", after=start)

    lua = source / "nginx-lua" / "lua" / "gateway.lua"
    mark = len(running.text())
    marked = 'function M.strip_token()\n    ngx.header["X-Dev"] = "reloaded"\n'
    lua.write_text(lua.read_text().replace("function M.strip_token()\n", marked, 1))
    running.wait_for("reload the gateway", after=mark)
    eventually(lambda: httpx.get(f"{GATEWAY}/401").headers.get("x-dev") == "reloaded")

    app = source / "services" / "person" / "app.py"
    good = app.read_text()
    mark = len(running.text())
    app.write_text(good + "\nraise RuntimeError('person: broken on purpose')\n")
    diagnosed = running.wait_for("person did not come back", after=mark)
    running.wait_for("RuntimeError: person: broken on purpose", after=mark)
    running.wait_for("still watching", after=diagnosed)
    assert running.process.poll() is None

    mark = len(running.text())
    app.write_text(good.replace('"""', '"""Fixed. ', 1))
    running.wait_for("served in", after=mark)
    eventually(lambda: served("/persons", "Hopper", admin))
    assert app_containers(suite_engine) == containers  # restarted in place: every container kept

    second = k8sdeploy("dev", "--source", str(source), env=ENV, config=config, environ=running.environ)
    assert second.exit_code == 9, second.stderr
    assert f"environment {ENV} is being deployed by " in second.stderr
    assert f"(pid {running.process.pid})" in second.stderr

    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(timeout=30) == 0, running.text()[-2000:]
    assert "stopped watching" in running.text()
    assert app_containers(suite_engine) == containers and served("/login", "Log in, developer")
