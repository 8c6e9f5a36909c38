"""A small resource client for the Kubernetes API over urllib3: get, list, apply, delete, logs, watches.

It speaks the API's REST paths itself (https://kubernetes.io/docs/reference/using-api/api-concepts/); the `kubernetes`
library loads a kubeconfig whose user needs a credential plugin (deploy/targets/kube/kubeconfig.py). Importing that
library takes a tenth of a second (its 700 generated models), more than all the requests of a no-change `up`."""

from __future__ import annotations

import base64
import builtins
import http.client
import json
import os
import re
import ssl
import tempfile
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlencode

import urllib3

from deploy import __version__
from deploy.model.errors import CloudError, CredentialsError, ForbiddenError, KubeApiError
from deploy.model.retry import DEFAULT, Declined, RetryPolicy, retry_after
from deploy.targets.kube import MANAGER, POD, Resource

APPLY_PATCH = "application/apply-patch+yaml"
JSON = "application/json"
# objects as their metadata only (https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables)
METADATA = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
T = TypeVar("T")
# The authorizer's 403 (RBAC, GKE's IAM): 'User "NAME" cannot VERB resource "R" ...'; admission answers 403 too
# (a PodSecurity violation, a namespace being terminated), which is the object refused, not the identity.
AUTHORIZATION_DENIED = re.compile(r'User "[^"]*" cannot ')
PARALLEL = 8  # requests in flight at once, within the client's connection pool (5 per core)


USER_AGENT = f"k8sdeploy/{__version__}"


@dataclass(frozen=True)
class Endpoint:
    """Where a Kubernetes API is and how k8sdeploy proves who it is there (a kubeconfig's cluster and user)."""

    server: str  # https://HOST[:PORT] (or http:// on loopback)
    ca_pem: bytes = b""  # the CA certificates the server's is checked against (PEM); none: the system's
    insecure: bool = False  # insecure-skip-tls-verify
    server_name: str = ""  # tls-server-name: the name the certificate is checked for, when not the host's
    client_pem: bytes = b""  # a client certificate and its key (PEM, both in one)
    authorization: Callable[[], str] | None = None  # the Authorization header, asked for before each request

    def pool(self) -> urllib3.PoolManager:
        """urllib3 retries nothing itself: each request is retried by KubeApi.request, by the one rule of
        deploy/model/retry.py, which knows whether a request may be sent again. The pool holds the requests sent
        side by side (PARALLEL) and the watches open beside them."""
        options: dict[str, Any] = {"maxsize": PARALLEL + 8, "retries": False}
        if self.server.startswith("https://"):
            context = ssl.create_default_context(cadata=self.ca_pem.decode() or None)
            if self.insecure:
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                options["assert_hostname"] = False
            if self.client_pem:
                load_client_pem(context, self.client_pem)
            options["ssl_context"] = context
            if self.server_name:
                options["server_hostname"] = self.server_name
        return urllib3.PoolManager(**options)


def load_client_pem(context: ssl.SSLContext, pem: bytes) -> None:
    """ssl loads a certificate chain only from a file: a private one, gone once loaded."""
    descriptor, name = tempfile.mkstemp(prefix="k8sdeploy-client-", suffix=".pem")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        context.load_cert_chain(name)
    finally:
        os.unlink(name)


def bearer(token: str) -> Callable[[], str]:
    return lambda: f"Bearer {token}"


def basic(user: str, password: str) -> Callable[[], str]:
    return lambda: "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def broken(exc: BaseException) -> bool:
    """A connection that broke (refused, reset, cut in the TLS handshake, while sending or while reading the
    answer, or timed out): the request may or may not have been acted on. A certificate the CA did not sign,
    or a server that does not speak TLS, is no broken connection: it will not change."""
    if isinstance(exc, (urllib3.exceptions.SSLError, ssl.SSLError)):
        return _cut_tls(str(exc))
    return isinstance(exc, (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError))


def _cut_tls(text: str) -> bool:
    return any(sign in text for sign in ("EOF occurred", "UNEXPECTED_EOF", "SSLEOFError", "SSLZeroReturnError"))


@dataclass(frozen=True)
class Answer:
    status: int
    data: bytes
    headers: Any  # urllib3's HTTPHeaderDict


