"""Environments from k8sdeploy.toml: where a deployment goes and with which settings, validated."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deploy.model.errors import ConfigError
from deploy.model.images import pinning_problem
from deploy.model.kinds import KIND_TABLES, Ci, CiIdentity, Gke, KindTable, Kubeconfig, Local, cidrs
from deploy.model.progress import Say
from deploy.model.suite import GATEWAY, SERVICES

__all__ = ["Ci", "CiIdentity", "Environment", "Gke", "Kubeconfig", "Local", "load_environment"]

LAYOUTS = ("single-pod", "split-pods")
DEFAULT_CONFIG = Path("k8sdeploy.toml")  # of the working directory
# The environment's name is the app.kubernetes.io/instance label, a GCP label value (the cluster's
# k8sdeploy-environment) and part of a Compute firewall rule's name: lower-case letters, digits and dashes,
# starting with a letter, as all three allow. The namespace is a DNS label.
ENVIRONMENT_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
LABEL_VALUE = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"  # any Kubernetes label value (a version)
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
SCALABLE = (GATEWAY, *(service.name for service in SERVICES))
DURATION = r"^[1-9][0-9]{0,5}[smhd]$"


# a DNS name or an IP address literal ([v6] in brackets), as it stands in a Host header without the port
HOST_NAME = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Verify(_Frozen):
    """What `up`, `rollback` and `verify` require of every image: a signature by this public key (PEM; a path
    relative to the configuration file) and, unless `attestations = false`, its SBOM and provenance signed by it."""

    key: str = Field(min_length=1)
    attestations: bool = True


class MysqlServer(_Frozen):
    """A MySQL server k8sdeploy does not run (Cloud SQL through its private address, say): where it is, and the
    Secret of the namespace (made by you) whose key SERVICE-database-url is each service's DATABASE_URL."""

    address: str  # IP:PORT ([IPv6]:PORT); the pods' NetworkPolicy admits that address and port only
    secret: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

    @field_validator("address")
    @classmethod
    def _an_ip_and_a_port(cls, address: str) -> str:
        import ipaddress

        host, _, port = address.rpartition(":")
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise ValueError(f"{address!r} is not IP:PORT (a NetworkPolicy admits an address, not a name)") from None
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{address!r} has no port (IP:PORT, e.g. 10.20.0.5:3306)")
        return address

    @property
    def cidr(self) -> str:
        host = self.address.rpartition(":")[0].strip("[]")
        return f"{host}/{128 if ':' in host else 32}"

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])


# Each target kind and the module holding its `KIND` (deploy/targets/kit.py), from its table's model.
TARGET_KINDS = {table.KIND: table.MODULE for table in KIND_TABLES}


class Environment(_Frozen):
    name: str
    layout: Literal["single-pod", "split-pods"] = "single-pod"
    registry: str = ""  # where images are pushed; "" keeps them in the local engine
    namespace: str = Field("auth-suite", pattern=DNS_LABEL)
    service_type: Literal["NodePort", "LoadBalancer"] = "NodePort"
    # the gateway Service's port; on the local target the host port the gateway listens on, the services on the
    # five after it (kinds.py Local.port_base): two local environments side by side need blocks that do not overlap
    gateway_port: int = Field(8080, ge=1, le=65535)
    database: Literal["sqlite", "mysql"] = "sqlite"
    # database = "mysql": the server's image, pinned by digest; "" (the default) is k8sdeploy's own MariaDB image,
    # built from Debian's packages and published beside the suite's images (deploy/builders/mariadb.py)
    mysql_image: str = ""
    # database = "mysql" on a server of your own instead ({ address = "IP:PORT", secret = "NAME" }): none is run
    mysql_server: MysqlServer | None = None
    replicas: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)  # split-pods only
    # the services' SQLite files on emptyDir volumes, gone with their pod at every up (a demo); default: on claims
    ephemeral_data: bool = False
    # Base image per image name (person) or base name (python, nginx): HOST/REPO@sha256:... or
    # debootstrap:NAME[@sha256:...]; see deploy/builders/bases.py. Default: debootstrap:<base name>.
    bases: dict[str, str] = Field(default_factory=dict)
    secure_cookies: bool = False
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
    # the kind of target, named by its own table: exactly one of these (deploy/model/kinds.py)
    local: Local | None = None
    kubeconfig: Kubeconfig | None = None
    gke: Gke | None = None

    @model_validator(mode="before")
    @classmethod
    def _old_form(cls, data: object) -> object:
        return upgraded(data) if isinstance(data, dict) else data

    def _tables(self) -> list[KindTable]:
        return [table for table in (self.local, self.kubeconfig, self.gke) if table is not None]

    @property
    def kind_table(self) -> KindTable:
        """The table of the environment's kind, which knows what differs between kinds."""
        tables = self._tables()
        if len(tables) != 1:  # refused at validation (_one_kind)
            raise AttributeError(f"environment {self.name} has {len(tables)} kind tables")
        return tables[0]

    @property
    def target(self) -> str:
        """The kind's name (local, kubeconfig, gke): what messages and `status` call it."""
        return self.kind_table.KIND

    @model_validator(mode="after")
    def _one_kind(self) -> Environment:
        tables = [table.KIND for table in self._tables()]
        if len(tables) != 1:
            named = " and ".join(f"[environments.{self.name}.{kind}]" for kind in tables)
            *first, last = (f"[environments.{self.name}.{kind}]" for kind in TARGET_KINDS)
            raise ValueError(
                f"{named} name two kinds of target; keep one"
                if tables
                else f"name the kind of target with its table: {', '.join(first)} or {last}"
            )
        self.kind_table.check(self)
        return self

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
    def _not_from_itself(self) -> Environment:
        if self.promote_from == self.name:
            raise ValueError(f"environment {self.name} cannot promote from itself")
        return self

    @model_validator(mode="after")
    def _demo_users_on_loopback_only(self) -> Environment:
        """Known passwords (admin / admin) only where the gateway cannot be reached from elsewhere (the kind says
        where that is: the local target on loopback)."""
        if self.demo_users and self.kind_table.beyond_loopback(self):
            raise ValueError(
                "demo_users = true gives admin@test.com the password admin, but the gateway listens "
                f"{self.kind_table.gateway_reach(self)}; set demo_users = false and add users with `k8sdeploy user add`"
            )
        return self

    @property
    def with_demo_users(self) -> bool:
        """demo_users, by default where the kind keeps the gateway on loopback (the local target)."""
        if self.demo_users is not None:
            return self.demo_users
        return self.kind_table.demo_users_by_default(self)

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
    def _one_mysql_server(self) -> Environment:
        if self.mysql_server is not None and self.database != "mysql":
            raise ValueError('mysql_server applies to database = "mysql"')
        if self.mysql_server is not None and self.mysql_image:
            raise ValueError("mysql_server is a server k8sdeploy does not run; mysql_image names one it runs: give one")
        return self

    @model_validator(mode="after")
    def _ephemeral_data_is_sqlite(self) -> Environment:
        if self.ephemeral_data and self.database == "mysql":
            raise ValueError("ephemeral_data applies to SQLite files; the MySQL server keeps its data on a claim")
        return self


