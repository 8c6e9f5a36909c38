"""Release history in the cluster: one ConfigMap per environment, beside the objects it records.

It is labelled `app.kubernetes.io/managed-by=k8sdeploy` and `k8sdeploy.io/release-history=<environment>`
but not `app.kubernetes.io/instance`, so prune and `down` of the rendered objects leave it; it goes
when `down` deletes the namespace k8sdeploy created.
"""

from __future__ import annotations

import json

from ...errors import ConfigError
from ...releases import FORMAT, Release
from . import MANAGED_BY, MANAGER, Kind
from .client import KubeApi

CONFIGMAP = Kind("ConfigMap", "v1", "configmaps")
HISTORY_LABEL = "k8sdeploy.io/release-history"
KEY = "releases.json"


class ConfigMapHistory:
    def __init__(self, api: KubeApi, namespace: str, instance: str):
        self.api = api
        self.namespace = namespace
        self.instance = instance
        self.name = f"k8sdeploy-releases-{instance}"

    def releases(self) -> list[Release]:
        live = self.api.get(CONFIGMAP, self.namespace, self.name)
        if live is None:
            return []
        try:
            return [Release.from_dict(entry) for entry in json.loads(live["data"][KEY])["releases"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"ConfigMap {self.namespace}/{self.name} is not a k8sdeploy release history ({exc})",
                              "delete it; the next `up` starts a new history") from exc

    def record(self, release: Release) -> None:
        entries = [r.to_dict() for r in self.releases()] + [release.to_dict()]
        self.api.apply(CONFIGMAP, self.namespace, {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace,
                         "labels": {MANAGED_BY: MANAGER, HISTORY_LABEL: self.instance}},
            "data": {KEY: json.dumps({"format": FORMAT, "releases": entries}, indent=2) + "\n"},
        }, force=True)
