"""The Artifact Registry repository an environment pushes to (`LOCATION-docker.pkg.dev/PROJECT/REPOSITORY`).

A missing one is created before anything is built: Docker format, immutable tags (the registry itself
refuses to move a version tag, beyond our own check), labelled as ours, and with cleanup policies that
keep the newest versions of each image and every version a recorded release names. On a repository we
created, each `up` brings the environment's keep policy up to date with its release history. A repository
someone else made is used as it is. `down` never deletes one: images outlive demos.

Signatures and attestations do not go beside the images: cosign keeps them as tags (`sha256-<hex>.sig`,
`.att`) that move when a signature is added (a second key, a later attestation), which immutable tags refuse, and
the cleanup policies would count and delete them. They go to a sibling repository, REPOSITORY-signatures, with
mutable tags and no cleanup policy, made when something is first signed: cosign's COSIGN_REPOSITORY convention
(`COSIGN_REPOSITORY=LOCATION-docker.pkg.dev/PROJECT/REPOSITORY-signatures/IMAGE cosign verify ...`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass

from google.api_core import exceptions as gexc
from google.api_core.operation import Operation
from google.cloud import artifactregistry_v1 as ar
from google.protobuf import duration_pb2, field_mask_pb2

from deploy.googleapi import RETRY, google_calls
from deploy.model.errors import CloudError, ConfigError
from deploy.model.progress import Say, silent
from deploy.registry.client import DOCKER_HOST, RegistryAddress

REPOSITORY_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
LABELS = {"managed-by": "k8sdeploy"}
KEEP_NEWEST = 10  # versions of each image, whatever their age
DELETE_AFTER = 30 * 24 * 3600  # seconds: older versions that no keep policy holds are deleted
SIGNATURES = "-signatures"  # the sibling repository of the signatures and attestations: REPOSITORY-signatures
MAX_POLICIES = 10  # per repository (https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy)
ROLES = "roles/artifactregistry.admin (to create the repository) or roles/artifactregistry.writer (to push)"


@dataclass(frozen=True)
class RepositoryName:
    project: str
    location: str
    repository: str

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    @property
    def path(self) -> str:
        return f"{self.parent}/repositories/{self.repository}"

    def __str__(self) -> str:
        return f"{self.location}-docker.pkg.dev/{self.project}/{self.repository}"

    @property
    def signatures(self) -> RepositoryName:
        """The sibling repository of this one's signatures and attestations."""
        return RepositoryName(self.project, self.location, self.repository + SIGNATURES)


def signatures_home(name: RepositoryName) -> Callable[[str], str]:
    """Where the signatures of an image in repository `name` go: HOST/PROJECT/REPOSITORY/IMAGE ->
    HOST/PROJECT/REPOSITORY-signatures/IMAGE (the host as the image's: a test's loopback stand-in stays)."""

    def home(image_repository: str) -> str:
        host, _, path = image_repository.partition("/")
        prefix = f"{name.project}/{name.repository}/"
        if not path.startswith(prefix):
            return image_repository
        return f"{host}/{name.project}/{name.signatures.repository}/{path.removeprefix(prefix)}"

    return home


def repository_of(address: RegistryAddress, locations: Mapping[str, str] | None = None) -> RepositoryName | None:
    """The repository `address` pushes into, when it is an Artifact Registry host; `locations` maps other hosts
    (a test's loopback stand-in) to their location."""
    match = DOCKER_HOST.match(address.host)
    location = (locations or {}).get(address.host) or (match.group("location") if match else None)
    if location is None:
        return None
    project, _, rest = address.path.partition("/")
    repository = rest.split("/")[0]
    if not project or not REPOSITORY_ID.match(repository) or len(repository) + len(SIGNATURES) > 63:
        raise ConfigError(
            f"{address} names no Artifact Registry repository",
            "write the registry as LOCATION-docker.pkg.dev/PROJECT/REPOSITORY (the repository id: at most 52 "
            "lower-case letters, digits and dashes, starting with a letter; its signatures go to "
            "REPOSITORY-signatures)",
        )
    return RepositoryName(project, location, repository)


