"""`make run`: the whole suite in the foreground on loopback, stopped cleanly by SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import client, login
from tests.infra import ROOT, free_port_block, port_is_free


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_the_suite_and_stops_everything(tmp_path: Path, stop_signal: signal.Signals) -> None:
    base = free_port_block(6)
    runner = subprocess.Popen(
        [sys.executable, "-m", "deploy.loopback", "--port", str(base), "--work-dir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = runner.stdout.readline()
        assert first_line == f"suite running at http://127.0.0.1:{base}\n", runner.stderr.read()
        assert runner.stdout.readline().strip() == "log in as admin@test.com / admin"
        with client(f"http://127.0.0.1:{base}") as http:
            assert login(http, "admin@test.com", "admin").status_code == 302
            assert http.get("/persons").status_code == 200
        runner.send_signal(stop_signal)
        assert runner.wait(timeout=30) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
    deadline = time.monotonic() + 10
    while not all(port_is_free(base + i) for i in range(6)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(port_is_free(base + i) for i in range(6)), "a service or nginx outlived `make run`"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{base}/login")


def test_run_names_the_part_that_failed(tmp_path: Path) -> None:
    base = free_port_block(6)
    blocker = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(base + 4)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        result = subprocess.run(
            [sys.executable, "-m", "deploy.loopback", "--port", str(base), "--work-dir", str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        blocker.terminate()
        blocker.wait()
    assert result.returncode == 1
    assert "error: session exited with code 3" in result.stderr
    assert "address already in use" in result.stderr
