"""Benchmark (not a test): from saving a file to the gateway serving the changed answer, under `k8sdeploy dev`
(restart of the one service's process in its container) and by the `up` path (a new build, its pods
replaced), side by side in one run. Two kinds of change, each RUNS times under dev and UP_RUNS times by up:
a string in a frontend template (the login page) and a function of the person service (the last name it
answers, shown on the people page). Prints p50 and max per kind of change and per path.

    .venv/bin/python bench/dev_bench.py     # about three minutes on 2 cores

It works in a clone of this checkout (its edits never touch the working tree), deploys environment `bench-dev`
(the suite's fixed ports 8080-8085 must be free) and removes it at the end.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ENV = "bench-dev"
GATEWAY = "http://127.0.0.1:8080"
RUNS, UP_RUNS = 10, 3
CLI = [sys.executable, "-m", "cli"]


class Gateway:
    """One logged-in client for every poll (a login costs a scrypt hash; under dev the session outlives the
    restarts, after `up` it logs in again)."""

    def __init__(self) -> None:
        self.http = httpx.Client(base_url=GATEWAY, follow_redirects=False, timeout=5)
        self.login()

    def login(self) -> None:
        self.http.post(
            "/login", data={"emailaddress": "admin@test.com", "password": "admin"}, headers={"Origin": GATEWAY}
        )

    def serves(self, path: str, wanted: str) -> bool:
        try:
            answer = self.http.get(path)
            if answer.is_redirect and answer.headers.get("location", "").endswith("/login") and path != "/login":
                self.login()  # `up` replaced the session service, and the sessions it held with it
                return False
            return wanted in answer.text
        except httpx.HTTPError:
            return False

    def until(self, path: str, wanted: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not self.serves(path, wanted):
            if time.monotonic() > deadline:
                raise SystemExit(f"{wanted!r} was not served at {path} after {timeout} s")
            time.sleep(0.02)


class Edits:
    """The two kinds of change, each a file of the clone and a marker the gateway then serves."""

    def __init__(self, clone: Path):
        self.template = clone / "services" / "frontend" / "templates" / "login.html"
        self.person = clone / "services" / "person" / "app.py"
        self.originals = {path: path.read_text() for path in (self.template, self.person)}

    def frontend(self, marker: str) -> tuple[str, str]:
        text = self.originals[self.template].replace("<h1>Log in</h1>", f"<h1>Log in {marker}</h1>")
        self.template.write_text(text)
        return "/login", f"Log in {marker}"

    def person_service(self, marker: str) -> tuple[str, str]:
        old = "lastName=person.last_name,"
        text = self.originals[self.person].replace(old, f"lastName=person.last_name + ' {marker}',")
        self.person.write_text(text)
        return "/persons", f"Hopper {marker}"


def measure(
    gateway: Gateway, edit: Callable[[str], tuple[str, str]], marker: str, after: Callable[[], None] = lambda: None
) -> float:
    started = time.monotonic()
    path, wanted = edit(marker)
    after()
    gateway.until(path, wanted)
    return time.monotonic() - started


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="k8sdeploy-dev-bench-") as work:
        clone, config = Path(work) / "clone", Path(work) / "k8sdeploy.toml"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        config.write_text(f'[environments.{ENV}]\nlocal = {{}}\nlayout = "single-pod"\n')
        environ = {**os.environ, "XDG_STATE_HOME": f"{work}/state", "CI": "true"}
        common = ["--env", ENV, "--config", str(config)]
        edits = Edits(clone)
        results: dict[tuple[str, str], list[float]] = {}
        log = Path(work) / "dev.stderr"
        with log.open("wb") as stderr:
            dev = subprocess.Popen(
                [*CLI, "dev", *common, "--source", str(clone), "--no-smoke"], cwd=ROOT, env=environ, stderr=stderr
            )
        try:
            while "watching " not in log.read_text(errors="replace"):
                if dev.poll() is not None:
                    raise SystemExit(f"dev exited {dev.returncode}:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            gateway = Gateway()
            for kind, edit in (("frontend template", edits.frontend), ("person function", edits.person_service)):
                results[(kind, "dev")] = [measure(gateway, edit, f"dev{i}") for i in range(RUNS)]
            dev.send_signal(signal.SIGINT)
            dev.wait(timeout=60)

            def up() -> None:
                subprocess.run(
                    [*CLI, "up", *common, "--source", str(clone), "--no-smoke"],
                    cwd=ROOT,
                    env=environ,
                    check=True,
                    capture_output=True,
                )

            for kind, edit in (("frontend template", edits.frontend), ("person function", edits.person_service)):
                results[(kind, "up")] = [measure(gateway, edit, f"up{i}", up) for i in range(UP_RUNS)]
        finally:
            if dev.poll() is None:
                dev.kill()
            subprocess.run([*CLI, "down", "--yes", "--volumes", *common], cwd=ROOT, env=environ, capture_output=True)
    print("| change | path | runs | p50 | max |")
    print("|---|---|---:|---:|---:|")
    for (kind, path), seconds in results.items():
        print(f"| {kind} | {path} | {len(seconds)} | {statistics.median(seconds):.2f} s | {max(seconds):.2f} s |")


if __name__ == "__main__":
    main()
