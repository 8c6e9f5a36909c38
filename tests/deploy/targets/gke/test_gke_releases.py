"""Releases on the gke target, end to end through the CLI: `up --env` A then B, history, rollback to A by
digest, a failing C rolled back (and a rollback that fails too), then `down` taking the history along.

What is real: the suite's six images are built from three git checkouts (A tagged v1.0.0, B v1.1.0
with person changed, C v2.0.0 with person raising at start-up) and pushed to a real registry on
loopback (Debian's docker-registry); the google-cloud-container, google-cloud-compute,
google-cloud-artifact-registry and kubernetes clients; the smoke login through a real suite.

The cluster is the real Kubernetes control plane of the tests (API server, controllers, scheduler);
GKE, Compute and Artifact Registry, which cannot run on these machines, are the loopback HTTP fakes of
tests/fakes (the project starts without a repository, and the registry refuses pushes into one that does
not exist, so the first `up` must create it). Its
kubelets are simulated (KWOK), so no container runs: C's crash is a KWOK stage for person containers of
2.0.0 images, and the LoadBalancer address the simulated cloud controller hands out is 127.0.0.1 on the
environment's gateway port, where the simulated load balancer forwards to the suite this test runs from source,
for the smoke login to pass through: it starts doing so 20 s after the address appears, as a GCP load balancer's
forwarding rule and health checks work only a while after its address is assigned.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import clients
from deploy.attest.keys import KEY_VARIABLE
from deploy.loopback import LocalSuite
from deploy.model.images import BuildRecord
from tests.controlplane import KubeCluster
from tests.deploy.conftest import clone, cosign_run, git
from tests.deploy.targets.gke.conftest import ENV, NODES, TOKEN, Cloud, make_cloud
from tests.fakes.artifact_registry import FakeArtifactRegistry
from tests.helpers import digests, k8sdeploy, valid
from tests.infra import free_port_block
from tests.registries import ProxyRules, Registry, registry_proxy, registry_server
from tools.cluster.controlplane import Cluster

SEEN: dict[str, dict] = {}  # what earlier steps printed, by step
CRASH_LOG = "Traceback (most recent call last):\nRuntimeError: person: C cannot start\n"
LOAD_BALANCER_READY_AFTER = 20.0  # seconds from its address to its first answer
C_PERSON = "self.spec.containers.exists(c, c.name == 'person' && c.image.contains(':2.0.0@'))"


@pytest.fixture(scope="module")
def cli_cloud(control_plane: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """One fake project for the whole module (the steps build on each other), reached through the CLI: it stands
    in for clients.google_apis (the `cloud` of the other modules is one per test, reached directly)."""
    kube = KubeCluster.new(control_plane, tmp_path_factory.mktemp("gke-releases-kube"))
    cli_cloud = make_cloud(kube)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clients, "google_apis", cli_cloud.apis)
        patch.delenv(KEY_VARIABLE, raising=False)  # the configuration's signing_key signs
        yield cli_cloud
    cli_cloud.stop()
    kube.cleanup()


@pytest.fixture(scope="module")
def artifact_registry(tmp_path_factory: pytest.TempPathFactory, cli_cloud: Cloud) -> Iterator[Registry]:
    """A project with no repository yet: the fake Artifact Registry API, and its Docker side in front of a real
    registry (it refuses pushes into a repository that does not exist)."""
    cli_cloud.artifact_registry = FakeArtifactRegistry(token=TOKEN).start()
    with (
        registry_server(tmp_path_factory.mktemp("artifact-registry")) as server,
        registry_proxy(server.host, ProxyRules(gate=cli_cloud.artifact_registry.docker_gate)) as host,
    ):
        cli_cloud.docker_locations[host] = cli_cloud.artifact_registry.location
        yield Registry(host, server.root)


@pytest.fixture(scope="module")
def gke_config(
    tmp_path_factory: pytest.TempPathFactory, artifact_registry: Registry, sqlite_suite: LocalSuite, cli_cloud: Cloud
) -> Path:
    path = tmp_path_factory.mktemp("gke-releases") / "k8sdeploy.toml"
    for key in ("first", "second"):  # `up` signs with the first; a later step rotates to the second
        assert k8sdeploy("keygen", "--prefix", str(path.parent / key)).exit_code == 0
    balanced = free_port_block(1)  # the gateway Service's port: the load balancer's, forwarding to the suite
    cli_cloud.controller.backends[balanced] = f"127.0.0.1:{sqlite_suite.settings.base_port}"
    cli_cloud.controller.serve_after = LOAD_BALANCER_READY_AFTER
    path.write_text(
        "\n".join(
            [
                f"[environments.{ENV}]",
                'layout = "single-pod"',
                'service_type = "LoadBalancer"',
                f'namespace = "{cli_cloud.namespace}"',
                "allow_plain_http = true",
                "demo_users = true",  # the smoke login reaches the suite run from source, which seeds the demo users
                f'registry = "{artifact_registry.host}/my-project/suite"',
                'signing_key = "first.key"',
                f"gateway_port = {balanced}",
                f"[environments.{ENV}.gke]",
                'project = "my-project"',
                'location = "europe-west1-b"',
                'cluster = "ms-auth"',
                f'node_service_account = "{NODES}"',
            ]
        )
        + "\n"
    )
    return path


@pytest.fixture(scope="module")
def gke_sources(tmp_path_factory: pytest.TempPathFactory, source_repo: Path) -> dict[str, Path]:
    workdir = tmp_path_factory.mktemp("gke-sources")
    a = clone(source_repo, workdir / "a")
    b = clone(a, workdir / "b")
    person = b / "services" / "person" / "__main__.py"
    person.write_text(person.read_text() + "# version B\n")
    git(b, "commit", "-qam", "person: B")
    git(b, "tag", "v1.1.0")
    c = clone(a, workdir / "c")
    (c / "services" / "person" / "__main__.py").write_text("raise RuntimeError('person: C cannot start')\n")
    git(c, "commit", "-qam", "person: broken")
    git(c, "tag", "v2.0.0")
    return {"a": a, "b": b, "c": c}


def cosign_verify(cosign: Path, key: Path, reference: str, home: str) -> subprocess.CompletedProcess:
    """The reference verifier, finding the signatures where COSIGN_REPOSITORY says (cosign's convention)."""
    return cosign_run(cosign, "verify", "--key", str(key), reference, environ={"COSIGN_REPOSITORY": home})


def deployed_images(kube: KubeCluster) -> set[str]:
    deployment = kube.get("deployments", "auth-suite")
    return {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}


def refs(document: dict) -> set[str]:
    return {image["ref"] for image in document["images"].values()}


class TestGkeReleases:
    def test_up_a_creates_the_repository_and_the_cluster_pushes_and_records(
        self, gke_config: Path, gke_sources: dict, cli_cloud: Cloud, artifact_registry: Registry
    ) -> None:
        assert cli_cloud.artifact_registry.repository("my-project", "suite") is None  # a fresh project
        result = k8sdeploy("up", "--source", str(gke_sources["a"]), "--output", "json", env=ENV, config=gke_config)
        assert result.exit_code == 0, result.stderr
        document = valid(result.stdout)
        assert (document["command"], document["result"], document["version"]) == ("up", "ok", "1.0.0")
        assert set(document["durations"]) == {"build", "render", "apply", "wait", "smoke", "record"}
        assert all(
            ref.startswith(f"{artifact_registry.host}/my-project/suite/") and ":1.0.0@sha256:" in ref
            for ref in refs(document)
        )
        repository = cli_cloud.artifact_registry.repository("my-project", "suite")
        assert repository["labels"] == {"managed-by": "k8sdeploy"} and repository["dockerConfig"]["immutableTags"]
        assert set(repository["cleanupPolicies"]) == {"k8sdeploy-keep-newest", "k8sdeploy-delete-old"}  # none recorded
        assert "created Artifact Registry repository" in result.stderr
        # the address came 20 s before the load balancer answered: `up` waited for it, then logged in once
        assert result.stderr.count("smoke: login page served") == 1
        assert deployed_images(cli_cloud.kube) == refs(document)
        assert ("my-project", "europe-west1-b", "ms-auth") in cli_cloud.gke.clusters
        assert cli_cloud.kube.get("configmaps", f"k8sdeploy-releases-{ENV}") is not None
        SEEN["a"] = document

    def test_up_b(self, gke_config: Path, gke_sources: dict, cli_cloud: Cloud) -> None:
        result = k8sdeploy("up", "--source", str(gke_sources["b"]), "--output", "json", env=ENV, config=gke_config)
        assert result.exit_code == 0, result.stderr
        document = valid(result.stdout)
        assert document["version"] == "1.1.0" and digests(document)["person"] != digests(SEEN["a"])["person"]
        assert deployed_images(cli_cloud.kube) == refs(document)
        status = k8sdeploy("status", "--output", "json", env=ENV, config=gke_config)
        assert status.exit_code == 0, status.stderr
        assert (valid(status.stdout)["release"], valid(status.stdout)["drift"]) == ("1.1.0", [])
        policies = cli_cloud.artifact_registry.repository("my-project", "suite")["cleanupPolicies"]
        assert policies[f"k8sdeploy-released-{ENV}"]["condition"] == {"tagState": "TAGGED", "tagPrefixes": ["1.0.0"]}
        SEEN["b"] = document

    def test_history_lists_both(self, gke_config: Path) -> None:
        result = k8sdeploy("history", "--output", "json", env=ENV, config=gke_config)
        assert result.exit_code == 0, result.stderr
        releases = valid(result.stdout)["releases"]
        assert [(r["version"], r["action"]) for r in releases] == [("1.1.0", "up"), ("1.0.0", "up")]
        assert [digests(r) for r in releases] == [digests(SEEN["b"]), digests(SEEN["a"])]
        assert releases[1]["objects_hash"] == SEEN["a"]["objects_hash"]

    def test_rollback_returns_to_a_by_digest_without_building(self, gke_config: Path, cli_cloud: Cloud) -> None:
        clusters = cli_cloud.gke.mutations
        result = k8sdeploy("rollback", "--yes", "--output", "json", env=ENV, config=gke_config)
        assert result.exit_code == 0, result.stderr
        document = valid(result.stdout)
        assert (document["action"], document["version"]) == ("rollback", "1.0.0")
        assert "build" not in document["durations"] and "pushed" not in result.stderr
        assert digests(document) == digests(SEEN["a"]) and document["objects_hash"] == SEEN["a"]["objects_hash"]
        assert deployed_images(cli_cloud.kube) == refs(SEEN["a"])
        assert cli_cloud.gke.mutations == clusters  # the cluster was there: not touched

    def test_a_failing_c_is_rolled_back_and_exits_not_ready(
        self, gke_config: Path, gke_sources: dict, cli_cloud: Cloud
    ) -> None:
        cli_cloud.kube.logs({"person": CRASH_LOG})
        cli_cloud.kube.simulate("crash-loop", "person", C_PERSON)
        result = k8sdeploy(
            "up",
            "--source",
            str(gke_sources["c"]),
            "--rollback-on-failure",
            "--wait-timeout",
            "60",
            "--output",
            "json",
            env=ENV,
            config=gke_config,
        )
        assert result.exit_code == 5, result.stderr
        document = valid(result.stdout)
        assert document["result"] == "failed" and document["exit_code"] == 5
        assert document["error"]["message"].startswith("person is failing: ")
        assert document["error"]["message"].endswith("; rolled back to version 1.0.0, which passed its checks")
        assert document["error"]["hint"] == "read the diagnosis below, fix the cause and deploy again"
        assert "RuntimeError: person: C cannot start" in document["error"]["details"]
        assert digests(document["rolled_back_to"]) == digests(SEEN["a"])
        assert deployed_images(cli_cloud.kube) == refs(SEEN["a"])
        history = valid(k8sdeploy("history", "--output", "json", env=ENV, config=gke_config).stdout)["releases"]
        assert [(r["version"], r["action"]) for r in history] == [
            ("1.0.0", "rollback"),
            ("1.0.0", "rollback"),
            ("1.1.0", "up"),
            ("1.0.0", "up"),
        ]  # C never recorded

    def test_a_rollback_that_fails_too_names_both_failures(
        self, gke_config: Path, gke_sources: dict, cli_cloud: Cloud
    ) -> None:
        cli_cloud.kube.simulate("crash-loop", "person", "true")  # now A's person crashes as well:
        for pod in cli_cloud.kube.list("pods"):  # its running pod is replaced by one that crashes
            cli_cloud.kube.session().delete(
                f"{cli_cloud.kube.server}/api/v1/namespaces/{cli_cloud.namespace}/pods/{pod['metadata']['name']}",
                timeout=10,
            )
        result = k8sdeploy(
            "up",
            "--source",
            str(gke_sources["c"]),
            "--rollback-on-failure",
            "--wait-timeout",
            "60",
            "--output",
            "json",
            env=ENV,
            config=gke_config,
        )
        assert result.exit_code == 5, result.stderr
        error = valid(result.stdout)["error"]
        assert error["type"] == "RollbackFailed"
        assert error["message"].startswith("person is failing: ")
        assert "; rolling back to version 1.0.0 failed too: person is failing: " in error["message"]
        assert error["hint"].startswith("run `k8sdeploy status`")
        new, _, rollback = error["details"].partition("\nthe rollback to 1.0.0:\n")
        assert new.startswith("the new version:\n")  # both diagnoses, each under its heading
        assert "RuntimeError: person: C cannot start" in new and "RuntimeError: person: C cannot start" in rollback
        cli_cloud.kube.forget_simulations()
        history = valid(k8sdeploy("history", "--output", "json", env=ENV, config=gke_config).stdout)["releases"]
        assert len(history) == 4  # neither the failed up nor the failed rollback was recorded

    def test_a_second_key_and_a_cleanup_60_days_on_leave_every_release_verified(
        self, gke_config: Path, gke_sources: dict, cli_cloud: Cloud, artifact_registry: Registry, cosign: Path
    ) -> None:
        """Signatures live in the sibling repository suite-signatures, whose tags move (before: beside the images,
        where the immutable tags refused the second key's signature, and the cleanup policies counted them)."""
        fake = cli_cloud.artifact_registry
        signatures = fake.repository("my-project", "suite-signatures")
        assert signatures is not None and not signatures.get("dockerConfig", {}).get("immutableTags")
        assert "cleanupPolicies" not in signatures
        rotated = gke_config.parent / "rotated.toml"
        rotated.write_text(
            gke_config.read_text().replace('signing_key = "first.key"', 'verify = { key = "second.pub" }')
        )
        records = {}
        for name in ("a", "b"):  # the recorded releases, built again from their sources: the same digests
            record = gke_config.parent / f"{name}-record.json"
            built = k8sdeploy(
                "build", "--source", str(gke_sources[name]), "--key", str(gke_config.parent / "second.key"),
                "--record", str(record), env=ENV, config=gke_config,
            )  # fmt: skip
            assert built.exit_code == 0, built.stderr
            assert "signed sha256:" in built.stderr  # a second signature beside the first
            rebuilt = {image: found.digest for image, found in BuildRecord.load(record).images.items()}
            assert rebuilt == digests(SEEN[name])
            records[name] = record

        def verified() -> None:
            for record in records.values():
                checked = k8sdeploy("verify", "--build-record", str(record), env=ENV, config=rotated)
                assert checked.exit_code == 0, checked.stderr
                assert "COSIGN_REPOSITORY=" in checked.stderr
            with_first = rotated.read_text().replace("second.pub", "first.pub")
            (gke_config.parent / "first.toml").write_text(with_first)
            still = k8sdeploy("verify", "--release", env=ENV, config=gke_config.parent / "first.toml")
            assert still.exit_code == 0, still.stderr  # the first key's signatures stay beside the second's

        verified()
        person = SEEN["a"]["images"]["person"]
        repository = person["ref"].split("@")[0].rsplit(":", 1)[0]  # HOST:PORT/my-project/suite/person
        assert repository.startswith(f"{artifact_registry.host}/")  # cosign is sent to loopback only
        home = repository.replace("/my-project/suite/", "/my-project/suite-signatures/")
        interop = cosign_verify(cosign, gke_config.parent / "second.pub", person["ref"], home)
        assert interop.returncode == 0, interop.stderr
        deleted = fake.cleanup(time.time() + 60 * 86400)  # Artifact Registry's policies, 60 days on
        kept = {image["ref"].split("@")[1] for release in ("a", "b") for image in SEEN[release]["images"].values()}
        assert not [version for version in deleted if version.split("@")[1] in kept or "-signatures/" in version]
        verified()
        assert cosign_verify(cosign, gke_config.parent / "second.pub", person["ref"], home).returncode == 0

    def test_down_takes_the_history_with_the_cluster(self, gke_config: Path, cli_cloud: Cloud) -> None:
        refused = k8sdeploy("down", env=ENV, config=gke_config)
        assert refused.exit_code == 2 and "pass --yes" in refused.stderr and cli_cloud.gke.clusters
        result = k8sdeploy("down", "--yes", "--output", "json", env=ENV, config=gke_config)
        assert result.exit_code == 0, result.stderr
        assert "cluster ms-auth" in valid(result.stdout)["removed"]
        assert cli_cloud.gke.clusters == {} and cli_cloud.compute.everything() == [] and cli_cloud.kube.owned() == []
        history = k8sdeploy("history", "--output", "json", env=ENV, config=gke_config)
        assert history.exit_code == 0 and valid(history.stdout)["releases"] == []
        assert "left Artifact Registry repository" in result.stderr  # images outlive the environment
        policies = cli_cloud.artifact_registry.repository("my-project", "suite")["cleanupPolicies"]
        assert policies[f"k8sdeploy-released-{ENV}"]["condition"]["tagPrefixes"] == ["1.0.0", "1.1.0"]
        rollback = k8sdeploy("rollback", "--yes", env=ENV, config=gke_config)
        assert rollback.exit_code == 2 and "no release is recorded" in rollback.stderr
