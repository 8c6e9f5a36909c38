"""`k8sdeploy dev` on a kubeconfig environment, against the real API server and a registry on loopback: a saved
change to the person service pushes person's image alone (one new tag, in its repository only) and sets the
image of its Deployment by digest; every other workload keeps its image and its generation, and the rollout is
followed to the end (KWOK's pods turn ready)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from deploy.compose import make_dev
from deploy.model.environments import load_environment
from deploy.model.images import IMAGE_NAMES
from deploy.publish.stage import BuildOptions
from tests.controlplane import KubeCluster
from tests.deploy.conftest import clone, git
from tests.deploy.targets.kube.conftest import kubeconfig_environment
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
    said: list[str] = []
    options = BuildOptions(source=checkout, registry=environment.registry, bases=environment.bases)
    loop = make_dev(
        environment, "split-pods", said.append, lambda _s, _l: None, lambda _r: None, options, wait_timeout=120
    )
    stop, failed = threading.Event(), []

    def run() -> None:
        try:
            loop.run(stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:

        def wait_said(text: str, after: int = 0, timeout: float = 600) -> int:
            deadline = time.monotonic() + timeout
            while not any(text in line for line in said[after:]):
                assert not failed, failed
                assert time.monotonic() < deadline, f"no {text!r}:\n" + "\n".join(said[after:][-30:])
                time.sleep(0.1)
            return len(said)

        wait_said("watching ")
        before = images(kube)
        tags = {name: fresh_registry.tags(f"suite/{name}") for name in IMAGE_NAMES}
        assert set(before) == {"nginx-lua", "frontend", "authentication", "authorisation", "session", "person"}

        mark = len(said)
        app = checkout / "services" / "person" / "app.py"
        app.write_text(app.read_text().replace('"""', '"""A saved change. ', 1))
        wait_said("served in", mark, timeout=300)

        after = images(kube)
        assert after["person"][0] != before["person"][0] and "@sha256:" in after["person"][0]
        assert {name: after[name] for name in after if name != "person"} == {
            name: before[name] for name in before if name != "person"
        }
        new_tags = {name: sorted(set(fresh_registry.tags(f"suite/{name}")) - set(tags[name])) for name in IMAGE_NAMES}
        assert [name for name, added in new_tags.items() if added] == ["person"] and len(new_tags["person"]) == 1
        assert after["person"][0].split("@")[0].endswith(f":{new_tags['person'][0]}")
        assert any(line.startswith(f"person: pushed {new_tags['person'][0]}") for line in said[mark:])
        assert git(checkout, "status", "--porcelain").strip() == "M services/person/app.py"
    finally:
        stop.set()
        thread.join(timeout=60)
        k8sdeploy("down", "--yes", "--volumes", env=ENV, config=config)
    assert not failed, failed
