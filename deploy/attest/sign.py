"""Signing after publishing: each image's digest signed, its SPDX SBOM and the build's SLSA provenance attached as
attestations, all under cosign's tags; a digest already signed (and attested) by the key gets nothing new."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import cached_property
from types import MappingProxyType
from typing import Any

from deploy.attest import same
from deploy.attest.contents import LayerContents, locked_hashes
from deploy.attest.cosign import SLSA_PREDICATE, SPDX_PREDICATE, Payload, attestation, signature, statement
from deploy.attest.keys import SigningKey
from deploy.attest.provenance import provenance
from deploy.attest.sbom import sbom
from deploy.attest.verify import attachments_of, attested, signed
from deploy.builders import Built
from deploy.builders.oci import OciImage
from deploy.builders.spec import LOCK
from deploy.builders.store import sha256_digest
from deploy.model.images import Attached, BuildRecord, PublishedImage
from deploy.model.progress import Step, silent_step
from deploy.registry.client import RegistryClient


class _Build:
    """One build's statements, made only when an image lacks them."""

    def __init__(self, built: Built[Any], record: BuildRecord, environ: Mapping[str, str]):
        self.built, self.record, self.environ = built, record, environ
        self.contents = LayerContents()

    @cached_property
    def provenance(self) -> bytes:
        lock = (LOCK, sha256_digest(self.built.lock.read_bytes()))
        bases = {reference: base.digest for reference, base in self.built.bases.items() if base.digest}
        predicate = provenance(self.built.version, self.record.images, bases, lock, self.built.builder, self.environ)
        subjects = [(image.repository, image.digest) for image in self.record.images.values()]
        return statement(subjects, SLSA_PREDICATE, predicate)

    @cached_property
    def locked(self) -> Mapping[str, tuple[str, tuple[str, ...]]]:
        return locked_hashes(self.built.lock.read_text())

    def image(self, name: str) -> OciImage:
        return next(built for built in self.built.images if built.name == name)

    def manifest(self, name: str) -> bytes:
        return self.image(name).manifest

    def sbom(self, name: str, image: PublishedImage) -> bytes:
        oci = self.image(name)
        contents = self.contents.of([(layer.digest, oci.store.path(layer.digest)) for layer in oci.layers])
        document = sbom(name, image, contents, self.locked, self.built.version)
        return statement([(image.repository, image.digest)], SPDX_PREDICATE, document)


class Signer:
    """Signs with one key through the registry the images were published to (clients from compose.py)."""

    def __init__(
        self,
        key: SigningKey,
        registry: Callable[[str], RegistryClient],
        step: Step = silent_step,
        environ: Mapping[str, str] | None = None,
        home: Callable[[str], str] = same,
    ):
        self.key, self.registry, self.step = key, registry, step
        self.environ = os.environ if environ is None else environ
        self.home = home  # where an image repository's signatures go (deploy/registry/artifact_registry.py)

    def attest(self, built: Built[Any], record: BuildRecord) -> BuildRecord:
        build = _Build(built, record, self.environ)
        attached = {name: self._attach(name, image, build) for name, image in record.images.items()}
        return replace(record, attached=MappingProxyType(attached))

    def _attach(self, name: str, image: PublishedImage, build: _Build) -> Attached:
        attachments = attachments_of(image, self.registry, self.home)
        subject = attachments.subject(image.digest, build.manifest(name))
        signatures = attachments.layers(image.digest, "sig")
        if signed(signatures, self.key.public, image):
            self.step(name, "already signed with this key")
        else:
            new = signature(self.key, image.repository, image.digest)
            attachments.put(image.digest, "sig", [*signatures, new], subject)
            self.step(name, f"signed {image.digest[:19]}{' (listed as a referrer)' if subject else ''}")
        layers = attachments.layers(image.digest, "att")
        found = attested(layers, self.key.public, image.digest)
        wanted = {SPDX_PREDICATE: lambda: build.sbom(name, image), SLSA_PREDICATE: lambda: build.provenance}
        added: list[Payload] = [
            attestation(self.key, make(), predicate) for predicate, make in wanted.items() if predicate not in found
        ]
        if added:
            attachments.put(image.digest, "att", [*layers, *added], subject)
            found = attested([*layers, *added], self.key.public, image.digest)
            self.step(name, f"attested {image.digest[:19]} (SPDX SBOM, SLSA provenance)")
        return Attached(
            attachments.reference(image.digest, "sig"),
            attachments.reference(image.digest, "att"),
            found[SPDX_PREDICATE],
            found[SLSA_PREDICATE],
        )
