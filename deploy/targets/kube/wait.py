"""Wait stage for Kubernetes: workloads current and available, pods ready, the gateway addressed; else a diagnosis."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from deploy.model.errors import KubeApiError, NotReadyError
from deploy.model.status import ServiceStatus
from deploy.model.suite import GATEWAY
from deploy.targets.kube import (
    DEPLOYMENT,
    EVENT,
    NAME,
    NODE,
    POD,
    REPLICASET,
    SERVICE,
    STATEFULSET,
    Resource,
    owned_by,
    owner_selector,
)
from deploy.targets.kube.client import together
from deploy.targets.kube.scoped import Scoped
from deploy.targets.kube.watch import Changes

WORKLOADS = (DEPLOYMENT, STATEFULSET)

HOPELESS = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}


@dataclass(frozen=True)
class ContainerState:
    pod: str
    name: str
    image: str
    ready: bool
    reason: str  # waiting reason, or what keeps it from ready; "" when ready
    detail: str = ""  # the waiting message and last exit code
    current: bool = True  # of the workload's current revision (not a replica the rollout is replacing)


def container_states(pod: dict, current: bool = True) -> list[ContainerState]:
    statuses = {s["name"]: s for s in (pod.get("status") or {}).get("containerStatuses") or []}
    phase = (pod.get("status") or {}).get("phase", "Pending")
    found = []
    for container in pod["spec"]["containers"]:
        status = statuses.get(container["name"], {})
        waiting = (status.get("state") or {}).get("waiting") or {}
        last = (status.get("lastState") or {}).get("terminated") or {}
        reason = "" if status.get("ready") else waiting.get("reason") or ("not ready" if status else f"pod {phase}")
        detail = "; ".join(
            filter(
                None,
                [
                    waiting.get("message", ""),
                    f"last exit code {last['exitCode']}" if "exitCode" in last else "",
                    f"{status['restartCount']} restarts" if status.get("restartCount") else "",
                ],
            )
        )
        found.append(
            ContainerState(
                pod["metadata"]["name"],
                container["name"],
                container.get("image", ""),
                bool(status.get("ready")),
                reason,
                detail,
                current,
            )
        )
    return found


REVISION = "deployment.kubernetes.io/revision"


def current_owners(workloads: list[dict], replicasets: list[dict]) -> set[str]:
    """The uids whose pods run a workload's current revision: a Deployment's ReplicaSet of its revision (as
    `kubectl rollout status` finds it), a StatefulSet itself (its pods are told apart by revision hash). None of a
    workload whose new generation the controller has not yet seen: all its pods may be about to be replaced."""
    owners = set()
    for workload in workloads:
        meta, status = workload["metadata"], workload.get("status") or {}
        if (status.get("observedGeneration") or 0) < meta.get("generation", 1):
            continue
        if workload["kind"] == "StatefulSet":
            owners.add(meta["uid"])
            continue
        revision = (meta.get("annotations") or {}).get(REVISION)
        for replicaset in replicasets:
            rs = replicaset["metadata"]
            if revision and (rs.get("annotations") or {}).get(REVISION) == revision and meta["uid"] in owner_uids(rs):
                owners.add(rs["uid"])
    return owners


def owner_uids(meta: dict) -> set[str]:
    return {ref.get("uid", "") for ref in meta.get("ownerReferences") or []}


def is_current(pod: dict, workloads: list[dict], owners: set[str]) -> bool:
    """A pod of a current revision, or one no workload of ours controls (a bare pod of the single-pod layout)."""
    meta = pod["metadata"]
    controllers = owner_uids(meta)
    statefulset = next((w for w in workloads if w["metadata"]["uid"] in controllers), None)
    if statefulset is not None:  # its pods are told apart by their revision's hash
        revision = (statefulset.get("status") or {}).get("updateRevision")
        hash_label = (meta.get("labels") or {}).get("controller-revision-hash")
        return statefulset["metadata"]["uid"] in owners and hash_label == revision
    if any(ref.get("kind") == "ReplicaSet" for ref in meta.get("ownerReferences") or []):
        return bool(controllers & owners)  # a Deployment's: of the ReplicaSet of its revision
    return True


def rollout_problem(workload: dict) -> str:
    """What `kubectl rollout status` would still wait for ('' when rolled out): the controller has seen the
    current generation, every replica runs the new template, none of the old ones is left, and all of them
    are available (a Deployment) or ready on the current revision (a StatefulSet)."""
    spec, status, meta = workload["spec"], workload.get("status") or {}, workload["metadata"]
    name, wanted = f"{workload['kind']}/{meta['name']}", spec.get("replicas", 1)
    if (status.get("observedGeneration") or 0) < meta.get("generation", 1):
        return f"{name}: rollout not yet observed"
    updated = status.get("updatedReplicas") or 0
    if updated < wanted:
        return f"{name}: {updated} of {wanted} replicas updated"
    if workload["kind"] == "Deployment":
        old = (status.get("replicas") or 0) - updated
        available = status.get("availableReplicas") or 0
        if old > 0:
            return f"{name}: {old} old replica(s) still running"
        if available < wanted:
            return f"{name}: {available} of {wanted} updated replicas available"
        return ""
    ready = status.get("readyReplicas") or 0
    if ready < wanted:
        return f"{name}: {ready} of {wanted} replicas ready"
    if status.get("currentRevision") != status.get("updateRevision"):
        return f"{name}: rolling update to revision {status.get('updateRevision')} not complete"
    return ""


class Readiness(Scoped):
    """What one environment's objects are doing, judged by explicit conditions."""

    address = ""  # the gateway's, as the last look at the conditions found it

    # -- what runs -----------------------------------------------------------------------------
    def workloads(self) -> list[dict]:
        return [
            obj for found in self.api.lists(WORKLOADS, self.namespace, owner_selector(self.env_name)) for obj in found
        ]

    def pods(self, workloads: list[dict], listed: list[dict] | None = None) -> list[dict]:
        """Our pods and those of our workloads' selectors (`listed`: the namespace's pods, when already read)."""
        selectors = [(w["spec"].get("selector") or {}).get("matchLabels") or {} for w in workloads]
        found = []
        for pod in self.api.list(POD, self.namespace) if listed is None else listed:
            labels = pod["metadata"].get("labels") or {}
            ours = owned_by(pod, self.env_name) or any(
                selector and all(labels.get(key) == value for key, value in selector.items()) for selector in selectors
            )
            # a pod being deleted (an old replica, a rollout's loser) is no longer part of what runs
            if ours and not pod["metadata"].get("deletionTimestamp"):
                found.append(pod)
        return sorted(found, key=lambda pod: pod["metadata"]["name"])

    def gateway_service(self, listed: list[dict] | None = None) -> dict | None:
        services = self.api.list(SERVICE, self.namespace, owner_selector(self.env_name)) if listed is None else listed
        exposed = [s for s in services if s["spec"].get("type") in ("LoadBalancer", "NodePort")]
        named = [s for s in exposed if (s["metadata"].get("labels") or {}).get(NAME) == GATEWAY]
        found = named or exposed
        return found[0] if found else None

    def gateway_address(self, service: dict | None) -> str:
        """http://host:port of the gateway, or '' while it has none."""
        if service is None:
            return ""
        port = service["spec"]["ports"][0]  # https first when the gateway serves it
        scheme = "https" if port.get("name") == "https" else "http"
        if service["spec"]["type"] == "LoadBalancer":
            ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            host = ingress[0].get("ip") or ingress[0].get("hostname") if ingress else ""
            return f"{scheme}://{host}:{port['port']}" if host else ""
        addresses = [a for node in self.api.list(NODE) for a in node.get("status", {}).get("addresses", [])]
        chosen = sorted(addresses, key=lambda a: a["type"] != "ExternalIP")
        return f"{scheme}://{chosen[0]['address']}:{port['nodePort']}" if chosen and port.get("nodePort") else ""

    # -- the conditions ------------------------------------------------------------------------
    def problems(self, seen: Mapping[Resource, list[dict]] | None = None) -> tuple[list[str], list[ContainerState]]:
        """What keeps the environment from ready (empty when ready), and every container's state: the workloads,
        pods and Services read side by side; the ReplicaSets too when a container is not ready (whether its pod
        is of the revision rolled out). `seen`: those lists as an apply that changed nothing just read them (our
        objects: every pod of our workloads carries our labels)."""
        ours = owner_selector(self.env_name)
        kinds = (DEPLOYMENT, STATEFULSET, POD, SERVICE)
        if seen is not None and all(kind in seen for kind in kinds):
            deployments, statefulsets, pods, services = (seen[kind] for kind in kinds)
        else:
            deployments, statefulsets, pods, services = together(
                [
                    partial(self.api.list, DEPLOYMENT, self.namespace, ours),
                    partial(self.api.list, STATEFULSET, self.namespace, ours),
                    partial(self.api.list, POD, self.namespace),
                    partial(self.api.list, SERVICE, self.namespace, ours),
                ]
            )
        workloads = [*deployments, *statefulsets]
        problems = [problem for problem in map(rollout_problem, workloads) if problem]
        mine = self.pods(workloads, pods)
        waiting = any(not state.ready for pod in mine for state in container_states(pod))
        owners = current_owners(workloads, self.api.list(REPLICASET, self.namespace, ours) if waiting else [])
        states = [state for pod in mine for state in container_states(pod, is_current(pod, workloads, owners))]
        problems += [f"{s.name} (pod {s.pod}): {s.reason}" for s in states if not s.ready]
        if not states:
            problems.append("no pods of this environment")
        self.address = self.gateway_address(self.gateway_service(services))
        if not self.address:
            problems.append("the gateway has no address yet (no LoadBalancer ingress or NodePort)")
        return problems, states

    def wait(self, timeout: float, seen: Mapping[Resource, list[dict]] | None = None) -> None:
        """Until every condition holds, checked again whenever a workload, pod or Service of the namespace changes
        (deploy/targets/kube/watch.py); a hopeless container state or the timeout ends it with a diagnosis. The
        watches are opened only when the first look finds something to wait for; `seen`: see problems()."""
        deadline = time.monotonic() + timeout
        first = self.problems(seen)
        if first[0] and seen is not None:  # not ready as the apply found it: what runs now is read before any wait
            first = self.problems()
        if not first[0]:
            return self.ready()
        with Changes(self.api, self.namespace, (DEPLOYMENT, STATEFULSET, POD, SERVICE), fallback=self.poll) as changes:
            self.wait_until_ready(timeout, deadline, changes, first)

    def wait_until_ready(
        self, timeout: float, deadline: float, changes: Changes, first: tuple[list[str], list[ContainerState]]
    ) -> None:
        said, (problems, states) = "", first
        while True:
            if not problems:
                return self.ready()
            # a replica the rollout replaces may crash for reasons the new revision no longer has
            stuck = [s for s in states if s.reason in HOPELESS and s.current]
            if stuck or time.monotonic() > deadline:
                waiting = [s for s in states if not s.ready]
                failing = stuck or [s for s in waiting if s.current] or waiting
                names = ", ".join(sorted({s.name for s in failing})) or "the environment"
                why = "is failing" if stuck else f"was not ready after {timeout:g} s"
                raise NotReadyError(
                    f"{names} {why}: {problems[0]}",
                    "read the diagnosis below, fix the cause and deploy again",
                    details=self.diagnose(failing, problems),
                )
            line = f"waiting: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
            if line != said:  # a line per change of what it waits for, not per event
                self.say(line)
                said = line
            changes.wait(deadline - time.monotonic())
            problems, states = self.problems()

    def ready(self) -> None:
        self.say(f"every service of {self.env_name} is ready")

    def diagnose(self, failing: list[ContainerState], problems: list[str]) -> str:
        """Per failing container: its waiting reason, the pod's recent events and its last log lines."""
        lines = [f"  {problem}" for problem in problems if not any(s.pod in problem for s in failing)]
        for state in failing:
            lines.append(
                f"{state.name} (pod {state.pod}): {state.reason}" + (f" - {state.detail}" if state.detail else "")
            )
            events = self.api.list(EVENT, self.namespace, fields=f"involvedObject.name={state.pod}")
            for event in events[-5:]:
                lines.append(f"  event {event.get('type', '')} {event.get('reason', '')}: {event.get('message', '')}")
            try:
                log = self.api.log(self.namespace, state.pod, state.name, 20)
            except KubeApiError as exc:
                log = f"(no logs: {exc.api_message})"
            except Exception as exc:  # noqa: BLE001 - a diagnosis must not hide the failure it explains
                log = f"(no logs: {type(exc).__name__})"
            lines += ["  last log lines:"] + [f"    {line}" for line in str(log).splitlines()[-20:]]
        return "\n".join(lines)

    def status(self) -> list[ServiceStatus]:
        """One row per container name (a service); ready when every replica of it is."""
        rows: dict[str, ServiceStatus] = {}
        for state in (s for pod in self.pods(self.workloads()) for s in container_states(pod)):
            known = rows.get(state.name)
            if known is None or (known.ready and not state.ready):
                rows[state.name] = ServiceStatus(state.name, state.image, state.ready, state.reason)
        return [rows[name] for name in sorted(rows)]
