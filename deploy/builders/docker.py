"""`--builder docker`: the same image specs built by the Docker Engine from generated Dockerfiles (published by
publish/docker.py)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from deploy.builders.bases import BaseImage, BaseResolver
from deploy.builders.docker_archive import load_into_engine
from deploy.builders.layers import build_layer
from deploy.builders.oci import OciImage
from deploy.builders.spec import ImageSpec
from deploy.builders.store import OCI_CONFIG, Blob, sha256_digest
from deploy.model.errors import BuildError
from deploy.model.progress import Step, silent_step


@dataclass(frozen=True)
class EngineImage:
    name: str
    image_id: str
    size: int


def dockerfile(spec: ImageSpec, base_tag: str, layer_files: Sequence[str]) -> str:
    """A Dockerfile equivalent to `spec`: each layer is ADDed from its reproducible tar (owners and modes kept)."""

    def pairs(items: Sequence[tuple[str, str]], quote_keys: bool) -> str:
        return " ".join(f"{json.dumps(key) if quote_keys else key}={json.dumps(value)}" for key, value in items)

    lines = [f"FROM {base_tag}", *(f"ADD {name} /" for name in layer_files)]
    lines += [f"ENV {pairs(spec.env, False)}"] if spec.env else []
    lines += [
        f"LABEL {pairs(spec.labels, True)}",
        f"EXPOSE {' '.join(str(port) for port in spec.ports)}",
        f"USER {spec.user}",
        f"WORKDIR {spec.workdir}",
        "ENTRYPOINT []",
        f"CMD {json.dumps(list(spec.cmd))}",
    ]
    lines += [f"STOPSIGNAL {spec.stop_signal}"] if spec.stop_signal else []
    return "\n".join(lines) + "\n"


class DockerBuilder:
    """Builds through the engine (the classic builder, its layer cache included); no registry needed."""

    def __init__(self, client: docker.DockerClient, bases: BaseResolver, step: Step = silent_step):
        self.client, self.bases, self.step = client, bases, step

    def build(self, spec: ImageSpec) -> EngineImage:
        base_tag = self.base_in_engine(self.bases.resolve(spec.base))
        store = self.bases.store
        with tempfile.TemporaryDirectory(prefix="k8sdeploy-docker-") as context:
            names = []
            for index, layer_spec in enumerate(spec.layers):
                layer = build_layer(layer_spec, store)
                names.append(f"{index}-{layer_spec.name}.tar.gz")
                shutil.copyfile(store.path(layer.digest), Path(context) / names[-1])
            (Path(context) / "Dockerfile").write_text(dockerfile(spec, base_tag, names))
            self.step(spec.name, "docker build")
            try:
                image, _ = self.client.images.build(path=context, rm=True, forcerm=True, network_mode="host")
            except (docker.errors.BuildError, docker.errors.APIError) as exc:
                raise BuildError(f"docker build of {spec.name} failed: {exc}", "see the Docker Engine's log") from None
        if image.id is None:
            raise BuildError(f"docker build of {spec.name} made no image", "see the Docker Engine's log")
        return EngineImage(spec.name, image.id, image.attrs.get("Size", 0))

    def base_in_engine(self, base: BaseImage) -> str:
        config = Blob(sha256_digest(base.config), len(base.config), OCI_CONFIG)
        self.bases.store.put(base.config)
        tag = f"k8sdeploy-base:{config.digest.split(':')[1][:16]}"
        load_into_engine(self.client, OciImage("base", b"", config, base.layers, self.bases.store), [tag])
        return tag
