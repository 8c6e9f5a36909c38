"""What each of the six images holds, as data: base, layers, command, user, ports, environment, labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from deploy.builders.bases import base_reference
from deploy.builders.layers import FileEntry, LayerSpec, tree_entries
from deploy.model.cache import CODE, made_from
from deploy.model.suite import (
    APP_USER_ID,
    DATA_DIR,
    GATEWAY,
    GATEWAY_COMMAND,
    GATEWAY_CONF,
    GATEWAY_LUA_DIR,
    GATEWAY_PORT,
    GATEWAY_RUNTIME_DIR,
    GATEWAY_STOP_SIGNAL,
    SCRATCH_DIR,
    SERVICES,
    Service,
)
from deploy.model.version import Version, last_changes
from deploy.render.gateway import GatewayConfig, render_nginx_conf

APP_DIR = "/opt/k8sdeploy/app"  # services/ (the service and services/common) and suitekit/
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
    stop_signal: str = ""  # "" keeps the runtime's SIGTERM


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


def dependencies_layer(site_packages: Path, epoch: int) -> LayerSpec:
    """The locked packages (`site_packages`: deps.install_dependencies's directory, made once, never changed), listed
    only when the layer must be written: the directory's path, inode and time name it (a new one is a new layer)."""
    made = site_packages.stat()
    return LayerSpec(
        "dependencies",
        partial(tree_entries, site_packages, DEPS_DIR, bytecode=True),  # deps.compile_bytecode made it reproducibly
        epoch,
        sealed=f"{site_packages.resolve()} {made.st_ino} {made.st_mtime_ns}",
    )


def service_sources(service: Service) -> tuple[str, ...]:
    return ("services/__init__.py", "services/common", f"services/{service.name}", "suitekit")


# the gateway's config is rendered by these (its login burst sized by suitekit.passwords)
GATEWAY_SOURCES = ("nginx-lua", "deploy/render/gateway.py", "deploy/model/suite.py", "suitekit")


def service_spec(service: Service, root: Path, version: Version, deps: LayerSpec, base: str, epoch: int) -> ImageSpec:
    """`epoch`: the last change of service_sources(service)."""
    entries = [FileEntry(f"{APP_DIR}/services/__init__.py", source=root / "services/__init__.py")]
    entries += tree_entries(root / "services/common", f"{APP_DIR}/services/common")
    entries += tree_entries(root / "services" / service.name, f"{APP_DIR}/services/{service.name}")
    entries += tree_entries(root / "suitekit", f"{APP_DIR}/suitekit")
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
    app = LayerSpec("application", tuple(entries), epoch)
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


def gateway_entries(root: Path) -> list[FileEntry]:
    """The baked nginx.conf (rendered from `root`'s template by k8sdeploy's code), the Lua, the writable dirs."""
    conf = render_nginx_conf(baked_gateway_config(), template_dir=root / "nginx-lua").encode()
    return [
        FileEntry(GATEWAY_CONF, data=conf),
        *tree_entries(root / "nginx-lua" / "lua", GATEWAY_LUA_DIR),
        FileEntry(SCRATCH_DIR, kind="dir", mode=0o1777),
        _writable(GATEWAY_RUNTIME_DIR),
    ]


def gateway_spec(root: Path, version: Version, base: str, epoch: int) -> ImageSpec:
    """`epoch`: the last change of GATEWAY_SOURCES. The layer is known by its files' metadata (`root`'s nginx-lua
    and k8sdeploy's code, which renders the nginx.conf): nothing is rendered while they are unchanged."""
    sealed = made_from((root / "nginx-lua", *CODE))
    layer = LayerSpec("gateway", partial(gateway_entries, root), epoch, sealed=f"gateway {sealed}")
    return ImageSpec(
        GATEWAY,
        base,
        (layer,),
        GATEWAY_COMMAND,
        (),
        (GATEWAY_PORT,),
        _labels(GATEWAY, version),
        stop_signal=GATEWAY_STOP_SIGNAL,
    )


def layer_times(root: Path) -> dict[str, int]:
    """The time of each layer (the dependencies', the gateway's, each service's): the last commit that changed its
    sources, asked of git side by side."""
    return last_changes(
        root, {"dependencies": (LOCK,), GATEWAY: GATEWAY_SOURCES, **{s.name: service_sources(s) for s in SERVICES}}
    )


def suite_specs(
    root: Path,
    version: Version,
    site_packages: Path,
    bases: Mapping[str, str],
    epochs: Mapping[str, int] | None = None,
) -> tuple[ImageSpec, ...]:
    """The six images in IMAGE_NAMES order; `bases` maps an image or base name to a base reference; `epochs`: the
    layer_times of `root`, when already known."""
    epochs = layer_times(root) if epochs is None else epochs
    deps = dependencies_layer(site_packages, epochs["dependencies"])
    services = tuple(
        service_spec(
            service, root, version, deps, base_reference(service.name, PYTHON_BASE, bases), epochs[service.name]
        )
        for service in SERVICES
    )
    gateway = gateway_spec(root, version, base_reference(GATEWAY, GATEWAY_BASE, bases), epochs[GATEWAY])
    return (gateway, *services)
