"""One deploy at a time per environment: the Lease on the real API server (taken by create, renewed and
taken over by update with its resourceVersion, released by a delete with preconditions), two `up`s started
together through the CLI, and the release history's appends guarded by resourceVersion."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.model.errors import ExitCode, LeaseHeldError
from deploy.model.lease import FileLease, Holding
from deploy.targets.kube.history import ConfigMapHistory
from deploy.targets.kube.lease import MICROTIME, KubeLease
from deploy.targets.kube.target import KubeTarget
from tests.controlplane import KubeCluster
from tests.deploy.conftest import clone
from tests.deploy.inputs import release
from tests.deploy.targets.kube.conftest import ENV, kubeconfig_environment
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
    outcomes = sorted((run.wait(timeout=600), run.stderr.read()) for run in runs)
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
