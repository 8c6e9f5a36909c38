"""A fake of the Artifact Registry API (v1) on loopback: repositories and their long-running create operations,
and the Docker side's refusals, in front of a real registry.

Why a fake: Artifact Registry cannot be reached from these machines. It follows the REST reference,
https://cloud.google.com/artifact-registry/docs/reference/rest/v1/projects.locations.repositories:
- `repositories.get` answers the Repository resource, or 404 NOT_FOUND;
- `repositories.create` (POST .../repositories?repositoryId=ID) answers a google.longrunning Operation that
  finishes on its own, whether polled or not (here: after `done_after` further requests of any kind), when
  the repository appears; 409 ALREADY_EXISTS for a taken
  id, 400 INVALID_ARGUMENT for an id that is not lower-case letters, digits and dashes starting with a
  letter, for a missing format, and for cleanup policies the reference refuses (a keep policy with both a
  condition and mostRecentVersions; more than 10 policies,
  https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy);
- `repositories.patch` with updateMask replaces the named fields;
- 403 IAM_PERMISSION_DENIED for a permission the test withholds (artifactregistry.repositories.create),
  SERVICE_DISABLED when the API is off.
The Docker side (`docker_gate`, for tests/registries.py's proxy in front of docker-registry): a push into a
repository that does not exist is refused with 404 NAME_UNKNOWN `Repository "ID" not found`, as Artifact
Registry answers it (docker-registry itself would create any repository on push); in a repository with
dockerConfig.immutableTags a tag cannot be moved (the reference: "prevents all tags from being modified,
moved or deleted. This does not prevent tags from being created"); the status and code of that refusal are
not documented, so this fake answers the distribution spec's 403 DENIED.

Cleanup policies (https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy): `cleanup(at)`
runs them as Artifact Registry would at time `at` over every version (manifest) pushed through the Docker side,
by package (image): a version is deleted when a DELETE policy's condition matches it and no KEEP policy keeps it
(a keep policy's condition, or mostRecentVersions: the keepCount newest versions of each package whose name has
one of its packageNamePrefixes). Conditions: tagState (TAGGED, UNTAGGED, ANY), tagPrefixes (and tagged),
versionNamePrefixes, packageNamePrefixes, olderThan and newerThan against the version's creation time. A
repository in cleanupPolicyDryRun deletes nothing. A deleted version answers 404 MANIFEST_UNKNOWN by digest and by
every tag that named it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from deploy.registry.client import MANIFEST_TYPES
from tests.fakes.google import GoogleFake, fail
from tests.fakes.server import Reply, Request

L = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
REPOSITORY_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
DOCKER_PATH = re.compile(
    r"^/v2/(?P<project>[^/]+)/(?P<repository>[^/]+)/(?P<image>.+)/(?P<kind>blobs|manifests|tags)/"
    r"(?P<reference>.*)$"
)
# `$alt=json;enum-encoding=int` (what the client's REST transport asks for) sends enums as numbers; the fake
# keeps their names (the proto's numbers, google/devtools/artifactregistry/v1/repository.proto, cleanup policies)
ENUMS = {
    "format": {
        0: "FORMAT_UNSPECIFIED",
        1: "DOCKER",
        2: "MAVEN",
        3: "NPM",
        5: "APT",
        6: "YUM",
        8: "PYTHON",
        9: "KFP",
        10: "GO",
        11: "GENERIC",
        12: "RUBY",
    },
    "mode": {0: "MODE_UNSPECIFIED", 1: "STANDARD_REPOSITORY", 2: "VIRTUAL_REPOSITORY", 3: "REMOTE_REPOSITORY"},
    "action": {0: "ACTION_UNSPECIFIED", 1: "DELETE", 2: "KEEP"},
    "tagState": {0: "TAG_STATE_UNSPECIFIED", 1: "TAGGED", 2: "UNTAGGED", 3: "ANY"},
}
REPOSITORY_TYPE = "type.googleapis.com/google.devtools.artifactregistry.v1.Repository"
METADATA_TYPE = "type.googleapis.com/google.devtools.artifactregistry.v1.OperationMetadata"


@dataclass
class Version:
    """A manifest pushed into a package (an image) of a repository."""

    created: float
    tags: set[str] = field(default_factory=set)
    deleted: bool = False


def duration(value: str | dict | None) -> float:
    """A protobuf Duration as the JSON transport sends it ("2592000s") or as a dict of seconds."""
    if isinstance(value, dict):
        return float(value.get("seconds", 0))
    return float(str(value or "0").rstrip("s") or 0)


def matches(condition: dict, package: str, digest: str, version: Version, at: float) -> bool:
    state = condition.get("tagState", "ANY")
    prefixes = condition.get("tagPrefixes") or []
    if state == "TAGGED" and not version.tags or state == "UNTAGGED" and version.tags:
        return False
    if prefixes and not any(tag.startswith(prefix) for tag in version.tags for prefix in prefixes):
        return False
    if condition.get("versionNamePrefixes") and not any(
        digest.startswith(prefix) for prefix in condition["versionNamePrefixes"]
    ):
        return False
    if condition.get("packageNamePrefixes") and not any(
        package.startswith(prefix) for prefix in condition["packageNamePrefixes"]
    ):
        return False
    age = at - version.created
    if "olderThan" in condition and age <= duration(condition["olderThan"]):
        return False
    return not ("newerThan" in condition and age >= duration(condition["newerThan"]))


class FakeArtifactRegistry(GoogleFake):
    service, title = "artifactregistry.googleapis.com", "Artifact Registry API"

    def __init__(self, location: str = "europe-west1", done_after: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.location = location
        self.done_after = done_after
        self.repositories: dict[str, dict] = {}  # name -> Repository resource
        self.operations: dict[str, dict] = {}
        self.polls: dict[str, int] = {}
        self.ids = itertools.count(1)
        self.now: Callable[[], float] = time.time  # when a version is pushed
        # (project, repository, image) -> digest -> Version; and each tag's digest
        self.versions: dict[tuple[str, str, str], dict[str, Version]] = {}
        self.tagged: dict[tuple[str, str, str], dict[str, str]] = {}
        self.route("GET", L + r"/repositories/(?P<repository>[^/]+)", self.get)
        self.route("POST", L + r"/repositories", self.create)
        self.route("PATCH", L + r"/repositories/(?P<repository>[^/]+)", self.patch)
        self.route("GET", L + r"/operations/(?P<operation>[^/]+)", self.get_operation)

    # -- what tests look at --------------------------------------------------------------------
    def repository(self, project: str, repository: str) -> dict | None:
        return self.repositories.get(f"projects/{project}/locations/{self.location}/repositories/{repository}")

    def add(self, project: str, repository: str, **fields: object) -> dict:
        """A repository made by someone else (no labels unless given)."""
        name = f"projects/{project}/locations/{self.location}/repositories/{repository}"
        self.repositories[name] = {"name": name, "format": "DOCKER", "mode": "STANDARD_REPOSITORY", **fields}
        return self.repositories[name]

    # -- the REST API --------------------------------------------------------------------------
    @staticmethod
    def body(request: Request) -> object:
        def named(value: object, key: str = "") -> object:
            if isinstance(value, dict):
                return {k: named(v, k) for k, v in value.items()}
            if isinstance(value, list):
                return [named(v) for v in value]
            return ENUMS[key].get(value, value) if key in ENUMS and isinstance(value, int) else value

        return named(request.json())

    def _name(self, request: Request, repository: str = "") -> str:
        p = request.params
        self.check(
            p["project"],
            "artifactregistry.repositories."
            + ("create" if request.method == "POST" else "update" if request.method == "PATCH" else "get"),
        )
        if p["location"] != self.location:
            raise fail(400, f"Invalid location: {p['location']}")
        return f"projects/{p['project']}/locations/{p['location']}/repositories/{repository or p['repository']}"

    def advance(self) -> None:
        """Every request is a step of time for the operations under way."""
        for operation, entry in self.operations.items():
            self.polls[operation] += 1
            if self.polls[operation] >= self.done_after:
                self.repositories.setdefault(entry["target"], entry["resource"])

    def get(self, request: Request) -> Reply:
        self.advance()
        name = self._name(request)
        if name not in self.repositories:
            raise fail(404, "Requested entity was not found.")
        return Reply(200, self.repositories[name])

    def create(self, request: Request) -> Reply:
        repository_id = request.query.get("repositoryId", "")
        if not REPOSITORY_ID.match(repository_id):
            raise fail(
                400,
                f"Invalid repository id {repository_id!r}: it must start with a lower-case letter and "
                "contain only lower-case letters, digits and dashes.",
            )
        self.advance()
        name = self._name(request, repository_id)
        if name in self.repositories or any(op["target"] == name for op in self.operations.values()):
            raise fail(409, "the repository already exists")
        body = self.body(request)
        if body.get("format", "FORMAT_UNSPECIFIED") == "FORMAT_UNSPECIFIED":
            raise fail(400, "Repository format must be specified.")
        self.check_policies(body.get("cleanupPolicies", {}))
        p = request.params
        operation = f"projects/{p['project']}/locations/{p['location']}/operations/{next(self.ids):08x}-op"
        host = f"{p['location']}-docker.pkg.dev"
        resource = {
            **body,
            "name": name,
            "mode": body.get("mode", "STANDARD_REPOSITORY"),
            "registryUri": f"{host}/{p['project']}/{repository_id}",
            "createTime": "2026-11-28T12:00:00Z",
            "updateTime": "2026-11-28T12:00:00Z",
        }
        self.operations[operation] = {"target": name, "resource": resource}
        self.polls[operation] = 0
        return Reply(200, {"name": operation, "metadata": {"@type": METADATA_TYPE}, "done": False})

    def get_operation(self, request: Request) -> Reply:
        p = request.params
        operation = f"projects/{p['project']}/locations/{p['location']}/operations/{p['operation']}"
        if operation not in self.operations:
            raise fail(404, "Operation not found.")
        self.advance()
        entry = self.operations[operation]
        if self.polls[operation] < self.done_after:
            return Reply(200, {"name": operation, "metadata": {"@type": METADATA_TYPE}, "done": False})
        return Reply(
            200,
            {
                "name": operation,
                "metadata": {"@type": METADATA_TYPE},
                "done": True,
                "response": {"@type": REPOSITORY_TYPE, **self.repositories[entry["target"]]},
            },
        )

    def patch(self, request: Request) -> Reply:
        self.advance()
        name = self._name(request)
        if name not in self.repositories:
            raise fail(404, "Requested entity was not found.")
        mask = [field for field in request.query.get("updateMask", "").split(",") if field]
        if not mask:
            raise fail(400, "update_mask is required.")
        body = self.body(request)
        fields = {re.sub(r"_(\w)", lambda m: m.group(1).upper(), field) for field in mask}
        if "cleanupPolicies" in fields:
            self.check_policies(body.get("cleanupPolicies", {}))
        for named in fields:
            if named in body:
                self.repositories[name][named] = body[named]
            else:
                self.repositories[name].pop(named, None)
        return Reply(200, self.repositories[name])

    @staticmethod
    def check_policies(policies: dict) -> None:
        if len(policies) > 10:
            raise fail(400, f"A repository can have at most 10 cleanup policies, got {len(policies)}.")
        for key, policy in policies.items():
            if policy.get("id", key) != key:
                raise fail(400, f"Cleanup policy id {policy.get('id')!r} does not match its key {key!r}.")
            if policy.get("action") not in ("KEEP", "DELETE"):
                raise fail(400, f"Cleanup policy {key}: action must be KEEP or DELETE.")
            if "condition" in policy and "mostRecentVersions" in policy:
                raise fail(400, f"Cleanup policy {key}: a policy has either a condition or mostRecentVersions.")
            if "mostRecentVersions" in policy and policy["action"] != "KEEP":
                raise fail(400, f"Cleanup policy {key}: mostRecentVersions is for keep policies.")

    # -- cleanup policies ------------------------------------------------------------------------
    def cleanup(self, at: float) -> list[str]:
        """Run every repository's cleanup policies at time `at`; the versions deleted, as PROJECT/REPO/IMAGE@DIGEST."""
        deleted = []
        for (project, repository_id, image), versions in self.versions.items():
            repository = self.repository(project, repository_id) or {}
            policies = list((repository.get("cleanupPolicies") or {}).values())
            if repository.get("cleanupPolicyDryRun") or not policies:
                continue
            alive = {digest: v for digest, v in versions.items() if not v.deleted}
            kept: set[str] = set()
            for policy in policies:
                newest = policy.get("mostRecentVersions")
                if policy["action"] == "KEEP" and newest is not None:
                    prefixes = newest.get("packageNamePrefixes") or [""]
                    if any(image.startswith(prefix) for prefix in prefixes):
                        order = sorted(alive, key=lambda digest: alive[digest].created, reverse=True)
                        kept |= set(order[: int(newest.get("keepCount", 0))])
                elif policy["action"] == "KEEP":
                    kept |= {d for d, v in alive.items() if matches(policy.get("condition", {}), image, d, v, at)}
            for digest, version in alive.items():
                doomed = any(
                    policy["action"] == "DELETE" and matches(policy.get("condition", {}), image, digest, version, at)
                    for policy in policies
                )
                if doomed and digest not in kept:
                    version.deleted = True
                    deleted.append(f"{project}/{repository_id}/{image}@{digest}")
        return deleted

    def pushed(self, key: tuple[str, str, str], reference: str, body: bytes) -> None:
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        versions = self.versions.setdefault(key, {})
        version = versions.get(digest)
        if version is None or version.deleted:
            version = versions[digest] = Version(created=self.now())
        if not reference.startswith("sha256:"):
            tags = self.tagged.setdefault(key, {})
            moved_from = tags.get(reference)
            if moved_from and moved_from != digest and moved_from in versions:
                versions[moved_from].tags.discard(reference)
            tags[reference] = digest
            version.tags.add(reference)

    def gone(self, key: tuple[str, str, str], reference: str) -> bool:
        digest = reference if reference.startswith("sha256:") else self.tagged.get(key, {}).get(reference, "")
        version = self.versions.get(key, {}).get(digest)
        return version is not None and version.deleted

    # -- the Docker side ------------------------------------------------------------------------
    def docker_gate(self, method: str, path: str, body: bytes, upstream: str) -> tuple[int, bytes] | None:
        """None to let the request through to the registry; otherwise Artifact Registry's refusal."""
        match = DOCKER_PATH.match(path)
        if match is None:
            return None
        repository = self.repository(match["project"], match["repository"])
        if repository is None:
            return 404, json.dumps(
                {"errors": [{"code": "NAME_UNKNOWN", "message": f'Repository "{match["repository"]}" not found'}]}
            ).encode()
        key = (match["project"], match["repository"], match["image"])
        reference = match["reference"]
        if match["kind"] == "manifests" and method in ("GET", "HEAD") and self.gone(key, reference):
            return 404, json.dumps(
                {"errors": [{"code": "MANIFEST_UNKNOWN", "message": f"{reference}: deleted by a cleanup policy"}]}
            ).encode()
        immutable = repository.get("dockerConfig", {}).get("immutableTags", False)
        if immutable and method == "PUT" and match["kind"] == "manifests" and not reference.startswith("sha256:"):
            current = httpx.head(f"http://{upstream}{path}", headers={"Accept": MANIFEST_TYPES})
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            if current.status_code == 200 and current.headers.get("docker-content-digest") != digest:
                return 403, json.dumps(
                    {
                        "errors": [
                            {
                                "code": "DENIED",
                                "message": f"tag {reference} of {match['image']} is immutable and cannot be moved",
                            }
                        ]
                    }
                ).encode()
        if method == "PUT" and match["kind"] == "manifests":
            with self.lock:
                self.pushed(key, reference, body)
        return None
