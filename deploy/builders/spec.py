"""What each of the six images holds, as data: base, layers, command, user, ports, environment, labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.builders.bases import base_reference
from deploy.builders.layers import FileEntry, LayerSpec, tree_entries
from deploy.model.suite import (
    APP_USER_ID,
    DATA_DIR,
    GATEWAY,
    GATEWAY_COMMAND,
    GATEWAY_CONF,
    GATEWAY_LUA_DIR,
    GATEWAY_PORT,
    GATEWAY_RUNTIME_DIR,
    SCRATCH_DIR,
    SERVICES,
    Service,
)
from deploy.model.version import Version, last_change
from deploy.render.gateway import GatewayConfig, render_nginx_conf

APP_DIR = "/opt/k8sdeploy/app"  # services/ (the service and services/common)
DEPS_DIR = "/opt/k8sdeploy/deps"  # the locked dependencies, the same layer in all five services
LOCK = "requirements/app.lock"
PYTHON_BASE, GATEWAY_BASE = "python", "nginx"
USER = f"{APP_USER_ID}:{APP_USER_ID}"


@dataclass(frozen=True)
class ImageSpec:
    """One image: a base reference plus layers and the runtime configuration, all plain data."""

    name: str
    base: str
    layers: tuple[LayerSpec, ...]
    cmd: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    ports: tuple[int, ...]
    labels: tuple[tuple[str, str], ...]
    user: str = USER
    workdir: str = "/"


def _labels(name: str, version: Version) -> tuple[tuple[str, str], ...]:
    prefix = "org.opencontainers.image"
    return (
        (f"{prefix}.title", name),
        (f"{prefix}.version", version.version),
        (f"{prefix}.revision", version.commit),
        (f"{prefix}.source", version.source),
        (f"{prefix}.created", version.created),
    )


def _writable(path: str) -> FileEntry:
    return FileEntry(path, kind="dir", mode=0o755, uid=APP_USER_ID, gid=APP_USER_ID)


def dependencies_layer(root: Path, site_packages: Path) -> LayerSpec:
    entries = tree_entries(site_packages, DEPS_DIR, bytecode=True)  # deps.compile_bytecode made it reproducibly
    return LayerSpec("dependencies", tuple(entries), last_change(root, (LOCK,)))


def service_spec(service: Service, root: Path, version: Version, deps: LayerSpec, base: str) -> ImageSpec:
    sources = ("services/__init__.py", "services/common", f"services/{service.name}")
    entries = [FileEntry(f"{APP_DIR}/services/__init__.py", source=root / sources[0])]
    entries += tree_entries(root / sources[1], f"{APP_DIR}/services/common")
    entries += tree_entries(root / sources[2], f"{APP_DIR}/services/{service.name}")
    env = [
        ("PYTHONPATH", f"{APP_DIR}:{DEPS_DIR}"),
        ("PYTHONDONTWRITEBYTECODE", "1"),
        ("PYTHONUNBUFFERED", "1"),
        ("HOST", "0.0.0.0"),
        ("PORT", str(service.port)),
    ]
    if service.database:
        entries.append(_writable(DATA_DIR))
        env.append(("DATABASE_PATH", f"{DATA_DIR}/{service.name}.db"))
    app = LayerSpec("application", tuple(entries), last_change(root, sources))
    return ImageSpec(
        service.name,
        base,
        (deps, app),
        service.command,
        tuple(env),
        (service.port,),
        _labels(service.name, version),
        workdir=APP_DIR,
    )


def baked_gateway_config() -> GatewayConfig:
    """The gateway's configuration for one pod: every service on localhost at its own port."""
    upstreams = {service.name: f"127.0.0.1:{service.port}" for service in SERVICES}
    return GatewayConfig(
        upstreams=upstreams, listen=str(GATEWAY_PORT), runtime_dir=GATEWAY_RUNTIME_DIR, lua_dir=GATEWAY_LUA_DIR
    )


def gateway_spec(root: Path, version: Version, base: str) -> ImageSpec:
    conf = render_nginx_conf(baked_gateway_config(), template_dir=root / "nginx-lua").encode()
    entries = [
        FileEntry(GATEWAY_CONF, data=conf),
        *tree_entries(root / "nginx-lua" / "lua", GATEWAY_LUA_DIR),
        FileEntry(SCRATCH_DIR, kind="dir", mode=0o1777),
        _writable(GATEWAY_RUNTIME_DIR),
    ]
    layer = LayerSpec(
        "gateway", tuple(entries), last_change(root, ("nginx-lua", "deploy/render/gateway.py", "deploy/model/suite.py"))
    )
    return ImageSpec(GATEWAY, base, (layer,), GATEWAY_COMMAND, (), (GATEWAY_PORT,), _labels(GATEWAY, version))


def suite_specs(root: Path, version: Version, site_packages: Path, bases: Mapping[str, str]) -> tuple[ImageSpec, ...]:
    """The six images in IMAGE_NAMES order; `bases` maps an image or base name to a base reference."""
    deps = dependencies_layer(root, site_packages)
    services = tuple(
        service_spec(service, root, version, deps, base_reference(service.name, PYTHON_BASE, bases))
        for service in SERVICES
    )
    return (gateway_spec(root, version, base_reference(GATEWAY, GATEWAY_BASE, bases)), *services)