class KubeApi:
    """Resources by kind, namespace and name. Every failure is a DeployError: CloudError when unreachable (or
    TLS fails), CredentialsError on 401, KubeApiError with the status and Status body for any other error."""

    def __init__(self, endpoint: Endpoint, policy: RetryPolicy = DEFAULT):
        self.endpoint = endpoint
        self.host = endpoint.server
        self.policy = policy
        self.pool = endpoint.pool()

    def send(
        self, method: str, path: str, query: dict | None, body: bytes | None, headers: dict, read: float
    ) -> urllib3.BaseHTTPResponse:
        """One HTTP request as it is, its answer not yet read."""
        params = [(key, value) for key, value in (query or {}).items() if value not in (None, "")]
        url = self.host + path + (f"?{urlencode(params)}" if params else "")
        headers = {**headers, "User-Agent": USER_AGENT}  # a request's headers replace the pool's: set here
        if self.endpoint.authorization is not None:
            headers["Authorization"] = self.endpoint.authorization()
        timeout = urllib3.Timeout(connect=10, read=read)
        return self.pool.request(method, url, body=body, headers=headers, preload_content=False, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        query: dict | None = None,
        body: object = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        landed: Callable[[], Any] | None = None,
    ) -> Any:
        """One request, sent again by the rule of deploy/model/retry.py: 429 and 503 (the API server did not act on
        them) whatever the method; a broken connection for every method but POST, and a POST (a create) only
        after `landed` read back that the first one did not land (None) -- without `landed`, not at all."""
        headers = {"Accept": accept, "Content-Type": content_type}
        data = None if body is None else json.dumps(body).encode()  # JSON is YAML, for an apply patch too

        def send() -> Answer:
            response = self.send(method, path, query, data, headers, 30)
            try:
                answer = Answer(response.status, response.read(), response.headers)  # a body cut mid-read fails here
            finally:
                response.release_conn()
            if answer.status in (429, 503):
                raise Declined(answer.status, f"{method} {path}", retry_after(answer.headers.get("Retry-After")))
            return answer

        try:
            response = self.policy.call(send, method, broken, landed)
        except Declined as exc:
            raise CloudError(
                f"the Kubernetes API at {self.host} kept answering {exc.status} to {exc.request} for "
                f"{self.policy.seconds:g} s",
                "the API server is overloaded: run again later",
            ) from None
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            if isinstance(exc, (urllib3.exceptions.SSLError, ssl.SSLError)) and not broken(exc):
                raise self.tls_failed(str(exc)) from None
            raise CloudError(
                f"cannot reach the Kubernetes API at {self.host} ({type(exc).__name__})",
                "check that the cluster is running and the context or endpoint is right",
            ) from None
        if not isinstance(response, Answer):  # what `landed` read back
            return response
        text = response.data.decode(errors="replace")
        if response.status >= 400:
            self.refuse(response.status, f"{method} {path}", text)
        kind = response.headers.get("Content-Type") or ""
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
        if status == 403 and AUTHORIZATION_DENIED.search(error.api_message):
            raise ForbiddenError(self.host, request, text)
        raise error

    def get(self, kind: Resource, namespace: str, name: str) -> dict | None:
        try:
            return self.request("GET", kind.path(namespace, name))
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, kind: Resource, namespace: str = "", labels: str = "", fields: str = "", metadata_only: bool = False
    ) -> list[dict]:
        """The items, with the kind and apiVersion the API server leaves out of list items filled in;
        `metadata_only`: their metadata and nothing else (METADATA)."""
        query = {"labelSelector": labels, "fieldSelector": fields}
        answer = self.request("GET", kind.path(namespace), query, accept=METADATA if metadata_only else JSON)
        items = answer.get("items") or []
        if metadata_only:
            return [{"apiVersion": kind.api_version, "kind": kind.kind, "metadata": item["metadata"]} for item in items]
        return [{"apiVersion": kind.api_version, "kind": kind.kind, **item} for item in items]

    def names(self, kind: Resource, namespace: str) -> set[str]:
        """The names of every object of `kind` in `namespace`, read as metadata only (another's Secret is not
        read)."""
        return {item["metadata"]["name"] for item in self.list(kind, namespace, metadata_only=True)}

    def apply(self, kind: Resource, namespace: str, obj: dict, force: bool = False, dry_run: bool = False) -> dict:
        """Server-side apply as our one field manager; `dry_run`: the API server answers what the object would
        be (defaulted, validated, admitted) and stores nothing."""
        query = {"fieldManager": MANAGER, "force": "true" if force else None, "dryRun": "All" if dry_run else None}
        return self.request("PATCH", kind.path(namespace, obj["metadata"]["name"]), query, obj, APPLY_PATCH)

    def delete(self, kind: Resource, namespace: str, name: str) -> bool:
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

    def each(self, kinds: tuple[Resource, ...], namespace: str, labels: str) -> Iterator[tuple[Resource, dict]]:
        """The objects of `kinds`, kind by kind in that order; the lists asked for side by side."""
        for kind, objects in zip(kinds, self.lists(kinds, namespace, labels), strict=True):
            for obj in objects:
                yield kind, obj

    def lists(
        self, kinds: Sequence[Resource], namespace: str, labels: str = "", metadata_only: Collection[Resource] = ()
    ) -> builtins.list[builtins.list[dict]]:
        """One list per kind, asked for side by side (they are independent); in the order of `kinds`; those of
        `metadata_only` as metadata only."""
        return together(
            [
                partial(self.list, kind, namespace if kind.namespaced else "", labels, "", kind in metadata_only)
                for kind in kinds
            ]
        )

    def stream(self, path: str, query: dict, seconds: float) -> urllib3.BaseHTTPResponse:
        """A GET whose answer is read as it comes (a watch), not retried: a watcher opens it again."""
        return self.send("GET", path, query, None, {"Accept": "application/json"}, seconds)


def together(calls: Sequence[Callable[[], T]]) -> list[T]:
    """The answers of independent requests, sent side by side (at most PARALLEL at once), in the order of `calls`;
    the first failure is raised once all have ended."""
    if len(calls) < 2:
        return [call() for call in calls]
    with ThreadPoolExecutor(min(len(calls), PARALLEL)) as pool:
        return list(pool.map(lambda call: call(), calls))
