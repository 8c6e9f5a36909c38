"""Render a layout's Kubernetes objects from manifests/<layout>/*.yaml.j2, pinned by digest and checked."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deploy.model.environments import LABEL_VALUE, Environment
from deploy.model.errors import ConfigError, RenderError
from deploy.model.images import PublishedImage
from deploy.model.suite import (
    APP_USER_ID,
    GATEWAY,
    GATEWAY_LUA_DIR,
    GATEWAY_RUNTIME_DIR,
    GATEWAY_TLS_DIR,
    GATEWAY_TLS_PORT,
    GRACE_SECONDS,
    PRE_STOP_SECONDS,
)
from deploy.render import kept
from deploy.render.assets import asset_dir
from deploy.render.credentials import secret_data
from deploy.render.gateway import GatewayConfig, render_nginx_conf
from deploy.render.layout import GATEWAY_CONFIG_MAP, MYSQL, PART_OF, Layout, build_layout
from deploy.render.templating import failure_location, strict_environment

MANIFESTS_DIR = asset_dir("manifests")


@dataclass(frozen=True)
class Rendered:
    """What `kubectl apply -f` and the apply stage consume: the objects, and the YAML they came from."""

    layout: Layout
    objects: tuple[dict[str, Any], ...]
    yaml: str
    notes: tuple[str, ...] = ()  # what render decided that the user should know

    def to_json(self) -> str:
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(self.objects)}, indent=2) + "\n"


def render(
    environment: Environment,
    layout_name: str,
    images: Mapping[str, PublishedImage],
    version: str,
    *,
    mysql_secret: str = "",
    keep: bool = False,
    database_image: str = "",
) -> Rendered:
    """The objects of `layout_name` for `environment`, running `images` (by name) of `version`.

    `mysql_secret` is needed with database = "mysql": the users' passwords are derived from it, and
    `database_image` (deploy/stages.py database_image) is its server's image. `keep`: taken from, and kept in, the
    cache of renders (deploy/render/kept.py; `up`, which renders what it rendered before).
    """
    layout = build_layout(
        layout_name,
        environment.database,
        environment.kind_table.service_address,
        environment.tls_secret,
        ephemeral=environment.ephemeral_data,
        port_base=environment.kind_table.port_base(environment.gateway_port),
        server=external_server(environment),
    )
    if not re.match(LABEL_VALUE, version):
        raise RenderError(
            f"version {version!r} cannot be an app.kubernetes.io/version label",
            "a version is at most 63 letters, digits and '-_.'; build again with `k8sdeploy build`",
        )
    replicas, notes = replica_counts(layout, environment)
    if layout.storage == "emptyDir":
        notes += ("ephemeral_data = true: the services' SQLite files are on emptyDir volumes, gone with their pod",)
    # kept renders hold no Secret: MySQL's layouts, whose passwords are in one, are rendered each time
    key = ""
    if keep and layout.storage != "mysql":
        key = kept.render_key(environment, layout_name, images, version, kept.code_directories(MANIFESTS_DIR))
    if key and (found := kept.read(key)) is not None:
        return Rendered(layout, found.objects, found.yaml, notes)
    context = {
        **gateway_context(layout, environment),
        "layout": layout,
        "part_of": PART_OF,
        "instance": environment.name,
        "namespace": environment.namespace,
        "version": version,
        "images": image_refs(layout, environment, images, database_image),
        "replicas": replicas,
        "app_user_id": APP_USER_ID,
        "pre_stop_seconds": PRE_STOP_SECONDS,
        "grace_seconds": GRACE_SECONDS,
        "secret_name": MYSQL,
        "secret_data": secret_data(layout, environment.name, mysql_secret),
    }
    text, objects = render_templates(MANIFESTS_DIR, layout.name, context)
    if key:
        kept.keep(key, objects, text)
    return Rendered(layout, objects, text, notes)


def gateway_context(layout: Layout, environment: Environment) -> dict[str, Any]:
    """The gateway's nginx.conf for this layout (a ConfigMap over the image's own), and its Service."""
    config = GatewayConfig(
        upstreams=layout.upstreams(),
        listen=environment.kind_table.gateway_listen(layout.part(GATEWAY).port),
        runtime_dir=GATEWAY_RUNTIME_DIR,
        lua_dir=GATEWAY_LUA_DIR,
        secure_cookies=environment.secure_cookies,
        hosts=environment.hosts,
        trusted_proxies=environment.trusted_proxies,
    )
    if environment.tls_secret:
        config = replace(
            config, tls_listen=str(GATEWAY_TLS_PORT), tls_dir=GATEWAY_TLS_DIR, https_port=environment.https_port
        )
    nginx_conf = render_nginx_conf(config)
    return {
        "gateway": GATEWAY,
        "nginx_conf": nginx_conf,
        "nginx_conf_sha256": hashlib.sha256(nginx_conf.encode()).hexdigest(),
        "config_map_name": GATEWAY_CONFIG_MAP,
        "service_type": environment.service_type,
        "gateway_port": environment.gateway_port,
        "https_port": environment.https_port,
        "source_ranges": environment.gke.source_ranges if environment.gke else (),
    }


def external_server(environment: Environment) -> tuple[str, int, str] | None:
    """The environment's own MySQL server as build_layout takes it: (CIDR, port, Secret); None where there is none."""
    server = environment.mysql_server
    return (server.cidr, server.port, server.secret) if server is not None else None