def released_policy_id(env_name: str) -> str:
    return f"k8sdeploy-released-{env_name}"


def shared_policies() -> dict[str, ar.CleanupPolicy]:
    """Keep the newest versions of each image; delete what is older than DELETE_AFTER and not kept."""
    return {
        "k8sdeploy-keep-newest": ar.CleanupPolicy(
            id="k8sdeploy-keep-newest",
            action=ar.CleanupPolicy.Action.KEEP,
            most_recent_versions=ar.CleanupPolicyMostRecentVersions(keep_count=KEEP_NEWEST),
        ),
        "k8sdeploy-delete-old": ar.CleanupPolicy(
            id="k8sdeploy-delete-old",
            action=ar.CleanupPolicy.Action.DELETE,
            condition=ar.CleanupPolicyCondition(
                tag_state=ar.CleanupPolicyCondition.TagState.ANY, older_than=duration_pb2.Duration(seconds=DELETE_AFTER)
            ),
        ),
    }


def released_policy(env_name: str, versions: Iterable[str]) -> ar.CleanupPolicy:
    """Keep every image tagged with a version the environment's history records (a keep policy wins over a
    delete policy). Tag prefixes: a recorded 1.2.0 also keeps 1.2.0-3-gabcdef, which errs on keeping."""
    return ar.CleanupPolicy(
        id=released_policy_id(env_name),
        action=ar.CleanupPolicy.Action.KEEP,
        condition=ar.CleanupPolicyCondition(
            tag_state=ar.CleanupPolicyCondition.TagState.TAGGED, tag_prefixes=sorted(set(versions))
        ),
    )


