"""`k8sdeploy doctor` for a gke environment: what its project lacks for a command, read before anything is created.

Each check reads and changes nothing: the APIs enabled (Service Usage services.batchGet,
https://cloud.google.com/service-usage/docs/reference/rest/v1/services/batchGet), the permissions held
(Resource Manager projects.testIamPermissions, which answers the subset the caller holds and needs no role,
https://cloud.google.com/resource-manager/reference/rest/v1/projects/testIamPermissions; the nodes' account's
actAs by IAM serviceAccounts.testIamPermissions), the regional quotas a new cluster takes and the room its nodes
leave for the suite (Compute regions.get and machineTypes.get; doctor_sizing.py), and the CI identities'
providers (doctor_identity.py). A check that cannot ask is a FAIL line with its fix, never a traceback."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from google.api_core import exceptions as gexc

from deploy.model.doctor import Finding, missing, passed
from deploy.model.environments import Environment
from deploy.model.errors import DeployError
from deploy.targets.gke import doctor_sizing as sizing
from deploy.targets.gke.doctor_identity import identities
from deploy.targets.gke.permissions import ACT_AS, needed, roles_for
from deploy.targets.gke.rest import FAILED, Rest, refusal

BATCH = 30  # services:batchGet takes at most 30 names a request (its `names` parameter)
TESTED = 100  # permissions a testIamPermissions request carries (sent in parts beyond)
DEFAULT_ACCOUNT = "the project's Compute Engine default service account"


@dataclass(frozen=True)
class DoctorApis:
    """The APIs `doctor` reads, each at its endpoint (public ones unless a test gives its fakes')."""

    service_usage: Rest
    resource_manager: Rest
    iam: Rest
    compute: Rest


class GkeDoctor:
    """The gke kind's TargetKit.doctor: `doctor(objects, purpose)` for the rendered objects of up, diff or promote."""

    def __init__(
        self,
        environment: Environment,
        apis: DoctorApis,
        cluster_exists: Callable[[], bool],
        artifact_registry: bool,
    ):
        assert environment.gke is not None  # a gke environment has its table
        self.environment, self.gke = environment, environment.gke
        self.apis = apis
        self.cluster_exists = cluster_exists
        self.artifact_registry = artifact_registry
        self.project = environment.gke.project
        self.table = f"[environments.{environment.name}.gke]"

    def __call__(self, objects: Sequence[dict], purpose: str) -> list[Finding]:
        findings: list[Finding] = []
        try:
            exists = self.cluster_exists()
        except DeployError as exc:
            exists = False  # checked as for a new cluster, the more that is needed
            findings.append(
                missing("cluster", f"cannot tell whether cluster {self.gke.cluster} exists: {exc.message}", exc.hint)
            )
        findings += self.enabled()
        findings += self.permissions(objects, purpose, creating=not exists)
        if purpose in ("up", "promote"):
            findings += self.sizing(objects, exists)
        findings += identities(self.apis.iam, self.environment)
        return findings

    # -- apis -------------------------------------------------------------------------------------
    def services(self) -> list[str]:
        wanted = ["container.googleapis.com", "compute.googleapis.com", "cloudresourcemanager.googleapis.com"]
        if self.artifact_registry:
            wanted.append("artifactregistry.googleapis.com")
        if self.gke.ci is not None:  # workload identity federation: the token exchange, the account's tokens
            wanted += ["sts.googleapis.com", "iamcredentials.googleapis.com", "iam.googleapis.com"]
        return wanted

    def enabled(self) -> list[Finding]:
        wanted, states = self.services(), dict[str, str]()
        try:
            for start in range(0, len(wanted), BATCH):
                names = [f"projects/{self.project}/services/{name}" for name in wanted[start : start + BATCH]]
                answer = self.apis.service_usage.get(f"v1/projects/{self.project}/services:batchGet", {"names": names})
                states |= {s["name"].rsplit("/", 1)[-1]: s.get("state", "") for s in answer.get("services", [])}
        except FAILED as exc:
            return [
                refusal(
                    "apis",
                    "asking Service Usage which APIs are enabled",
                    self.project,
                    exc,
                    "roles/serviceusage.serviceUsageViewer",
                )
            ]
        off = [name for name in wanted if states.get(name) != "ENABLED"]
        if off:
            return [
                missing(
                    "apis",
                    f"not enabled in project {self.project}: {', '.join(off)}",
                    f"gcloud services enable {' '.join(off)} --project {self.project}",
                )
            ]
        return [passed("apis", f"enabled in project {self.project}: {', '.join(wanted)}")]

    # -- permissions ------------------------------------------------------------------------------
    def permissions(self, objects: Sequence[dict], purpose: str, creating: bool) -> list[Finding]:
        uses = needed(purpose, objects, creating, self.artifact_registry)
        asked = [use.permission for use in uses]
        held: set[str] = set()
        try:
            for start in range(0, len(asked), TESTED):
                answer = self.apis.resource_manager.post(
                    f"v1/projects/{self.project}:testIamPermissions", {"permissions": asked[start : start + TESTED]}
                )
                held |= set(answer.get("permissions", []))
        except FAILED as exc:
            return [refusal("permissions", "asking testIamPermissions", self.project, exc)]
        lacking = [p for p in asked if p not in held]
        found = []
        if lacking:
            found.append(
                missing(
                    "permissions",
                    f"{purpose} needs {len(asked)} permissions on project {self.project}; these {len(lacking)} are not "
                    f"held: {', '.join(lacking)}",
                    f"grant a custom role with them (gcloud iam roles create ... --permissions={','.join(lacking)}) or "
                    f"{', '.join(roles_for(lacking, purpose))}",
                )
            )
        else:
            found.append(
                passed("permissions", f"all {len(asked)} permissions {purpose} uses are held on project {self.project}")
            )
        if creating and purpose in ACT_AS.commands:
            found.append(self.act_as())
        return found

    def act_as(self) -> Finding:
        account = self.gke.node_service_account
        if not account:
            return passed("permissions", f"the nodes run as {DEFAULT_ACCOUNT}: actAs not asked (a project-wide grant)")
        try:
            answer = self.apis.iam.post(
                f"v1/projects/-/serviceAccounts/{account}:testIamPermissions", {"permissions": [ACT_AS.permission]}
            )
        except FAILED as exc:
            return refusal(
                "permissions", f"asking whether the nodes' account {account} may be acted as", self.project, exc
            )
        if ACT_AS.permission not in answer.get("permissions", []):
            return missing(
                "permissions",
                f"creating the cluster runs its nodes as {account}, and the caller may not act as it "
                f"({ACT_AS.permission})",
                f"gcloud iam service-accounts add-iam-policy-binding {account} --member=CALLER "
                "--role=roles/iam.serviceAccountUser",
            )
        return passed("permissions", f"the caller may act as the nodes' account {account}")

    # -- quota and capacity -----------------------------------------------------------------------
    def sizing(self, objects: Sequence[dict], exists: bool) -> list[Finding]:
        region_name = sizing.region_of(self.gke.location)
        try:
            region = sizing.Region.of(
                self.apis.compute.get(f"compute/v1/projects/{self.project}/regions/{region_name}")
            )
        except gexc.NotFound:
            return [missing("quota", f"Compute has no region {region_name}", f"set location in {self.table}")]
        except FAILED as exc:
            return [refusal("quota", f"reading region {region_name}", self.project, exc, "roles/compute.viewer")]
        zone = self.gke.location if sizing.zones_of(self.gke.location, None) == 1 else (region.zones or ("",))[0]
        path = f"compute/v1/projects/{self.project}/zones/{zone}/machineTypes/{self.gke.machine_type}"
        try:
            machine = sizing.Machine.of(self.apis.compute.get(path))
        except gexc.NotFound:
            return [
                missing(
                    "capacity",
                    f"zone {zone} has no machine type {self.gke.machine_type}",
                    f"set machine_type in {self.table} to one of `gcloud compute machine-types list --zones {zone}`",
                )
            ]
        except FAILED as exc:
            what = f"reading machine type {self.gke.machine_type} in {zone}"
            return [refusal("capacity", what, self.project, exc, "roles/compute.viewer")]
        found = []
        if exists:
            found.append(
                passed("quota", f"cluster {self.gke.cluster} exists: it takes no more nodes, disks or addresses")
            )
        else:
            found += sizing.quota(self.environment, machine, region)
        zones = sizing.zones_of(self.gke.location, region)
        return [*found, sizing.capacity(self.environment, machine, zones, objects)]
