"""The identity master keys on Kubernetes targets (deploy/identity.py): the Secret k8sdeploy-identity, applied with
the deploy's objects; the parts' key files are Secret volumes, which the kubelet updates in running pods."""

from __future__ import annotations

from collections.abc import Callable

from deploy.identity import IDENTITY_SECRET, Identity, from_secret
from deploy.targets.kube import SECRET
from deploy.targets.kube.client import KubeApi

# How long after a rotation parts start to sign with the new key: the kubelet refreshes Secret volumes after its
# sync period (1 minute) plus its cache's TTL; a part that signs earlier would not be believed by one that has not
# read the new key yet.
PROPAGATION_SECONDS = 120


class KubeIdentity:
    propagation_seconds = PROPAGATION_SECONDS

    def __init__(self, api: Callable[[], KubeApi | None], namespace: str, env_name: str):
        self.api, self.namespace, self.env_name = api, namespace, env_name

    def read(self) -> Identity | None:
        api = self.api()
        return from_secret(self.env_name, api.get(SECRET, self.namespace, IDENTITY_SECRET)) if api else None

    def save(self, identity: Identity) -> None:
        """Kept with the deploy's objects (the namespace may not exist yet): see objects()."""

    def objects(self, identity: Identity) -> tuple[dict, ...]:
        return (identity.master_secret(self.namespace),)
