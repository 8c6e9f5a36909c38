"""The kinds of target an environment names by its table ([environments.NAME.local], .kubeconfig or .gke): each
kind's settings validated by its own model, and what differs between kinds in the common settings (where the
services listen, the gateway's ports and listen address, who can reach it). The defaults are those of a Kubernetes
cluster; a kind says where it differs, and nothing asks which kind it is (tests/deploy/test_target_seam.py)."""

from __future__ import annotations

import ipaddress
import re
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from deploy.model.errors import ConfigError
from deploy.model.suite import GATEWAY_PORT, PORT_SPAN


class Common(Protocol):
    """The common settings of an environment (deploy/model/environments.py) that the kinds' tables read."""

    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def service_type(self) -> str: ...
    @property
    def gateway_port(self) -> int: ...
    @property
    def tls_secret(self) -> str: ...
    @property
    def allow_plain_http(self) -> bool: ...


FIREWALL_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"  # Compute resource names (RFC 1035), 63 at most
# GKE's cluster names (https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.clusters
# `name`), project ids (https://cloud.google.com/resource-manager/docs/creating-managing-projects; a legacy
# domain-scoped id has a "domain:" in front) and service accounts' addresses
CLUSTER_NAME = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"
PROJECT_ID = r"^([a-z0-9][-a-z0-9.]*:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$"
SERVICE_ACCOUNT = r"^[a-z0-9][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.:]+\.gserviceaccount\.com$"
# what the nodes' account needs (https://cloud.google.com/kubernetes-engine/docs/how-to/hardening-your-cluster
# "Use least privilege IAM service accounts"; roles/artifactregistry.reader to pull the images)
NODE_ROLES = ("roles/artifactregistry.reader", "roles/logging.logWriter", "roles/monitoring.metricWriter")


def cidrs(ranges: tuple[str, ...]) -> tuple[str, ...]:
    for value in ranges:
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a CIDR range such as 203.0.113.0/24 ({exc})") from None
    return ranges


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# A workload identity provider's resource name (https://cloud.google.com/iam/docs/reference/rest/v1/
# projects.locations.workloadIdentityPools.providers): the project's number, not its id
PROVIDER = r"^projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}$"
REPOSITORY = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"


class CiIdentity(_Frozen):
    """One CI job's way into Google: the workload identity provider it exchanges its GitHub token at, and what of
    that token (https://docs.github.com/en/actions/reference/openid-connect-reference) the provider's attribute
    condition must admit: `doctor` checks that it admits this job and refuses the others."""

    provider: str = Field(pattern=PROVIDER)
    service_account: str = Field("", pattern=r"^([a-z0-9][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.:]+\.gserviceaccount\.com)?$")
    environment: str = Field(min_length=1)  # the job's GitHub environment (the token's `environment` claim)
    # the git refs it runs on; a trailing * is a prefix ("refs/tags/v*"); empty: any
    refs: tuple[str, ...] = ()
    events: tuple[str, ...] = ()  # the workflow events it runs for (push, pull_request, workflow_dispatch); empty: any


class Ci(_Frozen):
    """The CI jobs that deploy or preview this environment, one provider per trust boundary (docs/ci.md)."""

    repository: str = Field(pattern=REPOSITORY)  # OWNER/NAME on GitHub
    deploy: CiIdentity | None = None  # the job that runs `up` or `promote` here
    preview: CiIdentity | None = None  # the pull requests' read-only `diff`


