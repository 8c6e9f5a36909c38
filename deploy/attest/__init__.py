"""Images you can prove: SBOMs and SLSA provenance, signed in cosign's format, and checked before a deploy."""

from __future__ import annotations

from typing import Any, Protocol

from deploy.builders import Built
from deploy.model.images import BuildRecord

KEY_VARIABLE = "K8SDEPLOY_SIGNING_KEY"  # the private key's PEM text, for CI secrets
PASSWORD_VARIABLE = "K8SDEPLOY_SIGNING_PASSWORD"  # the passphrase of an encrypted private key


class Attester(Protocol):
    def attest(self, built: Built[Any], record: BuildRecord) -> BuildRecord:
        """After publishing: sign the record's images and attach their attestations; the record says where."""


def same(repository: str) -> str:
    """Where an image's signatures are when they are beside it: its own repository."""
    return repository


class Unsigned:
    """No signing key: the images are published as they are."""

    def attest(self, built: Built[Any], record: BuildRecord) -> BuildRecord:
        return record
