"""Where Google's APIs answer and with which credentials: the value a gke environment's kind and an Artifact
Registry repository make their clients from (deploy/clients.py looks up the application default credentials;
tests give their fakes' endpoints)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.auth.credentials import Credentials as GoogleCredentials


@dataclass(frozen=True)
class GoogleApis:
    """Credentials, and where the GKE, Compute and Artifact Registry APIs answer (their public endpoints unless
    a test says)."""

    credentials: GoogleCredentials
    container_endpoint: str = "container.googleapis.com"
    compute_endpoint: str = "compute.googleapis.com"
    scheme: str = "https"
    poll: float = 5.0  # seconds between polls of long-running operations and cloud clean-up
    artifact_registry_endpoint: str = "artifactregistry.googleapis.com"
    # registry hosts that are Artifact Registry although not named LOCATION-docker.pkg.dev (a test's stand-in)
    docker_locations: Mapping[str, str] = field(default_factory=dict)
    # what `doctor` reads besides: enabled APIs, permissions held, workload identity providers
    service_usage_endpoint: str = "serviceusage.googleapis.com"
    resource_manager_endpoint: str = "cloudresourcemanager.googleapis.com"
    iam_endpoint: str = "iam.googleapis.com"
