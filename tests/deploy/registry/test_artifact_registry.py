"""The Artifact Registry repository: created when missing (Docker, immutable tags, ours, cleanup policies that
keep recent versions and every recorded release), left alone when someone else made it.

What is real: the google-cloud-artifact-registry client with its REST transport and long-running operations,
google-auth credentials, the registry (Debian's docker-registry) the images are pushed to. Artifact Registry
itself is tests/fakes/artifact_registry.py (its REST reference is cited there), with its Docker side as a
proxy in front of the real registry: it refuses pushes into a repository that does not exist, as the real
one does, and moving a tag in a repository with immutable tags.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.oauth2.credentials import Credentials

from deploy import clients
from deploy.clients import Clients, GoogleApis
from deploy.model.errors import CloudError, ConfigError, PublishError
from deploy.publish.push import RegistryPublisher
from deploy.registry.artifact_registry import ArtifactRepository, RepositoryName, repository_of
from deploy.registry.client import RegistryAddress
from tests.deploy.conftest import FAST_RETRY, BuiltSuite
from tests.fakes.artifact_registry import FakeArtifactRegistry
from tests.helpers import k8sdeploy
from tests.registries import ProxyRules, Registry, registry_proxy

NAME = RepositoryName("my-project", "europe-west1", "suite")


@pytest.fixture
def fake() -> Iterator[FakeArtifactRegistry]:
    fake = FakeArtifactRegistry(done_after=2).start()
    yield fake
    fake.stop()


def apis(fake: FakeArtifactRegistry, docker_host: str = "") -> GoogleApis:
    return GoogleApis(
        Credentials(token="google-token"),
        scheme="http",
        poll=0.01,
        artifact_registry_endpoint=fake.address,
        docker_locations={docker_host: fake.location} if docker_host else {},
    )


def repository(fake: FakeArtifactRegistry, said: list[str] | None = None) -> ArtifactRepository:
    from google.cloud import artifactregistry_v1

    client = clients.rest_client(artifactregistry_v1.ArtifactRegistryClient, fake.address, apis(fake))
    return ArtifactRepository(client, NAME, (said if said is not None else []).append, poll=0.01)


@pytest.mark.parametrize(
    "address, expected",
    [
        ("europe-west1-docker.pkg.dev/my-project/suite", NAME),
        ("us-docker.pkg.dev/p/r/nested/path", RepositoryName("p", "us", "r")),
        ("127.0.0.1:5000/suite", None),
        ("gcr.io/my-project", None),
    ],
)
def test_which_registries_are_artifact_registry_repositories(address: str, expected: RepositoryName | None) -> None:
    assert repository_of(RegistryAddress.parse(address)) == expected


@pytest.mark.parametrize("address", ["europe-west1-docker.pkg.dev/my-project", "europe-west1-docker.pkg.dev/p/9suite"])
def test_an_artifact_registry_address_without_a_valid_repository_is_refused(address: str) -> None:
    with pytest.raises(ConfigError, match="names no Artifact Registry repository"):
        repository_of(RegistryAddress.parse(address))


def test_a_missing_repository_is_created_as_ours_with_immutable_tags_and_cleanup(fake: FakeArtifactRegistry) -> None:
    said: list[str] = []
    assert repository(fake, said).ensure("staging", ["1.0.0", "1.1.0"]) == "created"
    created = fake.repository("my-project", "suite")
    assert created is not None
    assert (created["format"], created["labels"], created["dockerConfig"]) == (
        "DOCKER",
        {"managed-by": "k8sdeploy"},
        {"immutableTags": True},
    )
    assert created.get("cleanupPolicyDryRun", False) is False
    policies = created["cleanupPolicies"]
    assert policies["k8sdeploy-keep-newest"] == {
        "id": "k8sdeploy-keep-newest",
        "action": "KEEP",
        "mostRecentVersions": {"keepCount": 10},
    }
    assert policies["k8sdeploy-delete-old"]["condition"] == {"tagState": "ANY", "olderThan": "2592000s"}
    assert policies["k8sdeploy-released-staging"]["condition"] == {
        "tagState": "TAGGED",
        "tagPrefixes": ["1.0.0", "1.1.0"],
    }
    assert any(
        line.startswith("created Artifact Registry repository europe-west1-docker.pkg.dev/my-project/suite")
        for line in said
    )
    assert fake.polls and all(polls >= 2 for polls in fake.polls.values())  # the operation was followed to done


def test_each_up_keeps_the_recorded_releases_and_writes_only_when_they_change(fake: FakeArtifactRegistry) -> None:
    repo = repository(fake)
    repo.ensure("staging", [])
    assert "k8sdeploy-released-staging" not in fake.repository("my-project", "suite")["cleanupPolicies"]
    writes = fake.mutations
    assert repo.ensure("staging", ["1.0.0"]) == "updated"
    assert repo.ensure("production", ["0.9.0"]) == "updated"  # each environment keeps its own releases
    assert repo.ensure("staging", ["1.0.0"]) == "unchanged"
    assert repo.ensure("staging") == "unchanged"  # `build`: no history at hand, the policy stays as it is
    policies = fake.repository("my-project", "suite")["cleanupPolicies"]
    assert policies["k8sdeploy-released-staging"]["condition"]["tagPrefixes"] == ["1.0.0"]
    assert policies["k8sdeploy-released-production"]["condition"]["tagPrefixes"] == ["0.9.0"]
    assert {"k8sdeploy-keep-newest", "k8sdeploy-delete-old"} <= set(policies)
    assert fake.mutations == writes + 2


def test_a_repository_someone_else_made_is_used_as_it_is(fake: FakeArtifactRegistry) -> None:
    fake.add("my-project", "suite", labels={"team": "platform"})
    writes = fake.mutations
    assert repository(fake).ensure("staging", ["1.0.0"]) == "not ours"
    assert fake.mutations == writes and "cleanupPolicies" not in fake.repository("my-project", "suite")


def test_a_repository_of_another_format_is_refused(fake: FakeArtifactRegistry) -> None:
    fake.add("my-project", "suite", format="PYTHON")
    with pytest.raises(ConfigError, match="holds PYTHON packages, not Docker images"):
        repository(fake).ensure("staging")


def test_no_permission_to_create_names_the_role(fake: FakeArtifactRegistry) -> None:
    fake.denied.add("artifactregistry.repositories.create")
    with pytest.raises(CloudError) as error:
        repository(fake).ensure("staging")
    assert "permission denied while creating Artifact Registry repository" in error.value.message
    assert "roles/artifactregistry.admin" in error.value.hint


def test_the_api_not_enabled_says_how_to_enable_it(fake: FakeArtifactRegistry) -> None:
    fake.disabled = True
    with pytest.raises(CloudError) as error:
        repository(fake).ensure("staging")
    assert error.value.message.startswith("artifactregistry.googleapis.com is not enabled in project 'my-project'")
    assert "gcloud services enable artifactregistry.googleapis.com" in error.value.hint


def test_creating_and_keeping_survive_30_percent_throttling_drops_and_lost_answers() -> None:
    injected = 0
    for seed in range(10):  # ten fresh projects, each with its own fixed seed
        fake = FakeArtifactRegistry(done_after=2).start()
        try:
            fake.flaky, fake.retry_after, fake.faults = 0.3, "0", ("fault", "drop", "lost")
            fake.random = random.Random(seed)
            repo = repository(fake)
            repo.ensure("staging", ["1.0.0"])
            repo.ensure("staging", ["1.0.0", "1.1.0"])
            repo.ensure("staging", ["1.0.0", "1.1.0"])
            injected += fake.injected
            fake.flaky = 0
            created = fake.repository("my-project", "suite")
            assert created["dockerConfig"] == {"immutableTags": True}, seed
            assert created["cleanupPolicies"]["k8sdeploy-released-staging"]["condition"]["tagPrefixes"] == [
                "1.0.0",
                "1.1.0",
            ], seed
        finally:
            fake.stop()
    assert injected >= 10


def test_moving_tags_are_refused_where_tags_are_immutable(fake: FakeArtifactRegistry) -> None:
    repo = repository(fake)
    with pytest.raises(ConfigError, match="has immutable tags, so develop cannot move there"):
        repo.refuse_moving(["develop"])  # not there yet: it would be created with immutable tags
    repo.refuse_moving([])
    fake.add("my-project", "suite", dockerConfig={"immutableTags": False})
    repo.refuse_moving(["latest"])  # a mutable repository carries channels


@pytest.fixture
def stand_in(fake: FakeArtifactRegistry, fresh_registry: Registry) -> Iterator[str]:
    """Artifact Registry's Docker side on loopback: the fake's refusals in front of a real registry."""
    with registry_proxy(fresh_registry.host, ProxyRules(gate=fake.docker_gate)) as host:
        yield host


def push(host: str, suite: BuiltSuite, tag: str = "1.0.0") -> None:
    publisher = RegistryPublisher(
        RegistryAddress.parse(f"{host}/my-project/suite"), Clients(retry=FAST_RETRY).registry(host)
    )
    publisher.publish(suite.images, tag, ())


def test_the_first_push_into_a_fresh_project_needs_the_repository(
    fake: FakeArtifactRegistry, stand_in: str, suite_build: BuiltSuite
) -> None:
    with pytest.raises(PublishError, match="NAME_UNKNOWN"):
        push(stand_in, suite_build)  # what `up` met before it created the repository
    repository(fake).ensure("staging")
    push(stand_in, suite_build)
    manifest = httpx.get(
        f"http://{stand_in}/v2/my-project/suite/person/manifests/1.0.0",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert manifest.status_code == 200
    moved = json.loads(manifest.content)
    moved["annotations"] = {"moved": "yes"}
    refused = httpx.put(
        f"http://{stand_in}/v2/my-project/suite/person/manifests/1.0.0",
        content=json.dumps(moved),
        headers={"Content-Type": moved["mediaType"]},
    )
    assert refused.status_code == 403 and "immutable" in refused.text  # the registry's own guarantee


def cli_config(tmp_path: Path, registry: str) -> Path:
    path = tmp_path / "k8sdeploy.toml"
    path.write_text(
        "\n".join(
            [
                "[environments.staging]",
                f'registry = "{registry}"',
                "[environments.staging.gke]",
                'project = "my-project"',
                'location = "europe-west1-b"',
                'cluster = "c"',
                'node_service_account = "k8sdeploy-nodes@my-project.iam.gserviceaccount.com"',
            ]
        )
        + "\n"
    )
    return path


@pytest.mark.parametrize("command", [["build", "--channel", "develop"], ["release", "1.0.0"]])
def test_channels_are_refused_before_anything_is_built_or_moved(
    command: list[str], fake: FakeArtifactRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clients, "google_apis", lambda: apis(fake))
    config = cli_config(tmp_path, "europe-west1-docker.pkg.dev/my-project/suite")
    result = k8sdeploy(*command, env="staging", config=config)
    assert result.exit_code == 2, result.output
    assert "has immutable tags" in result.stderr and "Traceback" not in result.output
    assert fake.mutations == 0 and fake.repository("my-project", "suite") is None
