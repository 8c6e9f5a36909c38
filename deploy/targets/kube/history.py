"""Release history in the cluster: one ConfigMap per environment, beside the objects it records.

It is labelled `app.kubernetes.io/managed-by=k8sdeploy` and `k8sdeploy.io/release-history=<environment>`
but not `app.kubernetes.io/instance`, so prune and `down` of the rendered objects leave it; it goes
when `down` deletes the namespace k8sdeploy created.
"""

from __future__ import annotations

import json

from deploy.model.errors import ConfigError, KubeApiError
from deploy.model.releases import FORMAT, Release
from deploy.targets.kube import MANAGED_BY, MANAGER, Resource
from deploy.targets.kube.client import KubeApi

CONFIGMAP = Resource("ConfigMap", "v1", "configmaps")
HISTORY_LABEL = "k8sdeploy.io/release-history"
KEY = "releases.json"


class ConfigMapHistory:
    def __init__(self, api: KubeApi, namespace: str, env_name: str):
        self.api = api
        self.namespace = namespace
        self.env_name = env_name
        self.name = f"k8sdeploy-releases-{env_name}"

    def read(self) -> tuple[list[Release], str]:
        """The releases, and the resourceVersion they were read at ('' when there is no history yet)."""
        live = self.api.get(CONFIGMAP, self.namespace, self.name)
        if live is None:
            return [], ""
        try:
            releases = [Release.from_dict(entry) for entry in json.loads(live["data"][KEY])["releases"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"ConfigMap {self.namespace}/{self.name} is not a k8sdeploy release history ({exc})",
                "delete it; the next `up` starts a new history",
            ) from exc
        return releases, live["metadata"]["resourceVersion"]

    def releases(self) -> list[Release]:
        return self.read()[0]

    def record(self, release: Release, attempts: int = 5) -> None:
        """Append, with the resourceVersion read as a precondition: a writer in between makes the API server
        answer 409, and the append is done again on what it wrote, so no entry is lost."""
        for attempt in range(attempts):
            releases, version = self.read()
            if releases and releases[-1] == release:  # an earlier write whose answer was lost: it happened
                return
            metadata = {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {MANAGED_BY: MANAGER, HISTORY_LABEL: self.env_name},
            }
            if version:
                metadata["resourceVersion"] = version
            entries = [r.to_dict() for r in releases] + [release.to_dict()]
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata,
                "data": {KEY: json.dumps({"format": FORMAT, "releases": entries}, indent=2) + "\n"},
            }
            try:
                if version:
                    self.api.apply(CONFIGMAP, self.namespace, body, force=True)
                else:
                    self.api.request(
                        "POST",
                        CONFIGMAP.path(self.namespace),
                        {"fieldManager": MANAGER},
                        body,
                        landed=lambda: {} if self.releases()[-1:] == [release] else None,
                    )
                return
            except KubeApiError as exc:
                if exc.status != 409 or attempt == attempts - 1:
                    raise
