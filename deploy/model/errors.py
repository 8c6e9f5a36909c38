"""The errors the CLI reports: each says what is wrong and one thing to do, and maps to an exit code."""

from __future__ import annotations

import json
from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of `k8sdeploy` (README, `--help`)."""

    OK = 0
    CHANGES = 1  # `diff`: `up` would change something (not a failure)
    USAGE = 2  # bad usage or configuration (click's own usage errors use 2 as well)
    BUILD = 3  # build or publish failed
    APPLY = 4  # the target refused or failed to apply the objects
    NOT_READY = 5  # a service was not ready in time
    SMOKE = 6  # the smoke login failed
    LEFTOVERS = 7  # teardown left something behind
    CLOUD = 8  # a cloud or cluster API refused: credentials, permission, project, location, failed operation
    BUSY = 9  # another k8sdeploy command holds the environment's lease
    UNVERIFIED = 10  # an image is unsigned, signed by another key, or its attestations do not match (verify)
    LACKING = 11  # `doctor`: something a deploy needs is missing (each named with its fix)
    UNEXPECTED = 70  # a failure the code did not expect (a bug): one line, the traceback in a crash log
    INTERRUPTED = 130


class DeployError(Exception):
    """Base of every expected failure; anything else is a bug: one line too (UnexpectedError), its traceback in
    a crash log (deploy/crash.py)."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, hint: str = "", details: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details  # a diagnosis printed below the one-line message, if any

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class ConfigError(DeployError):
    """k8sdeploy.toml, an option or the environment is wrong."""


class RenderError(DeployError):
    """A template could not be rendered, or rendered something that is not a Kubernetes object."""


class BuildError(DeployError):
    exit_code = ExitCode.BUILD


class PublishError(DeployError):
    exit_code = ExitCode.BUILD


class ApplyError(DeployError):
    exit_code = ExitCode.APPLY


class NotReadyError(DeployError):
    exit_code = ExitCode.NOT_READY


class SchemaRollbackError(ApplyError):
    """`rollback` could not take a database's schema back to what the target release's code works with."""


class SmokeError(DeployError):
    exit_code = ExitCode.SMOKE


class LeftoversError(DeployError):
    exit_code = ExitCode.LEFTOVERS


class CloudError(DeployError):
    """A cloud or cluster API refused or failed: permission, unknown project or location, a failed operation."""

    exit_code = ExitCode.CLOUD


class QuotaError(CloudError):
    """A Google quota (CPUs, disk, addresses in a region) is too small for what was asked: not a permission."""


class KubeApiError(CloudError):
    """The Kubernetes API answered an error: its HTTP status and the reason and message of its Status body."""

    def __init__(self, host: str, request: str, status: int, body: str):
        try:
            document = json.loads(body or "{}")
        except ValueError:
            document = {}
        document = document if isinstance(document, dict) else {}
        self.status = status
        self.body = body
        self.reason = str(document.get("reason") or "")
        self.api_message = str(document.get("message") or body.strip()[:300] or "no message")
        super().__init__(
            f"the Kubernetes API at {host} answered {status}{' ' + self.reason if self.reason else ''} "
            f"to {request}: {self.api_message}",
            "look at the object and the cluster (kubectl describe), fix what it names and run again",
        )


class ForbiddenError(CloudError):
    """The Kubernetes API refused a request to this identity (403): its RBAC (or, on GKE, IAM) lacks the
    permission. `diff` works around those it can (deploy/targets/kube/diff.py); other commands stop."""

    def __init__(self, host: str, request: str, body: str):
        self.request = request
        self.api_message = KubeApiError(host, request, 403, body).api_message
        super().__init__(
            f"the Kubernetes API at {host} forbids {request}: {self.api_message}",
            "give the account the permissions docs/targets.md lists for this command (a deploy: edit rights on "
            "the namespace; diff: the preview's read-only role, with which diff names what it could not compare)",
        )


class CredentialsError(CloudError):
    """No usable credentials for the cloud or the cluster."""


class LeaseHeldError(DeployError):
    """Another `up`, `rollback` or `down` of the same environment is running (it holds the lease)."""

    exit_code = ExitCode.BUSY

    def __init__(self, env_name: str, holder: str, since: str, expires_in: int):
        self.env_name = env_name
        self.holder = holder
        self.since = since
        super().__init__(
            f"environment {env_name} is being deployed by {holder} since {since}",
            f"wait for it to finish (its lease expires {expires_in} s after its last renewal if it "
            "crashed) and run again",
        )


class UnverifiedError(DeployError):
    """An image to deploy is not signed by the environment's key, or its attestations are missing or do not match."""

    exit_code = ExitCode.UNVERIFIED


class UnexpectedError(DeployError):
    """An exception that is no DeployError, said in one line; its traceback is in the crash log it names."""

    exit_code = ExitCode.UNEXPECTED