class KindTable(_Frozen):
    """One kind's own table, and the facts of that kind the common settings and the renderer need; these defaults
    are a Kubernetes cluster's, where the gateway is reached through its Service."""

    KIND: ClassVar[str]  # its name, as `k8sdeploy` says it (`target` in the old form of the file)
    MODULE: ClassVar[str]  # the module holding the kind's KIND (deploy/targets/kit.py)
    # the old form's keys among the common ones that this table holds now (old name: name here), and why they
    # apply to this kind only
    OLD_KEYS: ClassVar[dict[str, str]] = {}
    MISPLACED: ClassVar[str] = ""
    # each part that keeps no data of its own (with database = "mysql": all but the server) runs this many
    # replicas unless `replicas` says otherwise: enough to roll, and to lose a node, without a gap
    STATELESS_REPLICAS: ClassVar[int] = 2
    # why every changed part of this kind is replaced in place, with a gap ("" where parts can roll)
    IN_PLACE: ClassVar[str] = ""

    @property
    def service_address(self) -> str:
        """Where the services listen: every address of their pod (probes come from the node)."""
        return "0.0.0.0"

    def port_base(self, gateway_port: int) -> int:
        """The gateway's port inside its pod, the services' following it (suite.suite_ports): a fixed 8080."""
        return GATEWAY_PORT

    def gateway_listen(self, port: int) -> str:
        """nginx's `listen` for the gateway: the port, on every address of the pod."""
        return str(port)

    def gateway_reach(self, environment: Common) -> str:
        """Where the gateway can be reached from, as a message says it."""
        return f"through its {environment.service_type} Service"

    def beyond_loopback(self, environment: Common) -> bool:
        """A Service reaches beyond loopback unless the environment says it is a test fixture on loopback
        (allow_plain_http, as `cluster` and the tests' fake clouds do)."""
        return not environment.allow_plain_http

    def plain_http_exposure(self, environment: Common) -> str:
        """Where the gateway would serve plain HTTP beyond this machine's loopback ('' where it would not)."""
        if environment.tls_secret:
            return ""
        return f"{self.gateway_reach(environment)} on port {environment.gateway_port}"

    def plain_http_fix(self, environment: Common) -> str:
        return (
            f'set tls_secret = "NAME" (a kubernetes.io/tls Secret in namespace {environment.namespace}) '
            f"in [environments.{environment.name}]"
        )

    def demo_users_by_default(self, environment: Common) -> bool:
        return False

    def check(self, environment: Common) -> None:
        """Raise a ValueError where the common settings do not fit this kind."""


class Local(KindTable):
    """[environments.NAME.local]: containers on this machine's Docker Engine, sharing the host's network."""

    KIND: ClassVar[str] = "local"
    MODULE: ClassVar[str] = "deploy.targets.local.kind"
    OLD_KEYS: ClassVar[dict[str, str]] = {"gateway_address": "gateway_address"}
    MISPLACED: ClassVar[str] = "in a cluster the gateway's Service decides who reaches it"
    STATELESS_REPLICAS: ClassVar[int] = 1
    IN_PLACE: ClassVar[str] = "the local target runs one container of each part on its own host port"

    # the address the gateway listens on (default 127.0.0.1; "0.0.0.0" opens it to the network)
    gateway_address: str = ""

    @field_validator("gateway_address")
    @classmethod
    def _gateway_address_is_an_ip(cls, address: str) -> str:
        if address:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address (e.g. 127.0.0.1, or 0.0.0.0 for all)") from None
        return address

    @property
    def address(self) -> str:
        return self.gateway_address or "127.0.0.1"

    @property
    def service_address(self) -> str:
        """Loopback: the host's network is shared with every container."""
        return "127.0.0.1"

    def port_base(self, gateway_port: int) -> int:
        """The environment's gateway_port: the containers share the host's network."""
        return gateway_port

    def gateway_listen(self, port: int) -> str:
        """Only the gateway's address (loopback by default)."""
        return f"[{self.address}]:{port}" if ":" in self.address else f"{self.address}:{port}"

    def gateway_reach(self, environment: Common) -> str:
        return f"on {self.address}"

    def beyond_loopback(self, environment: Common) -> bool:
        return not ipaddress.ip_address(self.address).is_loopback

    def plain_http_exposure(self, environment: Common) -> str:
        return f"on {self.address}:{environment.gateway_port}" if self.beyond_loopback(environment) else ""

    def plain_http_fix(self, environment: Common) -> str:
        return f"set gateway_address back to 127.0.0.1 in [environments.{environment.name}.local]"

    def demo_users_by_default(self, environment: Common) -> bool:
        """The demo users where no one else can reach the gateway: on loopback."""
        return not self.beyond_loopback(environment)

    def check(self, environment: Common) -> None:
        if environment.tls_secret:
            raise ValueError("tls_secret applies to Kubernetes targets; the local gateway serves on loopback")
        if environment.gateway_port + PORT_SPAN - 1 > 65535:
            raise ValueError(
                f"gateway_port {environment.gateway_port}: on the local target the five services listen on the "
                f"five ports after it; choose one at most {65535 - PORT_SPAN + 1}"
            )


class Kubeconfig(KindTable):
    """[environments.NAME.kubeconfig]: any cluster a kubeconfig context reaches."""

    KIND: ClassVar[str] = "kubeconfig"
    MODULE: ClassVar[str] = "deploy.targets.kube.kind"
    OLD_KEYS: ClassVar[dict[str, str]] = {"kube_context": "context", "kubeconfig": "file"}
    MISPLACED: ClassVar[str] = "the other kinds find their cluster themselves"

    context: str = ""  # a context of the file; "" is its current context
    file: str = ""  # the kubeconfig ("~" expands); "" means $KUBECONFIG or ~/.kube/config


