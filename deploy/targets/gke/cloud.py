"""What the gke target's calls to Google share: where the environment lives, and GKE's own error messages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from google.api_core import exceptions as gexc

from deploy.googleapi import CREDENTIALS_HINT, RETRY, google_calls, server_message
from deploy.model.environments import Gke
from deploy.model.errors import CloudError

__all__ = ["CREDENTIALS_HINT", "RETRY", "Place", "calling"]


@dataclass(frozen=True)
class Place:
    """Where in Google Cloud an environment lives, for messages that name what to fix."""

    env_name: str
    gke: Gke

    @property
    def table(self) -> str:
        return f"[environments.{self.env_name}.gke]"


@contextmanager
def calling(what: str, place: Place) -> Iterator[None]:
    """Run GKE or Compute calls; an expected failure becomes a CloudError naming what to fix."""

    def location(exc: gexc.GoogleAPICallError) -> CloudError | None:
        if isinstance(exc, (gexc.NotFound, gexc.BadRequest)) and "location" in server_message(exc).lower():
            return CloudError(
                f"GKE has no location {place.gke.location!r} in project {place.gke.project!r}",
                f"set location in {place.table} to a zone (europe-west1-b) or a region (europe-west1)",
            )
        return None

    with google_calls(
        what,
        place.gke.project,
        "roles/container.admin and roles/compute.securityAdmin",
        f"project in {place.table}",
        location,
    ):
        yield
