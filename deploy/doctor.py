"""`k8sdeploy doctor`: what stands between an environment and a deploy that goes through, found before anything is
created, each as one line with its fix. The environment's own checks (its TLS certificate, its keys, its pinned
bases) ask nothing of a cloud: `up`, `rollback` and `promote` run them before they build or create anything. Its
kind adds its own (deploy/targets/kit.py TargetKit.doctor; gke: the project's APIs, the caller's permissions,
quotas, the nodes' capacity, the CI jobs' identity providers)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from deploy.attest import KEY_VARIABLE
from deploy.model.doctor import Finding, missing, passed
from deploy.model.environments import Environment
from deploy.model.errors import DeployError
from deploy.tls import CERT_VARIABLE, TlsMaterial, certificate
from deploy.tls import KEY_VARIABLE as TLS_KEY_VARIABLE

# The public keys k8sdeploy.toml's examples ship (staging.pub, production.pub), whose private halves were thrown
# away: nothing can be signed for them. By the SHA-256 of their base64 body.
PLACEHOLDER_KEYS = {
    "8a92b354133ae300d38d9510a14c68c77740468c213589a285d6f796c34067ce",  # staging.pub
    "cd45901ec2a483082d46e1ee32c7a37f3710d41f07c34f8a23ca5849e917aaef",  # production.pub
}
# The digests the example's [environments.staging.bases] table holds until `k8sdeploy bases` prints real ones
PLACEHOLDER_DIGEST = re.compile(r"@sha256:0{48}[0-9a-f]{16}$")


def key_body(pem: bytes) -> str:
    """The SHA-256 of a PEM file's base64 body, whatever its line breaks and headers."""
    body = b"".join(line.strip() for line in pem.splitlines() if line.strip() and not line.startswith(b"-----"))
    return hashlib.sha256(body).hexdigest()


def tls_findings(
    environment: Environment, environ: Mapping[str, str], read: Callable[[str], bytes | None] | None
) -> list[Finding]:
    """The gateway's certificate: given to k8sdeploy ($K8SDEPLOY_TLS_CERT/_KEY, applied as `tls_secret`), or
    found as that Secret; it covers every name of `hosts` and is valid now."""
    name = environment.tls_secret
    if not name:
        return []
    hosts = environment.hosts
    try:
        material = TlsMaterial.from_environ(environ)
        if material is not None:
            found, origin = material.certificate(), f"${CERT_VARIABLE}"
        else:
            pem = read(name) if read is not None else None
            if pem is None:
                return [
                    missing(
                        "tls",
                        f"no kubernetes.io/tls Secret {name} in namespace {environment.namespace} (a cluster `up` is "
                        "about to create has none)",
                        f"set ${CERT_VARIABLE} and ${TLS_KEY_VARIABLE} (PEM) and `up` applies them as {name}, or "
                        f"create it: kubectl -n {environment.namespace} create secret tls {name} --cert=CERT --key=KEY",
                    )
                ]
            found, origin = certificate(pem, f"Secret {name}"), f"Secret {name}"
    except DeployError as exc:
        return [missing("tls", exc.message, exc.hint)]
    problems = found.problems(hosts)
    if problems:
        return [missing("tls", f"the certificate of {origin} ({found.describe()}): {'; '.join(problems)}",
                        f"issue one for {', '.join(hosts) or 'the gateway'}, or fix hosts in "
                        f"[environments.{environment.name}]")]  # fmt: skip
    covered = f", covering {', '.join(hosts)}" if hosts else " (no hosts: the smoke login connects by address)"
    return [passed("tls", f"{origin} {found.describe()}{covered}")]


def key_findings(
    environment: Environment, environ: Mapping[str, str], purpose: str, signing: bool = True
) -> list[Finding]:
    """The verify key is a real one, and (`signing`) what `up` or `promote` signs with, from $K8SDEPLOY_SIGNING_KEY
    or `signing_key`, is its private half."""
    if environment.verify is None:
        return []
    path = Path(environment.verify.key)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        return [missing("keys", f"cannot read the verify key {path}: {exc.strerror}", "make it: `k8sdeploy keygen`")]
    if key_body(pem) in PLACEHOLDER_KEYS:
        return [
            missing(
                "keys",
                f"the verify key {path.name} is the example's placeholder: nothing can be signed for it",
                f"remove it, run `k8sdeploy keygen --prefix {path.with_suffix('')}`, commit {path.name} and keep the "
                f"private key in the CI secret ${KEY_VARIABLE}",
            )
        ]
    if purpose == "diff" or not signing:
        return [passed("keys", f"verify key {path.name}")]
    from deploy.attest.keys import load_public_key, signing_key  # cryptography: only where a key is read

    try:
        key = signing_key(None, environment.signing_key, environ)
        public = load_public_key(path)
    except DeployError as exc:
        return [missing("keys", exc.message, exc.hint)]
    if key is None:
        return [missing("keys", f"no signing key: `{purpose}` would publish images that verify key {path.name} refuses",
                        f"set ${KEY_VARIABLE} to the private key of {path.name}")]  # fmt: skip
    if key.public.pem != public.pem:
        return [missing("keys", f"the signing key ({key.origin}) is not the private half of {path.name}",
                        f"sign with the key `k8sdeploy keygen` wrote beside {path.name}")]  # fmt: skip
    return [passed("keys", f"signing with {key.origin}, the private half of {path.name}")]


def base_findings(environment: Environment, purpose: str) -> list[Finding]:
    """Every base the environment pins is a real digest (a base it does not pin is built here)."""
    if purpose in ("promote", "rollback"):
        return []  # nothing is built
    placeholders = [name for name, ref in sorted(environment.bases.items()) if PLACEHOLDER_DIGEST.search(ref)]
    if placeholders:
        return [
            missing(
                "bases",
                f"the bases {', '.join(placeholders)} are pinned to the example's placeholder digests",
                f"run `k8sdeploy bases --registry REGISTRY --env {environment.name}` once and paste the table it "
                f"prints into [environments.{environment.name}.bases]",
            )
        ]
    from deploy.builders.bases import DEBIAN_PACKAGES, base_reference  # what the build loads anyway
    from deploy.publish.bases import SERVER

    bases, own_server = environment.bases, environment.database == "mysql" and not environment.mysql_image
    used = [name for name in DEBIAN_PACKAGES if name != SERVER or own_server]  # mariadb: k8sdeploy's MySQL server
    built = [name for name in used if base_reference(name, name, bases).startswith("debootstrap:")]
    if built:
        return [passed("bases", f"{', '.join(built)} built from Debian here (debootstrap, as root; cached once built)")]
    return [passed("bases", "pinned by digest")]


def own_findings(
    environment: Environment,
    environ: Mapping[str, str],
    purpose: str,
    read_certificate: Callable[[str], bytes | None] | None,
    signing: bool = True,
) -> list[Finding]:
    """The environment's own checks, in the order a deploy meets them; `signing`: whether the signing key given
    is checked too (a command's `--key` comes first, and its own check refuses what is unsigned)."""
    return [
        *base_findings(environment, purpose),
        *key_findings(environment, environ, purpose, signing),
        *tls_findings(environment, environ, read_certificate),
    ]
