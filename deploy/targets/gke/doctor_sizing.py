"""What a gke environment's cluster amounts to in Compute's quotas and in room for pods: the arithmetic of
`doctor`'s quota and capacity checks, on what Compute answered (regions.get, machineTypes.get) and the rendered
objects; no API is asked here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from deploy.model.doctor import Finding, missing, passed
from deploy.model.environments import Environment
from deploy.targets.kube.readonly import quantity

MIB = Decimal(1024 * 1024)
DEFAULT_ZONES = 3  # a regional cluster without nodeLocations (concepts/regional-clusters)
BOOT_DISK_GB = 100  # GKE's default boot disk: 100 GB pd-balanced, counted in SSD_TOTAL_GB (NodeConfig diskSizeGb)
EVICTION_MIB = 100  # the kubelet's hard eviction threshold GKE sets (concepts/plan-node-sizes)
SHARED_CORE_CPU_M = 940  # shared-core E2 (e2-micro, e2-small, e2-medium): GKE's allocatable CPU whatever guestCpus
# GKE's system pods' requests, as `kubectl describe node` lists them on a GKE 1.29 node
# (github.com/cryptnono/cryptnono/issues/34): per node the DaemonSets, per cluster the Deployments; an estimate
# (add-ons and versions change them), kept low: only the pods every cluster k8sdeploy makes runs
PER_NODE = {"fluentbit-gke": (105, 230), "gke-metadata-server": (100, 100), "ip-masq-agent": (10, 16)}
PER_CLUSTER = {
    "kube-dns (2 replicas)": (520, 220),
    "konnectivity-agent (2 replicas)": (30, 120),
    "konnectivity-agent-autoscaler": (10, 10),
    "kube-dns-autoscaler": (20, 10),
}


@dataclass(frozen=True)
class Machine:
    """machineTypes.get: https://cloud.google.com/compute/docs/reference/rest/v1/machineTypes/get"""

    name: str
    cpus: int  # guestCpus
    memory_mb: int  # memoryMb (MiB)
    shared_cpu: bool = False  # isSharedCpu

    @classmethod
    def of(cls, answer: Mapping) -> Machine:
        return cls(answer["name"], int(answer["guestCpus"]), int(answer["memoryMb"]), bool(answer.get("isSharedCpu")))


LARGER = (Machine("e2-medium", 2, 4096, True), Machine("e2-standard-2", 2, 8192))  # named in the capacity fix


@dataclass(frozen=True)
class Region:
    """regions.get: https://cloud.google.com/compute/docs/reference/rest/v1/regions/get (quotas[]: metric,
    limit, usage; zones[]: URLs)."""

    name: str
    zones: tuple[str, ...]
    quotas: Mapping[str, tuple[float, float]]  # metric -> (limit, usage)

    @classmethod
    def of(cls, answer: Mapping) -> Region:
        quotas = {q["metric"]: (float(q.get("limit", 0)), float(q.get("usage", 0))) for q in answer.get("quotas", [])}
        zones = tuple(str(zone).rsplit("/", 1)[-1] for zone in answer.get("zones", []))
        return cls(answer["name"], zones, quotas)


def region_of(location: str) -> str:
    """europe-west1-b -> europe-west1; a region is itself."""
    head, _, tail = location.rpartition("-")
    return head if len(tail) == 1 else location


def zones_of(location: str, region: Region | None) -> int:
    """How many zones the cluster's nodes are in: a zone's one, a region's three (or fewer where it has fewer)."""
    if region_of(location) != location:
        return 1
    return min(DEFAULT_ZONES, len(region.zones)) if region is not None and region.zones else DEFAULT_ZONES


def quota(environment: Environment, machine: Machine, region: Region) -> list[Finding]:
    """The regional quotas a new cluster takes: CPUS (nodes x guestCpus), SSD_TOTAL_GB (a boot disk each),
    IN_USE_ADDRESSES (an external IP each, and the LoadBalancer's)."""
    gke = environment.gke
    assert gke is not None
    zones = zones_of(gke.location, region)
    nodes = gke.node_count * zones
    balancer = 1 if environment.service_type == "LoadBalancer" else 0
    what = f"{gke.node_count} x {machine.name} x {zones} zone(s) = {nodes} node(s)"
    needs = {
        "CPUS": (nodes * machine.cpus, f"{what}, {machine.cpus} vCPUs each"),
        "SSD_TOTAL_GB": (nodes * BOOT_DISK_GB, f"{nodes} boot disk(s) of {BOOT_DISK_GB} GB pd-balanced"),
        "IN_USE_ADDRESSES": (
            nodes + balancer,
            f"{nodes} node IP(s)" + (" and the load balancer's" if balancer else ""),
        ),
    }
    found = []
    for metric, (need, why) in needs.items():
        limit, usage = region.quotas.get(metric, (0.0, 0.0))
        free = limit - usage
        line = f"{metric} in {region.name}: the cluster needs {need:g} ({why}); {usage:g} of {limit:g} used"
        if need > free:
            found.append(
                missing(
                    "quota",
                    f"{line}, {free:g} free: {need - free:g} short",
                    f"ask for more {metric} in {region.name} (console: IAM & Admin > Quotas), or set a smaller "
                    f"machine_type or node_count in [environments.{environment.name}.gke]",
                )
            )
        else:
            found.append(passed("quota", f"{line}, {free - need:g} to spare"))
    return found


