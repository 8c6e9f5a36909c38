"""Publish the Debian bases k8sdeploy builds (debootstrap, once per machine) to a registry, pinned by digest, so
that an environment's `bases` can name them and its `build` and `up` need neither root nor debootstrap (CI); and
the `mariadb` base alone, the MySQL server of an environment with database = "mysql" and no mysql_image
(publish_server)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType

from deploy.builders.bases import DEBIAN_PACKAGES, SUITE, BaseImage, BaseResolver
from deploy.builders.oci import OciImage
from deploy.builders.store import OCI_CONFIG, OCI_MANIFEST, Blob, BlobStore, canonical_json
from deploy.model.errors import PublishError
from deploy.model.images import PublishedImage
from deploy.model.progress import Step, silent_step
from deploy.publish.push import RegistryPublisher

BASE_NAMES = tuple(DEBIAN_PACKAGES)  # python (the five services), nginx (the gateway), mariadb (the MySQL server)
SERVER = "mariadb"  # the base that is an image to run as it is (deploy/builders/mariadb.py)


@dataclass(frozen=True)
class PublishedBases:
    """The Debian bases in a registry: each the image PATH/NAME under one immutable tag, and by digest."""

    registry: str  # HOST[:PORT]/PATH
    tag: str  # bookworm-YYYYMMDD: the day the newest of them was built
    images: Mapping[str, PublishedImage]  # base name -> where it is

    @property
    def pins(self) -> dict[str, str]:
        """An environment's `bases`: base name -> HOST/PATH/NAME@sha256:..."""
        return {name: f"{image.repository}@{image.digest}" for name, image in self.images.items()}

    def toml(self, env_name: str) -> str:
        """The table to paste into k8sdeploy.toml."""
        lines = [f"[environments.{env_name}.bases]", *(f'{name} = "{ref}"' for name, ref in self.pins.items())]
        return "\n".join(lines) + "\n"

    def to_dict(self, env_name: str) -> dict:
        """The `--output json` document."""
        return {
            "command": "bases",
            "result": "ok",
            "environment": env_name,
            "registry": self.registry,
            "tag": self.tag,
            "bases": {
                name: {
                    "repository": image.repository,
                    "tag": image.tag,
                    "digest": image.digest,
                    "size": image.size,
                    "ref": image.ref,
                }
                for name, image in self.images.items()
            },
            "pins": self.pins,
            "toml": self.toml(env_name),
        }


def base_image(name: str, base: BaseImage, store: BlobStore) -> OciImage:
    """A base as an image of its own: its config and layers under an OCI manifest, as debootstrap left them."""
    config = Blob(store.put(base.config), len(base.config), OCI_CONFIG)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor() for layer in base.layers],
        }
    )
    store.put(manifest)
    return OciImage(name, manifest, config, base.layers, store)


def base_tag(bases: Sequence[BaseImage]) -> str:
    """`bookworm-YYYYMMDD`: Debian's suite and the day the newest base was built (from its config)."""
    days = sorted(str(base.config_json.get("created", ""))[:10].replace("-", "") for base in bases)
    return f"{SUITE}-{days[-1]}" if days and days[-1] else SUITE


@dataclass(frozen=True)
class BasePublisher:
    """Builds the Debian bases (or finds them in the cache) and pushes them as images, refusing to move a tag."""

    resolver: BaseResolver  # its registry clients come from deploy/compose.py
    publisher: RegistryPublisher
    step: Step = silent_step

    def publish(self, names: Sequence[str] = BASE_NAMES) -> PublishedBases:
        with ThreadPoolExecutor(len(names)) as pool:  # built side by side the first time (debootstrap)
            bases = list(pool.map(lambda name: self.resolver.resolve(f"debootstrap:{name}"), names))
        tag = base_tag(bases)
        images = [base_image(name, base, self.resolver.store) for name, base in zip(names, bases, strict=True)]
        self._refuse_other_digests(images, tag)
        published = self.publisher.publish(images, tag)
        for name in names:
            self.step(name, f"base {published[name].repository}@{published[name].digest}")
        return PublishedBases(
            str(self.publisher.address), tag, MappingProxyType({name: published[name] for name in names})
        )

    def _refuse_other_digests(self, images: Sequence[OciImage], tag: str) -> None:
        """Before anything is pushed: a tag already there with another digest stays as it is (what pins it
        keeps working), so these bases are refused."""
        client, address = self.publisher.client, self.publisher.address
        client.check()
        there = {image.name: client.manifest_digest(address.repository(image.name), tag) for image in images}
        conflicts = [image for image in images if there[image.name] not in (None, image.digest)]
        if conflicts:
            differ = "; ".join(f"{image.name} is {there[image.name]} there, {image.digest} here" for image in conflicts)
            found = ", ".join(
                f"{address.host}/{address.repository(image.name)}@{there[image.name]}" for image in conflicts
            )
            raise PublishError(
                f"bases {tag} already exist in {address} with other content ({differ}); tags are "
                "immutable, nothing was pushed",
                f"pin the bases already there ({found}), or publish these to another --registry PATH",
            )


def publish_server(resolver: BaseResolver, publisher: RegistryPublisher, step: Step = silent_step) -> PublishedImage:
    """The MariaDB server image (`debootstrap:mariadb`, built once and cached like every Debian base) in the
    publisher's registry as PATH/mariadb under the bases' immutable tag (base_tag: bookworm-YYYYMMDD of its build);
    returns where it is: its `.repository` and `.digest` (pin `.repository@.digest`). Pushed again, it is a no-op;
    a tag already holding other content is never moved (PublishError, nothing pushed)."""
    return BasePublisher(resolver, publisher, step).publish((SERVER,)).images[SERVER]
