"""The regional Compute Engine quotas a GKE cluster's nodes count against, as clusters.create checks them: at once,
before any operation exists, with 403 PERMISSION_DENIED and a message naming the first short quota.

What it follows: GKE's quota troubleshooting (https://cloud.google.com/kubernetes-engine/docs/troubleshooting/
cluster-quota; https://cloud.google.com/kubernetes-engine/quotas: the nodes are Compute Engine VMs and count
against the project's regional CPUS, disk and IN_USE_ADDRESSES quotas); the message as GKE words it (seen in
public reports, e.g. kubeflow/kubeflow#842 and terraform-provider-google issues: 'Insufficient regional quota to
satisfy request: resource "CPUS": request requires '12.0' and is short '4.0'. project has a quota of '24.0'
with '8.0' available. View and manage quotas at https://console.cloud.google.com/iam-admin/quotas?usage=USED&
project=P.'); `initialNodeCount` is per zone, and a regional cluster has its nodes in three zones unless
`locations` says otherwise (https://cloud.google.com/kubernetes-engine/docs/concepts/regional-clusters);
each node's boot disk is 100 GB of pd-balanced unless `diskSizeGb`/`diskType` say otherwise (NodeConfig
reference), which counts against SSD_TOTAL_GB (pd-standard against DISKS_TOTAL_GB), and each node has an
external address (IN_USE_ADDRESSES).
"""

from __future__ import annotations

import re

from tests.fakes.google import fail

ZONE = re.compile(r"^(?P<region>[a-z]+-[a-z]+\d+)-[a-z]$")
VCPUS = {  # https://cloud.google.com/compute/docs/general-purpose-machines (shared-core e2 types count 2)
    "e2-micro": 2,
    "e2-small": 2,
    "e2-medium": 2,
    "e2-standard-2": 2,
    "e2-standard-4": 4,
    "e2-standard-8": 8,
    "n2-standard-2": 2,
    "n2-standard-4": 4,
}


def region_of(location: str) -> str:
    zone = ZONE.match(location)
    return zone["region"] if zone else location


def node_locations(location: str, cluster: dict) -> list[str]:
    """The zones of the cluster's nodes: `locations` if given, else its zone, else three zones of its region."""
    if cluster.get("locations"):
        return list(cluster["locations"])
    return [location] if ZONE.match(location) else [f"{location}-{z}" for z in "bcd"]


class RegionalQuota:
    def __init__(self) -> None:
        # a new project's usual limits per region (the quotas page shows each project's own)
        self.limits = {"CPUS": 24.0, "SSD_TOTAL_GB": 500.0, "DISKS_TOTAL_GB": 4096.0, "IN_USE_ADDRESSES": 8.0}

    @staticmethod
    def needs(location: str, cluster: dict) -> dict[str, float]:
        node = cluster.get("nodeConfig", {})
        machine = node.get("machineType", "e2-medium")
        if machine not in VCPUS:
            raise fail(400, f'Machine type "{machine}" is not available in location "{location}".')
        nodes = int(cluster.get("initialNodeCount", 0)) * len(node_locations(location, cluster))
        disk = "DISKS_TOTAL_GB" if node.get("diskType") == "pd-standard" else "SSD_TOTAL_GB"
        return {
            "CPUS": float(nodes * VCPUS[machine]),
            disk: float(nodes * int(node.get("diskSizeGb") or 100)),
            "IN_USE_ADDRESSES": float(nodes),
        }

    def check(self, project: str, location: str, cluster: dict, others: dict[str, dict]) -> None:
        """Refuse `cluster` when it and the `others` in its region (by location) need more than a limit."""
        region = region_of(location)
        used: dict[str, float] = {}
        for where, other in others.items():
            if region_of(where) == region:
                for metric, amount in self.needs(where, other).items():
                    used[metric] = used.get(metric, 0.0) + amount
        for metric, amount in self.needs(location, cluster).items():
            available = max(self.limits[metric] - used.get(metric, 0.0), 0.0)
            if amount > available:
                raise fail(
                    403,
                    f'Insufficient regional quota to satisfy request: resource "{metric}": request requires '
                    f"'{amount:.1f}' and is short '{amount - available:.1f}'. project has a quota of "
                    f"'{self.limits[metric]:.1f}' with '{available:.1f}' available. View and manage quotas at "
                    f"https://console.cloud.google.com/iam-admin/quotas?usage=USED&project={project}.",
                )
