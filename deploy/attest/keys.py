"""Signing keys: an ECDSA P-256 pair (the private key PKCS#8 PEM, never printed; the public one what cosign reads)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from deploy.attest import KEY_VARIABLE, PASSWORD_VARIABLE
from deploy.model.errors import ConfigError


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


def tracked_by_git(path: Path) -> bool:
    """Whether `path` is in a git work tree and not ignored there: a commit could take it along."""
    directory = path.resolve().parent
    inside = subprocess.run(
        ["git", "-C", str(directory), "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True
    )
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return False
    ignored = subprocess.run(["git", "-C", str(directory), "check-ignore", "-q", path.name], capture_output=True)
    return ignored.returncode != 0


def write_pair(key: SigningKey, prefix: Path, in_work_tree: bool = False) -> tuple[Path, Path]:
    """PREFIX.key (mode 0600, written before anything can read it) and PREFIX.pub; existing files are refused, and
    so is a private key a git commit could take along (in a work tree, not ignored) unless `in_work_tree`."""
    private, public = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    for path in (private, public):
        if path.exists():
            raise ConfigError(f"{path} exists", "remove it, or pass another --prefix; keys are never overwritten")
    if not in_work_tree and tracked_by_git(private):
        raise ConfigError(
            f"{private} would be in a git work tree, not ignored: a commit could publish the private key",
            "write it outside the repository (--prefix ~/keys/NAME), add *.key to .gitignore, or pass --in-work-tree",
        )
    descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(private_pem(key))
    public.write_bytes(key.public.pem)
    return private, public


def _not_a_key(origin: str, kind: str) -> ConfigError:
    return ConfigError(f"{origin} is not an ECDSA P-256 {kind} key in PEM", "make a pair with `k8sdeploy keygen`")


def load_signing_key(pem: bytes, origin: str, passphrase: Callable[[], str | None] = lambda: None) -> SigningKey:
    """The key of PEM text `pem`; an encrypted PKCS#8 key is opened with `passphrase()`."""
    password = None
    if b"ENCRYPTED PRIVATE KEY" in pem:
        given = passphrase()
        if not given:
            raise ConfigError(
                f"{origin} is an encrypted private key and no passphrase was given",
                f"set ${PASSWORD_VARIABLE}, or run on a terminal to be asked for it",
            )
        password = given.encode()
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError):
        if password is not None:
            raise ConfigError(f"{origin}: the passphrase does not open it", f"check ${PASSWORD_VARIABLE}") from None
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


def signing_key(
    path: Path | None,
    configured: str = "",
    environ: Mapping[str, str] | None = None,
    warn: Callable[[str], None] = lambda _line: None,
    prompt: Callable[[str], str] | None = None,
) -> SigningKey | None:
    """The key to sign with: the file `path` (--key), else $K8SDEPLOY_SIGNING_KEY (its PEM text), else the file
    the environment's `signing_key` names, else None. A key file others may read is warned about; an encrypted
    key is opened with $K8SDEPLOY_SIGNING_PASSWORD, else by asking (`prompt`, on a terminal)."""
    environ = os.environ if environ is None else environ

    def passphrase() -> str | None:
        if environ.get(PASSWORD_VARIABLE):
            return environ[PASSWORD_VARIABLE]
        return prompt("passphrase of the signing key") if prompt is not None else None

    if path is None and not environ.get(KEY_VARIABLE) and configured:
        path = Path(configured)
    if path is not None:
        try:
            pem, mode = path.read_bytes(), path.stat().st_mode
        except FileNotFoundError:
            raise ConfigError(f"no signing key at {path}", "write a pair with `k8sdeploy keygen`") from None
        if mode & 0o077:
            warn(f"warning: {path} may be read by others (mode {mode & 0o777:o}): chmod 600 {path}")
        return load_signing_key(pem, str(path), passphrase)
    if environ.get(KEY_VARIABLE):
        return load_signing_key(environ[KEY_VARIABLE].encode(), f"${KEY_VARIABLE}", passphrase)
    return None
