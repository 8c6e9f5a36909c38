"""Signature and attestation manifests in a registry, by cosign's tag scheme: read their layers, add to them."""

from __future__ import annotations

import json
from collections.abc import Sequence

from deploy.attest.cosign import Payload, manifest, tag_for
from deploy.builders.store import OCI_MANIFEST, sha256_digest
from deploy.model.errors import PublishError
from deploy.registry.client import RegistryClient


class Attachments:
    """The `.sig` and `.att` manifests of the images of one repository, under cosign's tag scheme (which every
    cosign reads); where the registry serves OCI 1.1 referrers they also name the image as their subject, so the
    referrers API lists them (Debian's distribution 2.8 does not serve it)."""

    def __init__(self, client: RegistryClient, repository: str):
        self.client, self.repository = client, repository
        self._referrers: bool | None = None
        self._read: dict[tuple[str, str], list[Payload]] = {}  # what layers() downloaded, until put() replaces it

    def subject(self, digest: str, manifest_bytes: bytes, media_type: str = OCI_MANIFEST) -> dict | None:
        """The image's descriptor, where the registry answers the referrers API (probed once); else None."""
        if self._referrers is None:
            self._referrers = self.client.answers_referrers(self.repository, digest)
        return {"mediaType": media_type, "digest": digest, "size": len(manifest_bytes)} if self._referrers else None

    def layers(self, digest: str, suffix: str) -> list[Payload]:
        """The layers of the image's `suffix` (sig or att) manifest, each with its payload; [] when there is none.
        Read once per digest and suffix (verify checks the attestations, then reads where the image came from)."""
        if (digest, suffix) not in self._read:
            self._read[(digest, suffix)] = self._download(digest, suffix)
        return list(self._read[(digest, suffix)])

    def _download(self, digest: str, suffix: str) -> list[Payload]:
        found = self.client.get_manifest(self.repository, tag_for(digest, suffix))
        if found is None:
            return []
        try:
            descriptors = json.loads(found[0])["layers"]
        except (ValueError, KeyError, TypeError):
            return []
        layers = []
        for descriptor in descriptors:
            data = self.client.download_blob(self.repository, descriptor["digest"])
            if sha256_digest(data) != descriptor["digest"]:
                raise PublishError(
                    f"registry {self.client.host} served {self.repository}@{descriptor['digest'][:19]} "
                    "with other content",
                    "the registry's storage is corrupt: check it, then run again",
                )
            annotations = tuple(sorted((descriptor.get("annotations") or {}).items()))
            layers.append(Payload(data, descriptor.get("mediaType", ""), annotations))
        return layers

    def put(self, digest: str, suffix: str, layers: Sequence[Payload], subject: dict | None = None) -> str:
        """Push `layers` (blobs, config, then the manifest under the tag); returns HOST/REPO:TAG."""
        body, config = manifest(layers, subject)
        for blob in (*(layer.data for layer in layers), config):
            blob_digest = sha256_digest(blob)
            if not self.client.has_blob(self.repository, blob_digest):
                self.client.upload_blob(self.repository, blob_digest, blob, len(blob))
        tag = tag_for(digest, suffix)
        self.client.put_manifest(self.repository, tag, body, OCI_MANIFEST)
        self._read[(digest, suffix)] = list(layers)
        return self.reference(digest, suffix)

    def reference(self, digest: str, suffix: str) -> str:
        return f"{self.client.host}/{self.repository}:{tag_for(digest, suffix)}"
