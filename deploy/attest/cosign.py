"""cosign's formats, written and read here: simple-signing payloads under `sha256-HEX.sig`, in-toto statements in
DSSE envelopes under `sha256-HEX.att` (cosign specs/SIGNATURE_SPEC.md, ATTESTATION_SPEC.md; pkg/oci/static)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from deploy.attest.keys import PublicKey, SigningKey
from deploy.builders.store import OCI_CONFIG, OCI_MANIFEST, canonical_json, sha256_digest

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_ANNOTATION = "predicateType"
SIGNATURE_TYPE = "cosign container image signature"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SPDX_PREDICATE = "https://spdx.dev/Document"
SLSA_PREDICATE = "https://slsa.dev/provenance/v1"
PROMOTION_PREDICATE = "https://k8sdeploy.dev/promotion/v1"  # `promote`'s (deploy/attest/promotion.py)


def tag_for(digest: str, suffix: str) -> str:
    """cosign's tag scheme: sha256:HEX -> sha256-HEX.sig (or .att)."""
    return digest.replace(":", "-") + "." + suffix


@dataclass(frozen=True)
class Payload:
    """One layer of a signature or attestation manifest: its bytes, media type and annotations."""

    data: bytes = field(repr=False)
    media_type: str
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self) -> dict:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.data),
            "annotations": dict(self.annotations),
        }


def simple_signing(repository: str, digest: str) -> bytes:
    """The payload cosign signs for an image: the repository (docker-reference) and the manifest digest."""
    critical = {
        "identity": {"docker-reference": repository},
        "image": {"docker-manifest-digest": digest},
        "type": SIGNATURE_TYPE,
    }
    return canonical_json({"critical": critical, "optional": None})


def signature(key: SigningKey, repository: str, digest: str) -> Payload:
    """A signature layer: ECDSA (ASN.1 DER) over the simple-signing payload, base64 in the annotation."""
    payload = simple_signing(repository, digest)
    encoded = base64.b64encode(key.sign(payload)).decode()
    return Payload(payload, SIMPLE_SIGNING, ((SIGNATURE_ANNOTATION, encoded),))


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding, what is signed (secure-systems-lab/dsse protocol.md)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def statement(subjects: Sequence[tuple[str, str]], predicate_type: str, predicate: dict) -> bytes:
    """An in-toto v1 Statement about (name, sha256:HEX) subjects."""
    return canonical_json(
        {
            "_type": STATEMENT_V1,
            "subject": [
                {"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}} for name, digest in subjects
            ],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    )


def attestation(key: SigningKey, statement_bytes: bytes, predicate_type: str) -> Payload:
    """An attestation layer: the statement in a DSSE envelope signed with `key`; cosign's empty signature
    annotation and the predicate type beside it."""
    signed = base64.b64encode(key.sign(pae(IN_TOTO, statement_bytes))).decode()
    envelope = {
        "payloadType": IN_TOTO,
        "payload": base64.b64encode(statement_bytes).decode(),
        "signatures": [{"keyid": "", "sig": signed}],
    }
    return Payload(canonical_json(envelope), DSSE, ((SIGNATURE_ANNOTATION, ""), (PREDICATE_ANNOTATION, predicate_type)))


def manifest(layers: Sequence[Payload], subject: dict | None = None) -> tuple[bytes, bytes]:
    """The OCI image manifest holding `layers`, and its config (cosign's: empty but for the layers' diff_ids);
    with `subject` (the image's descriptor) a registry serving OCI 1.1 referrers lists it among the image's."""
    config = canonical_json(
        {
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        }
    )
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
        "layers": [layer.descriptor() for layer in layers],
        **({"subject": subject} if subject else {}),
    }
    return canonical_json(body), config


def signs(layer: Payload, key: PublicKey, digest: str, repository: str) -> bool:
    """Whether `layer` is a simple-signing signature by `key` of the image `digest` in `repository` (its
    docker-reference: a signature made for the same digest elsewhere does not vouch for this repository)."""
    encoded = dict(layer.annotations).get(SIGNATURE_ANNOTATION, "")
    try:
        claim = json.loads(layer.data)["critical"]
        ok = claim["type"] == SIGNATURE_TYPE and claim["image"]["docker-manifest-digest"] == digest
        ok = ok and claim["identity"]["docker-reference"] == repository
        return ok and key.verifies(base64.b64decode(encoded, validate=True), layer.data)
    except (ValueError, KeyError, TypeError):
        return False


def envelope_statement(layer: Payload) -> bytes:
    """The in-toto statement an attestation layer's DSSE envelope carries, as signed (not verified here)."""
    try:
        return base64.b64decode(json.loads(layer.data)["payload"], validate=True)
    except (ValueError, KeyError, TypeError):
        return b""


def attests(layer: Payload, key: PublicKey, digest: str) -> dict | None:
    """The in-toto statement of `layer` when its envelope is signed by `key` and `digest` is a subject of it."""
    try:
        envelope = json.loads(layer.data)
        body = base64.b64decode(envelope["payload"], validate=True)
        if envelope["payloadType"] != IN_TOTO:
            return None
        signed = pae(IN_TOTO, body)
        if not any(key.verifies(base64.b64decode(s["sig"], validate=True), signed) for s in envelope["signatures"]):
            return None
        found = json.loads(body)
        subjects = {"sha256:" + subject["digest"].get("sha256", "") for subject in found["subject"]}
        return found if digest in subjects else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
