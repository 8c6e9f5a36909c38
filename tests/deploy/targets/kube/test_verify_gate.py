"""`up` and `rollback` of an environment that sets `verify`, against the real API server, the images in a registry
on loopback: unsigned images, or images signed by another key, are refused with exit 10 before anything is applied
(the API server's audit log shows no write but the lease); signed with the environment's key, the suite is up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.controlplane import KubeCluster
from tests.deploy.conftest import clone
from tests.deploy.targets.kube.conftest import key_pairs, kubeconfig_environment
from tests.helpers import k8sdeploy, valid
from tests.registries import Registry

ENV = "verify-test"


def applied(mutations: list[str], namespace: str) -> list[str]:
    """The writes beyond the environment's lease, taken and released (taking it applies the namespace first)."""
    lease = {f"patch namespaces/{namespace}", f"create leases/k8sdeploy-{ENV}", f"delete leases/k8sdeploy-{ENV}"}
    return [line for line in mutations if line not in lease]


@pytest.mark.timeout(900)
def test_up_refuses_unsigned_and_strangers_images_and_deploys_signed_ones(
    kube: KubeCluster,
    kubeconfig: Path,
    fresh_registry: Registry,
    source_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_pairs(tmp_path, monkeypatch, "cosign", "stranger")
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(
        kubeconfig_environment(ENV, kubeconfig, fresh_registry.host, kube.namespace, 'verify = { key = "cosign.pub" }')
    )
    checkout = str(clone(source_repo, tmp_path / "checkout"))

    def up(*options: str) -> tuple[int, str, list[str]]:
        mark = kube.mark()
        done = k8sdeploy("up", "--source", checkout, "--wait-timeout", "120", *options, env=ENV, config=config)
        if "--output" in options:
            failed = valid(done.stdout)
            assert (failed["result"], failed["exit_code"], failed["error"]["type"]) == ("failed", 10, "UnverifiedError")
        return done.exit_code, done.stderr, kube.mutations(mark)

    code, stderr, mutations = up("--output", "json")
    assert code == 10, stderr
    assert "error: refusing to deploy: nginx-lua is not signed (no sha256-" in stderr
    assert all(f"{name} is not signed" in stderr for name in ("frontend", "person"))
    assert applied(mutations, kube.namespace) == [] and kube.owned() in ([], [("namespaces", kube.namespace)])

    code, stderr, mutations = up("--key", str(tmp_path / "stranger.key"))
    assert code == 10, stderr
    assert f"person is signed, but not by the key of {tmp_path / 'cosign.pub'}" in stderr
    assert applied(mutations, kube.namespace) == [] and kube.owned() in ([], [("namespaces", kube.namespace)])

    code, stderr, mutations = up("--key", str(tmp_path / "cosign.key"))
    assert code == 0, stderr
    assert f"verified: 6 images signed with {tmp_path / 'cosign.pub'}" in stderr
    assert ("deployments", "auth-suite") in kube.owned()
    checked = k8sdeploy("verify", "--release", env=ENV, config=config)
    assert checked.exit_code == 0, checked.stderr
    assert "all 6 images verified" in checked.stderr

    # rollback checks the recorded release the same way: with a key that signed none of it, refused, nothing applied
    assert k8sdeploy("keygen", "--prefix", str(tmp_path / "unknown")).exit_code == 0
    config.write_text(config.read_text().replace('key = "cosign.pub"', 'key = "unknown.pub"'))
    mark = kube.mark()
    refused = k8sdeploy("rollback", "--to", "1.0.0", "--yes", env=ENV, config=config)
    assert refused.exit_code == 10, refused.stderr
    assert f"nginx-lua is signed, but not by the key of {tmp_path / 'unknown.pub'}" in refused.stderr
    assert applied(kube.mutations(mark), kube.namespace) == []