def allocatable(machine: Machine) -> tuple[int, int]:
    """A node's allocatable CPU (millicores) and memory (MiB) by GKE's documented reservations
    (https://cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes#memory_and_cpu_reservations)."""
    memory = machine.memory_mb
    if memory < 1024:
        reserved = 255.0
    else:
        reserved, left = 0.0, float(memory)
        for size, share in ((4096, 0.25), (4096, 0.20), (8192, 0.10), (114688, 0.06), (float("inf"), 0.02)):
            reserved += min(left, size) * share
            left -= min(left, size)
            if left <= 0:
                break
    if machine.shared_cpu:
        cpu = SHARED_CORE_CPU_M
    else:
        reserved_cpu, left = 0.0, machine.cpus * 1000.0
        for size, share in ((1000, 0.06), (1000, 0.01), (2000, 0.005), (float("inf"), 0.0025)):
            reserved_cpu += min(left, size) * share
            left -= min(left, size)
            if left <= 0:
                break
        cpu = int(machine.cpus * 1000 - reserved_cpu)
    return cpu, int(memory - reserved - EVICTION_MIB)


def requests(objects: Iterable[dict]) -> tuple[int, int, int, int]:
    """The rendered workloads' requests (millicores, MiB) times their replicas, and the largest pod's (which a
    rolling update runs beside the old ones)."""
    cpu = memory = largest_cpu = largest_memory = 0
    for obj in objects:
        kind = obj.get("kind")
        if kind not in ("Deployment", "StatefulSet", "Pod"):
            continue
        spec = obj.get("spec", {})
        pod = spec if kind == "Pod" else spec.get("template", {}).get("spec", {})
        replicas = 1 if kind == "Pod" else int(spec.get("replicas", 1))
        pod_cpu, pod_memory = pod_requests(pod.get("containers", []))
        cpu, memory = cpu + replicas * pod_cpu, memory + replicas * pod_memory
        if kind == "Deployment" and spec.get("strategy", {}).get("type", "RollingUpdate") == "RollingUpdate":
            largest_cpu, largest_memory = max(largest_cpu, pod_cpu), max(largest_memory, pod_memory)
    return cpu, memory, largest_cpu, largest_memory


def pod_requests(containers: Sequence[dict]) -> tuple[int, int]:
    cpu = memory = Decimal(0)
    for container in containers:
        wanted = container.get("resources", {}).get("requests", {})
        cpu += quantity(wanted.get("cpu", 0)) or 0
        memory += quantity(wanted.get("memory", 0)) or 0
    return int(cpu * 1000), int(memory / MIB)


def system_pods(nodes: int) -> tuple[int, int]:
    per_node = [sum(v[i] for v in PER_NODE.values()) for i in (0, 1)]
    per_cluster = [sum(v[i] for v in PER_CLUSTER.values()) for i in (0, 1)]
    return per_node[0] * nodes + per_cluster[0], per_node[1] * nodes + per_cluster[1]


def gib(mib: float) -> str:
    return f"{mib / 1024:.1f} GiB"


def capacity(environment: Environment, machine: Machine, zones: int, objects: Iterable[dict]) -> Finding:
    """Whether the node pool holds the workloads' requests beside GKE's system pods, by the scheduler's
    arithmetic (requests against allocatable), summed over the nodes (no pod is split: an estimate)."""
    gke = environment.gke
    assert gke is not None
    nodes = gke.node_count * zones
    node_cpu, node_memory = allocatable(machine)
    system_cpu, system_memory = system_pods(nodes)
    cpu, memory, surge_cpu, surge_memory = requests(objects)
    free_cpu, free_memory = nodes * node_cpu - system_cpu, nodes * node_memory - system_memory
    message = (
        f"{machine.name} x {nodes}: {node_cpu}m CPU / {gib(node_memory)} allocatable each; the suite requests "
        f"{cpu}m / {memory} MiB (+{surge_cpu}m / {surge_memory} MiB while a pod is replaced), GKE's system pods "
        f"about {system_cpu}m / {system_memory} MiB"
    )
    if cpu + surge_cpu > free_cpu or memory + surge_memory > free_memory:
        short = []
        if cpu + surge_cpu > free_cpu:
            short.append(f"{cpu + surge_cpu - free_cpu}m CPU")
        if memory + surge_memory > free_memory:
            short.append(f"{memory + surge_memory - free_memory} MiB")
        fitting = [  # only machines on which the same nodes would hold it
            m for m in LARGER
            if nodes * allocatable(m)[0] - system_cpu >= cpu + surge_cpu
            and nodes * allocatable(m)[1] - system_memory >= memory + surge_memory
        ]  # fmt: skip
        offers = [f"{m.name}: {allocatable(m)[0]}m / {gib(allocatable(m)[1])}" for m in fitting]
        larger = f"a larger machine_type ({', '.join(offers)}) or " if offers else ""
        return missing(
            "capacity",
            f"{message}: {' and '.join(short)} short",
            f"set {larger}a higher node_count in [environments.{environment.name}.gke]",
        )
    return passed(
        "capacity", f"{message}: {free_cpu - cpu - surge_cpu}m / {free_memory - memory - surge_memory} MiB to spare"
    )
