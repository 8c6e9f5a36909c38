"""One deploy at a time per environment: the Lease on the real API server (taken by create, renewed and
taken over by update with its resourceVersion, released by a delete with preconditions), two `up`s started
together through the CLI, and the release history's appends guarded by resourceVersion."""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.model.errors import ExitCode, LeaseHeldError
from deploy.model.lease import Holding, utcnow
from deploy.targets.kube.history import ConfigMapHistory
from deploy.targets.kube.lease import MICROTIME, KubeLease
from deploy.targets.kube.target import KubeTarget
from deploy.targets.local.stores import FileLease
from tests.controlplane import KubeCluster
from tests.deploy.conftest import clone
from tests.deploy.inputs import release
from tests.deploy.targets.kube.conftest import ENV, kubeconfig_environment
from tests.helpers import CLI, checked_stderr, k8sdeploy
from tests.infra import ROOT
from tests.registries import Registry


def lease(target: KubeTarget, said: list[str] | None = None) -> KubeLease:
    return KubeLease(target.api, target.namespace, ENV, (said if said is not None else []).append, poll=0.05)


def test_a_held_lease_refuses_a_second_holder_and_names_the_first(target: KubeTarget, kube: KubeCluster) -> None:
    with lease(target).hold("alice@ci (pid 1)") as held:
        assert held is not None and kube.get("leases", f"k8sdeploy-{ENV}")["spec"]["holderIdentity"] == held.holder
        with pytest.raises(LeaseHeldError) as caught:
            with lease(target).hold("bob@laptop (pid 2)"):
                pass
        assert caught.value.exit_code == ExitCode.BUSY == 9
        assert str(caught.value).startswith(
            f"environment {ENV} is being deployed by alice@ci (pid 1) since "
            f"{held.acquired.isoformat()}; wait for it to finish"
        )
    assert kube.get("leases", f"k8sdeploy-{ENV}") is None  # released


def test_a_crashed_holders_lease_expires_and_is_taken_over(target: KubeTarget, kube: KubeCluster) -> None:
    target.apply([])  # the namespace
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    kube.create(
        "leases",
        {
            "metadata": {"name": f"k8sdeploy-{ENV}"},
            "spec": {
                "holderIdentity": "crashed@host (pid 9)",
                "leaseDurationSeconds": 60,
                "acquireTime": old.strftime(MICROTIME),
                "renewTime": old.strftime(MICROTIME),
            },
        },
    )
    said: list[str] = []
    with lease(target, said).hold("alice@ci (pid 1)"):
        assert kube.get("leases", f"k8sdeploy-{ENV}")["spec"]["holderIdentity"] == "alice@ci (pid 1)"
    assert said[-1].startswith("taking over the lease of crashed@host (pid 9), which expired")


def test_a_held_lease_is_renewed(target: KubeTarget, kube: KubeCluster) -> None:
    short = lease(target)
    short.duration = 3
    with short.hold("alice@ci (pid 1)"):
        first = kube.get("leases", f"k8sdeploy-{ENV}")["spec"]["renewTime"]
        time.sleep(2.5)
        assert kube.get("leases", f"k8sdeploy-{ENV}")["spec"]["renewTime"] > first


def test_down_of_nothing_creates_no_namespace_for_its_lease(target: KubeTarget, kube: KubeCluster) -> None:
    with lease(target).hold("alice@ci (pid 1)", create=False) as held:
        assert held is None
    assert kube.get("namespaces", kube.namespace) is None


def test_two_ups_started_together_one_wins(
    kubeconfig: Path, kube: KubeCluster, registry: Registry, source_repo: Path, tmp_path: Path
) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(kubeconfig_environment(ENV, kubeconfig, registry.host, kube.namespace))
    checkout = clone(source_repo, tmp_path / "checkout")
    command = [
        sys.executable,
        "-c",
        "from cli import main; main()",
        "up",
        "--env",
        ENV,
        "--config",
        str(config),
        "--source",
        str(checkout),
    ]
    environ = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    runs = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
        for _ in range(2)
    ]
    outcomes = sorted((run.wait(timeout=600), checked_stderr(run.stderr.read(), command[3:])) for run in runs)
    (won, _), (lost, why) = outcomes
    assert (won, lost) == (0, 9), outcomes
    assert why.strip().splitlines()[-1].startswith(f"error: environment {ENV} is being deployed by ")
    applied = [line for line in why.splitlines() if line.startswith("created ") and "namespace" not in line]
    assert " since " in why and applied == []  # refused before building or applying (the lease's namespace aside)


def test_concurrent_history_appends_lose_no_entry(target: KubeTarget) -> None:
    target.apply([])
    first, second = (ConfigMapHistory(target.api, target.namespace, ENV) for _ in range(2))
    first.record(release("1.0.0", "a"))
    read = first.read

    def read_then_someone_else_writes() -> tuple:
        found = read()
        if not getattr(first, "interleaved", False):
            first.interleaved = True
            second.record(release("1.1.0", "b"))  # lands between first's read and its write
        return found

    first.read = read_then_someone_else_writes
    first.record(release("2.0.0", "c"))
    assert [r.version for r in second.releases()] == ["1.0.0", "1.1.0", "2.0.0"]


def test_the_local_lease_file(tmp_path: Path) -> None:
    clock = [datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)]
    path = tmp_path / "state" / "lease.json"
    files = [FileLease(path, "local", duration=60, clock=lambda: clock[0]) for _ in range(2)]
    with files[0].hold("alice@laptop (pid 1)") as held:
        assert isinstance(held, Holding) and oct(path.stat().st_mode & 0o777) == "0o600"
        with pytest.raises(LeaseHeldError, match="being deployed by alice@laptop \\(pid 1\\) since 2026-01-01T00:00"):
            files[1].acquire("bob@laptop (pid 2)")
        clock[0] += datetime.timedelta(seconds=61)  # alice crashed: nobody renewed it
        assert files[1].acquire("bob@laptop (pid 2)").holder == "bob@laptop (pid 2)"
    assert path.exists()  # alice's release leaves bob's lease alone


