"""A small resource client over the `kubernetes` library's ApiClient: get, list, apply, delete, logs."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from typing import Any

import urllib3
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

from deploy.model.errors import CloudError, CredentialsError, KubeApiError, LeftoversError
from deploy.model.progress import Say, silent
from deploy.targets.kube import INSTANCE, MANAGED_BY, MANAGER, NAMESPACE, POD, Kind

APPLY_PATCH = "application/apply-patch+yaml"


def with_retries(configuration: Configuration) -> Configuration:
    """Retry each request on its own: 429 and 503 (the server did not act on them), honouring Retry-After, and
    dropped connections, every method, with truncated exponential backoff (waits of at most 2 s, about a
    minute in all). A request whose answer was lost may have been acted on: the callers that create read
    back what a repeated create answers (409). A TLS failure ("other" to urllib3) will not change: not retried."""
    configuration.retries = urllib3.Retry(
        total=30,
        connect=10,
        read=10,
        status=20,
        other=0,
        status_forcelist=(429, 503),
        allowed_methods=None,
        backoff_factor=0.1,
        backoff_max=2,
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    return configuration


class KubeApi:
    """Resources by kind, namespace and name. Every failure is a DeployError: CloudError when unreachable (or
    TLS fails), CredentialsError on 401, KubeApiError with the status and Status body for any other error."""

    def __init__(self, api_client: ApiClient):
        self.api_client = api_client
        self.host = api_client.configuration.host

    def request(
        self,
        method: str,
        path: str,
        query: dict | None = None,
        body: object = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        params = [(key, value) for key, value in (query or {}).items() if value not in (None, "")]
        serialized = self.api_client.param_serialize(
            method,
            path,
            query_params=params,
            body=body,
            auth_settings=["BearerToken"],
            header_params={"Accept": accept, "Content-Type": content_type},
        )
        try:
            response = self.api_client.call_api(*serialized, _request_timeout=30)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if isinstance(getattr(exc, "reason", exc), (urllib3.exceptions.SSLError, ssl.SSLError)):
                raise self.tls_failed(str(getattr(exc, "reason", exc))) from None
            raise CloudError(
                f"cannot reach the Kubernetes API at {self.host} ({type(exc).__name__})",
                "check that the cluster is running and the context or endpoint is right",
            ) from None
        except ApiException as exc:  # the client's own, with status 0, for a TLS failure without retries
            raise self.tls_failed(str(exc.reason or exc)) from None
        response.read()
        text = (response.data or b"").decode(errors="replace")
        if response.status >= 400:
            self.refuse(response.status, f"{method} {path}", text)
        kind = response.getheader("Content-Type") or ""
        return json.loads(text) if kind.startswith("application/json") else text

    def tls_failed(self, why: str) -> CloudError:
        reason = why.strip().splitlines()[-1][:200] if why.strip() else "handshake failed"
        return CloudError(
            f"no TLS connection to the Kubernetes API at {self.host}: {reason}",
            "check the cluster's CA certificate in the kubeconfig (or the endpoint)",
        )

    def refuse(self, status: int, request: str, text: str) -> None:
        error = KubeApiError(self.host, request, status, text)
        if status == 401:
            raise CredentialsError(
                f"the Kubernetes API at {self.host} rejected the credentials",
                "refresh them (a new token, or the kubeconfig user's credentials)",
            )
        if status == 403:
            raise CloudError(
                f"the Kubernetes API at {self.host} forbids this: {error.api_message}",
                "grant the account edit rights on the namespace (e.g. roles/container.developer)",
            )
        raise error

    def get(self, kind: Kind, namespace: str, name: str) -> dict | None:
        try:
            return self.request("GET", kind.path(namespace, name))
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str = "", labels: str = "", fields: str = "") -> list[dict]:
        """The items, with the kind and apiVersion the API server leaves out of list items filled in."""
        answer = self.request("GET", kind.path(namespace), {"labelSelector": labels, "fieldSelector": fields})
        return [{"apiVersion": kind.api_version, "kind": kind.kind, **item} for item in answer.get("items") or []]

    def apply(self, kind: Kind, namespace: str, obj: dict, force: bool = False, dry_run: bool = False) -> dict:
        """Server-side apply as our one field manager; `dry_run`: the API server answers what the object would
        be (defaulted, validated, admitted) and stores nothing."""
        query = {"fieldManager": MANAGER, "force": "true" if force else None, "dryRun": "All" if dry_run else None}
        return self.request("PATCH", kind.path(namespace, obj["metadata"]["name"]), query, obj, APPLY_PATCH)

    def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """True when it was there; False when it was already gone."""
        try:
            self.request("DELETE", kind.path(namespace, name), {"propagationPolicy": "Background"})
            return True
        except KubeApiError as exc:
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

    def __init__(self, api: KubeApi, namespace: str, env_name: str, say: Say = silent, poll: float = 0.5):
        self.api = api
        self.namespace = namespace
        self.env_name = env_name
        self.say = say
        self.poll = poll

    def wait_namespace_gone(self, timeout: float = 300) -> None:
        """A deleted namespace stays Terminating until the namespace controller has emptied it."""
        started = time.monotonic()
        said = started
        while (namespace := self.api.get(NAMESPACE, "", self.namespace)) is not None:
            waited = time.monotonic() - started
            if waited > timeout:
                why = (
                    "; ".join(
                        c.get("message", "")
                        for c in (namespace.get("status") or {}).get("conditions") or []
                        if c.get("status") == "True"
                    )
                    or "no reason given"
                )
                raise LeftoversError(
                    f"namespace {self.namespace} is still terminating after {timeout:g} s: {why}",
                    "look at what is left in it (its finalizers), then run the command again",
                )
            if time.monotonic() - said >= 5:
                self.say(f"waiting for namespace {self.namespace} to finish terminating ({waited:.0f} s)")
                said = time.monotonic()
            time.sleep(self.poll)

    def ensure_namespace(self) -> None:
        """Create our namespace if missing; an existing one (ours or not) is only used, never changed. One still
        terminating (an `up` right after `down`) takes no new objects: wait for it to go, then create it."""
        live = self.api.get(NAMESPACE, "", self.namespace)
        if live is not None and live["metadata"].get("deletionTimestamp"):
            self.say(f"namespace {self.namespace} is still terminating (an earlier down); waiting for it to go")
            self.wait_namespace_gone()
            live = None
        if live is None:
            labels = {MANAGED_BY: MANAGER, INSTANCE: self.env_name}
            self.api.apply(
                NAMESPACE,
                "",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace, "labels": labels}},
            )
            self.say(f"created namespace {self.namespace}")
