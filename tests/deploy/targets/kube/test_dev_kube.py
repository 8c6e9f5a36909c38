"""`k8sdeploy dev` on a kubeconfig environment, against the real API server and a registry on loopback: a saved
change to the person service pushes person's image alone (one new tag, in its repository only) and sets the
image of its Deployment by digest; every other workload keeps its image and its generation, and the rollout is
followed to the end (KWOK's pods turn ready); the whole session, the change included, makes its clients once and
parses its registry and looks up its repository once (deploy/context.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.model.environments import load_environment
from deploy.model.images import IMAGE_NAMES
from tests.controlplane import KubeCluster
from tests.deploy.conftest import clone, git
from tests.deploy.targets.kube.conftest import Counts, dev_running, kubeconfig_environment
from tests.helpers import k8sdeploy
from tests.registries import Registry

ENV = "dev-kube"


def images(kube: KubeCluster) -> dict[str, tuple[str, int]]:
    """Deployment -> (its first container's image, its generation)."""
    return {
        d["metadata"]["name"]: (d["spec"]["template"]["spec"]["containers"][0]["image"], d["metadata"]["generation"])
        for d in kube.list("deployments")
    }


@pytest.mark.timeout(900)
def test_a_saved_change_pushes_one_image_and_sets_its_workload(
    kube: KubeCluster, kubeconfig: Path, fresh_registry: Registry, source_repo: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    checkout = clone(source_repo, tmp_path / "checkout")
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(
        kubeconfig_environment(ENV, kubeconfig, fresh_registry.host, kube.namespace, 'layout = "split-pods"')
    )
    environment = load_environment(ENV, config)
    counts = Counts(monkeypatch)
    try:
        with dev_running(environment, "split-pods", checkout, wait_timeout=120) as dev:
            dev.wait_said("watching ")
            before = images(kube)
            tags = {name: fresh_registry.tags(f"suite/{name}") for name in IMAGE_NAMES}
            assert set(before) == {"nginx-lua", "frontend", "authentication", "authorisation", "session", "person"}

            mark = len(dev.said)
            app = checkout / "services" / "person" / "app.py"
            app.write_text(app.read_text().replace('"""', '"""A saved change. ', 1))
            dev.wait_said("served in", mark, timeout=300)

            after = images(kube)
            assert after["person"][0] != before["person"][0] and "@sha256:" in after["person"][0]
            assert {name: after[name] for name in after if name != "person"} == {
                name: before[name] for name in before if name != "person"
            }
            new_tags = {
                name: sorted(set(fresh_registry.tags(f"suite/{name}")) - set(tags[name])) for name in IMAGE_NAMES
            }
            assert [name for name, added in new_tags.items() if added] == ["person"] and len(new_tags["person"]) == 1
            assert after["person"][0].split("@")[0].endswith(f":{new_tags['person'][0]}")
            assert any(line.startswith(f"person: pushed {new_tags['person'][0]}") for line in dev.said[mark:])
            assert git(checkout, "status", "--porcelain").strip() == "M services/person/app.py"
            assert counts.clients == 1  # the change was pushed through the session's clients
            assert (counts.parsed[environment.registry], counts.lookups[environment.registry]) == (1, 1)
    finally:
        k8sdeploy("down", "--yes", "--volumes", env=ENV, config=config)
