"""What the build stage hands on: published images by name, and the JSON build record holding them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType

from deploy.model.errors import ConfigError
from deploy.model.schemas import Schemas, schemas_from_dict, schemas_to_dict

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
PINNED = re.compile(r"^(?P<name>[^\s@]+)@sha256:[0-9a-f]{64}$")
MOVING_TAGS = frozenset({"latest", "develop"})
STATE_DIR = Path(".k8sdeploy")  # of the working directory, beside its k8sdeploy.toml

# The six images, in the order they are built and listed.
IMAGE_NAMES = ("nginx-lua", "frontend", "authentication", "authorisation", "session", "person")


def build_record_path(env_name: str) -> Path:
    """Where `k8sdeploy build` writes the record for an environment, and where later stages read it."""
    return STATE_DIR / "builds" / f"{env_name}.json"


def pinning_problem(reference: str) -> str:
    """Why `reference` is not `repository[:tag]@sha256:digest` with a fixed tag; "" when it is."""
    match = PINNED.match(reference)
    if not match:
        return "it is not pinned by digest (repository[:tag]@sha256:<64 hex digits>)"
    last = match["name"].rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    if tag in MOVING_TAGS:
        return f"it names the moving tag {tag!r}"
    return ""


@dataclass(frozen=True)
class PublishedImage:
    """An image under an immutable version tag, pinned by its content digest."""

    repository: str  # e.g. europe-west1-docker.pkg.dev/proj/suite/person, or 127.0.0.1:5000/suite/person
    tag: str  # the version, never a moving tag
    digest: str  # sha256:...
    size: int = 0  # bytes of config and layers, as stored

    def __post_init__(self) -> None:
        if not DIGEST.match(self.digest):
            raise ValueError(f"{self.repository}: {self.digest!r} is not a sha256 digest")
        if self.tag in MOVING_TAGS:
            raise ValueError(f"{self.repository}: {self.tag!r} is a moving tag; images carry their version")

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"


@dataclass(frozen=True)
class Attached:
    """Where an image's signature and attestations are: cosign's `.sig` and `.att` tags beside it."""

    signature: str  # HOST/REPO:sha256-HEX.sig
    attestations: str  # HOST/REPO:sha256-HEX.att
    sbom: str  # the digest of the SPDX attestation's layer in it
    provenance: str  # the digest of the SLSA provenance attestation's layer in it


@dataclass(frozen=True)
class BuildRecord:
    """The result of one build: the version and commit it came from and each image by name (and, when signed,
    where its signature and attestations are)."""

    version: str
    commit: str
    images: Mapping[str, PublishedImage]
    attached: Mapping[str, Attached] = field(default_factory=lambda: MappingProxyType({}))
    schemas: Schemas = field(default_factory=lambda: MappingProxyType({}))  # each service's migrations

    def to_json(self) -> str:
        images = {name: asdict(image) for name, image in self.images.items()}
        document: dict = {"version": self.version, "commit": self.commit, "images": images}
        if self.attached:
            document["attached"] = {name: asdict(attached) for name, attached in self.attached.items()}
        if self.schemas:
            document["schemas"] = schemas_to_dict(self.schemas)
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "build record") -> BuildRecord:
        try:
            data = json.loads(text)
            images = {name: PublishedImage(**fields) for name, fields in data["images"].items()}
            attached = {name: Attached(**fields) for name, fields in (data.get("attached") or {}).items()}
            schemas = schemas_from_dict(data.get("schemas"))
            return cls(data["version"], data["commit"], MappingProxyType(images), MappingProxyType(attached), schemas)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{source} is not a k8sdeploy build record ({exc})", "run `k8sdeploy build` to write a new one"
            ) from exc

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())

    @classmethod
    def load(cls, path: Path) -> BuildRecord:
        if not path.exists():
            raise ConfigError(f"no build record at {path}", "run `k8sdeploy build` first, or pass --build-record")
        return cls.from_json(path.read_text(), str(path))
