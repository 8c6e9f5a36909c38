"""One run context per command (deploy/context.py): `up`, `promote` and `down` make their clients once, and parse each
environment's registry and look up its repository once, however many stages use them (before, one `up` made
`Clients` three times and parsed its registry four times; `dev` is counted in test_dev_kube.py). Counted on the
real API server, with registries on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.model.environments import load_environment
from tests.controlplane import Cluster, KubeCluster
from tests.deploy.conftest import clone
from tests.deploy.targets.kube.conftest import Counts, kubeconfig_environment
from tests.helpers import k8sdeploy
from tests.registries import Registry, registry_server

SOURCE, TARGET = "rc-staging", "rc-production"


@pytest.mark.timeout(900)
def test_up_and_promote_make_their_clients_and_facts_once(
    kube: KubeCluster, control_plane: Cluster, kubeconfig: Path, fresh_registry: Registry, source_repo: Path,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    checkout = clone(source_repo, tmp_path / "checkout")
    production = KubeCluster.new(control_plane, tmp_path / "production")
    config = tmp_path / "k8sdeploy.toml"
    try:
        with registry_server(tmp_path / "production-registry") as target_registry:
            config.write_text(
                kubeconfig_environment(SOURCE, kubeconfig, fresh_registry.host, kube.namespace)
                + kubeconfig_environment(
                    TARGET, kubeconfig, target_registry.host, production.namespace, f'promote_from = "{SOURCE}"'
                )
            )
            source, target = (load_environment(name, config).registry for name in (SOURCE, TARGET))
            counts = Counts(monkeypatch)

            up = k8sdeploy("up", "--source", str(checkout), env=SOURCE, config=config)
            assert up.exit_code == 0, up.stderr[-3000:]
            assert (counts.clients, counts.parsed[source], counts.lookups[source]) == (1, 1, 1)

            counts.reset()
            promoted = k8sdeploy("promote", "--from", SOURCE, "--to", TARGET, "--config", str(config))
            assert promoted.exit_code == 0, promoted.stderr[-3000:]
            assert "copied" in promoted.stderr
            assert counts.clients == 1
            assert (counts.parsed[source], counts.parsed[target]) == (1, 1)
            assert (counts.lookups[source], counts.lookups[target]) == (1, 1)

            counts.reset()  # a chore too: the target's objects removed, then what stays (the images) said
            removed = k8sdeploy("down", "--yes", "--volumes", env=TARGET, config=config)
            assert removed.exit_code == 0 and f"left the images in {target}" in removed.stderr, removed.stderr
            assert (counts.clients, counts.parsed[target], counts.lookups[target]) == (1, 1, 1)
    finally:
        k8sdeploy("down", "--yes", "--volumes", env=TARGET, config=config)
        k8sdeploy("down", "--yes", "--volumes", env=SOURCE, config=config)
        production.cleanup()
