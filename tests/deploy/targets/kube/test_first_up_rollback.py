"""`up --rollback-on-failure` of an environment with nothing recorded (its first `up`, as CI's first deploy to a fresh
project is): the failure says there is no earlier release, and nothing is rolled back. The Runner made as
compose.make_runner makes it, on the real API server; its build stage hands over a release's images (KWOK pulls
nothing), and KWOK's person container crash-loops."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.model.environments import Environment
from deploy.model.errors import ExitCode
from deploy.runner import NoEarlierRelease
from tests.controlplane import KubeCluster
from tests.deploy.targets.kube.conftest import release_runner

ENV = "first-up"


def test_a_failing_first_up_has_no_earlier_release_to_roll_back_to(
    kube: KubeCluster, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    environment = Environment(
        name=ENV,
        target="kubeconfig",
        kube_context="test",
        namespace=kube.namespace,
        service_type="NodePort",
        allow_plain_http=True,
        smoke=False,
    )
    said: list[str] = []
    runner = release_runner(environment, said)
    assert runner.kit.history.releases() == []
    kube.simulate("crash-loop", "person", "true")
    with pytest.raises(NoEarlierRelease) as failed:
        runner.up("single-pod", rollback_on_failure=True)
    assert failed.value.message.startswith("person ")
    assert failed.value.message.endswith("; no earlier release to roll back to")
    assert failed.value.exit_code == ExitCode.NOT_READY  # as the failure: the wait's
    assert failed.value.hint and "person" in failed.value.details
    assert not [line for line in said if "rolling back" in line]
    assert runner.kit.history.releases() == []  # the failed up is not recorded
