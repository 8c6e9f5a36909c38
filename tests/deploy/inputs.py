"""Inputs for rendering in tests: a build record with made-up digests, and environments for each variant; and
releases as a history records them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

from deploy.model.environments import Environment
from deploy.model.images import IMAGE_NAMES, BuildRecord, PublishedImage
from deploy.model.releases import Release, objects_hash
from deploy.render.objects import Rendered, render

VERSION = "1.4.0-2-g1a2b3c4"
MYSQL_SECRET = "test-secret-0123456789abcdef"
MYSQL_IMAGE = "registry.example/db/mariadb:11.4@sha256:" + "4d" * 32


def fake_images(registry: str = "127.0.0.1:5000/suite") -> dict[str, PublishedImage]:
    """One image per name under the version tag, each with its own made-up sha256 digest."""
    return {
        name: PublishedImage(f"{registry}/{name}", VERSION, f"sha256:{index + 1:064x}", 1000 + index)
        for index, name in enumerate(IMAGE_NAMES)
    }


def fake_record(path: Path) -> Path:
    BuildRecord(VERSION, "1a2b3c4" + "0" * 33, fake_images()).save(path)
    return path


# name -> (environment, layout): the golden files under tests/deploy/render/golden/ are named alike.
VARIANTS: dict[str, tuple[Environment, str]] = {
    "single-pod": (Environment(name="demo", target="local", namespace="suite-demo"), "single-pod"),
    "split-pods": (
        Environment(name="staging", target="kubeconfig", layout="split-pods", replicas={"nginx-lua": 2, "frontend": 3}),
        "split-pods",
    ),
    "split-pods-mysql": (
        Environment(
            name="prod",
            target="gke",
            layout="split-pods",
            database="mysql",
            mysql_image=MYSQL_IMAGE,
            service_type="LoadBalancer",
            gateway_port=80,
            secure_cookies=True,
            replicas={"person": 2, "session": 2},
            gke={"project": "my-project", "location": "europe-west1-b", "cluster": "c"},
        ),
        "split-pods",
    ),
}


def render_variant(name: str) -> Rendered:
    environment, layout = VARIANTS[name]
    return render(environment, layout, fake_images(), VERSION, mysql_secret=MYSQL_SECRET)


def pod_templates(objects: tuple[dict, ...]) -> Iterator[tuple[dict, dict]]:
    """(workload, its pod template) for each Deployment and StatefulSet."""
    for item in objects:
        if item["kind"] in ("Deployment", "StatefulSet"):
            yield item, item["spec"]["template"]


def containers(objects: tuple[dict, ...]) -> Iterator[dict[str, Any]]:
    for _, template in pod_templates(objects):
        yield from template["spec"]["containers"]


def of_kind(objects: tuple[dict, ...], kind: str) -> dict[str, dict]:
    return {item["metadata"]["name"]: item for item in objects if item["kind"] == kind}


def selects(match_labels: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in match_labels.items())


def release_images(version: str, seed: str) -> MappingProxyType:
    return MappingProxyType(
        {
            name: PublishedImage(f"127.0.0.1:5000/suite/{name}", version, "sha256:" + (seed * 64)[:64], 1000)
            for name in IMAGE_NAMES
        }
    )


def release(version: str, seed: str, action: str = "up") -> Release:
    return Release(
        version=version,
        commit=seed * 40,
        images=release_images(version, seed),
        layout="single-pod",
        objects_hash=objects_hash([{"kind": "Pod", "v": version}]),
        time="2026-01-01T00:00:00Z",
        by="t@host",
        action=action,
    )
