"""A faithful fake of the Compute Engine REST API (v1) subset k8sdeploy touches, on loopback.

Why a fake: Compute Engine cannot be reached from these machines. What it follows:
- Global firewalls (https://cloud.google.com/compute/docs/reference/rest/v1/firewalls): insert, patch and delete
  answer an Operation that is PENDING, then RUNNING, then DONE after a few polls of globalOperations.get
  (https://cloud.google.com/compute/docs/reference/rest/v1/globalOperations/get). The change lands when the
  operation is DONE, and not at all when it ends with `error.errors` (a test's `fail_next`)
  (https://cloud.google.com/compute/docs/api/how-tos/api-requests-responses#handling_api_responses). A
  `requestId` seen before answers the operation of its first request and changes nothing again ("the server
  will know to ignore the request if it has already been completed"). An insert naming a network the project
  lacks is refused with 404 at once.
- Networks (https://cloud.google.com/compute/docs/reference/rest/v1/networks/get): `default`, unless the test
  takes it away as the compute.skipDefaultNetworkCreation organisation policy would.
- Aggregated lists of forwarding rules, target pools, backend services, health checks and disks keyed by scope
  (https://cloud.google.com/compute/docs/reference/rest/v1/forwardingRules/aggregatedList).
- The Google error envelope (https://cloud.google.com/apis/design/errors) for 403/404/409 and the injected
  429/500/502/503/504.
- The pieces a GKE cluster's controllers create outside the cluster, of both kinds GKE makes
  (https://cloud.google.com/kubernetes-engine/docs/concepts/service-load-balancer;
  .../service-load-balancer-parameters). Target-pool load balancers, by the cloud provider's service controller
  (cloud-provider-gcp providers/gce/gce_loadbalancer_external.go, gce_loadbalancer_naming.go): a forwarding
  rule, a target pool and a k8s-fw-* firewall rule (named a<uid>, described with kubernetes.io/service-name),
  and a health check: with externalTrafficPolicy Cluster the cluster's shared legacy HTTP health check of its
  nodes (global httpHealthChecks, k8s-<cluster id>-node, port 10256) and its rule
  k8s-<cluster id>-node-http-hc; with Local one of the Service's own (a<uid>, on its healthCheckNodePort) and
  its rule k8s-a<uid>-http-hc. Backend-service load balancers with GCE_VM_IP NEG backends, by ingress-gce's L4
  NetLB and NEG controllers (ingress-gce pkg/l4/resources/l4netlb.go, pkg/l4/healthchecks/healthchecksl4.go,
  pkg/firewalls/firewalls_l4.go, pkg/neg/types/types.go; names by pkg/utils/namer/l4_namer.go, as
  deploy/targets/gke/naming.py computes them, pinned there to ingress-gce's own test vectors): the forwarding
  rule a<uid>, a regional backend service, the nodes' firewall rule and a GCE_VM_IP NEG in each of the
  cluster's zones named k8s2-<cluster uid>-<namespace>-<name>-<hash>, described with
  networking.gke.io/service-name, and a regional health check: with Cluster the cluster's shared
  k8s2-<cluster uid>-l4-shared-hc (rule ...-fw), with Local the Service's own (its name, rule ...-fw). A shared
  health check goes with the last Service that uses it (its delete is refused while it is in use). The
  Service's own pieces go some polls after the Service is deleted, never when the cluster is. A PVC makes a
  disk.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

from deploy.targets.gke.naming import ClusterIds, load_balancer_name, node_health_check, suffixed
from tests.fakes.compute_regions import ComputeRegions
from tests.fakes.google import GoogleFake, fail
from tests.fakes.server import Reply, Request

P = r"/compute/v1/projects/(?P<project>[^/]+)"


def namespaced(service: dict) -> str:
    return f"{service['metadata']['namespace']}/{service['metadata']['name']}"


AGGREGATED = ("forwardingRules", "targetPools", "backendServices", "healthChecks", "networkEndpointGroups", "disks")
Key = tuple[str, str, str]  # collection, scope, name


class FakeCompute(ComputeRegions, GoogleFake):
    service, title = "compute.googleapis.com", "Compute Engine API"

    def __init__(self, region: str = "europe-west1", zone: str = "europe-west1-b", done_after: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.serve_regions()  # regions and machine types (tests/fakes/compute_regions.py)
        self.region, self.zone = region, zone
        self.zones = (zone,)  # the cluster's zones, each with a NEG of a backend-service load balancer
        self.sharing: dict[Key, set[str]] = {}  # a shared health check -> the uids of the Services using it
        self.done_after = done_after
        self.resources: dict[tuple[str, str, str], dict] = {}  # (collection, scope, name) -> resource
        self.operations: dict[str, dict] = {}
        self.doomed: dict[tuple[str, str, str], int] = {}  # resource -> list polls left before it goes
        self.fail_next: str = ""  # an operation error for the next firewall change
        self.networks = {"default"}
        self.request_ids: dict[str, str] = {}  # requestId -> the operation it made
        self.pending: dict[str, Callable[[], None]] = {}  # operation -> its change, made when it is DONE
        self.ids = itertools.count(1000)
        self.route("GET", P + r"/global/firewalls", self.list_global)
        self.route("GET", P + r"/global/httpHealthChecks", self.list_global)
        self.route("GET", P + r"/global/firewalls/(?P<name>[^/]+)", self.get_firewall)
        self.route("POST", P + r"/global/firewalls", self.insert_firewall)
        self.route("PATCH", P + r"/global/firewalls/(?P<name>[^/]+)", self.patch_firewall)
        self.route("DELETE", P + r"/global/firewalls/(?P<name>[^/]+)", self.delete_firewall)
        self.route("GET", P + r"/global/operations/(?P<operation>[^/]+)", self.get_operation)
        self.route("GET", P + r"/global/networks/(?P<name>[^/]+)", self.get_network)
        self.route("GET", P + r"/aggregated/(?P<collection>[a-zA-Z]+)", self.aggregated)

    # -- what tests look at --------------------------------------------------------------------
    def names(self, collection: str) -> list[str]:
        return sorted(name for kind, _, name in self.resources if kind == collection)

    def everything(self) -> list[tuple[str, str, str]]:
        return sorted(self.resources)

    # -- the cluster's controllers (tests/fakes/cloud_controller.py) ------------------------------
    def load_balancer_created(self, service: dict, cluster_id: str) -> list[Key]:
        """A target-pool load balancer as GKE's service controller makes it: a forwarding rule, a target pool and
        a k8s-fw- firewall rule named a<uid>, and its health check: with externalTrafficPolicy Local the Service's
        own (a<uid> on its healthCheckNodePort, firewall k8s-a<uid>-http-hc), else the cluster's shared check of
        the nodes `k8s-<cluster id>-node` (port 10256) with its firewall rule `k8s-<cluster id>-node-http-hc`
        (names as GKE projects show them, e.g. httpHealthChecks/k8s-b74c81ed5ad4dc2c-node). The Service's own
        pieces, not the shared ones."""
        name, region = load_balancer_name(service), f"regions/{self.region}"
        described = {"description": json.dumps({"kubernetes.io/service-name": namespaced(service)})}
        own: list[Key] = [
            self.put("forwardingRules", region, {"name": name, **described}),
            self.put("targetPools", region, {"name": name, **described}),
            self.put("firewalls", "global", {"name": f"k8s-fw-{name}", **described}),
        ]
        if service["spec"].get("externalTrafficPolicy") == "Local":
            port = service["spec"].get("healthCheckNodePort", 0)
            own.append(self.put("httpHealthChecks", "global", {"name": name, "port": port, **described}))
            own.append(self.put("firewalls", "global", {"name": f"k8s-{name}-http-hc", **described}))
            return own
        check = node_health_check(cluster_id)
        self.share(
            service,
            ("httpHealthChecks", "global", check),
            {
                "port": 10256,
                "requestPath": "/healthz",
                "description": json.dumps({"kubernetes.io/service-name": check}),
            },
            {"name": f"{check}-http-hc", "description": json.dumps({"kubernetes.io/cluster-id": cluster_id})},
        )
        return own

    def backend_service_load_balancer_created(self, service: dict, ids: ClusterIds) -> list[Key]:
        """A backend-service load balancer with GCE_VM_IP NEG backends as ingress-gce's L4 NetLB controller
        makes it (l4netlb.go EnsureFrontend): the forwarding rule a<uid>, the regional backend service, the
        nodes' firewall rule, a NEG per zone and the health check with its -fw rule (the shared one with
        externalTrafficPolicy Cluster). The Service's own pieces, not the shared ones."""
        meta, region = service["metadata"], f"regions/{self.region}"
        backend = ids.l4_backend(meta["namespace"], meta["name"])
        described = {"description": json.dumps({"networking.gke.io/service-name": namespaced(service)})}
        own = [
            self.put(
                "forwardingRules",
                region,
                {
                    "name": load_balancer_name(service),
                    "loadBalancingScheme": "EXTERNAL",
                    "backendService": backend,
                    **described,
                },
            ),
            self.put("backendServices", region, {"name": backend, "loadBalancingScheme": "EXTERNAL", **described}),
            self.put("firewalls", "global", {"name": backend, **described}),
        ]
        for zone in self.zones:
            own.append(
                self.put(
                    "networkEndpointGroups",
                    f"zones/{zone}",
                    {"name": backend, "networkEndpointType": "GCE_VM_IP", **described},
                )
            )
        if service["spec"].get("externalTrafficPolicy") == "Local":
            port = service["spec"].get("healthCheckNodePort", 0)
            own.append(
                self.put("healthChecks", region, {"name": backend, "httpHealthCheck": {"port": port}, **described})
            )
            own.append(self.put("firewalls", "global", {"name": suffixed(backend, "-fw"), **described}))
            return own
        check = ids.shared()[-1]  # k8s2-<cluster uid>-l4-shared-hc
        self.share(
            service, ("healthChecks", region, check), {"httpHealthCheck": {"port": 10256}}, {"name": f"{check}-fw"}
        )
        return own

    def share(self, service: dict, check: Key, fields: dict, rule: dict) -> None:
        """The cluster's shared health check `check` and its firewall `rule`, made by the first Service to use it."""
        if check not in self.resources:
            self.put(*check[:2], {"name": check[2], **fields})
            self.put("firewalls", "global", rule)
        for key in (check, ("firewalls", "global", rule["name"])):
            self.doomed.pop(key, None)  # in use again before its delete went through
        self.sharing.setdefault(check, set()).add(service["metadata"]["uid"])

    def load_balancer_released(self, uid: str, leaks: set[str]) -> None:
        """A deleted Service's controller deletes each shared health check (and its rule) it was the last user of
        (the delete of one still in use fails, and is ignored: healthchecksl4.go deleteHealthCheck), but for
        those named in `leaks`."""
        for check, users in list(self.sharing.items()):
            users.discard(uid)
            if not users:
                self.sharing.pop(check)
                for key in list(self.resources):
                    shared = key == check or (key[0] == "firewalls" and key[2].startswith(f"{check[2]}-"))
                    if shared and key[2] not in leaks:
                        self.doomed.setdefault(key, 2)

    def disk_created(self, claim: dict) -> None:
        meta = claim["metadata"]
        self.put(
            "disks",
            f"zones/{self.zone}",
            {
                "name": claim["spec"]["volumeName"],
                "sizeGb": "1",
                "description": json.dumps(
                    {
                        "kubernetes.io/created-for/pv/name": claim["spec"]["volumeName"],
                        "kubernetes.io/created-for/pvc/name": meta["name"],
                        "kubernetes.io/created-for/pvc/namespace": meta["namespace"],
                    }
                ),
            },
        )

    def disk_deleted(self, claim: dict) -> None:
        self.doomed[("disks", f"zones/{self.zone}", claim["spec"]["volumeName"])] = 2

    def put(self, collection: str, scope: str, resource: dict) -> Key:
        resource = {
            "id": str(next(self.ids)),
            **resource,
            "selfLink": f"https://www.googleapis.com/compute/v1/projects/p/{scope}/{collection}/{resource['name']}",
        }
        self.resources[(collection, scope, resource["name"])] = resource
        return collection, scope, resource["name"]

    def tick(self) -> None:
        """Deleted Services and claims take their cloud pieces away a few list polls later."""
        for key in list(self.doomed):
            self.doomed[key] -= 1
            if self.doomed[key] <= 0:
                self.doomed.pop(key)
                self.resources.pop(key, None)

    # -- the API -------------------------------------------------------------------------------
    def list_global(self, request: Request) -> Reply:
        self.check(request.params["project"], "compute.firewalls.list")
        collection = request.path.rsplit("/", 1)[-1]
        self.advance()
        self.tick()
        items = [r for (kind, scope, _), r in sorted(self.resources.items()) if kind == collection]
        return Reply(
            200,
            {"kind": f"compute#{collection[:-1]}List", "items": items}
            if items
            else {"kind": f"compute#{collection[:-1]}List"},
        )

    def aggregated(self, request: Request) -> Reply:
        collection = request.params["collection"]
        self.check(request.params["project"], f"compute.{collection}.list")
        if collection not in AGGREGATED:
            raise fail(404, f"Not found: aggregated/{collection}")
        self.tick()
        items: dict[str, dict] = {
            f"regions/{self.region}": {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "There are no results"}}
        }
        for (kind, scope, _), resource in sorted(self.resources.items()):
            if kind == collection:
                items[scope] = {collection: [*items.get(scope, {}).get(collection, []), resource]}
        return Reply(200, {"kind": f"compute#{collection}AggregatedList", "items": items})

    def firewall(self, request: Request, permission: str) -> tuple[str, str, dict | None]:
        project = request.params["project"]
        self.check(project, permission)
        name = request.params.get("name") or request.json().get("name", "")
        return project, name, self.resources.get(("firewalls", "global", name))

    def get_firewall(self, request: Request) -> Reply:
        self.advance()
        project, name, found = self.firewall(request, "compute.firewalls.get")
        if found is None:
            raise fail(404, f"The resource 'projects/{project}/global/firewalls/{name}' was not found")
        return Reply(200, found)

    def get_network(self, request: Request) -> Reply:
        project, name = request.params["project"], request.params["name"]
        self.check(project, "compute.networks.get")
        if name not in self.networks:
            raise fail(404, f"The resource 'projects/{project}/global/networks/{name}' was not found")
        return Reply(200, {"kind": "compute#network", "name": name, "autoCreateSubnetworks": True})

    def repeated(self, request: Request) -> Reply | None:
        """The answer to a request whose requestId was seen: its first operation, nothing done again."""
        first = self.request_ids.get(request.query.get("requestId", ""))
        return Reply(200, self.public(self.operations[first])) if first else None

    def insert_firewall(self, request: Request) -> Reply:
        project, name, found = self.firewall(request, "compute.firewalls.create")
        if (again := self.repeated(request)) is not None:
            return again
        inserting = any(
            op["operationType"] == "insert" and op["targetLink"].endswith(f"/{name}")
            for op_name, op in self.operations.items()
            if op_name in self.pending
        )
        if found is not None or inserting:  # the name is taken from the insert on, before it is DONE
            raise fail(409, f"The resource 'projects/{project}/global/firewalls/{name}' already exists")
        network = request.json().get("network", "global/networks/default").rsplit("/", 1)[-1]
        if network not in self.networks:
            raise fail(404, f"The resource 'projects/{project}/global/networks/{network}' was not found")
        rule = {"kind": "compute#firewall", **request.json()}
        return self.operation(request, "insert", name, lambda: self.put("firewalls", "global", rule))

    def patch_firewall(self, request: Request) -> Reply:
        project, name, found = self.firewall(request, "compute.firewalls.update")
        if (again := self.repeated(request)) is not None:
            return again
        if found is None:
            raise fail(404, f"The resource 'projects/{project}/global/firewalls/{name}' was not found")
        change = request.json()
        return self.operation(request, "patch", name, lambda: found.update(change))

    def delete_firewall(self, request: Request) -> Reply:
        project, name, found = self.firewall(request, "compute.firewalls.delete")
        if (again := self.repeated(request)) is not None:
            return again
        if found is None:
            raise fail(404, f"The resource 'projects/{project}/global/firewalls/{name}' was not found")
        return self.operation(request, "delete", name, lambda: self.resources.pop(("firewalls", "global", name)))

    def operation(self, request: Request, kind: str, target: str, change: Callable[[], None]) -> Reply:
        project = request.params["project"]
        name = f"operation-{next(self.ids)}"
        self.operations[name] = {
            "kind": "compute#operation",
            "id": str(next(self.ids)),
            "name": name,
            "operationType": kind,
            "status": "PENDING",
            "progress": 0,
            "polls": 0,
            "error": self.fail_next,
            "targetLink": f"https://www.googleapis.com/compute/v1/projects/{project}/global/firewalls/{target}",
            "selfLink": f"https://www.googleapis.com/compute/v1/projects/{project}/global/operations/{name}",
        }
        if request.query.get("requestId"):
            self.request_ids[request.query["requestId"]] = name
        self.pending[name] = change
        self.fail_next = ""
        return Reply(200, self.public(self.operations[name]))

    def get_operation(self, request: Request) -> Reply:
        operation = self.operations.get(request.params["operation"])
        if operation is None:
            raise fail(
                404,
                f"The resource 'projects/{request.params['project']}/global/operations/"
                f"{request.params['operation']}' was not found",
            )
        self.step(operation)
        return Reply(200, self.public(operation))

    def step(self, operation: dict) -> None:
        if operation["status"] == "DONE":
            return
        operation["polls"] += 1
        operation["status"] = "DONE" if operation["polls"] >= self.done_after else "RUNNING"
        operation["progress"] = 100 if operation["status"] == "DONE" else 50
        change = self.pending.pop(operation["name"]) if operation["status"] == "DONE" else None
        if change is not None and not operation["error"]:
            change()  # it lands when DONE, and not at all when the operation failed

    def advance(self) -> None:
        """Time passes for operations nobody polls: each read of the firewalls moves them one step."""
        for name in list(self.pending):
            self.step(self.operations[name])

    @staticmethod
    def public(operation: dict) -> dict:
        shown = {k: v for k, v in operation.items() if k not in ("polls", "error")}
        if operation["error"] and operation["status"] == "DONE":
            shown["error"] = {"errors": [{"code": "QUOTA_EXCEEDED", "message": operation["error"]}]}
            shown["httpErrorStatusCode"] = 403
        return shown
