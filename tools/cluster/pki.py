"""The control plane's certificates and keys: one CA, the API server's serving certificate, client
certificates for each component (the users RBAC's bootstrap policy knows), and the service-account key."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# user -> (common name, organisation): what the API server takes as user name and group
CLIENTS = {
    "admin": ("kubernetes-admin", "system:masters"),
    "kube-controller-manager": ("system:kube-controller-manager", ""),
    "kube-scheduler": ("system:kube-scheduler", ""),
    "kwok": ("kwok-controller", "system:masters"),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),
    # the real node's (tools/cluster/node.py): the Node authorizer's and the bootstrap policy's users
    "node": ("system:node:k8sdeploy-node", "system:nodes"),
    "kube-proxy": ("system:kube-proxy", ""),
    "coredns": ("system:coredns", ""),  # bound to a role of its own when the node starts
}
SERVING_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
SERVING_IPS = ("127.0.0.1", "10.96.0.1")


def random_token() -> str:
    return secrets.token_urlsafe(24)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common: str, organisation: str = "") -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if organisation:
        parts.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(parts)


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signer: ec.EllipticCurvePrivateKey,
    ca: bool = False,
    usage: tuple = (),
    names: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
    if names or ips:
        alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = directory / f"{name}.key"
    key_file.touch(mode=0o600)
    key_file.write_bytes(_pem_key(key))


def write_all(directory: Path) -> None:
    """CA, serving certificate, client certificates and the service-account key pair, into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_key, ca_name = _key(), _name("k8sdeploy-test-ca")
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, ca=True)
    _write(directory, "ca", ca, ca_key)
    key = _key()
    serving = _certificate(
        _name("kube-apiserver"),
        key,
        ca_name,
        ca_key,
        usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
        names=SERVING_NAMES,
        ips=SERVING_IPS,
    )
    _write(directory, "apiserver", serving, key)
    for user, (common, organisation) in CLIENTS.items():
        key = _key()
        _write(
            directory,
            user,
            _certificate(_name(common, organisation), key, ca_name, ca_key, usage=(ExtendedKeyUsageOID.CLIENT_AUTH,)),
            key,
        )
    sa_key = _key()
    (directory / "sa.key").touch(mode=0o600)
    (directory / "sa.key").write_bytes(_pem_key(sa_key))
    (directory / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def kubeconfig(directory: Path, server: str, user: str) -> dict:
    """A kubeconfig for `user` (a key of CLIENTS) with its certificate and the CA embedded."""

    def data(name: str) -> str:
        return base64.b64encode((directory / name).read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "k8sdeploy-cluster",
        "clusters": [
            {"name": "k8sdeploy-cluster", "cluster": {"server": server, "certificate-authority-data": data("ca.crt")}}
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": data(f"{user}.crt"), "client-key-data": data(f"{user}.key")},
            }
        ],
        "contexts": [{"name": "k8sdeploy-cluster", "context": {"cluster": "k8sdeploy-cluster", "user": user}}],
    }
