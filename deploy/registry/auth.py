"""Registry credentials and the httpx auth flow: anonymous, basic, and the bearer-token challenge.

Credentials come from docker's config.json (`auths`, `credHelpers`, `credsStore`) or, for
Artifact Registry (`*.pkg.dev`) and `gcr.io`, from google-auth default credentials as user
`oauth2accesstoken` with a fresh access token. No credential is ever logged or put in a message.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx

if TYPE_CHECKING:  # google-auth is imported when a Google registry is used
    from google.auth.credentials import Credentials as GoogleAuthCredentials
    from google.auth.transport import Request as GoogleAuthRequest

GOOGLE_USER = "oauth2accesstoken"
GOOGLE_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
PARAMS = re.compile(r'(\w+)="([^"]*)"')
REPOSITORY_PATH = re.compile(r"^/v2/(.+?)/(?:blobs|manifests|tags)/")


class Credentials(Protocol):
    def get(self) -> tuple[str, str] | None:
        """(user, password), or None for anonymous."""

    def describe(self) -> str:
        """Where the credentials come from, for error messages (never the secret)."""


class Anonymous:
    def get(self) -> tuple[str, str] | None:
        return None

    def describe(self) -> str:
        return "no credentials (anonymous)"


def docker_config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


class DockerConfigCredentials:
    """The entry for `host` in docker's config.json: inline `auths`, or a credential helper."""

    def __init__(self, host: str, path: Path | None = None):
        self.host, self.path = host, path or docker_config_path()

    def get(self) -> tuple[str, str] | None:
        try:
            config = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        helper = config.get("credHelpers", {}).get(self.host) or config.get("credsStore")
        for key, entry in config.get("auths", {}).items():
            if re.sub(r"^https?://", "", key).split("/")[0] == self.host and entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                return user, password
        return self._from_helper(helper) if helper else None

    def _from_helper(self, helper: str) -> tuple[str, str] | None:
        result = subprocess.run([f"docker-credential-{helper}", "get"], input=self.host, capture_output=True, text=True)
        if result.returncode != 0:
            return None
        answer = json.loads(result.stdout)
        return answer["Username"], answer["Secret"]

    def describe(self) -> str:
        return f"the credentials for {self.host} in {self.path}"


class GoogleCredentials:
    """google-auth default credentials, refreshed when expired or about to expire."""

    def __init__(self, credentials: GoogleAuthCredentials | None = None, request: GoogleAuthRequest | None = None):
        self._credentials, self._request, self._lock = credentials, request, threading.Lock()

    def get(self) -> tuple[str, str] | None:
        import google.auth
        import google.auth.transport.requests

        with self._lock:
            if self._credentials is None:
                self._credentials, _ = google.auth.default(scopes=GOOGLE_SCOPES)
            if not self._credentials.valid:  # also false shortly before expiry
                self._credentials.refresh(self._request or google.auth.transport.requests.Request())
            return (GOOGLE_USER, self._credentials.token) if self._credentials.token else None

    def describe(self) -> str:
        return "Google application default credentials"


def is_google_registry(host: str) -> bool:
    return host.endswith(".pkg.dev") or host == "gcr.io" or host.endswith(".gcr.io")


def credentials_for(host: str, docker_config: Path | None = None) -> Credentials:
    if is_google_registry(host):
        return GoogleCredentials()
    return DockerConfigCredentials(host, docker_config)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class RegistryAuth(httpx.Auth):
    """Answers the registry's 401 challenge (Basic or Bearer) and reuses what it learned."""

    requires_response_body = True

    def __init__(self, credentials: Credentials):
        self.credentials = credentials
        self._basic = False
        self._tokens: dict[str, str] = {}  # repository (or "") -> bearer token
        self._lock = threading.Lock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        repository = _repository(request)
        self._authorise(request, repository)
        response = yield request
        if response.status_code != 401:
            return
        scheme, params = _challenge(response.headers.get("www-authenticate", ""))
        if scheme == "basic":
            creds = self.credentials.get()
            if creds is None:
                return
            self._basic = True
        elif scheme == "bearer" and "realm" in params:
            token_response = yield self._token_request(params, request.url)
            if token_response.status_code != 200:
                return
            body = token_response.json()
            with self._lock:
                self._tokens[repository] = body.get("token") or body.get("access_token", "")
        else:
            return
        self._authorise(request, repository)
        yield request

    def _authorise(self, request: httpx.Request, repository: str) -> None:
        with self._lock:
            token = self._tokens.get(repository)
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        elif self._basic and (creds := self.credentials.get()):
            request.headers["Authorization"] = _basic(*creds)

    def _token_request(self, params: dict[str, str], registry: httpx.URL) -> httpx.Request:
        """The token request the challenge asks for; the credentials go along only to a realm of the registry's
        own (trusted_realm), else it is asked anonymously, as for a public image."""
        query: list[tuple[str, str | int | float | bool | None]] = (
            [("service", params["service"])] if "service" in params else []
        )
        query += [("scope", scope) for scope in params.get("scope", "").split() if scope]
        headers = {}
        if trusted_realm(params["realm"], registry) and (creds := self.credentials.get()):
            headers["Authorization"] = _basic(*creds)
        return httpx.Request("GET", params["realm"], params=httpx.QueryParams(query), headers=headers)


def trusted_realm(realm: str, registry: httpx.URL) -> bool:
    """Whether a token realm may be sent the registry's credentials: on the registry's own host and port (as
    Artifact Registry's and gcr.io's are), over https, or over http only as the registry itself is spoken to (which
    RegistryClient does for a loopback registry alone)."""
    try:
        url = httpx.URL(realm)
    except httpx.InvalidURL:
        return False
    same_place = (url.host, url.port) == (registry.host, registry.port)
    return same_place and url.scheme in ("https", registry.scheme)


def _repository(request: httpx.Request) -> str:
    match = REPOSITORY_PATH.match(request.url.path)
    return match.group(1) if match else ""


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(PARAMS.findall(rest))
