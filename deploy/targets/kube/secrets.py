"""Secrets of the namespace that k8sdeploy reads but need not have made: the gateway's TLS certificate."""

from __future__ import annotations

import base64
from collections.abc import Callable

from deploy.targets.kube import SECRET
from deploy.targets.kube.client import KubeApi


def tls_certificate(api: Callable[[], KubeApi | None], namespace: str) -> Callable[[str], bytes | None]:
    """The tls.crt of a kubernetes.io/tls Secret of `namespace` by name; None when it is not there, or there is no
    cluster yet (`api()` None)."""

    def read(name: str) -> bytes | None:
        client = api()
        found = client.get(SECRET, namespace, name) if client is not None else None
        if found is None or "tls.crt" not in (found.get("data") or {}):
            return None
        return base64.b64decode(found["data"]["tls.crt"])

    return read
