"""The fake Compute API's regions and machine types (a mixin of FakeCompute): what a region's quotas are and
how big a machine type is.

Follows https://cloud.google.com/compute/docs/reference/rest/v1/regions/get (`GET
/compute/v1/projects/P/regions/R`: `status` UP, `zones` as URLs, `quotas[]` of {metric, limit, usage}, the
limits of the kind a new project's region shows; a test sets its own) and
https://cloud.google.com/compute/docs/reference/rest/v1/machineTypes/get (`GET
/compute/v1/projects/P/zones/Z/machineTypes/T`: `guestCpus`, `memoryMb`, `isSharedCpu`; the figures of
https://cloud.google.com/compute/docs/general-purpose-machines#e2_machine_types and #n1_machines). An unknown
region, zone or type is 404 ("The resource '...' was not found"); the caller needs compute.regions.get and
compute.machineTypes.get (403).
"""

from __future__ import annotations

from typing import Any

from tests.fakes.google import fail
from tests.fakes.server import Reply, Request

COMPUTE = "https://www.googleapis.com/compute/v1/projects"
MACHINE_TYPES = {  # name -> (guestCpus, memoryMb, isSharedCpu)
    "e2-micro": (2, 1024, True),
    "e2-small": (2, 2048, True),
    "e2-medium": (2, 4096, True),
    "e2-standard-2": (2, 8192, False),
    "e2-standard-4": (4, 16384, False),
    "n1-standard-1": (1, 3840, False),
}
QUOTAS = {"CPUS": 24.0, "SSD_TOTAL_GB": 500.0, "IN_USE_ADDRESSES": 8.0, "DISKS_TOTAL_GB": 4096.0}


class ComputeRegions:
    """Routes for FakeCompute (a GoogleFake): `serve_regions()` from its __init__."""

    route: Any
    check: Any

    def serve_regions(self, regions: dict[str, tuple[str, ...]] | None = None) -> None:
        self.region_zones = regions or {"europe-west1": ("europe-west1-b", "europe-west1-c", "europe-west1-d")}
        # region -> metric -> [limit, usage]
        self.region_quotas = {
            region: {metric: [limit, 0.0] for metric, limit in QUOTAS.items()} for region in self.region_zones
        }
        self.route("GET", r"/compute/v1/projects/(?P<project>[^/]+)/regions/(?P<region>[^/]+)", self.get_region)
        self.route(
            "GET",
            r"/compute/v1/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/machineTypes/(?P<type>[^/]+)",
            self.get_machine_type,
        )

    def get_region(self, request: Request) -> Reply:
        project, region = request.params["project"], request.params["region"]
        self.check(project, "compute.regions.get")
        if region not in self.region_zones:
            raise fail(404, f"The resource 'projects/{project}/regions/{region}' was not found")
        return Reply(
            200,
            {
                "kind": "compute#region",
                "name": region,
                "status": "UP",
                "zones": [f"{COMPUTE}/{project}/zones/{zone}" for zone in self.region_zones[region]],
                "quotas": [
                    {"metric": metric, "limit": limit, "usage": usage}
                    for metric, (limit, usage) in self.region_quotas[region].items()
                ],
                "selfLink": f"{COMPUTE}/{project}/regions/{region}",
            },
        )

    def get_machine_type(self, request: Request) -> Reply:
        project, zone, name = request.params["project"], request.params["zone"], request.params["type"]
        self.check(project, "compute.machineTypes.get")
        known = any(zone in zones for zones in self.region_zones.values())
        if not known or name not in MACHINE_TYPES:
            raise fail(404, f"The resource 'projects/{project}/zones/{zone}/machineTypes/{name}' was not found")
        cpus, memory, shared = MACHINE_TYPES[name]
        return Reply(
            200,
            {
                "kind": "compute#machineType",
                "name": name,
                "zone": zone,
                "guestCpus": cpus,
                "memoryMb": memory,
                "isSharedCpu": shared,
                "selfLink": f"{COMPUTE}/{project}/zones/{zone}/machineTypes/{name}",
            },
        )
