"""Environments from k8sdeploy.toml: where a deployment goes and with which settings, validated."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from deploy.model.errors import ConfigError
from deploy.model.images import pinning_problem
from deploy.model.progress import Say
from deploy.model.suite import GATEWAY, GATEWAY_PORT, PORT_SPAN, SERVICES

LAYOUTS = ("single-pod", "split-pods")
DEFAULT_CONFIG = Path("k8sdeploy.toml")  # of the working directory
# The environment's name is the app.kubernetes.io/instance label, a GCP label value (the cluster's
# k8sdeploy-environment) and part of a Compute firewall rule's name: lower-case letters, digits and dashes,
# starting with a letter, as all three allow. The namespace is a DNS label.
ENVIRONMENT_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
LABEL_VALUE = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"  # any Kubernetes label value (a version)
FIREWALL_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"  # Compute resource names (RFC 1035), 63 at most
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# GKE's cluster names (https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.clusters
# `name`), project ids (https://cloud.google.com/resource-manager/docs/creating-managing-projects; a legacy
# domain-scoped id has a "domain:" in front) and service accounts' addresses
CLUSTER_NAME = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"
PROJECT_ID = r"^([a-z0-9][-a-z0-9.]*:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$"
SERVICE_ACCOUNT = r"^[a-z0-9][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.:]+\.gserviceaccount\.com$"
# what the nodes' account needs (https://cloud.google.com/kubernetes-engine/docs/how-to/hardening-your-cluster
# "Use least privilege IAM service accounts"; roles/artifactregistry.reader to pull the images)
NODE_ROLES = ("roles/artifactregistry.reader", "roles/logging.logWriter", "roles/monitoring.metricWriter")
SCALABLE = (GATEWAY, *(service.name for service in SERVICES))
DURATION = r"^[1-9][0-9]{0,5}[smhd]$"


# a DNS name or an IP address literal ([v6] in brackets), as it stands in a Host header without the port
HOST_NAME = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])$"


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


class Gke(_Frozen):
    """A GKE cluster that k8sdeploy creates or finds, and the firewall rule it opens. The names are checked here as
    GKE and Compute check them at create (a 400 there, after the images are pushed, otherwise)."""

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


class Verify(_Frozen):
    """What `up`, `rollback` and `verify` require of every image: a signature by this public key (PEM; a path
    relative to the configuration file) and, unless `attestations = false`, its SBOM and provenance signed by it."""

    key: str = Field(min_length=1)
    attestations: bool = True


# Each target kind and the module holding its `KIND` (deploy/targets/kit.py): a new kind is one line here.
TARGET_KINDS = {
    "local": "deploy.targets.local.kind",
    "gke": "deploy.targets.gke.kind",
    "kubeconfig": "deploy.targets.kube.kind",
}


class Environment(_Frozen):
    name: str
    target: str  # one of TARGET_KINDS
    layout: Literal["single-pod", "split-pods"] = "single-pod"
    registry: str = ""  # where images are pushed; "" keeps them in the local engine
    namespace: str = Field("auth-suite", pattern=DNS_LABEL)
    service_type: Literal["NodePort", "LoadBalancer"] = "NodePort"
    # the gateway Service's port; on the local target the host port the gateway listens on, the services on the
    # five after it (see port_base): two local environments side by side need blocks that do not overlap
    gateway_port: int = Field(8080, ge=1, le=65535)
    database: Literal["sqlite", "mysql"] = "sqlite"
    mysql_image: str = ""  # database = "mysql": the server's image, pinned by digest
    replicas: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)  # split-pods only
    # the services' SQLite files on emptyDir volumes, gone with their pod at every up (a demo); default: on claims
    ephemeral_data: bool = False
    # Base image per image name (person) or base name (python, nginx): HOST/REPO@sha256:... or
    # debootstrap:NAME[@sha256:...]; see deploy/builders/bases.py. Default: debootstrap:<base name>.
    bases: dict[str, str] = Field(default_factory=dict)
    secure_cookies: bool = False
    # local target: the address the gateway listens on (default 127.0.0.1; "0.0.0.0" opens it to the network)
    gateway_address: str = ""
    # Kubernetes targets: a kubernetes.io/tls Secret in the namespace (tls.crt, tls.key) the gateway serves
    # HTTPS with on https_port; plain HTTP then only redirects to it
    tls_secret: str = Field("", pattern=r"^([a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?)?$")
    https_port: int = Field(443, ge=1, le=65535)
    # the Host names the gateway serves (a request for any other is closed unanswered); default: any IP address
    # literal and localhost, never a DNS name (which a DNS-rebinding page could point at the gateway)
    hosts: tuple[str, ...] = ()
    # the load balancers in front of the gateway (CIDRs) whose X-Forwarded-For names the client
    trusted_proxies: tuple[str, ...] = ()
    # serve the gateway over plain HTTP beyond loopback anyway (passwords and cookies in clear): said on every up
    allow_plain_http: bool = False
    # the demo users with known passwords (admin@test.com / admin, user@test.com / user); default: on the
    # local target only
    demo_users: bool | None = None
    kube_context: str = ""  # kubeconfig target
    kubeconfig: str = ""  # kubeconfig target: the file ("~" expands); "" means $KUBECONFIG or ~/.kube/config
    # false where no login can pass through the gateway (a control plane whose kubelets are simulated)
    smoke: bool = True
    # `build` and `up` sign what they publish with this private key (PEM; a path relative to the configuration
    # file); `--key` and $K8SDEPLOY_SIGNING_KEY come first
    signing_key: str = ""
    verify: Verify | None = None
    # with verify: `k8sdeploy dev` may deploy uncommitted work here, its images signed with signing_key
    dev: bool = False
    # `k8sdeploy promote --to` this environment takes releases recorded in this one, by digest; `up` and `dev`
    # are refused here unless `--build-in-place`
    promote_from: str = ""
    # a release is promoted only once it has served this long in promote_from (e.g. "30m", "1h", "2d")
    promote_after: str = ""
    # who may approve a promotion here: `promote --approved-by NAME` must name one of them
    approvers: tuple[str, ...] = ()
    gke: Gke | None = None

    @field_validator("name")
    @classmethod
    def _name_fits_labels_and_firewall_names(cls, name: str) -> str:
        if not re.match(ENVIRONMENT_NAME, name):
            raise ValueError(
                "an environment name is lower-case letters, digits and dashes, starting with a letter "
                "and at most 63 characters (it becomes a Kubernetes label, a GCP label value and part "
                "of a firewall rule's name)"
            )
        return name

    @field_validator("hosts")
    @classmethod
    def _hosts_are_names(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        for host in hosts:
            if not re.match(HOST_NAME, host):
                raise ValueError(f"{host!r} is not a host name such as auth.example.com (no scheme, no port)")
        return hosts

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_cidrs(cls, ranges: tuple[str, ...]) -> tuple[str, ...]:
        return cidrs(ranges)

    @field_validator("replicas")
    @classmethod
    def _replicas_of_known_parts(cls, replicas: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(replicas) - set(SCALABLE))
        if unknown:
            raise ValueError(f"no part named {unknown[0]!r}; replicas are set for {', '.join(SCALABLE)}")
        return replicas

    @field_validator("target")
    @classmethod
    def _target_is_a_kind(cls, target: str) -> str:
        if target not in TARGET_KINDS:
            *first, last = (repr(kind) for kind in TARGET_KINDS)
            raise ValueError(f"Input should be {', '.join(first)} or {last}")
        return target

    @field_validator("mysql_image")
    @classmethod
    def _mysql_image_is_pinned(cls, reference: str) -> str:
        problem = pinning_problem(reference) if reference else ""
        if problem:
            raise ValueError(f"{reference!r}: {problem}")
        return reference

    @field_validator("promote_from")
    @classmethod
    def _promote_from_is_a_name(cls, source: str) -> str:
        if source and not re.match(ENVIRONMENT_NAME, source):
            raise ValueError(f"{source!r} is not an environment name")
        return source

    @field_validator("promote_after")
    @classmethod
    def _promote_after_is_a_duration(cls, after: str) -> str:
        if after and not re.match(DURATION, after):
            raise ValueError(f"{after!r} is not a duration such as 30m, 1h or 2d")
        return after

    @property
    def promote_after_seconds(self) -> int:
        if not self.promote_after:
            return 0
        return int(self.promote_after[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[self.promote_after[-1]]

    @model_validator(mode="after")
    def _gke_needs_its_table(self) -> Environment:
        if self.promote_from == self.name:
            raise ValueError(f"environment {self.name} cannot promote from itself")
        if self.target == "gke" and self.gke is None:
            raise ValueError(f"a gke environment needs an [environments.{self.name}.gke] table")
        if self.gke is not None:
            rule = f"k8sdeploy-{self.gke.cluster}-{self.name}-gateway"  # deploy/targets/gke/firewall.py
            if not re.match(FIREWALL_NAME, rule):
                raise ValueError(
                    f"the firewall rule name {rule!r} ({len(rule)} characters) is not a valid "
                    "Compute name: shorten the environment or cluster name (63 characters in all, "
                    "lower-case letters, digits and dashes)"
                )
        return self

    @field_validator("gateway_address")
    @classmethod
    def _gateway_address_is_an_ip(cls, address: str) -> str:
        if address:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address (e.g. 127.0.0.1, or 0.0.0.0 for all)") from None
        return address

    @model_validator(mode="after")
    def _gateway_address_is_local(self) -> Environment:
        if self.gateway_address and self.target != "local":
            raise ValueError(
                "gateway_address applies to the local target; in a cluster the gateway's Service decides who reaches it"
            )
        if self.tls_secret and self.target == "local":
            raise ValueError("tls_secret applies to Kubernetes targets; the local gateway serves on loopback")
        return self

    @model_validator(mode="after")
    def _demo_users_on_loopback_only(self) -> Environment:
        """Known passwords (admin / admin) only where the gateway cannot be reached from elsewhere: the local target
        on loopback. A Kubernetes target's Service reaches beyond loopback unless the environment says it is a
        test fixture on loopback (allow_plain_http, as `cluster` and the tests' fake clouds do)."""
        if self.demo_users and self.gateway_beyond_loopback:
            address = self.gateway_address or "127.0.0.1"
            where = f"on {address}" if self.target == "local" else f"through its {self.service_type} Service"
            raise ValueError(
                f"demo_users = true gives admin@test.com the password admin, but the gateway listens {where}; "
                "set demo_users = false and add users with `k8sdeploy user add`"
            )
        return self

    def plain_http_exposure(self) -> str:
        """Where the gateway would serve plain HTTP beyond this machine's loopback ('' where it would not)."""
        if self.tls_secret:
            return ""
        if self.target == "local":
            address = self.gateway_address or "127.0.0.1"
            return "" if ipaddress.ip_address(address).is_loopback else f"on {address}:{self.gateway_port}"
        return f"through its {self.service_type} Service on port {self.gateway_port}"

    @property
    def gateway_beyond_loopback(self) -> bool:
        if self.target == "local":
            return not ipaddress.ip_address(self.gateway_address or "127.0.0.1").is_loopback
        return not self.allow_plain_http

    @property
    def with_demo_users(self) -> bool:
        """demo_users, by default on the local target with its gateway on loopback."""
        if self.demo_users is not None:
            return self.demo_users
        return self.target == "local" and not self.gateway_beyond_loopback

    @property
    def service_address(self) -> str:
        """Where the services listen: loopback on the local target (the host's network is shared with every
        container there), every address of their pod elsewhere (probes come from the node)."""
        return "127.0.0.1" if self.target == "local" else "0.0.0.0"

    @property
    def port_base(self) -> int:
        """The gateway's port inside its pod, the services' following it (suite.suite_ports): on the local target,
        whose containers share the host's network, the environment's gateway_port; in a pod the fixed 8080."""
        return self.gateway_port if self.target == "local" else GATEWAY_PORT

    @model_validator(mode="after")
    def _local_ports_fit(self) -> Environment:
        if self.target == "local" and self.gateway_port + PORT_SPAN - 1 > 65535:
            raise ValueError(
                f"gateway_port {self.gateway_port}: on the local target the five services listen on the five "
                f"ports after it; choose one at most {65535 - PORT_SPAN + 1}"
            )
        return self

    def gateway_listen(self, port: int) -> str:
        """nginx's `listen` for the gateway: on the local target only its address (loopback by default)."""
        if self.target != "local":
            return str(port)
        address = self.gateway_address or "127.0.0.1"
        return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"

    @model_validator(mode="after")
    def _verify_needs_a_registry(self) -> Environment:
        if self.verify is not None and not self.registry:
            raise ValueError("verify needs a registry: signatures are kept beside the images in it")
        return self

    def relative_to(self, directory: Path) -> Environment:
        """The key files named relative to the configuration file's directory, made absolute."""

        def resolved(path: str) -> str:
            return str(directory / Path(path).expanduser()) if path else path

        update: dict = {"signing_key": resolved(self.signing_key)}
        if self.verify is not None:
            update["verify"] = self.verify.model_copy(update={"key": resolved(self.verify.key)})
        return self.model_copy(update=update)

    @model_validator(mode="after")
    def _ephemeral_data_is_sqlite(self) -> Environment:
        if self.ephemeral_data and self.database == "mysql":
            raise ValueError("ephemeral_data applies to SQLite files; the MySQL server keeps its data on a claim")
        return self

    @model_validator(mode="after")
    def _mysql_needs_an_image(self) -> Environment:
        if self.database == "mysql" and not self.mysql_image:
            raise ValueError(
                'database = "mysql" needs mysql_image, a reference pinned by digest such as mysql:8.4@sha256:<digest>'
            )
        return self


def refuse_plain_http(environment: Environment, say: Say) -> None:
    """Before anything is built: a gateway beyond loopback serves HTTPS, or the environment accepts plain HTTP
    (and hears about it on every deploy)."""
    exposure = environment.plain_http_exposure()
    if not exposure:
        return
    table = f"[environments.{environment.name}]"
    if not environment.allow_plain_http:
        fix = (
            "set gateway_address back to 127.0.0.1"
            if environment.target == "local"
            else f'set tls_secret = "NAME" (a kubernetes.io/tls Secret in namespace {environment.namespace})'
        )
        raise ConfigError(
            f"environment {environment.name} would serve its gateway over plain HTTP {exposure}, "
            "so passwords and session cookies would cross the network in clear",
            f"{fix} in {table}, or allow_plain_http = true to accept that",
        )
    say(
        f"warning: environment {environment.name} serves its gateway over plain HTTP {exposure} "
        "(allow_plain_http = true): passwords and session cookies cross the network in clear"
    )


def _describe(error: ValidationError, name: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"environment {name!r}: {where + ': ' if where else ''}{message}"


def load_environment(name: str, path: Path = DEFAULT_CONFIG) -> Environment:
    """The environment `name` from `path`, validated; a ConfigError names what is wrong."""
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no configuration file at {path}", "pass --config or create k8sdeploy.toml") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", "pass --config with a readable file") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} is not UTF-8 text (line {line}: byte {exc.object[exc.start]:#04x})", "save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", "fix the file") from None
    unknown = sorted(set(data) - {"environments"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} at the top level", "the file holds only [environments.NAME] tables"
        )
    environments = data.get("environments", {})
    if not isinstance(environments, dict):
        raise ConfigError(
            f"{path}: environments must be a table of [environments.NAME] tables",
            f"write [environments.{name}] with its keys",
        )
    if name not in environments:
        known = ", ".join(sorted(environments)) or "none"
        raise ConfigError(f"no environment {name!r} in {path}", f"choose one of: {known}")
    if not isinstance(environments[name], dict):
        raise ConfigError(
            f"{path}: environments.{name} must be a table, not a {type(environments[name]).__name__}",
            f"write [environments.{name}] with its keys on the lines below",
        )
    try:
        return Environment(name=name, **environments[name]).relative_to(path.parent)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, name), f"fix [environments.{name}] in {path}") from None
