"""`promote`'s evidence at the target: each copied image signed with the target's key for the repository it is in
now, the source's SBOM and provenance statements signed again with that key (those that verify under the source
environment's `verify` key: nothing unverified is vouched for), and a promotion attestation: an in-toto statement
naming the release's digests, the environment and version it came from, the digest of its record there, when and
by whom. cosign reads it with `cosign verify-attestation --type https://k8sdeploy.dev/promotion/v1`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from deploy.attest import same
from deploy.attest.cosign import (
    PROMOTION_PREDICATE,
    SLSA_PREDICATE,
    SPDX_PREDICATE,
    Payload,
    attestation,
    attests,
    envelope_statement,
    signature,
    statement,
)
from deploy.attest.keys import PublicKey, SigningKey, load_public_key, signing_key
from deploy.attest.verify import attachments_of, attested, signed
from deploy.model.environments import Environment
from deploy.model.errors import ConfigError
from deploy.model.images import PublishedImage
from deploy.model.progress import Step, silent_step
from deploy.registry.client import RegistryClient

__all__ = ["PROMOTION_PREDICATE", "Endorser", "promotion_statement"]


def vouching_key(source: Environment) -> PublicKey | None:
    """The key whose signatures on the source's SBOM and provenance are trusted: its `verify` key, else the public
    half of its `signing_key` file when that opens without a passphrase; None: they are carried, not re-signed."""
    if source.verify is not None:
        return load_public_key(Path(source.verify.key))
    if not source.signing_key:
        return None
    try:
        key = signing_key(Path(source.signing_key), environ={})
    except ConfigError:
        return None
    return key.public if key is not None else None


def promotion_statement(images: Mapping[str, PublishedImage], source: Mapping[str, str], time: str, by: str) -> bytes:
    """The promotion's in-toto statement: every copied image a subject; where it came from, when, by whom."""
    subjects = [(image.repository, image.digest) for image in images.values()]
    return statement(subjects, PROMOTION_PREDICATE, {"source": dict(source), "time": time, "by": by})


class Endorser:
    def __init__(
        self,
        key: SigningKey,
        registry: Callable[[str], RegistryClient],
        home: Callable[[str], str] = same,
        trusted: PublicKey | None = None,
        step: Step = silent_step,
    ):
        self.key, self.registry, self.home, self.trusted, self.step = key, registry, home, trusted, step

    def endorse(self, images: Mapping[str, PublishedImage], promotion: bytes) -> None:
        for name, image in images.items():
            attachments = attachments_of(image, self.registry, self.home)
            signatures = attachments.layers(image.digest, "sig")
            if not signed(signatures, self.key.public, image):
                attachments.put(image.digest, "sig", [*signatures, signature(self.key, image.repository, image.digest)])
            layers = attachments.layers(image.digest, "att")
            added = [*self.signed_again(layers, image.digest), attestation(self.key, promotion, PROMOTION_PREDICATE)]
            attachments.put(image.digest, "att", [*layers, *added])
            self.step(name, f"signed {image.digest[:19]} for {image.repository}, with the promotion attested")

    def signed_again(self, layers: list[Payload], digest: str) -> list[Payload]:
        """The SBOM and provenance this key has not signed yet, from statements the source's key signed."""
        ours = attested(layers, self.key.public, digest)
        again: list[Payload] = []
        for predicate in (SPDX_PREDICATE, SLSA_PREDICATE):
            if predicate in ours or self.trusted is None:
                continue
            for layer in layers:
                found = attests(layer, self.trusted, digest)
                if found is not None and found.get("predicateType") == predicate:
                    again.append(attestation(self.key, envelope_statement(layer), predicate))
                    break
        return again
