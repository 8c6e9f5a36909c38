"""The gke target: ensure the cluster, apply through the shared Kubernetes target, open the firewall; down
removes the load balancers first (and waits for their Compute pieces), then the workloads, then the claims
(and waits for their disks), the rule and the cluster, then audits Compute."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from deploy.model.changes import ObjectChange
from deploy.model.environments import Environment
from deploy.model.errors import ConfigError, LeftoversError
from deploy.model.lease import Holding, Lease
from deploy.model.progress import Say, silent
from deploy.model.status import ApplyResult, ServiceStatus
from deploy.targets.gke.cluster import SERVING, Cluster, GkeCluster, created_by_us
from deploy.targets.gke.firewall import Firewall
from deploy.targets.gke.leftovers import Leftovers
from deploy.targets.gke.naming import ClusterIds
from deploy.targets.kube.client import KubeApi
from deploy.targets.kube.target import KubeTarget


class GkeTarget:
    def __init__(
        self,
        environment: Environment,
        cluster: GkeCluster,
        firewall: Firewall,
        leftovers: Leftovers,
        connect: Callable[[Cluster], KubeApi],
        say: Say = silent,
        keep_cluster: bool = False,
        poll: float = 1.0,
        cloud_timeout: float = 600,
    ):
        self.environment = environment
        self.cluster = cluster
        self.firewall = firewall
        self.leftovers = leftovers
        self.connect = connect
        self.say = say
        self.keep_cluster = keep_cluster
        self.poll = poll
        self.cloud_timeout = cloud_timeout
        self._kube: dict[str, KubeTarget] = {}  # by the cluster's endpoint: one client (and diff reading) per cluster

    def kube(self, cluster: Cluster | None) -> KubeTarget | None:
        """The Kubernetes target of the running `cluster`, the same one for the same cluster (so an apply takes the
        objects its diff read); None while it is not running (or DEGRADED, which serves)."""
        if cluster is None or cluster.status not in SERVING:
            return None
        if cluster.endpoint not in self._kube:
            env = self.environment
            self._kube[cluster.endpoint] = KubeTarget(
                self.connect(cluster), env.namespace, env.name, self.say, poll=self.poll
            )
        return self._kube[cluster.endpoint]

    def require(self) -> KubeTarget:
        kube = self.kube(self.cluster.find())
        if kube is None:
            raise ConfigError(
                f"cluster {self.cluster.place.gke.cluster} of environment {self.environment.name} is not running",
                f"run `k8sdeploy up --env {self.environment.name}`",
            )
        return kube

    def apply(self, objects: Sequence[dict]) -> ApplyResult:
        kube = self.kube(self.cluster.ensure())
        assert kube is not None  # ensure() returns a running cluster or raises
        result = kube.apply(objects)
        self.firewall.ensure(self.gateway_ports(kube))
        return result

    def diff(self, objects: Sequence[dict]) -> tuple[ObjectChange, ...]:
        """The cluster (created, or checked as `up` checks it), its objects as its API server answers a dry run,
        and the firewall rule; nothing is created or changed."""
        place = self.cluster.place
        gke = place.gke
        cluster = self.cluster.find()
        kube = self.kube(cluster)
        if cluster is None or kube is None:
            if cluster is None:
                cluster_change = ObjectChange(
                    "Cluster", gke.cluster, "create", note=f"{place.nodes} of {gke.machine_type} in {gke.location}"
                )
            else:  # `up` waits for it; its objects cannot be asked after until it runs
                cluster_change = ObjectChange("Cluster", gke.cluster, "unchanged", note=f"{cluster.status.name}")
            planned = [cluster_change, ObjectChange("Namespace", self.environment.namespace, "create")]
            planned += [ObjectChange(obj["kind"], obj["metadata"]["name"], "create") for obj in objects]
            return (*planned, self.firewall.change({self.environment.gateway_port}))
        self.cluster.reconcile(cluster, warn=False)  # apply warns, once
        return (*kube.diff(objects), self.firewall.change(self.gateway_ports(kube)))

    def gateway_ports(self, kube: KubeTarget) -> set[int]:
        """The gateway's port, and its node port when the Service has one (the node tag is the target)."""
        ports = {self.environment.gateway_port}
        service = kube.readiness.gateway_service()
        for port in (service or {}).get("spec", {}).get("ports", []):
            ports |= {port["port"]} | ({port["nodePort"]} if port.get("nodePort") else set())
        return ports

    def wait(self, timeout: float) -> None:
        self.require().wait(timeout)

    def status(self) -> list[ServiceStatus]:
        cluster = self.cluster.find()
        kube = self.kube(cluster)
        if kube is None or cluster is None:
            self.say(f"cluster {self.cluster.place.gke.cluster}: " + (cluster.status.name if cluster else "none"))
            return []
        url = kube.readiness.gateway_address(kube.readiness.gateway_service())
        self.say(f"cluster {cluster.name} in {cluster.location}: {cluster.status.name}, endpoint {cluster.endpoint}")
        self.say(f"gateway: {url or 'no external address yet'}")
        return kube.status()

    def gateway_url(self) -> str:
        return self.require().gateway_url()

    def logs(self, service: str, lines: int = 50) -> str:
        return self.require().logs(service, lines)

    def run_in(self, service: str, command: Sequence[str]) -> tuple[int, str]:
        return self.require().run_in(service, command)

    def hand_edits(self) -> tuple[str, ...]:
        kube = self.kube(self.cluster.find())
        return kube.hand_edits() if kube is not None else ()

    def down(self, volumes: bool = False) -> tuple[str, ...]:
        """Idempotent. Claims go too when the cluster goes (their disks would outlive it)."""
        volumes = volumes or not self.keep_cluster
        removed: list[str] = []
        names: list[str] = []
        cluster = self.cluster.find()
        # a cluster this down deletes takes its shared health checks with it (GKE leaks them otherwise)
        deleting = cluster is not None and not self.keep_cluster and created_by_us(cluster)
        kube = self.kube(cluster)
        if kube is not None:
            ids = ClusterIds.of(kube.api)  # read before the cluster, which keeps them, goes
            first, services = kube.teardown.load_balancers()
            names = [name for service in services for name in ids.service_names(service)]
            names += ids.shared() if deleting else []
            self.leftovers.wait_gone(names if services else [], self.cloud_timeout)
            removed += first + kube.teardown.workloads()
            if volumes:
                claimed, claims = kube.teardown.claims()
                disks = [claim["spec"].get("volumeName", "") for claim in claims]
                self.leftovers.wait_gone(disks, self.cloud_timeout)
                removed += claimed
                names += disks
            removed += kube.teardown.remove_namespace()
        if self.firewall.delete():
            removed.append(f"firewall rule {self.firewall.name}")
        if not self.keep_cluster and self.cluster.delete():
            removed.append(f"cluster {self.cluster.place.gke.cluster}")
        elif kube is not None:
            kube.audit(volumes)
        left = self.leftovers.find(names, disks=volumes)
        if left:
            raise LeftoversError(
                f"{len(left)} Compute resource(s) of environment {self.environment.name} are left: "
                + ", ".join(map(str, left)),
                "delete them (they cost money), then run `k8sdeploy down` again to check",
                details="removed before: " + ", ".join(removed),
            )
        return tuple(removed)


class ClusterLease:
    """The environment's lease in its cluster; before the cluster exists there is nowhere to keep one (two
    first deploys racing meet at GKE, which creates the cluster once)."""

    def __init__(self, target: GkeTarget, lease_on: Callable[[KubeApi], Lease], say: Say = silent):
        self.target = target
        self.lease_on = lease_on
        self.say = say

    @contextmanager
    def hold(self, holder: str, create: bool = True) -> Iterator[Holding | None]:
        kube = self.target.kube(self.target.cluster.find())
        if kube is None:
            self.say(f"no running cluster {self.target.cluster.place.gke.cluster} yet: no lease to hold")
            yield None
            return
        with self.lease_on(kube.api).hold(holder, create) as held:
            yield held
