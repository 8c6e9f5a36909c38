"""What GKE runs beside the API server that this machine cannot: the service controller of the cloud
controller manager and the Persistent Disk CSI driver, writing to the fake Compute API.

It watches the real API server (by polling, in a thread) the way those controllers do:
- A Service of type LoadBalancer gets its load balancer one of the two ways GKE makes them
  (https://cloud.google.com/kubernetes-engine/docs/concepts/service-load-balancer): backend-service based with
  GCE_VM_IP NEG backends when it has the annotation `cloud.google.com/l4-rbs: "enabled"` or
  `spec.loadBalancerClass: networking.gke.io/l4-regional-external`, or when `backend_services` is set (GKE
  1.37 and later make them so without either); else target-pool based. Either way it first gets its
  controller's finalizer (`service.kubernetes.io/load-balancer-cleanup` from the service controller,
  `gke.networking.io/l4-netlb-v3` from ingress-gce for the NEG variant: ingress-gce
  pkg/utils/common/finalizer.go), then its pieces in the fake Compute API (tests/fakes/compute.py says which,
  and their names), then an ingress address in its status. When the Service is deleted, the controller deletes
  its pieces (and a shared health check it was the last user of) and only then removes the finalizer, so the
  Service stays (Terminating) until its load balancer is gone. (kubernetes/cloud-provider
  controllers/service/controller.go; ingress-gce pkg/l4/controllers/l4netlbcontroller.go.) The names come from
  the cluster as the controllers read them: the cloud provider's cluster id from the `kube-system/ingress-uid`
  ConfigMap (`provider-uid`, else `uid`), which it creates with a random 8-byte hex id when missing
  (cloud-provider-gcp providers/gce/gce_clusterid.go getOrInitialize), and ingress-gce's cluster uid from the
  `kube-system` namespace's UID (pkg/utils/namer/l4_namer.go NewL4Namer).
- A PersistentVolume of a claim in a watched namespace gets a zonal disk of the same name (`pvc-<uid>`),
  described with `kubernetes.io/created-for/pv/name` and the claim's name and namespace, which goes when
  the volume is deleted (the PD CSI driver's DeleteVolume).
The ingress address is 127.0.0.1: no other address may be reached from these machines. Where a test names a
`backend` for a Service port, the load balancer forwards 127.0.0.1:<port> to it, but only `serve_after` seconds
after the address appears: on GCP the forwarding rule and the health checks start working a while after the
address is assigned (https://cloud.google.com/kubernetes-engine/docs/concepts/service-load-balancer: "it can
take several minutes for the load balancer to be ready"); until then a connection is refused.

`paused` (while the cluster is deleted) and `stop()` stop it without cleaning up: a cluster deleted under its
Services leaks their load balancers, as a real GKE cluster does.
"""

from __future__ import annotations

import json
import secrets
import threading
import time

import requests

from deploy.targets.gke.naming import ClusterIds, content_hash, load_balancer_name
from tests.fakes.compute import FakeCompute, Key
from tests.fakes.tcp_proxy import TcpFaultProxy

FINALIZER = "service.kubernetes.io/load-balancer-cleanup"  # the service controller's (target pools)
NEG_FINALIZER = "gke.networking.io/l4-netlb-v3"  # ingress-gce's, for the NEG-backed variant
RBS = "cloud.google.com/l4-rbs"
L4_CLASS = "networking.gke.io/l4-regional-external"


def backend_service_based(service: dict, default: bool) -> bool:
    """Whether GKE makes this Service's load balancer backend-service based (with NEGs): asked for by annotation
    or class, or by default (GKE 1.37 on)."""
    asked = (service["metadata"].get("annotations") or {}).get(RBS) == "enabled"
    return asked or service["spec"].get("loadBalancerClass") == L4_CLASS or default


