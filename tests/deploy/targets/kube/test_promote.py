"""`promote` between two environments on the real control plane (two namespaces) and two real registries on
loopback, the target's behind a counting proxy: the same manifest digests deployed, every blob uploaded once and
never again, nothing built, the copies verified by the real cosign against the target's key (signature and
promotion attestation); the gates refuse with exit 2; `up` is refused where releases are promoted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.attest.promotion import PROMOTION_PREDICATE
from tests.controlplane import KubeCluster, kubeconfig_for
from tests.deploy.conftest import clone, cosign_run
from tests.deploy.targets.kube.conftest import key_pairs, kubeconfig_environment
from tests.helpers import k8sdeploy, valid
from tests.registries import ProxyRules, Registry, registry_proxy, registry_server
from tools.cluster.controlplane import Cluster


@pytest.fixture
def prod_kube(control_plane: Cluster, tmp_path: Path) -> Iterator[KubeCluster]:
    kube = KubeCluster.new(control_plane, tmp_path / "prod-kube")
    yield kube
    kube.cleanup()


def deployed(kube: KubeCluster) -> dict[str, str]:
    """Container name -> the image reference its Deployment runs."""
    deployment = kube.get("deployments", "auth-suite")
    return {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}


@pytest.mark.timeout(900)
def test_promote_deploys_the_staged_digests_with_their_evidence_once(
    kube: KubeCluster,
    prod_kube: KubeCluster,
    fresh_registry: Registry,
    source_repo: Path,
    cosign: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_pairs(tmp_path, monkeypatch, "stage", "prod")
    kubeconfig = kubeconfig_for(kube.cluster, tmp_path / "kubeconfig")
    rules = ProxyRules()
    with (
        registry_server(tmp_path / "prod-registry") as prod_registry,
        registry_proxy(prod_registry.host, rules) as prod_host,
    ):
        config = tmp_path / "k8sdeploy.toml"
        config.write_text(
            kubeconfig_environment(
                "stage", kubeconfig, fresh_registry.host, kube.namespace,
                'signing_key = "stage.key"', 'verify = { key = "stage.pub" }',
            )
            + kubeconfig_environment(
                "prod", kubeconfig, prod_host, prod_kube.namespace,
                'signing_key = "prod.key"', 'verify = { key = "prod.pub" }', 'promote_from = "stage"',
            )
        )  # fmt: skip
        checkout = str(clone(source_repo, tmp_path / "checkout"))
        staged = k8sdeploy("up", "--source", checkout, "--wait-timeout", "120", env="stage", config=config)
        assert staged.exit_code == 0, staged.stderr

        refused = k8sdeploy("up", "--source", checkout, env="prod", config=config)
        assert refused.exit_code == 2 and "k8sdeploy promote --from stage --to prod" in refused.stderr
        assert prod_kube.owned() == [] and rules.manifests_put == 0

        promoted = k8sdeploy("promote", "--from", "stage", "--to", "prod", "--output", "json", "--config", str(config))
        assert promoted.exit_code == 0, promoted.stderr
        document = valid(promoted.stdout)
        assert (document["command"], document["action"]) == ("promote", "promote")
        assert document["promoted_from"]["environment"] == "stage" and "build" not in document["durations"]
        assert "version " not in promoted.stderr  # nothing built: the build stage says its version
        stage_images, prod_images = deployed(kube), deployed(prod_kube)
        assert {n: r.split("@")[1] for n, r in prod_images.items()} == {
            n: r.split("@")[1] for n, r in stage_images.items()
        }
        assert all(ref.startswith(f"{prod_host}/suite/") for ref in prod_images.values())
        uploaded, blobs = rules.bytes_uploaded, rules.blobs_uploaded
        assert blobs > 0 and max(rules.uploaded.values()) == 1  # no blob twice: a shared layer is mounted

        history = valid(k8sdeploy("history", "--output", "json", env="prod", config=config).stdout)["releases"]
        assert history[0]["action"] == "promote" and history[0]["promoted_from"]["version"] == document["version"]

        person = prod_images["person"]
        signed = cosign_run(cosign, "verify", "--key", str(tmp_path / "prod.pub"), person)
        assert signed.returncode == 0, signed.stderr
        attested = cosign_run(
            cosign, "verify-attestation", "--key", str(tmp_path / "prod.pub"), "--type", PROMOTION_PREDICATE, person
        )
        assert attested.returncode == 0, attested.stderr
        statements = [json.loads(line) for line in attested.stdout.splitlines() if line.strip()]
        assert statements, attested.stdout
        checked = k8sdeploy("verify", "--release", env="prod", config=config)
        assert checked.exit_code == 0, checked.stderr
        assert f"promoted from stage {document['version']}" in checked.stdout  # where each image came from

        mark = prod_kube.mark()
        again = k8sdeploy("promote", "--from", "stage", "--to", "prod", "--output", "json", "--config", str(config))
        assert again.exit_code == 0, again.stderr
        assert [line for line in prod_kube.mutations(mark) if "leases/" not in line] == []  # nothing applied
        assert valid(again.stdout)["result"] == "unchanged"
        assert (rules.bytes_uploaded, rules.blobs_uploaded) == (uploaded, blobs)  # nothing copied twice
        assert len(valid(k8sdeploy("history", "--output", "json", env="prod", config=config).stdout)["releases"]) == 1

        # a new release (the demo users added) that did not pass the smoke login where stage now runs it: refused,
        # unless --force, which is recorded
        config.write_text(config.read_text().replace("smoke = false", "smoke = true\ndemo_users = true", 1))
        unsmoked = k8sdeploy(
            "up", "--source", checkout, "--no-smoke", "--wait-timeout", "120", env="stage", config=config
        )
        assert unsmoked.exit_code == 0, unsmoked.stderr
        gate = k8sdeploy("promote", "--from", "stage", "--to", "prod", "--config", str(config))
        assert gate.exit_code == 2, gate.stderr
        assert "did not pass smoke in stage" in gate.stderr and "--force" in gate.stderr
        forced = k8sdeploy("promote", "--from", "stage", "--to", "prod", "--force", "--config", str(config))
        assert forced.exit_code == 0, forced.stderr
        assert "warning: --force:" in forced.stderr
        newest = valid(k8sdeploy("history", "--output", "json", env="prod", config=config).stdout)["releases"][0]
        assert "did not pass smoke" in newest["forced"]
        assert max(rules.uploaded.values()) == 1  # the same digests: only the new promotion's attestation went up


def test_a_target_with_approvers_needs_one_and_promote_after_waits(tmp_path: Path) -> None:
    """Refused before either environment is asked anything (the kubeconfig does not exist)."""
    kubeconfig = tmp_path / "missing-kubeconfig"
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(
        kubeconfig_environment("stage", kubeconfig, "127.0.0.1:1", "stage")
        + kubeconfig_environment(
            "prod", kubeconfig, "127.0.0.1:1", "prod", 'promote_from = "stage"', 'approvers = ["ada"]'
        )
        + kubeconfig_environment("other", kubeconfig, "127.0.0.1:1", "other")
    )
    missing = k8sdeploy("promote", "--from", "stage", "--to", "prod", "--config", str(config))
    assert missing.exit_code == 2 and "needs the approval of one of ada" in missing.stderr
    wrong = k8sdeploy("promote", "--from", "other", "--to", "prod", "--approved-by", "ada", "--config", str(config))
    assert wrong.exit_code == 2 and "takes releases from stage, not from other" in wrong.stderr
