"""Signing keys: an ECDSA P-256 pair (the private key PKCS#8 PEM, never printed; the public one what cosign reads)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from deploy.model.errors import ConfigError

KEY_VARIABLE = "K8SDEPLOY_SIGNING_KEY"  # the private key's PEM text, for CI secrets


@dataclass(frozen=True)
class PublicKey:
    """An ECDSA P-256 public key; verifies ASN.1 DER signatures over SHA-256."""

    key: ec.EllipticCurvePublicKey = field(repr=False)

    @property
    def pem(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def verifies(self, signature: bytes, data: bytes) -> bool:
        try:
            self.key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """An ECDSA P-256 private key and where it came from (a file or $K8SDEPLOY_SIGNING_KEY); repr shows no key."""

    key: ec.EllipticCurvePrivateKey = field(repr=False)
    origin: str

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key.public_key())

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))


def generate() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "generated")


def private_pem(key: SigningKey) -> bytes:
    return key.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_pair(key: SigningKey, prefix: Path) -> tuple[Path, Path]:
    """PREFIX.key (mode 0600, written before anything can read it) and PREFIX.pub; existing files are refused."""
    private, public = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    for path in (private, public):
        if path.exists():
            raise ConfigError(f"{path} exists", "remove it, or pass another --prefix; keys are never overwritten")
    descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(private_pem(key))
    public.write_bytes(key.public.pem)
    return private, public


def _not_a_key(origin: str, kind: str) -> ConfigError:
    return ConfigError(
        f"{origin} is not an unencrypted ECDSA P-256 {kind} key in PEM", "make a pair with `k8sdeploy keygen`"
    )


def load_signing_key(pem: bytes, origin: str) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise _not_a_key(origin, "private") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise _not_a_key(origin, "private")
    return SigningKey(key, origin)


def load_public_key(path: Path) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"no public key at {path}", "write it with `k8sdeploy keygen`, or fix verify.key") from None
    except ValueError:
        raise _not_a_key(str(path), "public") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise _not_a_key(str(path), "public")
    return PublicKey(key)


def signing_key(path: Path | None, configured: str = "", environ: Mapping[str, str] | None = None) -> SigningKey | None:
    """The key to sign with: the file `path` (--key), else $K8SDEPLOY_SIGNING_KEY (its PEM text), else the file
    the environment's `signing_key` names, else None."""
    environ = os.environ if environ is None else environ
    if path is None and not environ.get(KEY_VARIABLE) and configured:
        path = Path(configured)
    if path is not None:
        try:
            return load_signing_key(path.read_bytes(), str(path))
        except FileNotFoundError:
            raise ConfigError(f"no signing key at {path}", "write a pair with `k8sdeploy keygen`") from None
    if environ.get(KEY_VARIABLE):
        return load_signing_key(environ[KEY_VARIABLE].encode(), f"${KEY_VARIABLE}")
    return None
