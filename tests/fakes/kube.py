"""A faithful fake of the Kubernetes API server subset k8sdeploy uses, on loopback (HTTP or TLS).

Why a fake: no Kubernetes API server can run on these machines. It behaves like the real one where
k8sdeploy depends on it: server-side apply (PATCH application/apply-patch+yaml with fieldManager and
force) keeps one applied configuration per manager, merges them, answers 409 Conflict naming the other
manager's fields, and bumps resourceVersion (and generation on spec changes) only on a real change;
a JSON merge patch (what `kubectl edit` sends) is an Update that takes the fields it changes from
the other managers; metadata.managedFields lists each manager with its FieldsV1 set; immutable selectors and pod specs answer 422 Invalid; create answers 409 AlreadyExists; every error
carries a metav1.Status body; label and field selectors filter lists. Pods of Deployments and
StatefulSets go from Pending to Ready after `ready_after` status polls, or into CrashLoopBackOff with
events and logs for containers a test names. LoadBalancer Services get an ingress address after some
polls and their cloud pieces live in a `cloud` hook (the fake Compute API) until the Service is
deleted; PVCs get disks the same way. With `flaky` > 0 a share of requests get 429/503 with Retry-After.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import uuid

import yaml

from tests.fakes import kube_model as M
from tests.fakes.server import FakeServer, Reply, Request

NAME = r"(?P<name>[^/]+)"
NS = r"(?P<ns>[^/]+)"
PLURAL = r"(?P<plural>[a-z]+)"


class FakeKube(FakeServer):
    def __init__(self, tls: tuple[str, str] | None = None, token: str = "", ready_after: int = 2,
                 cloud: object | None = None):
        super().__init__(tls)
        self.token = token  # when set, requests need "Authorization: Bearer <token>"
        self.ready_after = ready_after
        self.cloud = cloud  # load_balancer_created/deleted(service), disk_created/deleted(pvc)
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.managers: dict[tuple[str, str, str], dict[tuple[str, str], dict]] = {}
        self.born: dict[tuple[str, str, str], int] = {}
        self.clock = 0  # advances with every status read
        self.crashing: dict[str, tuple[str, str]] = {}  # container name -> (image part, its last log lines)
        self.versions = itertools.count(100)
        self.add_node("node-1", "127.0.0.1")
        prefixes = [r"/api/v1/namespaces/" + NS + "/" + PLURAL,
                    r"/apis/(?P<group>[a-z0-9.]+)/(?P<version>v1)/namespaces/" + NS + "/" + PLURAL,
                    r"/api/v1/(?P<plural>namespaces|nodes)"]
        for prefix in prefixes:
            self.route("GET", prefix + "/" + NAME + "/log", self.read_log)
            self.route("GET", prefix + "/" + NAME, self.read)
            self.route("GET", prefix, self.list)
            self.route("POST", prefix, self.create)
            self.route("PATCH", prefix + "/" + NAME, self.patch)
            self.route("DELETE", prefix + "/" + NAME, self.delete)

    # -- what tests do -------------------------------------------------------------------------
    def crash(self, container: str, log: str, image: str = "") -> None:
        """Make every pod running `container` (with an image reference containing `image`) crash-loop,
        with `log` as its last output."""
        self.crashing[container] = (image, log)

    def crashes(self, container: dict) -> bool:
        image, _log = self.crashing.get(container["name"], (None, ""))
        return image is not None and image in container.get("image", "")

    def add_node(self, name: str, address: str) -> None:
        self.objects[("nodes", "", name)] = {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": str(uuid.uuid4())},
            "status": {"addresses": [{"type": "InternalIP", "address": address}]}}

    def owned(self) -> list[tuple[str, str, str]]:
        """Keys of every object carrying k8sdeploy's label (what `down` must leave none of)."""
        return sorted(key for key, obj in self.objects.items()
                      if obj["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "k8sdeploy")

    def reset(self) -> None:
        """The cluster is gone: so is everything in it."""
        for key in [key for key in self.objects if key[0] != "nodes"]:
            self.objects.pop(key)

    def injected_fault(self) -> Reply:
        if self.random.random() < 0.5:
            reply = M.status(429, "TooManyRequests", "Too many requests, please try again later.",
                             {"retryAfterSeconds": int(self.retry_after)})
        else:
            reply = M.status(503, "ServiceUnavailable", "the server is currently unable to handle the request")
        reply.headers["Retry-After"] = self.retry_after
        return reply

    def not_routed(self, request: Request) -> Reply:
        return M.status(404, "NotFound", "the server could not find the requested resource")

    def dispatch(self, request: Request) -> Reply:
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            with self.lock:
                self.requests.append((request.method, request.path))
            return M.status(401, "Unauthorized", "Unauthorized")
        return super().dispatch(request)

    # -- reads ---------------------------------------------------------------------------------
    def key(self, request: Request) -> tuple[str, str, str]:
        plural = request.params["plural"]
        if plural not in M.KINDS:
            raise M.fail(404, "NotFound", "the server could not find the requested resource")
        return plural, request.params.get("ns") or "", request.params.get("name") or ""

    def view(self, key: tuple[str, str, str]) -> dict:
        obj = copy.deepcopy(self.objects[key])
        if key[0] in ("pods", "deployments", "statefulsets", "services"):
            obj["status"] = getattr(self, f"status_of_{key[0]}")(key, obj)
        return obj

    def read(self, request: Request) -> Reply:
        key = self.key(request)
        if key not in self.objects:
            raise M.not_found(key[0], key[2])
        self.clock += 1
        return Reply(200, self.view(key))

    def list(self, request: Request) -> Reply:
        plural, ns, _ = self.key(request)
        self.clock += 1
        items = [{k: v for k, v in self.view(key).items() if k not in ("kind", "apiVersion")}  # as in real lists
                 for key, obj in sorted(self.objects.items())
                 if key[0] == plural and key[1] == ns
                 and M.matches_labels(obj["metadata"].get("labels", {}), request.query.get("labelSelector", ""))
                 and M.matches_fields(obj, request.query.get("fieldSelector", ""))]
        kind, api_version, _ = M.KINDS[plural]
        return Reply(200, {"kind": f"{kind}List", "apiVersion": api_version,
                           "metadata": {"resourceVersion": str(next(self.versions))}, "items": items})

    def read_log(self, request: Request) -> Reply:
        key = ("pods", request.params["ns"], request.params["name"])
        if key not in self.objects:
            raise M.not_found("pods", key[2])
        containers = self.objects[key]["spec"]["containers"]
        name = request.query.get("container") or containers[0]["name"]
        container = next((c for c in containers if c["name"] == name), {"name": name})
        text = self.crashing[name][1] if self.crashes(container) else f"{name}: started\n{name}: listening\n"
        tail = int(request.query.get("tailLines", 0) or 0)
        lines = text.splitlines(keepends=True)
        return Reply(200, "".join(lines[-tail:] if tail else lines))

    # -- writes --------------------------------------------------------------------------------
    def check_namespace(self, key: tuple[str, str, str]) -> None:
        if M.KINDS[key[0]][2] and ("namespaces", "", key[1]) not in self.objects:
            raise M.not_found("namespaces", key[1])

    def create(self, request: Request) -> Reply:
        plural, ns, _ = self.key(request)
        body = request.json()
        key = (plural, ns, body.get("metadata", {}).get("name", ""))
        self.check_namespace(key)
        if key in self.objects:
            raise M.fail(409, "AlreadyExists", f'{plural} "{key[2]}" already exists',
                         {"name": key[2], "kind": plural})
        manager = request.query.get("fieldManager") or request.headers.get("user-agent", "unknown").split("/")[0]
        self.managers[key] = {(manager, "Update"): M.comparable(body)}
        self.store(key, None)
        return Reply(201, self.view(key))

    def patch(self, request: Request) -> Reply:
        key = self.key(request)
        content_type = request.headers.get("content-type", "").split(";")[0]
        if content_type == "application/merge-patch+json":
            return self.update(key, request)
        if content_type != "application/apply-patch+yaml":
            raise M.fail(415, "UnsupportedMediaType", "this fake speaks server-side apply and JSON merge patch")
        manager = request.query.get("fieldManager", "")
        if not manager:
            raise M.fail(400, "BadRequest", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
                                            "value: is required for apply patch")
        self.check_namespace(key)
        config = M.comparable(yaml.safe_load(request.body))
        entries = self.managers.setdefault(key, {})
        self.settle_conflicts(key, entries, manager, config, request.query.get("force") == "true")
        old = self.objects.get(key)
        entries[(manager, "Apply")] = config
        self.store(key, old)
        return Reply(200 if old else 201, self.view(key))

    def update(self, key: tuple[str, str, str], request: Request) -> Reply:
        """A merge patch (`kubectl edit`, `kubectl patch --type merge`): an Update by its field manager, which
        takes the fields it changes from every other manager, as the real server's field management does."""
        old = self.objects.get(key)
        if old is None:
            raise M.not_found(key[0], key[2])
        manager = request.query.get("fieldManager") or request.headers.get("user-agent", "unknown").split("/")[0]
        patch = M.comparable(request.json())
        entries = self.managers[key]
        for (other, op), theirs in entries.items():
            if (other, op) != (manager, "Update"):
                for path in M.conflicts(patch, theirs):
                    M.drop(theirs, path)
        entries[(manager, "Update")] = M.merge(entries.get((manager, "Update"), {}), patch)
        self.store(key, old)
        return Reply(200, self.view(key))

    def settle_conflicts(self, key, entries, manager: str, config: dict, force: bool) -> None:  # noqa: ANN001
        found = [(other, path) for (other, op), theirs in entries.items() if (other, op) != (manager, "Apply")
                 for path in M.conflicts(config, theirs)]
        if found and not force:
            version = M.KINDS[key[0]][1]
            causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{other}" using {version}',
                       "field": path} for other, path in found]
            raise M.fail(409, "Conflict", f"Apply failed with {len(found)} conflict(s): " + "; ".join(
                f'conflict with "{other}" using {version}: {path}' for other, path in found),
                {"name": key[2], "kind": key[0], "causes": causes})
        for (other, op), theirs in entries.items():
            if (other, op) != (manager, "Apply"):
                for path in M.conflicts(config, theirs):
                    M.drop(theirs, path)

    def store(self, key: tuple[str, str, str], old: dict | None) -> None:
        """Merge every manager's configuration; write (and bump versions) only on a real change."""
        live = {}
        for config in self.managers[key].values():
            live = M.merge(live, config)
        self.default(key, live, old)
        if old is not None:
            self.refuse_immutable(key, old, live)
            if M.comparable(old) == M.comparable(live):
                return
        meta = live.setdefault("metadata", {})
        meta.update({"uid": old["metadata"]["uid"] if old else str(uuid.uuid4()),
                     "creationTimestamp": old["metadata"]["creationTimestamp"] if old else "2024-05-01T10:00:00Z",
                     "resourceVersion": str(next(self.versions)),
                     "managedFields": [{"manager": m, "operation": op, "apiVersion": live.get("apiVersion", "v1"),
                                        "fieldsType": "FieldsV1", "fieldsV1": M.fields_v1(config)}
                                       for (m, op), config in self.managers[key].items()
                                       if M.fields_v1(config)]})  # a manager that owns nothing is dropped
        if key[1]:
            meta["namespace"] = key[1]
        generation = old["metadata"].get("generation", 1) if old else 1
        spec_changed = old is not None and old.get("spec") != live.get("spec")
        meta["generation"] = generation + 1 if spec_changed else generation
        self.objects[key] = live
        self.born.setdefault(key, self.clock)
        self.after_write(key, old, live)

    def default(self, key: tuple[str, str, str], live: dict, old: dict | None) -> None:
        if key[0] == "services":
            spec = live.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec["clusterIP"] = (old or {}).get("spec", {}).get("clusterIP") or f"10.96.0.{len(self.objects) % 250 + 2}"
            previous = {p["port"]: p.get("nodePort") for p in (old or {}).get("spec", {}).get("ports", [])}
            for number, port in enumerate(spec.get("ports", [])):
                if spec["type"] != "ClusterIP":
                    port.setdefault("nodePort", previous.get(port["port"]) or 30000 + number + len(self.objects))
        if key[0] in ("deployments", "statefulsets"):
            live.setdefault("spec", {}).setdefault("replicas", 1)
        if key[0] == "persistentvolumeclaims":
            live.setdefault("spec", {})["volumeName"] = (old or {}).get("spec", {}).get("volumeName") or (
                f"pvc-{uuid.uuid4()}")

    def refuse_immutable(self, key: tuple[str, str, str], old: dict, live: dict) -> None:
        kind = M.KINDS[key[0]][0]
        if key[0] in ("deployments", "statefulsets") and old["spec"].get("selector") != live["spec"].get("selector"):
            message = f"Invalid value: {live['spec'].get('selector')}: field is immutable"
            raise M.fail(422, "Invalid", f'{kind}.apps "{key[2]}" is invalid: spec.selector: {message}',
                         {"name": key[2], "group": "apps", "kind": kind,
                          "causes": [{"reason": "FieldValueInvalid", "message": message, "field": "spec.selector"}]})
        if key[0] == "pods" and M.pod_spec_change_forbidden(old, live):
            message = "Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
            raise M.fail(422, "Invalid", f'Pod "{key[2]}" is invalid: spec: {message}',
                         {"name": key[2], "kind": "Pod",
                          "causes": [{"reason": "FieldValueForbidden", "message": message, "field": "spec"}]})

    def after_write(self, key: tuple[str, str, str], old: dict | None, live: dict) -> None:
        if key[0] in ("deployments", "statefulsets"):
            if old is None or old["spec"].get("template") != live["spec"].get("template") or \
                    old["spec"].get("replicas") != live["spec"].get("replicas"):
                self.roll_out(key, live)
        if key[0] == "pods" and old is None:
            self.event(key, "Normal", "Scheduled", f"Successfully assigned {key[1]}/{key[2]} to node-1")
        if key[0] == "services" and self.cloud:
            was_lb = old is not None and old["spec"].get("type") == "LoadBalancer"
            if live["spec"]["type"] == "LoadBalancer" and not was_lb:
                self.cloud.load_balancer_created(live)
            elif was_lb and live["spec"]["type"] != "LoadBalancer":
                self.cloud.load_balancer_deleted(live)
        if key[0] == "persistentvolumeclaims" and old is None and self.cloud:
            self.cloud.disk_created(live)

    def roll_out(self, key: tuple[str, str, str], workload: dict) -> None:
        self.delete_pods_of(key)
        template = workload["spec"]["template"]
        digest = hashlib.sha256(repr(template).encode()).hexdigest()[:10]
        for index in range(workload["spec"]["replicas"]):
            name = f"{key[2]}-{index}" if key[0] == "statefulsets" else f"{key[2]}-{digest}-{uuid.uuid4().hex[:5]}"
            pod_key = ("pods", key[1], name)
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {**copy.deepcopy(template.get("metadata", {})), "name": name,
                                "ownerReferences": [{"kind": M.KINDS[key[0]][0], "name": key[2]}]},
                   "spec": copy.deepcopy(template["spec"])}
            self.managers[pod_key] = {(f"{key[0]}-controller", "Update"): pod}
            self.store(pod_key, None)

    def delete_pods_of(self, key: tuple[str, str, str]) -> None:
        kind = M.KINDS[key[0]][0]
        for pod_key, pod in list(self.objects.items()):
            if pod_key[0] == "pods" and pod_key[1] == key[1] and {"kind": kind, "name": key[2]} in \
                    pod["metadata"].get("ownerReferences", []):
                self.remove(pod_key)

    def event(self, key: tuple[str, str, str], kind: str, reason: str, message: str) -> None:
        name = f"{key[2]}.{uuid.uuid4().hex[:12]}"
        self.objects[("events", key[1], name)] = {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": key[1]},
            "involvedObject": {"kind": M.KINDS[key[0]][0], "name": key[2], "namespace": key[1]},
            "type": kind, "reason": reason, "message": message, "count": 1,
            "lastTimestamp": "2024-05-01T10:00:05Z"}

    def delete(self, request: Request) -> Reply:
        key = self.key(request)
        if key not in self.objects:
            raise M.not_found(key[0], key[2])
        self.remove(key)
        return Reply(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                           "details": {"name": key[2], "kind": key[0]}})

    def remove(self, key: tuple[str, str, str]) -> None:
        obj = self.objects.pop(key)
        self.managers.pop(key, None)
        self.born.pop(key, None)
        if key[0] in ("deployments", "statefulsets"):
            self.delete_pods_of(key)
        if key[0] == "namespaces":
            for inner in [k for k in self.objects if k[1] == key[2]]:
                if inner in self.objects:
                    self.remove(inner)
        if key[0] == "services" and obj["spec"].get("type") == "LoadBalancer" and self.cloud:
            self.cloud.load_balancer_deleted(obj)
        if key[0] == "persistentvolumeclaims" and self.cloud:
            self.cloud.disk_deleted(obj)

    # -- simulated status ----------------------------------------------------------------------
    def pods_of(self, key: tuple[str, str, str]) -> list[dict]:
        kind = M.KINDS[key[0]][0]
        return [self.view(k) for k, pod in sorted(self.objects.items()) if k[0] == "pods" and k[1] == key[1]
                and {"kind": kind, "name": key[2]} in pod["metadata"].get("ownerReferences", [])]

    def status_of_pods(self, key: tuple[str, str, str], pod: dict) -> dict:
        started = self.clock - self.born.get(key, self.clock) >= self.ready_after
        statuses = [self.container_status(key, c, started) for c in pod["spec"]["containers"]]
        ready = started and all(s["ready"] for s in statuses)
        return {"phase": "Running" if started else "Pending", "hostIP": "127.0.0.1",
                "conditions": [{"type": "Ready", "status": str(ready)}], "containerStatuses": statuses}

    def container_status(self, key: tuple[str, str, str], container: dict, started: bool) -> dict:
        name = container["name"]
        status = {"name": name, "image": container.get("image", ""), "ready": False, "restartCount": 0}
        if not started:
            return {**status, "state": {"waiting": {"reason": "ContainerCreating"}}}
        if self.crashes(container):
            message = f"back-off 10s restarting failed container={name} pod={key[2]}"
            if not any(e.get("reason") == "BackOff" and e["involvedObject"]["name"] == key[2]
                       for e in self.objects.values() if e.get("kind") == "Event"):
                self.event(key, "Warning", "BackOff", f"Back-off restarting failed container {name} in pod {key[2]}")
            return {**status, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": message}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}
        return {**status, "ready": True, "state": {"running": {"startedAt": "2024-05-01T10:00:04Z"}}}

    def status_of_workload(self, key: tuple[str, str, str], obj: dict) -> dict:
        pods = self.pods_of(key)
        ready = sum(1 for pod in pods if pod["status"]["conditions"][0]["status"] == "True")
        return {"observedGeneration": obj["metadata"]["generation"], "replicas": len(pods),
                "updatedReplicas": len(pods), "readyReplicas": ready, "availableReplicas": ready}

    status_of_deployments = status_of_statefulsets = status_of_workload

    def status_of_services(self, key: tuple[str, str, str], service: dict) -> dict:
        if service["spec"]["type"] != "LoadBalancer" or self.clock - self.born[key] < self.ready_after:
            return {"loadBalancer": {}}
        return {"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}}
