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

from deploy.model.errors import CloudError, CredentialsError, QuotaError
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


# A request beyond a quota, refused at once with 403 before anything is made (GKE's clusters.create: 'Insufficient
# regional quota to satisfy request: resource "CPUS": request requires '12.0' and is short '4.0'. project has a
# quota of '24.0' with '8.0' available. ...', or an older wording, 'Insufficient regional quota to satisfy request
# for resource: "IN_USE_ADDRESSES". The request requires '2.0' and is short '1.0'. ...'; a project-wide one says
# "project quota", e.g. for CPUS_ALL_REGIONS)
QUOTA = re.compile(r'Insufficient (?P<scope>regional|project) quota .*?resource:? \\?"(?P<metric>[A-Z0-9_]+)\\?"')
SHORT = re.compile(r"requires '(?P<requires>[\d.]+)' and is short '(?P<short>[\d.]+)'")


def quota_error(exc: gexc.GoogleAPICallError, what: str, project: str, region: str, sizes: str) -> QuotaError | None:
    """The quota a 403 names as short, with how much, in which region; None for any other 403."""
    message = server_message(exc)
    quota = QUOTA.search(message)
    if quota is None:
        return None
    where = "in all regions together" if quota["scope"] == "project" else f"in region {region or 'of the request'}"
    short = SHORT.search(message)
    amount = f": the request needs {float(short[1]):g} and is short by {float(short[2]):g}" if short else ""
    return QuotaError(
        f"quota {quota['metric']} of project {project!r} {where} is too small while {what}{amount}",
        f"ask for more {quota['metric']} {where} "
        f"(https://console.cloud.google.com/iam-admin/quotas?project={project}), or for less: {sizes or 'less'}",
    )


@contextmanager
def google_calls(
    what: str,
    project: str,
    roles: str,
    project_setting: str,
    other: Callable[[gexc.GoogleAPICallError], CloudError | None] = lambda _exc: None,
    region: str = "",
    sizes: str = "",
) -> Iterator[None]:
    """Run Google API calls for `project`; an expected failure becomes a one-line error naming what to fix.
    `roles` are the IAM roles that would have allowed it; `project_setting` is where the project is set;
    `other` may turn an API-specific error into its own message; `region` is where a regional quota is counted
    and `sizes` what sets how much is asked for."""
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
        if (quota := quota_error(exc, what, project, region, sizes)) is not None:
            raise quota from None
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