def dead_pid() -> int:
    """The id of a process of this host that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_holder_on_this_host_whose_process_is_gone_is_noticed() -> None:
    here, now = socket.gethostname(), utcnow()

    def dead(holder: str) -> bool:
        return Holding(holder, now, now, 60).dead_here()

    assert dead(f"alice@{here} (pid {dead_pid()})") and dead(f"ci (alice@{here}) (pid {dead_pid()})")
    assert not dead(f"alice@{here} (pid {os.getppid()})")  # alive
    assert not dead(f"alice@{here} (pid {os.getpid()})")  # this process itself
    assert not dead(f"alice@elsewhere (pid {dead_pid()})")  # another host: its processes cannot be seen from here
    assert not dead("github-actions org/repo run 7 by bob (pid 1)")


def test_the_local_lease_of_a_dead_holder_is_taken_at_once(tmp_path: Path) -> None:
    path, said = tmp_path / "lease.json", []
    killed = f"alice@{socket.gethostname()} (pid {dead_pid()})"
    FileLease(path, "local").acquire(killed)  # and never released: the process was killed
    assert FileLease(path, "local", say=said.append).acquire("bob@laptop (pid 2)").holder == "bob@laptop (pid 2)"
    assert said == [f"taking over the lease of {killed}, whose process on this host no longer exists"]


def cli_process(*args: str, environ: dict[str, str], stderr: Path, ignore_sigint: bool = False) -> subprocess.Popen:
    """`k8sdeploy ARGS` in a process of its own, its stderr into a file; with `ignore_sigint`, started as a
    script's background job is (SIGINT ignored). SIGHUP as in a terminal's session, also when pytest runs
    under nohup (whose ignored SIGHUP the child would inherit, and keep: a nohup is honoured)."""

    def signals() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        if ignore_sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    with stderr.open("wb") as sink:
        return subprocess.Popen(
            [*CLI, *args],
            cwd=ROOT,
            env={**os.environ, **environ},
            stdout=subprocess.DEVNULL,
            stderr=sink,
            preexec_fn=signals,
        )


def wait_until(condition: Callable[[], bool], what: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"exited {process.returncode} before {what}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


@pytest.mark.timeout(900)
def test_a_killed_ups_lease_is_taken_at_once_by_the_next_up(
    kubeconfig: Path, kube: KubeCluster, registry: Registry, source_repo: Path, tmp_path: Path
) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(kubeconfig_environment(ENV, kubeconfig, registry.host, kube.namespace))
    checkout = str(clone(source_repo, tmp_path / "checkout"))
    environ = {"XDG_STATE_HOME": str(tmp_path / "state")}
    up = ["up", "--source", checkout, "--wait-timeout", "120"]
    args = [*up, "--env", ENV, "--config", str(config)]
    log = tmp_path / "killed.stderr"
    killed = cli_process(*args, environ=environ, stderr=log)
    wait_until(lambda: kube.get("leases", f"k8sdeploy-{ENV}") is not None, "lease", killed, log, 300)
    killed.kill()
    killed.wait(timeout=30)
    checked_stderr(log.read_text(), args)
    holder = kube.get("leases", f"k8sdeploy-{ENV}")["spec"]["holderIdentity"]
    assert holder.endswith(f" (pid {killed.pid})")

    again = k8sdeploy(*up, env=ENV, config=config, environ=environ)
    assert again.exit_code == 0, again.stderr  # not 9: the dead holder's lease is not waited for
    assert f"taking over the lease of {holder}, whose process on this host no longer exists" in again.stderr
    assert kube.get("leases", f"k8sdeploy-{ENV}") is None


@pytest.mark.timeout(900)
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stopped_dev_lets_go_and_the_next_up_starts_at_once(
    kubeconfig: Path, kube: KubeCluster, registry: Registry, source_repo: Path, tmp_path: Path, stop: signal.Signals
) -> None:
    """`dev` started as a background job (SIGINT ignored: Ctrl-C's signal never reaches it) and stopped by SIGTERM
    or SIGHUP: it stops watching, releases its lease and leaves the deployment running; `up` then starts at once."""
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(kubeconfig_environment(ENV, kubeconfig, registry.host, kube.namespace))
    checkout = str(clone(source_repo, tmp_path / "checkout"))
    environ = {"XDG_STATE_HOME": str(tmp_path / "state")}
    args = ["--source", checkout, "--env", ENV, "--config", str(config), "--wait-timeout", "120", "--no-smoke"]
    log = tmp_path / "dev.stderr"
    dev = cli_process("dev", *args, environ=environ, stderr=log, ignore_sigint=True)
    wait_until(lambda: "watching " in log.read_text(), "watching", dev, log, 600)
    running = kube.names("deployments")
    dev.send_signal(signal.SIGINT)  # ignored, as in a script's background job
    time.sleep(1)
    assert dev.poll() is None, log.read_text()[-3000:]
    dev.send_signal(stop)
    assert dev.wait(timeout=60) == 0, log.read_text()[-3000:]
    text = checked_stderr(log.read_text(), ["dev", *args])
    assert text.splitlines()[-1] == "stopped watching"
    assert kube.get("leases", f"k8sdeploy-{ENV}") is None and kube.names("deployments") == running

    up = k8sdeploy("up", *args, env=ENV, config=config, environ=environ)
    assert up.exit_code == 0, up.stderr
    assert "taking over the lease" not in up.stderr
