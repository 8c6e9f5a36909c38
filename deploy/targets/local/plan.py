"""Translate rendered Kubernetes objects into what the local Docker Engine runs, refusing what it cannot.

Only the kinds and fields our layouts use are accepted; anything else is a LocalTargetError naming the
field, never silently dropped. Pods share the host's network (an infra container holds the namespace,
the others join it); service names resolve to 127.0.0.1, which works because each service has its port.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from deploy.model.errors import ApplyError

SUPPORTED_KINDS = {
    "Namespace",
    "ConfigMap",
    "Secret",
    "PersistentVolumeClaim",
    "Service",
    "NetworkPolicy",
    "Pod",
    "Deployment",
    "StatefulSet",
}
WORKLOADS = {"Pod", "Deployment", "StatefulSet"}
POD_FIELDS = {
    "containers",
    "initContainers",
    "volumes",
    "securityContext",
    "restartPolicy",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "terminationGracePeriodSeconds",
    "hostAliases",
    "topologySpreadConstraints",  # one host: nothing to spread over
}
CONTAINER_FIELDS = {
    "name",
    "image",
    "command",
    "args",
    "env",
    "envFrom",
    "ports",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
    "resources",
    "securityContext",
    "volumeMounts",
    "imagePullPolicy",
    "workingDir",
    "terminationMessagePolicy",
    # a pre-stop pause waits for a pod to leave its Service's endpoints; locally a part is reached at its host
    # port, with no endpoints to leave
    "lifecycle",
}
PROBE_FIELDS = {
    "httpGet",
    "tcpSocket",
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "failureThreshold",
    "successThreshold",
}


class LocalTargetError(ApplyError):
    """The rendered objects use something the local target does not run."""


@dataclass(frozen=True)
class Probe:
    kind: str  # http | tcp
    path: str  # http only
    port: int
    period: float = 10
    failure_threshold: int = 3
    initial_delay: float = 0


@dataclass(frozen=True)
class PlannedMount:
    volume: str  # the pod volume's name
    target: str
    sub_path: str = ""
    read_only: bool = False


@dataclass(frozen=True)
class PlannedVolume:
    name: str
    kind: str  # emptyDir | pvc | files | hostPath
    claim: str = ""  # pvc: the claim's name, which names the Docker volume that outlives the pod
    files: tuple[tuple[str, str, int], ...] = ()  # files: (path, base64 content, mode)
    host_path: str = ""  # hostPath: the directory of this machine it binds (`k8sdeploy dev`'s sources)
    # files mounted as a whole directory (no subPath): like the kubelet, apply rewrites them in a running pod
    # instead of replacing it (a rotated key), so their content is not part of the pod's spec hash
    live: bool = False


@dataclass(frozen=True)
class PlannedContainer:
    name: str
    image: str
    command: tuple[str, ...]  # replaces the image's entrypoint when given
    args: tuple[str, ...]  # replaces the image's cmd when given
    env: tuple[tuple[str, str], ...]
    mounts: tuple[PlannedMount, ...]
    ports: tuple[int, ...]
    user: str
    read_only: bool
    cap_drop: tuple[str, ...]
    cap_add: tuple[str, ...]
    no_new_privileges: bool
    memory_limit: int  # bytes, 0 for none
    nano_cpus: int  # 1e9 per CPU, 0 for none
    readiness: Probe | None
    liveness: Probe | None
    working_dir: str = ""


@dataclass(frozen=True)
class PlannedPod:
    name: str
    labels: tuple[tuple[str, str], ...]
    init_containers: tuple[PlannedContainer, ...]
    containers: tuple[PlannedContainer, ...]
    volumes: tuple[PlannedVolume, ...]
    fs_group: int | None
    host_aliases: tuple[str, ...]

    @property
    def spec_hash(self) -> str:
        """Changes exactly when anything the engine would run differently changes (the content of live files is
        rewritten in place instead)."""
        spec = asdict(self)
        spec["volumes"] = [{**v, "files": [f[0] for f in v["files"]]} if v["live"] else v for v in spec["volumes"]]
        blob = json.dumps(spec, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def volume(self, name: str) -> PlannedVolume:
        return next(v for v in self.volumes if v.name == name)


@dataclass(frozen=True)
class Plan:
    pods: tuple[PlannedPod, ...]
    services: tuple[str, ...]  # Service names, resolvable from every pod
    notes: tuple[str, ...]  # what the local target treats differently from a cluster, said once


def check_fields(where: str, given: Iterable[str], allowed: set[str]) -> None:
    extra = sorted(set(given) - allowed)
    if extra:
        raise LocalTargetError(
            f"the local target does not run {where}.{extra[0]}",
            "use a Kubernetes target for this layout, or drop the field",
        )


def parse_quantity(value: str | int | float, unit: str) -> float:
    text = str(value)
    suffixes = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}
    for suffix, factor in sorted(suffixes.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    try:
        return float(text)
    except ValueError:
        raise LocalTargetError(f"cannot read the {unit} quantity {text!r}", "use a Kubernetes quantity") from None


class Translator:
    """Turns one environment's objects into a Plan; the lookups (ConfigMaps, Secrets) come from them."""

    def __init__(self, objects: Sequence[dict], host_paths: Sequence[Path] = ()):
        self.objects = list(objects)
        self.host_paths = tuple(path.resolve() for path in host_paths)
        for obj in self.objects:
            kind = obj.get("kind")
            if kind not in SUPPORTED_KINDS:
                raise LocalTargetError(
                    f"the local target does not run {kind} objects ({obj['metadata']['name']})",
                    f"it runs {', '.join(sorted(SUPPORTED_KINDS))}",
                )
        self.config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in self.objects if o["kind"] == "ConfigMap"}
        self.secrets = {o["metadata"]["name"]: self.secret_data(o) for o in self.objects if o["kind"] == "Secret"}

    @staticmethod
    def secret_data(obj: dict) -> dict[str, str]:
        data = {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}
        data.update(obj.get("stringData", {}))
        return data

    def plan(self) -> Plan:
        pods: list[PlannedPod] = []
        notes: list[str] = []
        for obj in self.objects:
            if obj["kind"] in WORKLOADS:
                pods.append(self.pod(obj))
            if obj["kind"] == "NetworkPolicy" and "NetworkPolicy" not in " ".join(notes):
                notes.append("NetworkPolicy is not enforced locally: every container shares the host network")
        services = tuple(o["metadata"]["name"] for o in self.objects if o["kind"] == "Service")
        return Plan(tuple(pods), services, tuple(notes))

    def pod(self, obj: dict) -> PlannedPod:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind == "Pod":
            metadata, spec = obj["metadata"], obj["spec"]
        else:
            replicas = obj["spec"].get("replicas", 1)
            if replicas != 1:
                raise LocalTargetError(
                    f"{kind} {name} asks for {replicas} replicas; on the local target every replica would "
                    "want the same host port",
                    "set its replicas to 1 in the environment",
                )
            metadata, spec = obj["spec"]["template"]["metadata"], obj["spec"]["template"]["spec"]
        where = f"{kind} {name}: spec"
        check_fields(where, spec, POD_FIELDS)
        security = spec.get("securityContext", {})
        volumes = tuple(self.volume(where, v) for v in spec.get("volumes", []))
        if kind == "StatefulSet":
            # The claims of replica 0, named as the StatefulSet controller names them.
            volumes += tuple(
                PlannedVolume(t["metadata"]["name"], "pvc", claim=f"{t['metadata']['name']}-{name}-0")
                for t in obj["spec"].get("volumeClaimTemplates", [])
            )
        declared = {v.name for v in volumes}
        for container in (*spec.get("initContainers", []), *spec["containers"]):
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in declared:
                    raise LocalTargetError(
                        f"{where}.containers[{container['name']}] mounts volume "
                        f"{mount['name']}, which the pod does not declare",
                        "declare it",
                    )
        aliases = tuple(a for alias in spec.get("hostAliases", []) for a in alias.get("hostnames", []))
        mounts = [m for c in (*spec.get("initContainers", []), *spec["containers"]) for m in c.get("volumeMounts", [])]
        volumes = tuple(
            replace(v, live=not any(m["name"] == v.name and m.get("subPath") for m in mounts))
            if v.kind == "files"
            else v
            for v in volumes
        )
        return PlannedPod(
            name=name,
            labels=tuple(sorted({**obj["metadata"].get("labels", {}), **metadata.get("labels", {})}.items())),
            init_containers=tuple(self.container(where, c, security) for c in spec.get("initContainers", [])),
            containers=tuple(self.container(where, c, security) for c in spec["containers"]),
            volumes=volumes,
            fs_group=security.get("fsGroup"),
            host_aliases=aliases,
        )

    def allows(self, host_path: str) -> bool:
        """A hostPath volume only below a directory this target was given (`k8sdeploy dev`'s checkout)."""
        return any(Path(host_path).resolve().is_relative_to(root) for root in self.host_paths)

    def volume(self, where: str, spec: dict) -> PlannedVolume:
        name = spec["name"]
        if "emptyDir" in spec:
            return PlannedVolume(name, "emptyDir")
        if "persistentVolumeClaim" in spec:
            return PlannedVolume(name, "pvc", claim=spec["persistentVolumeClaim"]["claimName"])
        if "hostPath" in spec and self.allows(spec["hostPath"]["path"]):
            return PlannedVolume(name, "hostPath", host_path=spec["hostPath"]["path"])
        for source_kind, table in (("configMap", self.config_maps), ("secret", self.secrets)):
            if source_kind in spec:
                source = spec[source_kind]
                ref = source.get("name") or source.get("secretName")
                if ref not in table:
                    raise LocalTargetError(
                        f"{where}.volumes[{name}] refers to {source_kind} {ref!r}, which the render does not contain",
                        "render it with the layout",
                    )
                mode = source.get("defaultMode", 0o644 if source_kind == "configMap" else 0o400)
                data = table[ref]
                items = source.get("items") or [{"key": key, "path": key} for key in sorted(data)]
                missing = [item["key"] for item in items if item["key"] not in data]
                if missing:
                    raise LocalTargetError(
                        f"{where}.volumes[{name}] wants key {missing[0]} of {source_kind} {ref}, which has no such key",
                        "render it with the layout",
                    )
                files = tuple(
                    (
                        item.get("path", item["key"]),
                        base64.b64encode(data[item["key"]].encode()).decode(),
                        item.get("mode", mode),
                    )
                    for item in items
                )
                return PlannedVolume(name, "files", files=files)
        raise LocalTargetError(
            f"the local target does not run {where}.volumes[{name}] of this type",
            "use emptyDir, persistentVolumeClaim, configMap or secret",
        )

    def env(self, where: str, container: dict) -> tuple[tuple[str, str], ...]:
        values: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                values.update(self.lookup(where, "configMap", source["configMapRef"]["name"], None))
            elif "secretRef" in source:
                values.update(self.lookup(where, "secret", source["secretRef"]["name"], None))
            else:
                raise LocalTargetError(f"the local target does not run this envFrom in {where}", "")
        for item in container.get("env", []):
            if "value" in item:
                values[item["name"]] = str(item["value"])
            elif "configMapKeyRef" in item.get("valueFrom", {}):
                ref = item["valueFrom"]["configMapKeyRef"]
                values[item["name"]] = self.lookup(where, "configMap", ref["name"], ref["key"])
            elif "secretKeyRef" in item.get("valueFrom", {}):
                ref = item["valueFrom"]["secretKeyRef"]
                if ref.get("optional") and ref["key"] not in self.secrets.get(ref["name"], {}):
                    continue  # as a kubelet does: an optional key that is not there sets nothing
                values[item["name"]] = self.lookup(where, "secret", ref["name"], ref["key"])
            else:
                raise LocalTargetError(
                    f"the local target does not run env {item['name']} of {where}",
                    "give a value, a configMapKeyRef or a secretKeyRef",
                )
        return tuple(sorted(values.items()))

    def lookup(self, where: str, kind: str, name: str, key: str | None) -> Any:  # a table, or one value of it
        table = self.config_maps if kind == "configMap" else self.secrets
        if name not in table or (key is not None and key not in table[name]):
            raise LocalTargetError(
                f"{where} refers to {kind} {name}{'/' + key if key else ''}, which the render does not contain",
                "render it with the layout",
            )
        return table[name] if key is None else table[name][key]

    def container(self, where: str, spec: dict, pod_security: dict) -> PlannedContainer:
        where = f"{where}.containers[{spec['name']}]"
        check_fields(where, spec, CONTAINER_FIELDS)
        security = {**pod_security, **spec.get("securityContext", {})}
        ports = {p.get("name", str(p["containerPort"])): p["containerPort"] for p in spec.get("ports", [])}
        limits = spec.get("resources", {}).get("limits", {})
        user = security.get("runAsUser")
        if security.get("runAsNonRoot") and user in (None, 0):
            raise LocalTargetError(f"{where} must run as non-root but names no runAsUser", "set runAsUser")
        capabilities = security.get("capabilities", {})
        return PlannedContainer(
            name=spec["name"],
            image=spec["image"],
            command=tuple(spec.get("command", [])),
            args=tuple(spec.get("args", [])),
            env=self.env(where, spec),
            mounts=tuple(
                PlannedMount(m["name"], m["mountPath"], m.get("subPath", ""), m.get("readOnly", False))
                for m in spec.get("volumeMounts", [])
            ),
            ports=tuple(sorted(ports.values())),
            user="" if user is None else f"{user}:{security.get('runAsGroup', user)}",
            read_only=security.get("readOnlyRootFilesystem", False),
            cap_drop=tuple(capabilities.get("drop", [])),
            cap_add=tuple(capabilities.get("add", [])),
            no_new_privileges=security.get("allowPrivilegeEscalation") is False,
            memory_limit=int(parse_quantity(limits["memory"], "memory")) if "memory" in limits else 0,
            nano_cpus=int(parse_quantity(limits["cpu"], "cpu") * 1e9) if "cpu" in limits else 0,
            readiness=self.probe(where, spec.get("readinessProbe"), ports),
            liveness=self.probe(where, spec.get("livenessProbe"), ports),
            working_dir=spec.get("workingDir", ""),
        )

    @staticmethod
    def probe(where: str, spec: dict | None, ports: Mapping[str, int]) -> Probe | None:
        if spec is None:
            return None
        check_fields(f"{where}.probe", spec, PROBE_FIELDS)
        kind = "http" if "httpGet" in spec else "tcp" if "tcpSocket" in spec else ""
        if not kind:
            raise LocalTargetError(
                f"{where} has a probe the local target cannot run", "use an httpGet or tcpSocket probe"
            )
        action = spec["httpGet" if kind == "http" else "tcpSocket"]
        port = action["port"]
        port = ports.get(port, port) if isinstance(port, str) else port
        if not isinstance(port, int):
            raise LocalTargetError(f"{where}: probe port {port!r} is not one of the container's ports", "")
        return Probe(
            kind,
            action.get("path", "/") if kind == "http" else "",
            port,
            spec.get("periodSeconds", 10),
            spec.get("failureThreshold", 3),
            spec.get("initialDelaySeconds", 0),
        )


def plan(objects: Sequence[dict], host_paths: Sequence[Path] = ()) -> Plan:
    return Translator(objects, host_paths).plan()