class Gke(KindTable):
    """[environments.NAME.gke]: a GKE cluster that k8sdeploy creates or finds, and the firewall rule it opens. The
    names are checked here as GKE and Compute check them at create (a 400 there, after the images are pushed,
    otherwise)."""

    KIND: ClassVar[str] = "gke"
    MODULE: ClassVar[str] = "deploy.targets.gke.kind"

    project: str
    location: str  # a zone (europe-west1-b) or a region (europe-west1)
    cluster: str
    machine_type: str = "e2-small"
    node_count: int = Field(1, ge=1)  # per zone: a regional location has its nodes in 3 zones, 3 x this in all
    # seconds any one wait on a Google operation may last (a cluster's create, delete, or another's upgrade of it)
    operation_timeout: float = Field(3600, gt=0)
    network_tag: str = ""  # defaults to k8sdeploy-<cluster>
    network: str = "default"  # the VPC network of the cluster and the firewall rule; checked to exist at `up`
    source_ranges: tuple[str, ...] = ("0.0.0.0/0",)
    # the nodes' Google service account: they pull the images as it (give it roles/artifactregistry.reader,
    # roles/logging.logWriter and roles/monitoring.metricWriter only); `up` refuses without one unless
    # default_node_account = true (the project's Compute Engine default account, whose roles you checked)
    node_service_account: str = ""
    default_node_account: bool = False
    ci: Ci | None = None  # the CI jobs' workload identity providers, checked by `doctor`

    @field_validator("project")
    @classmethod
    def _project_id(cls, project: str) -> str:
        if not re.match(PROJECT_ID, project):
            raise ValueError(
                f"{project!r} is not a project id (6 to 30 lower-case letters, digits and dashes, starting with a "
                "letter; the id, not the project's display name or number)"
            )
        return project

    @field_validator("cluster")
    @classmethod
    def _cluster_name(cls, cluster: str) -> str:
        if not re.match(CLUSTER_NAME, cluster):
            raise ValueError(
                f"{cluster!r} is not a GKE cluster name (at most 40 lower-case letters, digits and dashes, "
                "starting with a letter and ending with a letter or digit)"
            )
        return cluster

    @field_validator("network", "network_tag")
    @classmethod
    def _compute_name(cls, name: str, info: ValidationInfo) -> str:
        if name and not re.match(FIREWALL_NAME, name):
            what = (info.field_name or "name").replace("_", " ")
            raise ValueError(
                f"{name!r} is not a Compute {what} (at most 63 lower-case letters, digits and dashes, starting "
                "with a letter and ending with a letter or digit)"
            )
        return name

    @field_validator("node_service_account")
    @classmethod
    def _service_account(cls, account: str) -> str:
        if account and not re.match(SERVICE_ACCOUNT, account):
            raise ValueError(
                f"{account!r} is not a service account's e-mail address (NAME@PROJECT.iam.gserviceaccount.com)"
            )
        return account

    @field_validator("source_ranges")
    @classmethod
    def _ranges_are_cidrs(cls, ranges: tuple[str, ...]) -> tuple[str, ...]:
        return cidrs(ranges)

    def node_account_problem(self, table: str) -> ConfigError | None:
        """Why nodes of a cluster made with these settings might not pull the images, or None. The API gives a
        node no scope and the default account no role unless asked (gcloud adds defaults; the API does not; in
        organisations made since May 2024 the Compute default account has no roles)."""
        if self.node_service_account or self.default_node_account:
            return None
        account = f"k8sdeploy-nodes@{self.project.rpartition(':')[2]}.iam.gserviceaccount.com"
        return ConfigError(
            f"{table} sets no node_service_account: the cluster's nodes would pull the images as the Compute "
            "Engine default account, which may have no roles",
            f"create {account}, grant it {', '.join(NODE_ROLES)} on project {self.project}, and set "
            f'node_service_account = "{account}" in {table} (or default_node_account = true if the default '
            "account has those roles)",
        )

    def check(self, environment: Common) -> None:
        rule = f"k8sdeploy-{self.cluster}-{environment.name}-gateway"  # deploy/targets/gke/firewall.py
        if not re.match(FIREWALL_NAME, rule):
            raise ValueError(
                f"the firewall rule name {rule!r} ({len(rule)} characters) is not a valid Compute name: shorten the "
                "environment or cluster name (63 characters in all, lower-case letters, digits and dashes)"
            )


# Each kind's table, its name and the module of its KIND: a new kind is one model here and its package.
KIND_TABLES: tuple[type[KindTable], ...] = (Local, Gke, Kubeconfig)
