"""The gateway's TLS certificate: read from the environment's variables or its Secret, checked against the names it
must serve, and made into the kubernetes.io/tls Secret `up` applies when the certificate is given to k8sdeploy.

A first deploy to a new cluster cannot find a Secret made by hand (the cluster does not exist yet), so the
certificate and its key may be given as $K8SDEPLOY_TLS_CERT and $K8SDEPLOY_TLS_KEY (PEM text: CI secrets); `up`
then applies them as the environment's `tls_secret`, owned and removed like its other objects."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from deploy.model.errors import ConfigError

CERT_VARIABLE, KEY_VARIABLE = "K8SDEPLOY_TLS_CERT", "K8SDEPLOY_TLS_KEY"


def is_address(host: str) -> bool:
    """Whether `host` is an IP address literal (an IPv6 one with or without its brackets)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def covers(names: Sequence[str], host: str) -> bool:
    """Whether a certificate for `names` is one a client accepts for `host` (RFC 6125 6.4: a wildcard stands for
    exactly the left-most label; an IP address matches only an IP entry)."""
    host = host.lower().strip("[]")
    if is_address(host):
        return host in names
    wildcard = "*." + host.partition(".")[2] if "." in host else ""
    return any(name.lower() in (host, wildcard) for name in names)


@dataclass(frozen=True)
class Certificate:
    """What matters of a server certificate here: the names it is valid for and when."""

    names: tuple[str, ...]  # its subjectAltName DNS names (lower case) and IP addresses
    not_before: datetime
    not_after: datetime

    def covers(self, host: str) -> bool:
        """Whether a client connecting to `host` accepts it (RFC 6125 6.4: a wildcard stands for exactly the
        left-most label; an IP address only as an IP entry)."""
        return covers(self.names, host)

    def problems(self, hosts: Sequence[str], now: datetime | None = None) -> list[str]:
        """Why a client would refuse it for `hosts`: a name it does not cover, or a date outside its validity."""
        now = now or datetime.now(UTC)
        found = [f"it does not name {host}" for host in hosts if not self.covers(host)]
        if now > self.not_after:
            found.append(f"it expired on {self.not_after:%Y-%m-%d}")
        elif now < self.not_before:
            found.append(f"it is valid only from {self.not_before:%Y-%m-%d %H:%M} UTC")
        return found

    def describe(self) -> str:
        return f"for {', '.join(self.names) or 'no name'}, valid until {self.not_after:%Y-%m-%d}"


def certificate(pem: bytes, origin: str) -> Certificate:
    """The leaf (first) certificate of a PEM chain; a ConfigError names `origin` when it is none."""
    from cryptography import x509  # loaded only where a certificate is read

    try:
        leaf = x509.load_pem_x509_certificates(pem)[0]
    except ValueError:
        raise ConfigError(f"{origin} is not a PEM certificate", "give the chain, leaf first, in PEM") from None
    return _read(leaf, common_names=False)


def served_certificate(der: bytes) -> Certificate:
    """A certificate as a TLS handshake gives it (DER), to say what it is for: without subjectAltName, by its
    common names."""
    from cryptography import x509

    return _read(x509.load_der_x509_certificate(der), common_names=True)


def _read(leaf: Any, common_names: bool) -> Certificate:
    """The names an x509.Certificate is for: its subjectAltName DNS names (lower case) and IP addresses, where
    clients match names (RFC 6125 6.4.4); without that extension none, or (`common_names`, to name it in a message)
    its common names."""
    from cryptography import x509

    try:
        extension = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [name.lower() for name in extension.get_values_for_type(x509.DNSName)]
        names += [str(address) for address in extension.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        common = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME) if common_names else []
        names = [str(attribute.value) for attribute in common]
    return Certificate(tuple(names), leaf.not_valid_before_utc, leaf.not_valid_after_utc)


@dataclass(frozen=True)
class TlsMaterial:
    """A certificate chain and its private key given to k8sdeploy, as PEM."""

    cert: bytes
    key: bytes

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> TlsMaterial | None:
        """$K8SDEPLOY_TLS_CERT and $K8SDEPLOY_TLS_KEY, or None when neither is set; one without the other is an
        error."""
        cert, key = environ.get(CERT_VARIABLE, ""), environ.get(KEY_VARIABLE, "")
        if not cert and not key:
            return None
        if not cert or not key:
            given, lacking = (CERT_VARIABLE, KEY_VARIABLE) if cert else (KEY_VARIABLE, CERT_VARIABLE)
            raise ConfigError(f"${given} is set but ${lacking} is not", "set both (PEM text), or neither")
        return cls(cert.encode(), key.encode())

    def certificate(self) -> Certificate:
        """The leaf certificate, checked to belong to the key."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        leaf = certificate(self.cert, f"${CERT_VARIABLE}")
        try:
            key = serialization.load_pem_private_key(self.key, password=None)
        except (ValueError, TypeError):
            raise ConfigError(
                f"${KEY_VARIABLE} is not an unencrypted PEM private key", "give the certificate's key in PEM"
            ) from None
        public = x509.load_pem_x509_certificates(self.cert)[0].public_key()
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(serialization.Encoding.DER, spki) != public.public_bytes(
            serialization.Encoding.DER, spki
        ):
            raise ConfigError(
                f"${KEY_VARIABLE} is not the key of the certificate in ${CERT_VARIABLE}",
                "give the key the certificate was issued for",
            )
        return leaf

    def secret(self, name: str, namespace: str, labels: Mapping[str, str]) -> dict:
        """The kubernetes.io/tls Secret the gateway mounts (tls.crt, tls.key)."""
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "data": {
                "tls.crt": base64.b64encode(self.cert).decode(),
                "tls.key": base64.b64encode(self.key).decode(),
            },
        }
