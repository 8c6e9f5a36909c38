"""What an apply would change on the local Docker Engine: each planned pod against its running containers
(images, environment, mounts and their files, ports), and the containers `up` would replace; writes nothing."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from docker.errors import DockerException
from docker.models.containers import Container

from deploy.model.changes import FieldChange, ObjectChange, compare
from deploy.targets.local import labels as L
from deploy.targets.local.containers import LocalEngine
from deploy.targets.local.plan import PlannedContainer, PlannedPod, plan


def secret_fed(objects: Sequence[dict]) -> frozenset[str]:
    """Names of the environment variables the workloads take from a Secret: their values are never shown."""
    secrets = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "Secret"}
    names: set[str] = set()
    for obj in objects:
        spec = obj.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") or spec
        for container in (*pod.get("initContainers", []), *pod.get("containers", [])):
            for item in container.get("env", []):
                if "secretKeyRef" in (item.get("valueFrom") or {}):
                    names.add(item["name"])
            for source in container.get("envFrom", []):
                secret = secrets.get((source.get("secretRef") or {}).get("name", ""), {})
                names.update({*(secret.get("data") or {}), *(secret.get("stringData") or {})})
    return frozenset(names)


def digest_of(content: bytes | None) -> str | None:
    return None if content is None else "sha256:" + hashlib.sha256(content).hexdigest()[:12]


class LocalDiffer:
    """The changes of one environment's apply on the engine, by the same test apply makes (a pod whose spec
    hash differs, or that lacks a container, is replaced whole), with the reasons read from the containers."""

    def __init__(self, engine: LocalEngine):
        self.engine = engine

    def diff(self, objects: Sequence[dict]) -> tuple[ObjectChange, ...]:
        wanted, engine = plan(objects, self.engine.host_paths), self.engine
        hidden = secret_fed(objects)
        current = engine.running_pods()
        found = []
        for pod in wanted.pods:
            if pod.name not in current:
                found.append(ObjectChange("Pod", pod.name, "create"))
            elif engine.pod_is_whole(pod.name, wanted, current[pod.name]):
                found.append(ObjectChange("Pod", pod.name, "unchanged"))
            else:
                fields = tuple(self.fields(pod, hidden)) or (
                    FieldChange("spec-hash", current[pod.name], pod.spec_hash),
                )
                found.append(ObjectChange("Pod", pod.name, "replace", fields, containers=self.containers(pod.name)))
        for name in sorted(set(current) - {pod.name for pod in wanted.pods}):
            found.append(
                ObjectChange("Pod", name, "delete", note="not in this render", containers=self.containers(name))
            )
        return tuple(found)

    def containers(self, pod: str) -> tuple[str, ...]:
        """The pod's running service containers (its infra and init containers go with them)."""
        return tuple(sorted(c.labels[L.CONTAINER] for c in self.engine.owned(**{L.POD: pod, L.ROLE: "app"})))

    def fields(self, pod: PlannedPod, hidden: frozenset[str]) -> Iterator[FieldChange]:
        running = {c.labels[L.CONTAINER]: c for c in self.engine.owned(**{L.POD: pod.name, L.ROLE: "app"})}
        for planned in pod.containers:
            where = f"containers[name={planned.name}]"
            container = running.get(planned.name)
            if container is None:
                yield FieldChange(where, None, planned.image)
                continue
            if container.labels.get(L.IMAGE) != planned.image:
                yield FieldChange(f"{where}.image", container.labels.get(L.IMAGE), planned.image)
            yield from self.env_changes(where, container, planned, hidden)
            ports = container.labels.get("k8sdeploy.io/ports", "")
            if ports != ",".join(map(str, planned.ports)):
                yield FieldChange(f"{where}.ports", ports, ",".join(map(str, planned.ports)))
            mounts = sorted(m["Destination"] for m in container.attrs.get("Mounts") or [])
            if mounts != sorted(m.target for m in planned.mounts):
                yield FieldChange(f"{where}.mounts", mounts, sorted(m.target for m in planned.mounts))
        for name in sorted(set(running) - {c.name for c in pod.containers}):
            yield FieldChange(f"containers[name={name}]", running[name].labels.get(L.IMAGE), None)
        yield from self.file_changes(pod)

    def env_changes(
        self, where: str, container: Container, planned: PlannedContainer, hidden: frozenset[str]
    ) -> Iterator[FieldChange]:
        have = dict(entry.split("=", 1) for entry in container.attrs["Config"].get("Env") or [])
        want = dict(planned.env)
        for key, value in self.image_env(container).items():  # what the image sets is not the render's
            if key not in want and have.get(key) == value:
                have.pop(key)
        for key in sorted({*have, *want}):
            yield from compare(have.get(key), want.get(key), f"{where}.env[{key}]", secret=key in hidden)

    def image_env(self, container: Container) -> dict[str, str]:
        try:
            image = self.engine.client.images.get(container.attrs["Image"])
        except DockerException:
            return {}
        return dict(entry.split("=", 1) for entry in (image.attrs.get("Config") or {}).get("Env") or [])

    def file_changes(self, pod: PlannedPod) -> Iterator[FieldChange]:
        """The ConfigMap and Secret keys the pod's containers read as files, against the files written for it
        (their content as a short digest, never the content)."""
        for volume in pod.volumes:
            if volume.kind != "files":
                continue
            directory = self.engine.state_dir / "files" / pod.name / volume.name
            for path, content, _mode in volume.files:
                have = digest_of(read(directory / path))
                want = digest_of(base64.b64decode(content))
                if have != want:
                    yield FieldChange(f"volumes[name={volume.name}].files[{path}]", have, want)


def read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
