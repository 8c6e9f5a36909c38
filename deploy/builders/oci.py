"""The daemonless builder: an image is its base (by digest) plus layers written here; no Docker needed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from deploy.builders.bases import BaseImage, BaseResolver
from deploy.builders.layers import LayerSpec, build_layer
from deploy.builders.spec import ImageSpec
from deploy.builders.store import OCI_CONFIG, OCI_MANIFEST, Blob, BlobStore, Layer, canonical_json, sha256_digest
from deploy.model.progress import Step, silent_step

DROPPED_CONFIG_KEYS = ("container", "container_config", "docker_version", "author", "id", "parent")


@dataclass(frozen=True)
class OciImage:
    """A built image: manifest, config and layers, all in `store`."""

    name: str
    manifest: bytes
    config: Blob
    layers: tuple[Layer, ...]
    store: BlobStore = field(compare=False, repr=False)
    mount_from: Mapping[str, str] = field(default_factory=dict, compare=False)  # digest -> HOST/REPO

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def size(self) -> int:
        return self.config.size + sum(layer.size for layer in self.layers)

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (*self.layers, self.config)


def image_config(base: BaseImage, spec: ImageSpec, layers: list[Layer], created: str) -> dict:
    """The base's config with this image's layers, command, user, ports, environment and labels."""
    config = {key: value for key, value in base.config_json.items() if key not in DROPPED_CONFIG_KEYS}
    runtime = dict(config.get("config") or {})
    env = dict(entry.split("=", 1) for entry in runtime.get("Env") or [])
    env.update(spec.env)
    runtime.update(
        {
            "Env": [f"{key}={value}" for key, value in env.items()],
            "Entrypoint": None,
            "Cmd": list(spec.cmd),
            "User": spec.user,
            "WorkingDir": spec.workdir,
            "ExposedPorts": {f"{port}/tcp": {} for port in spec.ports},
            "Labels": {**(runtime.get("Labels") or {}), **dict(spec.labels)},
        }
    )
    if spec.stop_signal:  # what the runtime sends to stop a container (containerd's CRI and Docker read it)
        runtime["StopSignal"] = spec.stop_signal
    history = list(config.get("history") or [])
    history += [{"created": created, "created_by": f"k8sdeploy: {layer.name} layer"} for layer in spec.layers]
    config.update(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": runtime,
            "history": history,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in (*base.layers, *layers)]},
        }
    )
    return config


class OciBuilder:
    """Builds an ImageSpec into `store`; a layer shared by several images is written once per run."""

    def __init__(self, store: BlobStore, bases: BaseResolver, step: Step = silent_step):
        self.store, self.bases, self.step = store, bases, step
        self._layers: dict[LayerSpec, Layer] = {}

    def build(self, spec: ImageSpec) -> OciImage:
        self.step(spec.name, f"base {spec.base}")
        base = self.bases.resolve(spec.base)
        layers = [self._layer(spec.name, layer) for layer in spec.layers]
        created = dict(spec.labels).get("org.opencontainers.image.created", "1970-01-01T00:00:00Z")
        config_bytes = canonical_json(image_config(base, spec, layers, created))
        config = Blob(self.store.put(config_bytes), len(config_bytes), OCI_CONFIG)
        all_layers = (*base.layers, *layers)
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor(),
                "layers": [layer.descriptor() for layer in all_layers],
            }
        )
        self.store.put(manifest)
        mount_from = {layer.digest: base.mount_from for layer in base.layers if base.mount_from}
        return OciImage(spec.name, manifest, config, all_layers, self.store, mount_from)

    def _layer(self, image: str, spec: LayerSpec) -> Layer:
        if spec not in self._layers:
            self.step(image, f"{spec.name} layer")
            self._layers[spec] = build_layer(spec, self.store)
        return self._layers[spec]
