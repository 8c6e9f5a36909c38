"""A client of the OCI distribution API of one registry: HEAD before upload, mounts, retries with backoff."""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from deploy.model.errors import ConfigError, PublishError
from deploy.model.retry import DEFAULT, Declined, RetryPolicy, retry_after
from deploy.registry.auth import Anonymous, Credentials, RegistryAuth

__all__ = ["RegistryAddress", "RegistryClient", "RetryPolicy", "Traffic"]

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
HOST = re.compile(r"^(localhost|\[[0-9a-f:]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:\d{1,5})?$", re.IGNORECASE)
PATH = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
DOCKER_HOST = re.compile(r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev$")  # an Artifact Registry location's host


@dataclass(frozen=True)
class RegistryAddress:
    """`HOST[:PORT][/PATH]`: where images go; each image is the repository PATH/NAME."""

    host: str
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> RegistryAddress:
        host, _, path = text.strip().strip("/").partition("/")
        if not HOST.match(host) or (path and not PATH.match(path)):
            raise ConfigError(
                f"{text!r} is not a registry address",
                "write HOST[:PORT]/PATH, e.g. 127.0.0.1:5000/suite or europe-west1-docker.pkg.dev/PROJECT/REPO",
            )
        return cls(host, path)

    def repository(self, name: str) -> str:
        return f"{self.path}/{name}" if self.path else name

    def __str__(self) -> str:
        return f"{self.host}/{self.path}" if self.path else self.host

    @property
    def is_loopback(self) -> bool:
        name = self.host.rsplit(":", 1)[0] if not self.host.startswith("[") else self.host[1:].split("]")[0]
        if name == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False


@dataclass
class Traffic:
    """What a run sent: counted by an httpx event hook and by the publisher. Thread-safe."""

    requests: int = 0
    blobs_uploaded: int = 0
    bytes_uploaded: int = 0
    blobs_mounted: int = 0
    manifests_put: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def hook(self, request: httpx.Request) -> None:
        self.add(requests=1)


def _broken(exc: BaseException) -> bool:
    return isinstance(exc, (httpx.TransportError, httpx.StreamConsumed))


class RegistryClient:
    """The distribution API of one registry host over an injected httpx.Client (which counts and pools)."""

    def __init__(
        self,
        host: str,
        http: httpx.Client,
        credentials: Credentials | None = None,
        retry: RetryPolicy = DEFAULT,
        traffic: Traffic | None = None,
    ):
        self.host, self.http, self.retry = host, http, retry
        self.credentials = credentials or Anonymous()
        self.traffic = traffic or Traffic()
        self.auth = RegistryAuth(self.credentials)
        loopback = RegistryAddress(host).is_loopback
        self.base = f"{'http' if loopback else 'https'}://{host}/v2/"

    def check(self) -> None:
        """Reach the registry and authenticate once, so a bad address or credentials fail first."""
        self._send("GET", "")

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        response = self._send(
            "HEAD", f"{repository}/manifests/{reference}", ok=(200, 404), headers={"Accept": MANIFEST_TYPES}
        )
        return response.headers.get("docker-content-digest") if response.status_code == 200 else None

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        response = self._send(
            "GET", f"{repository}/manifests/{reference}", ok=(200, 404), headers={"Accept": MANIFEST_TYPES}
        )
        if response.status_code == 404:
            return None
        return response.content, response.headers.get("content-type", "").split(";")[0]

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> None:
        self._send(
            "PUT", f"{repository}/manifests/{reference}", content=data, ok=(201,), headers={"Content-Type": media_type}
        )
        self.traffic.add(manifests_put=1)

    def answers_referrers(self, repository: str, digest: str) -> bool:
        """Whether the registry serves the OCI 1.1 referrers API (an image index for `digest`; distribution 2.8
        answers 404)."""
        response = self._send(
            "GET", f"{repository}/referrers/{digest}", ok=(200, 400, 404, 405), headers={"Accept": OCI_INDEX}
        )
        try:
            return response.status_code == 200 and response.json().get("mediaType") == OCI_INDEX
        except ValueError:
            return False

    def has_blob(self, repository: str, digest: str) -> bool:
        return self._send("HEAD", f"{repository}/blobs/{digest}", ok=(200, 404)).status_code == 200

    def mount_blob(self, repository: str, digest: str, source: str) -> bool:
        """Ask the registry to link a blob it holds in `source`; False when it would rather have it uploaded."""
        response = self._send(
            "POST", f"{repository}/blobs/uploads/", params={"mount": digest, "from": source}, ok=(201, 202)
        )
        if response.status_code == 202:  # mount refused: an upload session was opened instead; drop it
            self._send("DELETE", response.headers["location"], ok=(202, 204, 404))
            return False
        self.traffic.add(blobs_mounted=1)
        return True

    def upload_blob(self, repository: str, digest: str, path: Path | bytes, size: int) -> None:
        """POST an upload session, PUT the whole blob into it (a monolithic upload), each retried on its own;
        the session is kept across the PUT's retries. When the registry no longer knows the session (404:
        a PUT whose answer was lost completed it), the blob is looked for before a new session is opened.
        (OCI distribution spec, "Pushing a blob monolithically" and "Errors": BLOB_UPLOAD_UNKNOWN.) `path` may be
        the blob itself (a small one, such as a signature's payload)."""
        for _ in range(3):
            started = self._send("POST", f"{repository}/blobs/uploads/", ok=(202,))
            location = self._url(started.headers["location"]).copy_merge_params({"digest": digest})

            def put(location: httpx.URL = location) -> httpx.Response:
                with path.open("rb") if isinstance(path, Path) else nullcontext(path) as body:
                    return self._request(
                        "PUT",
                        location,
                        (201, 404),
                        content=body,
                        headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                    )

            if self._reliably(put, "PUT").status_code == 201 or self.has_blob(repository, digest):
                self.traffic.add(blobs_uploaded=1, bytes_uploaded=size)
                return
        raise PublishError(
            f"registry {self.host} kept losing the upload sessions of {repository}@{digest[:19]}",
            "run again; if it persists, the registry's storage is failing",
        )

    def download_blob(self, repository: str, digest: str) -> bytes:
        return self._send("GET", f"{repository}/blobs/{digest}").content

    def _url(self, path: str) -> httpx.URL:
        return httpx.URL(self.base).join(path)

    def _send(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs) -> httpx.Response:
        url = self._url(path)
        return self._reliably(lambda: self._request(method, url, ok, **kwargs), method)

    def _request(self, method: str, url: httpx.URL, ok: tuple[int, ...], **kwargs) -> httpx.Response:
        response = self.http.request(method, url, auth=self.auth, **kwargs)
        if response.status_code in RETRY_STATUSES:
            request = f"{method} {url.path}"
            raise Declined(response.status_code, request, retry_after(response.headers.get("retry-after")), response)
        if response.status_code not in ok:
            raise self._refusal(response)
        return response

    def _reliably(self, attempt: Callable[[], T], method: str) -> T:
        """One request, by the rule of deploy/model/retry.py. Every request of the distribution API may be sent
        again: a POST only opens an upload session (one whose answer was lost expires unused) or mounts a blob
        (twice is once); past the deadline, the error names what the registry kept doing."""
        policy = self.retry
        try:
            return policy.call(attempt, method, _broken, idempotent=True)
        except Declined as exc:
            raise PublishError(
                f"registry {self.host} kept answering {exc.status} for {policy.seconds:g} s (last: {exc.request})",
                "the registry is overloaded or failing: run again later",
            ) from None
        except (httpx.TransportError, httpx.StreamConsumed) as exc:
            raise PublishError(
                f"cannot reach registry {self.host} ({type(exc).__name__}: {exc}), retried for {policy.seconds:g} s",
                "check the registry address (--registry or the "
                "environment's registry) and that the registry is running",
            ) from None

    def _refusal(self, response: httpx.Response) -> PublishError:
        if response.status_code == 401:
            return PublishError(
                f"registry {self.host} refused {self.credentials.describe()} (HTTP 401)",
                f"log in to {self.host} (docker login) or fix the credentials",
            )
        try:
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in response.json()["errors"])
        except (ValueError, KeyError, TypeError):
            detail = response.text[:200].strip()
        request = response.request
        return PublishError(
            f"registry {self.host} answered {request.method} {request.url.path} with HTTP "
            f"{response.status_code} ({detail})",
            "check that the repository exists and that the credentials may push to it",
        )
