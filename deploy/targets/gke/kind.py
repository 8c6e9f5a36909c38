"""The gke target kind: a GKE cluster k8sdeploy creates, with its firewall rule; the environment's records are
objects in the cluster's namespace once it runs (none before); `dev` publishes new images; the registry may be an
Artifact Registry repository under any host name (Google is asked)."""

from __future__ import annotations

from deploy.model.environments import Environment
from deploy.model.progress import Say
from deploy.targets.gke.history import ClusterHistory
from deploy.targets.gke.target import ClusterLease
from deploy.targets.kit import Connections, Kind, KitOptions, TargetKit
from deploy.targets.kube.client import KubeApi
from deploy.targets.kube.identity import KubeIdentity
from deploy.targets.kube.lease import KubeLease
from deploy.targets.kube.secrets import tls_certificate
from deploy.targets.kube.users import KubeUsers


def kit(environment: Environment, connections: Connections, say: Say, options: KitOptions) -> TargetKit:
    gke = connections.gke(environment, say, options.keep_cluster)
    namespace, name = environment.namespace, environment.name

    def running_api() -> KubeApi | None:
        kube = gke.kube(gke.cluster.find())
        return kube.api if kube is not None else None

    return TargetKit(
        environment,
        gke,
        ClusterHistory(gke),
        ClusterLease(gke, lambda api: KubeLease(api, namespace, name, say), say),
        KubeUsers(running_api, namespace, name, say),
        KubeIdentity(running_api, namespace, name),
        preflight=gke.firewall.check_network,
        doctor=lambda objects, purpose: connections.gke_doctor(environment)(objects, purpose),
        tls_certificate=tls_certificate(running_api, namespace),
    )


KIND = Kind(kit, registry_on_google=True, own_cluster=True)