def image_refs(
    layout: Layout, environment: Environment, images: Mapping[str, PublishedImage], database_image: str = ""
) -> dict[str, str]:
    """repository:tag@digest for each part; templates see nothing else of an image."""
    refs = {}
    for part in layout.parts:
        if part.name == MYSQL:
            refs[MYSQL] = environment.mysql_image or database_image
            if not refs[MYSQL]:
                raise ConfigError(
                    f"environment {environment.name!r}: no image for the MySQL server was given to render",
                    'set mysql_image = "HOST/REPO:TAG@sha256:...", or deploy with `k8sdeploy up`, which makes one',
                )
        elif part.name in images:
            refs[part.name] = images[part.name].ref
        else:
            raise ConfigError(
                f"the build record has no image for {part.name}", "run `k8sdeploy build`, which builds all six images"
            )
    return refs


def replica_counts(layout: Layout, environment: Environment) -> tuple[dict[str, int], tuple[str, ...]]:
    """Replicas of each pod, from the environment; an SQLite service on a PVC runs exactly one, the database
    server one, and a part that keeps no data of its own the kind's STATELESS_REPLICAS by default."""
    if layout.name == "single-pod":
        scaled = sorted(name for name, count in environment.replicas.items() if count > 1)
        notes = (f"single-pod runs one of each part; replicas of {', '.join(scaled)} apply to split-pods",)
        return {pod.name: 1 for pod in layout.pods}, notes if scaled else ()
    stateless = environment.kind_table.STATELESS_REPLICAS if layout.storage == "mysql" else 1
    counts = {}
    for pod in layout.pods:
        if pod.kind == "StatefulSet":
            counts[pod.name] = 1
            continue
        counts[pod.name] = max(environment.replicas.get(part.name, stateless) for part in pod.parts)
        on_sqlite = [part.name for part in pod.parts if layout.keeps_sqlite(part)]
        if counts[pod.name] > 1 and on_sqlite:
            raise ConfigError(
                f"environment {environment.name!r}: replicas.{on_sqlite[0]} = {counts[pod.name]}, but its SQLite "
                "file is on a ReadWriteOnce volume that one pod at a time can use",
                f'set replicas.{on_sqlite[0]} = 1, or database = "mysql"',
            )
    return counts, ()


def render_templates(root: Path, layout: str, context: Mapping[str, Any]) -> tuple[str, tuple[dict, ...]]:
    """Render `root`/`layout`/*.yaml.j2 in name order; the YAML text and the objects parsed from it."""
    import jinja2  # here: the commands that render nothing do without it

    environment = strict_environment(root.resolve())
    names = environment.list_templates(
        filter_func=lambda name: name.startswith(f"{layout}/") and name.endswith(".yaml.j2") and name.count("/") == 1
    )
    if not names:
        raise RenderError(f"no templates for layout {layout} in {root / layout}", "reinstall k8sdeploy")
    texts, objects = [], []
    for name in sorted(names):
        try:
            text = environment.get_template(name).render(context)
        except jinja2.TemplateError as exc:
            where = failure_location(exc, root.resolve(), name)
            raise RenderError(
                f"rendering {name}: {where}: {exc.message}",
                "give the template that value (deploy/render/objects.py builds the context)",
            ) from exc
        objects += parse_objects(name, text)
        texts.append(text)
    return "".join(texts), tuple(objects)


def parse_objects(name: str, text: str) -> list[dict]:
    """The documents of one template's output; each must be a Kubernetes object."""
    import yaml

    try:
        # libyaml's loader (PyYAML's wheels carry it) is ten times the pure-Python one's speed; the same documents
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        documents = [document for document in yaml.load_all(text, Loader=loader) if document is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} of its output" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RenderError(f"{name} rendered invalid YAML{where}: {problem}", "fix the template") from exc
    for index, document in enumerate(documents, 1):
        if not isinstance(document, dict) or not document.get("apiVersion") or not document.get("kind"):
            raise RenderError(
                f"{name}: document {index} has no apiVersion and kind",
                "every document a template writes must be a Kubernetes object",
            )
    return documents
