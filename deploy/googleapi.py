"""Calling Google APIs (GKE, Compute, Artifact Registry): one retry policy for throttling, and their errors
turned into one actionable message."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.auth import exceptions as auth_exceptions

from deploy.model.errors import CloudError, CredentialsError
from deploy.model.retry import DEFAULT, DEFAULT_SECONDS

# The rule of deploy/model/retry.py, in google.api_core's terms: 429 and 503 mean "not done, try again", and so
# do 500, 502 and 504 by Google's guidance (https://cloud.google.com/apis/design/errors#retrying_errors;
# https://cloud.google.com/compute/docs/api/how-tos/api-requests-responses: "retry with exponential backoff"
# for 5xx); a dropped connection is retried too -- every call of these clients may be sent again: reads,
# deletes and operation polls do the same twice, a Compute insert carries a requestId (the server applies it
# once, firewall.py), and a repeated create answers 409 (ALREADY_EXISTS), which the callers read back
# (cluster.py, firewall.py, artifact_registry.py). The same backoff and deadline.
RETRY = gretry.Retry(
    predicate=gretry.if_exception_type(
        gexc.TooManyRequests,
        gexc.ServiceUnavailable,
        gexc.InternalServerError,
        gexc.BadGateway,
        gexc.GatewayTimeout,
        requests.exceptions.ConnectionError,
    ),
    initial=DEFAULT.initial,
    maximum=DEFAULT.maximum,
    multiplier=2.0,
    timeout=DEFAULT_SECONDS,
)
CREDENTIALS_HINT = (
    "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (or run where workload "
    "identity or application default credentials are set up)"
)


def server_message(exc: gexc.GoogleAPICallError) -> str:
    """The API's own message, without the method and URL the REST transport puts in front of it."""
    return re.sub(r"^(GET|POST|PUT|PATCH|DELETE) \S+: ", "", str(exc.message))


@contextmanager
def google_calls(
    what: str,
    project: str,
    roles: str,
    project_setting: str,
    other: Callable[[gexc.GoogleAPICallError], CloudError | None] = lambda _exc: None,
) -> Iterator[None]:
    """Run Google API calls for `project`; an expected failure becomes a one-line error naming what to fix.
    `roles` are the IAM roles that would have allowed it; `project_setting` is where the project is set;
    `other` may turn an API-specific error into its own message."""
    try:
        yield
    except (auth_exceptions.DefaultCredentialsError, auth_exceptions.RefreshError) as exc:
        raise CredentialsError(
            f"no usable Google credentials while {what} ({str(exc).splitlines()[0][:160]})", CREDENTIALS_HINT
        ) from None
    except (requests.exceptions.ConnectionError, gexc.RetryError) as exc:
        raise CloudError(
            f"the Google API kept failing while {what} ({type(exc).__name__}), retried for 60 s",
            "check the network, then run again",
        ) from None
    except (gexc.Unauthenticated, gexc.Unauthorized):  # gRPC and HTTP names of 401
        raise CredentialsError(f"Google rejected the credentials while {what}", CREDENTIALS_HINT) from None
    except (gexc.PermissionDenied, gexc.Forbidden) as exc:  # gRPC and HTTP names of 403
        if exc.reason == "SERVICE_DISABLED":
            service = (exc.metadata or {}).get("service") or "the API"
            raise CloudError(
                f"{service} is not enabled in project {project!r} (while {what})",
                f"enable it: gcloud services enable {service} --project {project} (or in the "
                "console's API library), wait a minute, and run again",
            ) from None
        if exc.reason == "CONSUMER_INVALID":
            raise CloudError(
                f"project {project!r} does not exist or these credentials cannot see it",
                f"set {project_setting} to an existing project id",
            ) from None
        raise CloudError(
            f"permission denied while {what}: {server_message(exc)}",
            f"grant the credentials' account {roles} on project {project}",
        ) from None
    except gexc.GoogleAPICallError as exc:
        raise (
            other(exc)
            or CloudError(f"{what} failed: {exc.code} {server_message(exc)}", "fix the cause named above and run again")
        ) from None
