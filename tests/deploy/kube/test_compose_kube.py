"""make_target builds the kubeconfig target from the environment (context, namespace), through the CLI too."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from deploy.compose import make_target
from deploy.environments import Environment
from tests.deploy.kube.objects import single_pod
from tests.fakes.kube import FakeKube


def test_kubeconfig_environment_deploys_and_tears_down(kube: FakeKube, kubeconfig: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    environment = Environment(name="kind-dev", target="kubeconfig", kube_context="fake", namespace="dev")
    target = make_target(environment, lambda _line: None)
    target.apply(single_pod("kind-dev", "NodePort"))
    assert ("deployments", "dev", "auth-suite") in kube.objects
    config = tmp_path / "k8sdeploy.toml"
    config.write_text('[environments.kind-dev]\ntarget = "kubeconfig"\nkube_context = "fake"\nnamespace = "dev"\n')
    result = CliRunner().invoke(main, ["down", "--env", "kind-dev", "--config", str(config)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["removed Deployment/auth-suite", "removed Service/gateway",
                                          "removed ConfigMap/gateway-conf", "removed Namespace/dev"]
    assert kube.owned() == []
