"""Google's REST APIs that have no client library here (Service Usage, Resource Manager, IAM's workload identity
providers) or where `doctor` wants the JSON as documented (Compute's regions and machine types): JSON over an
authorized session, errors as google.api_core's exceptions, retried by the one policy (deploy/googleapi.py); and a
failure of such a read turned into one `doctor` finding with its fix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import AuthorizedSession

from deploy.googleapi import CREDENTIALS_HINT, RETRY, server_message
from deploy.model.doctor import Finding, missing

# what a read may end with that is not a bug: an API's answer, the network, the credentials
FAILED = (
    gexc.GoogleAPICallError,
    gexc.RetryError,
    requests.exceptions.RequestException,
    auth_exceptions.GoogleAuthError,
)


class Rest:
    """One API's JSON at `scheme://endpoint`; every call may be sent again (reads, and testIamPermissions, which
    changes nothing)."""

    def __init__(self, session: AuthorizedSession, endpoint: str, scheme: str = "https"):
        self.session = session
        self.base = f"{scheme}://{endpoint}"

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict:
        return RETRY(self._send)("GET", path, params, None)

    def post(self, path: str, body: Mapping[str, Any]) -> dict:
        return RETRY(self._send)("POST", path, None, body)

    def _send(self, method: str, path: str, params: Mapping[str, Any] | None, body: Mapping[str, Any] | None) -> dict:
        answer = self.session.request(method, f"{self.base}/{path}", params=params, json=body, timeout=30)
        if answer.status_code >= 400:
            raise gexc.from_http_response(answer)
        return answer.json()


def refusal(check: str, what: str, project: str, exc: BaseException, roles: str = "") -> Finding:
    """A read that failed, as a FAIL line naming why and what to do."""
    if isinstance(exc, auth_exceptions.GoogleAuthError) or isinstance(exc, (gexc.Unauthenticated, gexc.Unauthorized)):
        return missing(check, f"no usable Google credentials while {what}", CREDENTIALS_HINT)
    if isinstance(exc, (gexc.RetryError, requests.exceptions.RequestException)):
        return missing(
            check,
            f"the Google API kept failing while {what} ({type(exc).__name__})",
            "check the network, then run again",
        )
    assert isinstance(exc, gexc.GoogleAPICallError)
    if isinstance(exc, (gexc.Forbidden, gexc.PermissionDenied)):
        if exc.reason == "SERVICE_DISABLED":
            service = (exc.metadata or {}).get("service") or "the API"
            return missing(
                check,
                f"{service} is not enabled in project {project} (while {what})",
                f"gcloud services enable {service} --project {project}",
            )
        return missing(
            check,
            f"permission denied while {what}: {server_message(exc)}",
            f"grant the credentials' account {roles or 'the role that allows it'} on project {project}",
        )
    return missing(check, f"{what} failed: {exc.code} {server_message(exc)}", "fix the cause named above and run again")
