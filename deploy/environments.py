"""Environments from k8sdeploy.toml: where a deployment goes and with which settings, validated."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError

LAYOUTS = ("single-pod", "split-pods")
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "k8sdeploy.toml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Gke(_Frozen):
    """A GKE cluster that k8sdeploy creates or finds, and the firewall rule it opens."""

    project: str
    location: str  # a zone (europe-west1-b) or a region (europe-west1)
    cluster: str
    machine_type: str = "e2-small"
    node_count: int = Field(1, ge=1)
    network_tag: str = ""  # defaults to k8sdeploy-<cluster>
    source_ranges: tuple[str, ...] = ("0.0.0.0/0",)


class Environment(_Frozen):
    name: str
    target: Literal["local", "gke", "kubeconfig"]
    layout: Literal["single-pod", "split-pods"] = "single-pod"
    registry: str = ""  # where images are pushed; "" keeps them in the local engine
    namespace: str = "auth-suite"
    service_type: Literal["NodePort", "LoadBalancer"] = "NodePort"
    gateway_port: int = Field(8080, ge=1, le=65535)
    database: Literal["sqlite", "mysql"] = "sqlite"
    replicas: dict[str, int] = Field(default_factory=dict)
    # Base image per image name (person) or base name (python, nginx): HOST/REPO@sha256:... or
    # debootstrap:NAME[@sha256:...]; see deploy/build/bases.py. Default: debootstrap:<base name>.
    bases: dict[str, str] = Field(default_factory=dict)
    secure_cookies: bool = False
    kube_context: str = ""  # kubeconfig target
    gke: Gke | None = None

    @model_validator(mode="after")
    def _gke_needs_its_table(self) -> "Environment":
        if self.target == "gke" and self.gke is None:
            raise ValueError(f"a gke environment needs an [environments.{self.name}.gke] table")
        return self


def _describe(error: ValidationError, name: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"environment {name!r}: {where + ': ' if where else ''}{first['msg']}"


def load_environment(name: str, path: Path = DEFAULT_CONFIG) -> Environment:
    """The environment `name` from `path`, validated; a ConfigError names what is wrong."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no configuration file at {path}", "pass --config or create k8sdeploy.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", "fix the file") from None
    environments = data.get("environments", {})
    if name not in environments:
        known = ", ".join(sorted(environments)) or "none"
        raise ConfigError(f"no environment {name!r} in {path}", f"choose one of: {known}")
    try:
        return Environment(name=name, **environments[name])
    except ValidationError as exc:
        raise ConfigError(_describe(exc, name), f"fix [environments.{name}] in {path}") from None
