"""Release history of a gke environment: the kubeconfig target's ConfigMap, in the environment's cluster.

No cluster, no history: before the first `up` nothing is recorded, and `down` (which removes the
cluster, or with --keep-cluster the namespace k8sdeploy created) takes the history with it, as it
takes everything else of the environment.
"""

from __future__ import annotations

from deploy.model.releases import Release
from deploy.targets.gke.target import GkeTarget
from deploy.targets.kube.history import ConfigMapHistory


class ClusterHistory:
    def __init__(self, target: GkeTarget):
        self.target = target

    def in_cluster(self, required: bool) -> ConfigMapHistory | None:
        kube = self.target.require() if required else self.target.kube(self.target.cluster.find())
        return None if kube is None else ConfigMapHistory(kube.api, kube.namespace, kube.env_name)

    def releases(self) -> list[Release]:
        history = self.in_cluster(required=False)
        return history.releases() if history is not None else []

    def record(self, release: Release) -> None:
        history = self.in_cluster(required=True)
        assert history is not None  # require() returns the running cluster's target or raises
        history.record(release)
