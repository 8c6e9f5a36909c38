"""The kubeconfig target kind: any cluster a kubeconfig context reaches; the environment's records are objects in
its namespace (a ConfigMap of releases, a Lease, the users' and identity Secrets); `dev` publishes new images."""

from __future__ import annotations

from pathlib import Path

from deploy.model.environments import Environment
from deploy.model.progress import Say
from deploy.targets.kit import Connections, Kind, KitOptions, TargetKit
from deploy.targets.kube.history import ConfigMapHistory
from deploy.targets.kube.identity import KubeIdentity
from deploy.targets.kube.kubeconfig import kubeconfig_api
from deploy.targets.kube.lease import KubeLease
from deploy.targets.kube.secrets import tls_certificate
from deploy.targets.kube.target import KubeTarget
from deploy.targets.kube.users import KubeUsers


def kit(environment: Environment, connections: Connections, say: Say, _options: KitOptions) -> TargetKit:
    table = environment.kubeconfig
    assert table is not None  # this kind's environments have its table
    api = kubeconfig_api(table.context, Path(table.file).expanduser() if table.file else None)
    namespace, name = environment.namespace, environment.name
    return TargetKit(
        environment,
        KubeTarget(api, namespace, name, say, check_policies=True),
        ConfigMapHistory(api, namespace, name),
        KubeLease(api, namespace, name, say),
        KubeUsers(lambda: api, namespace, name, say),
        KubeIdentity(lambda: api, namespace, name),
        tls_certificate=tls_certificate(lambda: api, namespace),
    )


KIND = Kind(kit)
