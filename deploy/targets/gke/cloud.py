"""What the gke target's calls to Google share: where the environment lives, GKE's own error messages, and the
deadline of every wait on a Google operation."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from google.api_core import exceptions as gexc

from deploy.googleapi import CREDENTIALS_HINT, RETRY, google_calls, server_message
from deploy.model.environments import Gke
from deploy.model.errors import CloudError

__all__ = ["CREDENTIALS_HINT", "RETRY", "Deadline", "Place", "calling"]

ZONE = re.compile(r"^(?P<region>[a-z]+-[a-z]+\d+)-[a-z]$")  # europe-west1-b; a region is europe-west1
REGIONAL_ZONES = 3  # the zones GKE puts a regional cluster's nodes in unless told otherwise


@dataclass(frozen=True)
class Place:
    """Where in Google Cloud an environment lives, for messages that name what to fix."""

    env_name: str
    gke: Gke

    @property
    def table(self) -> str:
        return f"[environments.{self.env_name}.gke]"

    @property
    def region(self) -> str:
        zone = ZONE.match(self.gke.location)
        return zone["region"] if zone else self.gke.location

    @property
    def zones(self) -> int:
        """How many zones the cluster's nodes are in: `node_count` is per zone (initialNodeCount)."""
        return 1 if ZONE.match(self.gke.location) else REGIONAL_ZONES

    @property
    def nodes(self) -> str:
        """The cluster's nodes in all, e.g. "3 nodes (1 per zone x 3 zones)"."""
        per_zone, zones = self.gke.node_count, self.zones
        total = f"{per_zone * zones} node{'s' if per_zone * zones > 1 else ''}"
        return total if zones == 1 else f"{total} ({per_zone} per zone x {zones} zones)"


class Deadline:
    """The end of one wait on Google (an operation, a cluster settling): `operation_timeout` from its start, after
    which a CloudError says what was waited for."""

    def __init__(self, what: str, place: Place):
        self.what = what
        self.place = place
        self.seconds = place.gke.operation_timeout
        self.end = time.monotonic() + self.seconds

    def sleep(self, seconds: float) -> None:
        """Sleep before the next look, or stop when the deadline has passed."""
        if time.monotonic() >= self.end:
            raise CloudError(
                f"gave up after {self.seconds:g} s waiting for {self.what}",
                f"see what GKE is doing (gcloud container operations list --project {self.place.gke.project}); run "
                f"again to wait longer, or raise operation_timeout in {self.place.table} (default 3600 s)",
            )
        time.sleep(seconds)


@contextmanager
def calling(what: str, place: Place) -> Iterator[None]:
    """Run GKE or Compute calls; an expected failure becomes a CloudError naming what to fix."""

    def location(exc: gexc.GoogleAPICallError) -> CloudError | None:
        # 'Location "europe-west1-q" does not exist.', not another refusal naming the location (a machine type
        # "not available in location ...")
        unknown = re.search(r"location\W+\S+\W+(does not exist|not found)", server_message(exc), re.IGNORECASE)
        if isinstance(exc, (gexc.NotFound, gexc.BadRequest)) and unknown:
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
        region=place.region,
        sizes=f"machine_type and node_count in {place.table} ({place.nodes} of {place.gke.machine_type})",
    ):
        yield
