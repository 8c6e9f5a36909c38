"""A faithful fake of the Compute Engine REST API (v1) subset k8sdeploy touches, on loopback.

Why a fake: Compute Engine cannot be reached from these machines. Like the real API it has global
firewalls with insert/patch/delete answering operations that are PENDING, then RUNNING, then DONE
after a few polls of globalOperations.get (or DONE with an error when a test asks); aggregated lists of
forwarding rules, target pools, backend services, health checks and disks keyed by scope; the Google
error envelope for 403/404/409/429/503; and the pieces a GKE cluster's controllers create outside the
cluster: a LoadBalancer Service makes a forwarding rule, a target pool, a health check and a k8s-fw-*
firewall rule (named a<uid>, described with kubernetes.io/service-name) and the cluster's shared legacy
HTTP health check of its nodes (global httpHealthChecks, k8s-<cluster id>-node), a PVC makes a disk - and
they go away only some polls after the Service or claim is deleted, never when the cluster is.
"""

from __future__ import annotations

import itertools
import json

from tests.fakes.google import GoogleFake, fail
from tests.fakes.server import Reply, Request

P = r"/compute/v1/projects/(?P<project>[^/]+)"
AGGREGATED = ("forwardingRules", "targetPools", "backendServices", "healthChecks", "disks")


class FakeCompute(GoogleFake):
    service, title = "compute.googleapis.com", "Compute Engine API"

    def __init__(self, region: str = "europe-west1", zone: str = "europe-west1-b", done_after: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.region, self.zone = region, zone
        self.done_after = done_after
        self.resources: dict[tuple[str, str, str], dict] = {}  # (collection, scope, name) -> resource
        self.operations: dict[str, dict] = {}
        self.doomed: dict[tuple[str, str, str], int] = {}  # resource -> list polls left before it goes
        self.fail_next: str = ""  # an operation error for the next firewall change
        self.ids = itertools.count(1000)
        self.route("GET", P + r"/global/firewalls", self.list_global)
        self.route("GET", P + r"/global/httpHealthChecks", self.list_global)
        self.route("GET", P + r"/global/firewalls/(?P<name>[^/]+)", self.get_firewall)
        self.route("POST", P + r"/global/firewalls", self.insert_firewall)
        self.route("PATCH", P + r"/global/firewalls/(?P<name>[^/]+)", self.patch_firewall)
        self.route("DELETE", P + r"/global/firewalls/(?P<name>[^/]+)", self.delete_firewall)
        self.route("GET", P + r"/global/operations/(?P<operation>[^/]+)", self.get_operation)
        self.route("GET", P + r"/aggregated/(?P<collection>[a-zA-Z]+)", self.aggregated)

    # -- what tests look at --------------------------------------------------------------------
    def names(self, collection: str) -> list[str]:
        return sorted(name for kind, _, name in self.resources if kind == collection)

    def everything(self) -> list[tuple[str, str, str]]:
        return sorted(self.resources)

    # -- the cluster's controllers (tests/fakes/cloud_controller.py) ------------------------------
    def load_balancer_created(self, service: dict, cluster_id: str) -> None:
        """A target-pool load balancer as GKE's service controller makes it: a forwarding rule, a target pool and
        a k8s-fw- firewall rule named a<uid>, and the cluster's shared legacy HTTP health check of the nodes
        `k8s-<cluster id>-node` (port 10256) with its firewall rule `k8s-<cluster id>-node-http-hc` (names as
        GKE projects show them, e.g. httpHealthChecks/k8s-b74c81ed5ad4dc2c-node)."""
        name = "a" + service["metadata"]["uid"].replace("-", "")[:31]
        described = json.dumps(
            {"kubernetes.io/service-name": f"{service['metadata']['namespace']}/{service['metadata']['name']}"}
        )
        region = f"regions/{self.region}"
        for collection, scope, resource_name in (
            ("forwardingRules", region, name),
            ("targetPools", region, name),
            ("firewalls", "global", f"k8s-fw-{name}"),
        ):
            self.put(collection, scope, {"name": resource_name, "description": described})
        node_check = f"k8s-{cluster_id}-node"
        if ("httpHealthChecks", "global", node_check) not in self.resources:
            self.put(
                "httpHealthChecks",
                "global",
                {
                    "name": node_check,
                    "port": 10256,
                    "requestPath": "/healthz",
                    "description": json.dumps({"kubernetes.io/service-name": node_check}),
                },
            )
            self.put(
                "firewalls",
                "global",
                {"name": f"{node_check}-http-hc", "description": json.dumps({"kubernetes.io/cluster-id": cluster_id})},
            )

    def load_balancer_deleted(self, service: dict) -> None:
        name = "a" + service["metadata"]["uid"].replace("-", "")[:31]
        for key in list(self.resources):
            if name in key[2]:
                self.doomed[key] = 2

    def cluster_has_no_load_balancers(self, cluster_id: str) -> None:
        """The service controller deletes the shared node health check with the cluster's last load balancer."""
        for key in list(self.resources):
            if key[2].startswith(f"k8s-{cluster_id}-node"):
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

    def put(self, collection: str, scope: str, resource: dict) -> None:
        resource = {
            "id": str(next(self.ids)),
            **resource,
            "selfLink": f"https://www.googleapis.com/compute/v1/projects/p/{scope}/{collection}/{resource['name']}",
        }
        self.resources[(collection, scope, resource["name"])] = resource

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
        project, name, found = self.firewall(request, "compute.firewalls.get")
        if found is None:
            raise fail(404, f"The resource 'projects/{project}/global/firewalls/{name}' was not found")
        return Reply(200, found)

    def insert_firewall(self, request: Request) -> Reply:
        project, name, found = self.firewall(request, "compute.firewalls.create")
        if found is not None:
            raise fail(409, f"The resource 'projects/{project}/global/firewalls/{name}' already exists")
        self.put("firewalls", "global", {"kind": "compute#firewall", **request.json()})
        return self.operation(project, "insert", name)

    def patch_firewall(self, request: Request) -> Reply:
        project, name, found = self.firewall(request, "compute.firewalls.update")
        if found is None:
            raise fail(404, f"The resource 'projects/{project}/global/firewalls/{name}' was not found")
        found.update(request.json())
        return self.operation(project, "patch", name)

    def delete_firewall(self, request: Request) -> Reply:
        project, name, found = self.firewall(request, "compute.firewalls.delete")
        if found is None:
            raise fail(404, f"The resource 'projects/{project}/global/firewalls/{name}' was not found")
        self.resources.pop(("firewalls", "global", name))
        return self.operation(project, "delete", name)

    def operation(self, project: str, kind: str, target: str) -> Reply:
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
        operation["polls"] += 1
        operation["status"] = "DONE" if operation["polls"] >= self.done_after else "RUNNING"
        operation["progress"] = 100 if operation["status"] == "DONE" else 50
        return Reply(200, self.public(operation))

    @staticmethod
    def public(operation: dict) -> dict:
        shown = {k: v for k, v in operation.items() if k not in ("polls", "error")}
        if operation["error"] and operation["status"] == "DONE":
            shown["error"] = {"errors": [{"code": "QUOTA_EXCEEDED", "message": operation["error"]}]}
            shown["httpErrorStatusCode"] = 403
        return shown
