"""A small resource client over the `kubernetes` library's ApiClient: get, list, apply, delete, logs."""

from __future__ import annotations

import json
from typing import Callable, Iterator

import urllib3
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

from ...errors import CloudError, CredentialsError
from . import MANAGER, POD, Kind

APPLY_PATCH = "application/apply-patch+yaml"


def with_retries(configuration: Configuration) -> Configuration:
    """Retry 429 and 503 (every method: the server did not act on them), honouring Retry-After."""
    configuration.retries = urllib3.Retry(total=10, connect=3, read=2, status_forcelist=(429, 503),
                                          allowed_methods=None, backoff_factor=0.2, raise_on_status=False,
                                          respect_retry_after_header=True)
    return configuration


def status_message(exc: ApiException) -> str:
    """The message of the metav1.Status body the API server sends with an error."""
    try:
        return json.loads(exc.body or "{}").get("message") or str(exc.reason)
    except ValueError:
        return str(exc.reason or exc.body)


class KubeApi:
    """Resources by kind, namespace and name; errors stay ApiException except the unreachable and the refused."""

    def __init__(self, api_client: ApiClient):
        self.api_client = api_client
        self.host = api_client.configuration.host

    def request(self, method: str, path: str, query: dict | None = None, body: object = None,
                content_type: str = "application/json", accept: str = "application/json") -> object:
        params = [(key, value) for key, value in (query or {}).items() if value not in (None, "")]
        serialized = self.api_client.param_serialize(
            method, path, query_params=params, body=body, auth_settings=["BearerToken"],
            header_params={"Accept": accept, "Content-Type": content_type})
        try:
            response = self.api_client.call_api(*serialized, _request_timeout=30)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise CloudError(f"cannot reach the Kubernetes API at {self.host} ({type(exc).__name__})",
                             "check that the cluster is running and the context or endpoint is right") from None
        response.read()
        text = response.data.decode(errors="replace")
        if response.status >= 400:
            error = ApiException(http_resp=response, body=text)
            self.refuse_credentials(error)
            raise error
        kind = response.getheader("Content-Type") or ""
        return json.loads(text) if kind.startswith("application/json") else text

    def refuse_credentials(self, error: ApiException) -> None:
        if error.status == 401:
            raise CredentialsError(f"the Kubernetes API at {self.host} rejected the credentials",
                                   "refresh them (a new token, or the kubeconfig user's credentials)")
        if error.status == 403:
            raise CloudError(f"the Kubernetes API at {self.host} forbids this: {status_message(error)}",
                             "grant the account edit rights on the namespace (e.g. roles/container.developer)")

    def get(self, kind: Kind, namespace: str, name: str) -> dict | None:
        try:
            return self.request("GET", kind.path(namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str = "", labels: str = "", fields: str = "") -> list[dict]:
        """The items, with the kind and apiVersion the API server leaves out of list items filled in."""
        answer = self.request("GET", kind.path(namespace), {"labelSelector": labels, "fieldSelector": fields})
        return [{"apiVersion": kind.api_version, "kind": kind.kind, **item} for item in answer.get("items") or []]

    def apply(self, kind: Kind, namespace: str, obj: dict, force: bool = False) -> dict:
        query = {"fieldManager": MANAGER, "force": "true" if force else None}
        return self.request("PATCH", kind.path(namespace, obj["metadata"]["name"]), query, obj, APPLY_PATCH)

    def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """True when it was there; False when it was already gone."""
        try:
            self.request("DELETE", kind.path(namespace, name), {"propagationPolicy": "Background"})
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def log(self, namespace: str, pod: str, container: str, lines: int) -> str:
        query = {"container": container, "tailLines": str(lines)}
        # the log subresource answers text/plain, but a real API server refuses an Accept of only text/plain
        # (406: it negotiates among json, yaml and protobuf), as kubectl knows: ask for anything
        return self.request("GET", POD.path(namespace, pod) + "/log", query, accept="*/*")

    def each(self, kinds: tuple[Kind, ...], namespace: str, labels: str) -> Iterator[tuple[Kind, dict]]:
        for kind in kinds:
            for obj in self.list(kind, namespace if kind.namespaced else "", labels):
                yield kind, obj


class Scoped:
    """Base of the stages that work on one environment's objects in one namespace."""

    def __init__(self, api: KubeApi, namespace: str, instance: str, say: Callable[[str], None] = lambda _line: None,
                 poll: float = 0.5):
        self.api = api
        self.namespace = namespace
        self.instance = instance
        self.say = say
        self.poll = poll