class CloudController:
    def __init__(
        self,
        session: requests.Session,
        server: str,
        compute: FakeCompute,
        namespaces: tuple[str, ...],
        poll: float = 0.1,
        ingress_ip: str = "127.0.0.1",
    ):
        self.session = session
        self.server = server
        self.compute = compute
        self.namespaces = set(namespaces)
        self.poll = poll
        self.ingress_ip = ingress_ip
        self.paused = False  # while the cluster is deleted (or not yet created) nothing runs
        self.leaks: set[str] = set()  # resource names it fails to delete (and says it did), as controllers do
        self.backend_services = False  # every LoadBalancer Service the NEG way, as GKE 1.37 and later do
        self.made: dict[str, list[Key]] = {}  # a Service's uid -> its own pieces in Compute
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.errors: list[str] = []
        self.backends: dict[int, str] = {}  # a LoadBalancer Service's port -> where its load balancer forwards
        self.serve_after = 0.0
        self.serving: dict[str, list[threading.Timer | TcpFaultProxy]] = {}  # by load balancer name

    def start(self) -> CloudController:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        for name in list(self.serving):
            self.stop_serving(name)

    def start_serving(self, name: str, service: dict) -> None:
        """The load balancer `name` forwards the Service's ports that have a backend, `serve_after` seconds on."""
        ports = [p["port"] for p in service["spec"].get("ports", []) if p["port"] in self.backends]
        if name in self.serving or not ports:
            return
        forwarders: list[threading.Timer | TcpFaultProxy] = []

        def serve() -> None:
            if name in self.serving and not self.stopped.is_set():
                self.serving[name] += [TcpFaultProxy(self.backends[port], listen=port).start() for port in ports]

        timer = threading.Timer(self.serve_after, serve)
        timer.daemon = True
        forwarders.append(timer)
        self.serving[name] = forwarders
        timer.start()

    def stop_serving(self, name: str) -> None:
        for forwarder in self.serving.pop(name, []):
            if isinstance(forwarder, threading.Timer):
                forwarder.cancel()
            else:
                forwarder.stop()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                if not self.paused:
                    self.reconcile()
            except (requests.RequestException, KeyError, ValueError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.stopped.wait(self.poll)

    def reconcile(self) -> None:
        for namespace in sorted(self.namespaces):
            answer = self.session.get(f"{self.server}/api/v1/namespaces/{namespace}/services", timeout=10)
            if answer.status_code == 200:
                for service in answer.json()["items"]:
                    self.service(service)
        self.disks()

    def cluster_ids(self) -> ClusterIds:
        """The ids the controllers name the pieces after, read from the cluster (the ConfigMap made if missing)."""
        system = self.session.get(f"{self.server}/api/v1/namespaces/kube-system", timeout=10)
        system.raise_for_status()
        path = f"{self.server}/api/v1/namespaces/kube-system/configmaps"
        found = self.session.get(f"{path}/ingress-uid", timeout=10)
        if found.status_code == 404:
            new = secrets.token_hex(8)
            body = {"metadata": {"name": "ingress-uid"}, "data": {"uid": new, "provider-uid": new}}
            self.session.post(path, json=body, timeout=10)  # 409 when another made it meanwhile: read it
            found = self.session.get(f"{path}/ingress-uid", timeout=10)
        found.raise_for_status()
        data = found.json().get("data") or {}
        return ClusterIds(content_hash(system.json()["metadata"]["uid"], 8), data.get("provider-uid") or data["uid"])

    # -- the service controller ---------------------------------------------------------------
    def patch(self, path: str, body: dict) -> None:
        self.session.patch(
            f"{self.server}{path}",
            data=json.dumps(body),
            timeout=10,
            headers={"Content-Type": "application/merge-patch+json"},
        )

    def service(self, service: dict) -> None:
        meta = service["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/services/{meta['name']}"
        finalizers = meta.get("finalizers") or []
        wants = service["spec"].get("type") == "LoadBalancer" and not meta.get("deletionTimestamp")
        neg = backend_service_based(service, self.backend_services)
        finalizer = NEG_FINALIZER if neg else FINALIZER
        name = load_balancer_name(service)
        if wants and finalizer not in finalizers:
            self.patch(path, {"metadata": {"finalizers": [*finalizers, finalizer]}})
            return
        if wants:
            self.balance(service, neg)
            if not (service.get("status") or {}).get("loadBalancer", {}).get("ingress"):
                self.patch(
                    path + "/status",
                    {"status": {"loadBalancer": {"ingress": [{"ip": self.ingress_ip, "ipMode": "VIP"}]}}},
                )
            self.start_serving(name, service)
            return
        self.stop_serving(name)
        mine = [f for f in finalizers if f in (FINALIZER, NEG_FINALIZER)]
        if mine:
            with self.compute.lock:
                made = self.made.get(meta["uid"], [])
                left = [key for key in made if key in self.compute.resources and key[2] not in self.leaks]
                for key in left:
                    self.compute.doomed.setdefault(key, 2)
                self.compute.tick()
                if not left:
                    self.compute.load_balancer_released(meta["uid"], self.leaks)
            if not left:
                self.patch(path, {"metadata": {"finalizers": [f for f in finalizers if f not in mine]}})

    def balance(self, service: dict, neg: bool) -> None:
        """The Service's pieces in Compute, made once."""
        uid = service["metadata"]["uid"]
        with self.compute.lock:
            if uid in self.made:
                return
        ids = self.cluster_ids()
        with self.compute.lock:
            if neg:
                self.made[uid] = self.compute.backend_service_load_balancer_created(service, ids)
            else:
                self.made[uid] = self.compute.load_balancer_created(service, ids.provider_id)

    # -- the disk driver ----------------------------------------------------------------------
    def disks(self) -> None:
        answer = self.session.get(f"{self.server}/api/v1/persistentvolumes", timeout=10)
        if answer.status_code != 200:
            return
        volumes = {pv["metadata"]["name"]: pv for pv in answer.json()["items"]}
        zone = f"zones/{self.compute.zone}"
        with self.compute.lock:
            self.sync_disks(volumes, zone)

    def sync_disks(self, volumes: dict[str, dict], zone: str) -> None:
        for name, pv in volumes.items():
            claim = pv["spec"].get("claimRef") or {}
            if claim.get("namespace") in self.namespaces and ("disks", zone, name) not in self.compute.resources:
                self.compute.disk_created(
                    {"metadata": {"name": claim["name"], "namespace": claim["namespace"]}, "spec": {"volumeName": name}}
                )
        for collection, scope, name in list(self.compute.resources):
            if (
                collection == "disks"
                and scope == zone
                and name not in volumes
                and (collection, scope, name) not in self.compute.doomed
                and self.ours(name)
            ):
                self.compute.doomed.setdefault((collection, scope, name), 2)
        self.compute.tick()

    def ours(self, disk: str) -> bool:
        description = self.compute.resources[("disks", f"zones/{self.compute.zone}", disk)].get("description", "")
        try:
            return json.loads(description).get("kubernetes.io/created-for/pvc/namespace") in self.namespaces
        except ValueError:
            return False

    def wait_idle(self, timeout: float = 10) -> None:
        """Until every LoadBalancer Service of the watched namespaces has its address."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = False
            for namespace in self.namespaces:
                answer = self.session.get(f"{self.server}/api/v1/namespaces/{namespace}/services", timeout=10)
                for service in answer.json().get("items", []) if answer.status_code == 200 else []:
                    if service["spec"].get("type") == "LoadBalancer" and not (service.get("status") or {}).get(
                        "loadBalancer", {}
                    ).get("ingress"):
                        pending = True
            if not pending:
                return
            time.sleep(self.poll)