class ArtifactRepository:
    def __init__(
        self,
        client: ar.ArtifactRegistryClient,
        name: RepositoryName,
        say: Say = silent,
        poll: float = 1.0,
        timeout: float = 300,
    ):
        self.client, self.name, self.say, self.poll, self.timeout = client, name, say, poll, timeout

    def calling(self, what: str) -> AbstractContextManager[None]:
        return google_calls(what, self.name.project, ROLES, "the project in the environment's registry address")

    def find(self, name: RepositoryName | None = None) -> ar.Repository | None:
        name = name or self.name
        with self.calling(f"reading Artifact Registry repository {name}"):
            try:
                return self.client.get_repository(name=name.path, retry=RETRY)
            except gexc.NotFound:
                return None

    def ensure_signatures(self) -> str:
        """The sibling repository the signatures go to, created when missing: mutable tags (a signature added
        moves cosign's tag), no cleanup policy (a recorded release's signatures must outlive any policy).
        'created' or 'unchanged'."""
        name = self.name.signatures
        if self.find(name) is not None:
            return "unchanged"
        repository = ar.Repository(
            format_=ar.Repository.Format.DOCKER,
            labels=LABELS,
            description=f"k8sdeploy: cosign signatures and attestations of the images in {self.name} "
            "(COSIGN_REPOSITORY); tags move as signatures are added; nothing is cleaned up",
            docker_config=ar.Repository.DockerRepositoryConfig(immutable_tags=False),
        )
        what = f"creating Artifact Registry repository {name}"
        self.say(f"{what} (the signatures of {self.name}'s images: mutable tags, kept for good)")
        with self.calling(what):
            try:
                operation = self.client.create_repository(
                    parent=name.parent, repository=repository, repository_id=name.repository, retry=RETRY
                )
            except gexc.Conflict:  # made meanwhile, or a retried create whose first answer was lost
                self.appeared(what, name)
                return "unchanged"
            self.wait(operation, what)
        return "created"

    def ensure(self, env_name: str, released: Iterable[str] | None = None) -> str:
        """Create the repository when missing; on ours, keep `released` (None: leave the keep policy as it is).
        Returns 'created', 'updated', 'unchanged' or 'not ours'."""
        found = self.find()
        if found is None:
            return self.create(env_name, released or ())
        if found.format_ != ar.Repository.Format.DOCKER:
            raise ConfigError(
                f"Artifact Registry repository {self.name} holds {found.format_.name} packages, not Docker images",
                "point the environment's registry at a Docker repository",
            )
        if dict(found.labels).get("managed-by") != LABELS["managed-by"]:
            return "not ours"
        if released is None:
            return "unchanged"
        return self.keep_released(found, env_name, released)

    def create(self, env_name: str, released: Iterable[str]) -> str:
        policies = shared_policies()
        versions = list(released)
        if versions:
            policies[released_policy_id(env_name)] = released_policy(env_name, versions)
        repository = ar.Repository(
            format_=ar.Repository.Format.DOCKER,
            labels=LABELS,
            cleanup_policies=policies,
            description="k8sdeploy: images of the auth suite (tags are immutable; cleanup keeps the newest "
            "versions and every recorded release)",
            docker_config=ar.Repository.DockerRepositoryConfig(immutable_tags=True),
            cleanup_policy_dry_run=False,
        )
        what = f"creating Artifact Registry repository {self.name}"
        self.say(
            f"{what} (Docker, immutable tags, cleanup: keep the newest {KEEP_NEWEST} versions of each image "
            f"and every recorded release, delete others after {DELETE_AFTER // 86400} days)"
        )
        with self.calling(what):
            try:
                operation = self.client.create_repository(
                    parent=self.name.parent, repository=repository, repository_id=self.name.repository, retry=RETRY
                )
            except gexc.Conflict:  # made meanwhile, or a retried create whose first answer was lost
                self.appeared(what)
                return self.ensure(env_name, versions)
            self.wait(operation, what)
        self.say(f"created Artifact Registry repository {self.name}")
        return "created"

    def wait(self, operation: Operation, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not operation.done(retry=RETRY):
            if time.monotonic() > deadline:
                raise CloudError(
                    f"{what} did not finish in {self.timeout:.0f} s",
                    f"run again later; operation {operation.operation.name}",
                )
            time.sleep(self.poll)
        error = operation.exception()
        if error is not None:
            raise CloudError(f"{what} failed: {error}", "fix the cause named above and run again")

    def appeared(self, what: str, name: RepositoryName | None = None) -> None:
        """Wait for a repository whose create someone (or our own lost request) started to be there."""
        deadline = time.monotonic() + self.timeout
        while self.find(name) is None:
            if time.monotonic() > deadline:
                raise CloudError(
                    f"{what}: the id is taken, but the repository did not appear in {self.timeout:.0f} s",
                    "run again later",
                )
            time.sleep(self.poll)

    def keep_released(self, found: ar.Repository, env_name: str, released: Iterable[str]) -> str:
        policies = dict(found.cleanup_policies)
        versions = sorted(set(released))
        policy_id = released_policy_id(env_name)
        current = policies.get(policy_id)
        if (sorted(current.condition.tag_prefixes) if current else []) == versions:
            return "unchanged"
        if versions:
            policies[policy_id] = released_policy(env_name, versions)
        else:
            policies.pop(policy_id, None)
        if len(policies) > MAX_POLICIES:
            self.say(
                f"note: repository {self.name} has {MAX_POLICIES} cleanup policies already; the releases of "
                f"{env_name} are kept only while they are among the newest {KEEP_NEWEST} versions"
            )
            return "unchanged"
        with self.calling(f"updating the cleanup policies of Artifact Registry repository {self.name}"):
            self.client.update_repository(
                repository=ar.Repository(name=self.name.path, cleanup_policies=policies),
                update_mask=field_mask_pb2.FieldMask(paths=["cleanup_policies"]),
                retry=RETRY,
            )
        self.say(f"repository {self.name} keeps the {len(versions)} version(s) environment {env_name} records")
        return "updated"

    def refuse_moving(self, tags: Iterable[str]) -> None:
        """Moving tags (channels, `latest`) cannot move in a repository with immutable tags (as one we create
        has): say so before building."""
        tags = list(tags)
        if not tags:
            return
        found = self.find()
        if found is None or found.docker_config.immutable_tags:
            raise ConfigError(
                f"Artifact Registry repository {self.name} has immutable tags, so {', '.join(tags)} cannot move there",
                "deploy by version (k8sdeploy pins every image by version and digest), or keep moving "
                "tags in a repository whose tags are mutable",
            )
