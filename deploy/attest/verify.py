"""Verify before deploy: each image's signature by the environment's key (cosign's simple signing), and its SBOM
and provenance attestations signed by it too, naming every image that falls short."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.attest import same
from deploy.attest.cosign import PROMOTION_PREDICATE, SLSA_PREDICATE, SPDX_PREDICATE, Payload, attests, signs, tag_for
from deploy.attest.keys import PublicKey, load_public_key
from deploy.attest.oci import Attachments
from deploy.model.environments import Environment
from deploy.model.errors import ConfigError, UnverifiedError
from deploy.model.images import PublishedImage
from deploy.registry.client import RegistryClient

PREDICATES = {SPDX_PREDICATE: "SPDX SBOM", SLSA_PREDICATE: "SLSA provenance"}


def attachments_of(
    image: PublishedImage, registry: Callable[[str], RegistryClient], home: Callable[[str], str] = same
) -> Attachments:
    """The image's signatures and attestations, in the repository `home` names for its own (cosign's
    COSIGN_REPOSITORY; by default beside the image)."""
    host, _, repository = home(image.repository).partition("/")
    return Attachments(registry(host), repository)


def signed(layers: list[Payload], key: PublicKey, image: PublishedImage) -> bool:
    return any(signs(layer, key, image.digest, image.repository) for layer in layers)


def attested(layers: list[Payload], key: PublicKey, digest: str) -> dict[str, str]:
    """predicate type -> digest of the first layer holding a statement of that type about `digest`, by `key`."""
    found: dict[str, str] = {}
    for layer in layers:
        statement = attests(layer, key, digest)
        if statement is not None:
            found.setdefault(str(statement.get("predicateType")), layer.digest)
    return found


@dataclass(frozen=True)
class Verified:
    name: str
    digest: str
    signature: str  # HOST/REPO:sha256-HEX.sig
    attestations: tuple[str, ...]  # the predicate types checked
    home: str  # the repository of its signatures (cosign's COSIGN_REPOSITORY where it is not the image's)
    promoted_from: str = ""  # "ENVIRONMENT VERSION" of the newest promotion attested by the key, if any


class ImageVerifier:
    """Checks images against one public key; attestations of both predicate types are required unless told."""

    def __init__(
        self,
        key: PublicKey,
        registry: Callable[[str], RegistryClient],
        origin: str,
        attestations: bool = True,
        home: Callable[[str], str] = same,
    ):
        self.key, self.registry, self.origin, self.attestations = key, registry, origin, attestations
        self.home = home  # where an image repository's signatures are (deploy/registry/artifact_registry.py)

    @classmethod
    def of(
        cls, environment: Environment, registry: Callable[[str], RegistryClient], home: Callable[[str], str] = same
    ) -> ImageVerifier:
        """What the environment's `verify` requires (`verify`, and `up` and `rollback` before they apply)."""
        if environment.verify is None:
            raise ConfigError(
                f"environment {environment.name} sets no verify",
                f'add verify = {{ key = "cosign.pub" }} to [environments.{environment.name}]',
            )
        key = environment.verify.key
        return cls(load_public_key(Path(key)), registry, key, environment.verify.attestations, home)

    def problem(self, name: str, image: PublishedImage) -> str:
        """Why `image` does not pass ('' when it does)."""
        return self.check(name, image)[0]

    def check(self, name: str, image: PublishedImage) -> tuple[str, Attachments]:
        """Why `image` does not pass ('' when it does), and where its signatures were read."""
        attachments = attachments_of(image, self.registry, self.home)
        signatures = attachments.layers(image.digest, "sig")
        if not signatures and self.home(image.repository) != image.repository:
            # signed before its signatures moved to their own repository: they are beside the image
            beside = attachments_of(image, self.registry)
            if earlier := beside.layers(image.digest, "sig"):
                attachments, signatures = beside, earlier
        return self.problem_with(name, image, attachments, signatures), attachments

    def problem_with(
        self, name: str, image: PublishedImage, attachments: Attachments, signatures: list[Payload]
    ) -> str:
        if not signatures:
            return f"{name} is not signed (no {tag_for(image.digest, 'sig')} in {self.home(image.repository)})"
        if not signed(signatures, self.key, image):
            return f"{name} is signed, but not by the key of {self.origin}"
        if not self.attestations:
            return ""
        found = attested(attachments.layers(image.digest, "att"), self.key, image.digest)
        missing = [label for predicate, label in PREDICATES.items() if predicate not in found]
        return f"{name} has no {' and no '.join(missing)} attestation signed by that key" if missing else ""

    def verify(self, images: Mapping[str, PublishedImage]) -> list[Verified]:
        checks = {name: self.check(name, image) for name, image in images.items()}
        problems = [problem for problem, _ in checks.values() if problem]
        if problems:
            raise UnverifiedError(
                f"refusing to deploy: {'; '.join(problems)}",
                f"build and sign them with the private key of {self.origin} (`k8sdeploy build --key FILE`, or "
                "$K8SDEPLOY_SIGNING_KEY)",
            )
        checked = tuple(PREDICATES) if self.attestations else ()
        return [
            Verified(
                name,
                image.digest,
                checks[name][1].reference(image.digest, "sig"),
                checked,
                f"{checks[name][1].client.host}/{checks[name][1].repository}",
                self.promoted_from(checks[name][1], image.digest),
            )
            for name, image in images.items()
        ]

    def promoted_from(self, attachments: Attachments, digest: str) -> str:
        """Where the image was promoted from, by the newest promotion attestation the key signed ('' if none)."""
        found = ""
        for layer in attachments.layers(digest, "att"):
            statement = attests(layer, self.key, digest)
            if statement is not None and statement.get("predicateType") == PROMOTION_PREDICATE:
                source = statement.get("predicate", {}).get("source", {})
                found = f"{source.get('environment', '?')} {source.get('version', '?')}"
        return found