def refuse_plain_http(environment: Environment, say: Say) -> None:
    """Before anything is built: a gateway beyond loopback serves HTTPS, or the environment accepts plain HTTP
    (and hears about it on every deploy)."""
    exposure = environment.kind_table.plain_http_exposure(environment)
    if not exposure:
        return
    if not environment.allow_plain_http:
        raise ConfigError(
            f"environment {environment.name} would serve its gateway over plain HTTP {exposure}, "
            "so passwords and session cookies would cross the network in clear",
            f"{environment.kind_table.plain_http_fix(environment)}, or allow_plain_http = true in "
            f"[environments.{environment.name}] to accept that",
        )
    say(
        f"warning: environment {environment.name} serves its gateway over plain HTTP {exposure} "
        "(allow_plain_http = true): passwords and session cookies cross the network in clear"
    )


def upgraded(data: dict) -> dict:
    """An environment's table in the form before kinds had tables of their own (`target = KIND`, the kind's keys
    among the common ones: gateway_address, kube_context, kubeconfig) as the kind's table holds them now."""
    if "target" not in data:
        return data
    data = dict(data)
    target, name = data.pop("target"), data.get("name", "NAME")
    kinds = {table.KIND: table for table in KIND_TABLES}
    if target not in kinds:
        *first, last = (repr(kind) for kind in kinds)
        raise ValueError(f"target: Input should be {', '.join(first)} or {last}")
    table = kinds[target]
    moved = {new: data.pop(old) for old, new in table.OLD_KEYS.items() if old in data}
    for other in KIND_TABLES:
        for old in set(other.OLD_KEYS) & set(data):
            if data.pop(old):  # the old form ignored another kind's key left empty, as this does
                raise ValueError(f"{old} applies to the {other.KIND} target; {other.MISPLACED}")
    if target not in data:
        if any(field.is_required() for field in table.model_fields.values()):
            raise ValueError(f"a {target} environment needs an [environments.{name}.{target}] table")
        data[target] = moved
    return data


def old_form_notice(name: str, table: dict, path: Path) -> str:
    """The one line that says an environment is written in the old form, and what the new one is."""
    target = table["target"]
    return (
        f"deprecated: [environments.{name}] in {path} names its kind with target = {target!r}; write "
        f"[environments.{name}.{target}] with that kind's keys instead (docs/configuration.md)"
    )


def say_on_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _describe(error: ValidationError, name: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"environment {name!r}: {where + ': ' if where else ''}{message}"


def load_environment(name: str, path: Path = DEFAULT_CONFIG, warn: Say = say_on_stderr) -> Environment:
    """The environment `name` from `path`, validated; a ConfigError names what is wrong, `warn` an old form."""
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
        environment = Environment(name=name, **environments[name]).relative_to(path.parent)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, name), f"fix [environments.{name}] in {path}") from None
    if "target" in environments[name]:
        warn(old_form_notice(name, environments[name], path))
    return environment
