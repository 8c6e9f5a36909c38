"""The kubeconfig target's client: an existing cluster by kubeconfig context (kind, minikube, any provider)."""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.config_exception import ConfigException

from deploy.model.errors import ConfigError
from deploy.targets.kube.client import KubeApi, configured


def kubeconfig_api(context: str = "", path: Path | None = None) -> KubeApi:
    """A KubeApi for `context` (the current one when empty) of the kubeconfig at `path` (or $KUBECONFIG)."""
    configuration = Configuration()
    files = str(path) if path else os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        kube_config.load_kube_config(
            config_file=files, context=context or None, client_configuration=configuration, persist_config=False
        )
    except (ConfigException, FileNotFoundError) as exc:
        where = f" in {path}" if path else " (KUBECONFIG or ~/.kube/config)"
        raise ConfigError(
            f"cannot use kubeconfig context {context or '(current)'}{where}: {exc}",
            "set kube_context in k8sdeploy.toml to a context of `kubectl config get-contexts`",
        ) from None
    return KubeApi(ApiClient(configured(configuration)))
