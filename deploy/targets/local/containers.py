"""Run a Plan on the Docker Engine: create, replace and prune pods, and take them all down again."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container as DockerContainer
from docker.models.images import Image
from docker.models.volumes import Volume
from docker.types import Mount as DockerMount

from deploy.model.errors import ApplyError
from deploy.model.progress import Say, silent
from deploy.model.retry import RetryPolicy
from deploy.model.status import ApplyResult
from deploy.targets.local import labels as L
from deploy.targets.local.pause import BUSYBOX, pause_image
from deploy.targets.local.plan import LocalTargetError, Plan, PlannedContainer, PlannedPod, PlannedVolume, plan

KEEP_ALIVE = ("sleep", "infinity")  # the infra container only holds the pod's namespaces
# Docker API RestartPolicy.Name; types-docker's stub lists only "always" and "on-failure"
UNLESS_STOPPED: Any = {"Name": "unless-stopped"}


def image_id(image: Image) -> str:
    if image.id is None:  # the engine names every image it answers with; the stubs allow None
        raise ApplyError(f"the Docker Engine answered image {image!r} without an ID", "check the engine's log")
    return image.id


def still_mounted(exc: BaseException) -> bool:
    """The engine refused to remove a volume that a container it is removing still holds."""
    return isinstance(exc, APIError) and ("active mounts" in str(exc) or "volume is in use" in str(exc))


def remove_volume(volume: Volume) -> None:
    try:
        volume.remove(force=True)
    except NotFound:
        pass  # gone already


def default_state_dir(env_name: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "k8sdeploy" / env_name


class LocalEngine:
    """The pods of one environment on one Docker Engine; only objects with its labels are touched."""

    def __init__(
        self,
        client: docker.DockerClient,
        env_name: str,
        state_dir: Path | None = None,
        say: Say = silent,
        busybox: Path = BUSYBOX,
        host_paths: Sequence[Path] = (),
    ):
        self.client = client
        self.host_paths = tuple(host_paths)  # what hostPath volumes may bind (`dev`: the checkout)
        self.env_name = env_name
        self.state_dir = state_dir or default_state_dir(env_name)
        self.say = say
        self.busybox = busybox  # a static busybox makes the pods' small infra image (pause.py)

    # naming ---------------------------------------------------------------------------------

    def name(self, *parts: str) -> str:
        return "-".join(("k8sdeploy", self.env_name, *parts))

    def owned(self, **more: str) -> list:
        return self.client.containers.list(all=True, filters=L.selector(self.env_name, **more))

    def running_pods(self) -> dict[str, str]:
        """Pod name -> spec hash of what runs now (from the infra containers)."""
        return {c.labels[L.POD]: c.labels.get(L.SPEC_HASH, "") for c in self.owned(**{L.ROLE: "infra"})}

    # apply ----------------------------------------------------------------------------------

    def apply(self, objects: Sequence[dict]) -> ApplyResult:
        wanted = plan(objects, self.host_paths)
        for note in wanted.notes:
            self.say(f"note: {note}")
        current = self.running_pods()
        intact = {pod for pod, spec in current.items() if self.pod_is_whole(pod, wanted, spec)}
        unchanged = [p for p in wanted.pods if p.name in intact]
        to_start = [p for p in wanted.pods if p.name not in intact]
        to_remove = [name for name in current if name not in {p.name for p in unchanged}]
        images = {c.image: self.resolve_image(c.image) for p in to_start for c in (*p.init_containers, *p.containers)}
        self.check_ports(to_start, keep={p.name for p in unchanged})
        infra = self.infra_image() if to_start else None
        for pod in unchanged:
            self.refresh_files(pod)
        for name in to_remove:
            self.remove_pod(name)
        for pod in to_start:
            if pod.name not in current:  # what an earlier pod of the name may have left
                self.remove_volumes(pod.name, held=set())
            self.start_pod(pod, wanted, images, infra or images[pod.containers[0].image])
        started = {p.name for p in to_start}
        return ApplyResult(
            created=tuple(sorted(started - set(current))),
            replaced=tuple(sorted(started & set(current))),
            unchanged=tuple(sorted(p.name for p in unchanged)),
            removed=tuple(sorted(set(to_remove) - started)),
        )

    def pod_is_whole(self, pod_name: str, wanted: Plan, spec_hash: str) -> bool:
        pod = next((p for p in wanted.pods if p.name == pod_name), None)
        if pod is None or pod.spec_hash != spec_hash:
            return False
        present = {c.labels[L.CONTAINER] for c in self.owned(**{L.POD: pod_name, L.ROLE: "app"})}
        return present == {c.name for c in pod.containers}

    def infra_image(self) -> str | None:
        pause = pause_image(self.client, self.busybox)
        if pause is None:
            self.say(
                f"note: no static busybox at {self.busybox} (Debian: busybox-static), so each pod is held by "
                "a container of its first image, which is slower to create and remove"
            )
        return pause

    def resolve_image(self, ref: str) -> str:
        """The local image ID for `repository:version@sha256:...` (an image ID or a repository digest)."""
        name, _, digest = ref.partition("@")
        repository = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
        for candidate in (digest, f"{repository}@{digest}"):
            try:
                return image_id(self.client.images.get(candidate))
            except (ImageNotFound, APIError):
                continue
        try:
            self.say(f"pulling {repository}@{digest}")
            return image_id(self.client.images.pull(f"{repository}@{digest}"))
        except (ImageNotFound, APIError) as exc:
            raise LocalTargetError(
                f"image {ref} is not in the local Docker Engine and cannot be pulled",
                "run `k8sdeploy build` for this environment first",
            ) from exc

    def check_ports(self, pods: Sequence[PlannedPod], keep: set[str]) -> None:
        """Refuse before changing anything when a port we need is taken by someone else."""
        ours = {port for pod in self.running_pods() if pod not in keep for port in self.ports_of_running_pod(pod)}
        for pod in pods:
            for container in pod.containers:
                for port in container.ports:
                    if port not in ours and not port_is_free(port):
                        raise self.port_taken(port, f"{pod.name}/{container.name}")

    def port_taken(self, port: int, needed_by: str) -> LocalTargetError:
        """Who holds `port`: another k8sdeploy environment on this engine (by its containers' ports), or a process."""
        managed = self.client.containers.list(filters={"label": [f"{L.MANAGED_BY}=k8sdeploy"]})
        holders = sorted(
            {
                c.labels.get(L.ENVIRONMENT, "?")
                for c in managed
                if str(port) in c.labels.get("k8sdeploy.io/ports", "").split(",")
            }
        )
        move = (
            f"set gateway_port in [environments.{self.env_name}] to the first of six free ports "
            "(the gateway's, then the five services')"
        )
        if holders:
            return LocalTargetError(
                f"port {port} on 127.0.0.1, needed by {needed_by}, is taken by k8sdeploy environment {holders[0]}",
                f"{move}, or `k8sdeploy down --env {holders[0]}`",
            )
        return LocalTargetError(
            f"port {port} on 127.0.0.1, needed by {needed_by}, is in use by another process",
            f"stop that process, or {move}; then run `k8sdeploy up` again",
        )

    def ports_of_running_pod(self, pod: str) -> set[int]:
        ports: set[int] = set()
        for container in self.owned(**{L.POD: pod, L.ROLE: "app"}):
            ports.update(int(p) for p in container.labels.get("k8sdeploy.io/ports", "").split(",") if p)
        return ports

    def start_pod(self, pod: PlannedPod, wanted: Plan, images: dict[str, str], infra_image: str) -> None:
        """The infra container (`infra_image`, holding the pod's volumes), init containers, then the rest."""
        self.say(f"starting pod {pod.name}")
        common = {
            L.ENVIRONMENT: self.env_name,
            L.MANAGED_BY: "k8sdeploy",
            L.POD: pod.name,
            L.SPEC_HASH: pod.spec_hash,
            **dict(pod.labels),
        }
        mounts = self.prepare_volumes(pod, infra_image, incarnation=secrets.token_hex(4))
        first = pod.containers[0]
        hosts = {name: "127.0.0.1" for name in (*wanted.services, *pod.host_aliases)}
        # The infra container also holds every emptyDir: a tmpfs volume lives while something mounts
        # it, so what an init container wrote is still there for the others, as in a pod.
        held = sorted(
            {
                m["Source"]
                for m in mounts.values()
                if m["Type"] == "volume" and m["Source"].startswith(self.name(pod.name) + "-")
            }
        )
        infra = self.client.containers.create(
            infra_image,
            entrypoint=list(KEEP_ALIVE[:1]),
            command=list(KEEP_ALIVE[1:]),
            mounts=[DockerMount(f"/.pod-volumes/{name}", name, type="volume", no_copy=True) for name in held],
            name=self.name(pod.name),
            network_mode="host",
            extra_hosts=hosts,
            user=first.user or None,
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            restart_policy=UNLESS_STOPPED,
            labels={**common, L.ROLE: "infra"},
        )
        infra.start()
        for init in pod.init_containers:
            self.run_init(pod, init, infra, common, mounts, images)
        for container in pod.containers:
            self.client.containers.create(
                **self.container_options(pod, container, infra, common, mounts, images, role="app"),
                restart_policy=UNLESS_STOPPED,
            ).start()

    def container_options(
        self,
        pod: PlannedPod,
        container: PlannedContainer,
        infra: DockerContainer,
        common: dict,
        mounts: dict,
        images: dict[str, str],
        role: str,
    ) -> dict:
        return {
            "image": images[container.image],
            "entrypoint": list(container.command) or None,
            "command": list(container.args) or None,
            "name": self.name(pod.name, container.name)
            if role == "app"
            else self.name(pod.name, "init", container.name),
            "network_mode": f"container:{infra.id}",
            "environment": dict(container.env),
            "mounts": [mounts[(m.volume, m.sub_path, m.target, m.read_only)] for m in container.mounts],
            "user": container.user or None,
            "read_only": container.read_only,
            "cap_drop": list(container.cap_drop) or None,
            "cap_add": list(container.cap_add) or None,
            "security_opt": ["no-new-privileges"] if container.no_new_privileges else None,
            "mem_limit": container.memory_limit or None,
            "nano_cpus": container.nano_cpus or None,
            "working_dir": container.working_dir or None,
            "labels": {
                **common,
                L.ROLE: role,
                L.CONTAINER: container.name,
                L.IMAGE: container.image,
                "k8sdeploy.io/ports": ",".join(map(str, container.ports)),
                "k8sdeploy.io/readiness": readiness_label(container),
            },
        }

    def run_init(
        self,
        pod: PlannedPod,
        init: PlannedContainer,
        infra: DockerContainer,
        common: dict,
        mounts: dict,
        images: dict[str, str],
    ) -> None:
        self.say(f"running init container {pod.name}/{init.name}")
        created = self.client.containers.create(
            **self.container_options(pod, init, infra, common, mounts, images, role="init")
        )
        created.start()
        code = created.wait().get("StatusCode", 1)
        if code != 0:
            tail = created.logs(tail=20).decode(errors="replace")
            raise ApplyError(
                f"init container {pod.name}/{init.name} exited with code {code}", f"its last log lines:\n{tail}"
            )

    # volumes --------------------------------------------------------------------------------

    def prepare_volumes(self, pod: PlannedPod, infra_image: str, incarnation: str) -> dict[tuple, DockerMount]:
        """Docker mounts for every volumeMount of the pod, keyed by (volume, subPath, target, readOnly);
        `incarnation` names this start's emptyDirs."""
        mounts: dict[tuple, DockerMount] = {}
        for container in (*pod.init_containers, *pod.containers):
            for mount in container.mounts:
                volume = pod.volume(mount.volume)
                key = (mount.volume, mount.sub_path, mount.target, mount.read_only)
                if volume.kind == "files":
                    source = self.write_files(pod, volume, container)
                    path = source / mount.sub_path if mount.sub_path else source
                    mounts[key] = DockerMount(mount.target, str(path), type="bind", read_only=True)
                    continue
                if volume.kind == "hostPath":
                    path = Path(volume.host_path) / mount.sub_path if mount.sub_path else Path(volume.host_path)
                    mounts[key] = DockerMount(mount.target, str(path), type="bind", read_only=mount.read_only)
                    continue
                if mount.sub_path:
                    raise LocalTargetError(
                        f"{pod.name}/{container.name} mounts a subPath of {volume.kind} volume {volume.name}",
                        "mount the whole volume",
                    )
                name = self.ensure_volume(pod, volume, infra_image, incarnation)
                # no_copy: as in Kubernetes, a volume does not take the image's files at its mount point.
                mounts[key] = DockerMount(mount.target, name, type="volume", read_only=mount.read_only, no_copy=True)
        return mounts

    def ensure_volume(self, pod: PlannedPod, volume: PlannedVolume, image_id: str, incarnation: str) -> str:
        labels = {L.ENVIRONMENT: self.env_name, L.MANAGED_BY: "k8sdeploy", L.ROLE: "volume", L.VOLUME_KIND: volume.kind}
        if volume.kind == "emptyDir":
            # Like a Kubernetes emptyDir: new with the pod (a name of its own, never an earlier pod's volume the
            # engine failed to let go), world-writable, gone with the pod.
            name = self.name(pod.name, volume.name, incarnation)
            self.client.volumes.create(
                name,
                driver="local",
                labels={**labels, L.POD: pod.name},
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "mode=1777"},
            )
            return name
        name = self.name("pvc", volume.claim)
        try:
            self.client.volumes.get(name)
        except NotFound:
            self.client.volumes.create(name, driver="local", labels={**labels, "k8sdeploy.io/claim": volume.claim})
            self.give_to_pod_user(name, pod, image_id)
        return name

    def give_to_pod_user(self, volume: str, pod: PlannedPod, image_id: str) -> None:
        """A new claim belongs to the pod's user, as fsGroup would arrange in a cluster."""
        owner = pod.containers[0].user or "0:0"
        if pod.fs_group is not None:
            owner = f"{owner.split(':')[0]}:{pod.fs_group}"
        self.client.containers.run(
            image_id,
            entrypoint=["chown"],
            command=[owner, "/volume"],
            user="0",
            network_mode="none",
            remove=True,
            mounts=[DockerMount("/volume", volume, type="volume", no_copy=True)],
        )

    def write_files(self, pod: PlannedPod, volume: PlannedVolume, container: PlannedContainer) -> Path:
        """ConfigMap and Secret keys as files on the host, readable by the container's user only: each file is
        created with its final mode (never readable by others, not even for a moment), in a 0700 directory
        of that user (the bind mount shows the container only this directory)."""
        directory = self.state_dir / "files" / pod.name / volume.name
        directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.mkdir(mode=0o700, exist_ok=True)
        directory.chmod(0o700)
        uid, _, gid = (container.user or "0:0").partition(":")
        owner = (int(uid), int(gid or uid)) if os.geteuid() == 0 else None
        if owner:
            os.chown(directory, *owner)
        for key, content, mode in volume.files:
            path, data = directory / key, base64.b64decode(content)
            if path.is_file() and path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
                continue
            # a new file, so O_CREAT's mode is the one it gets, then renamed over the old one: a reader in the
            # container sees the old content or the new, never a part
            temporary = directory / f".{key}.new"
            temporary.unlink(missing_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            with os.fdopen(descriptor, "wb") as file:
                if owner:
                    os.fchown(file.fileno(), *owner)
                os.fchmod(file.fileno(), mode)  # the umask may have taken bits O_CREAT asked for
                file.write(data)
            temporary.replace(path)
        return directory

    def refresh_files(self, pod: PlannedPod) -> None:
        """The live files of a pod that keeps running, rewritten where they changed (as the kubelet does)."""
        for volume in pod.volumes:
            users = [
                c for c in (*pod.init_containers, *pod.containers) if any(m.volume == volume.name for m in c.mounts)
            ]
            directory = self.state_dir / "files" / pod.name / volume.name
            stale = [key for key, content, _ in volume.files if not same_file(directory / key, content)]
            if volume.live and users and stale:
                self.write_files(pod, volume, users[0])
                self.say(f"rewrote {', '.join(stale)} of volume {volume.name} in the running pod {pod.name}")

    # removal --------------------------------------------------------------------------------

    def remove_pod(self, pod: str) -> list[str]:
        self.say(f"removing pod {pod}")
        removed = []
        held: set[str] = set()
        for container in self.owned(**{L.POD: pod}):
            held |= {m.get("Name") for m in container.attrs.get("Mounts") or [] if m.get("Type") == "volume"}
            container.remove(force=True)
            removed.append(container.name)
        removed += self.remove_volumes(pod, held)
        shutil.rmtree(self.state_dir / "files" / pod, ignore_errors=True)
        return removed

    def remove_volumes(self, pod: str, held: set[str]) -> list[str]:
        """The pod's emptyDir volumes (`held`: those its containers, just removed, mounted)."""
        removed = []
        for volume in self.client.volumes.list(filters=L.selector(self.env_name, **{L.POD: pod})):
            # the engine may still count the just-removed containers' mounts for a moment: tried again for a few
            # seconds. A volume no container held and still "mounted" is one the engine lost count of (a container
            # it was restarting, removed): only a restart of the engine frees it, which must not stop a deploy.
            patience = RetryPolicy(deadline=15.0 if volume.name in held else 0.0)
            try:
                patience.call(partial(remove_volume, volume), "DELETE", still_mounted)
            except APIError as exc:
                if not still_mounted(exc):
                    raise
                self.say(
                    f"left volume {volume.name}: the Docker Engine counts a mount of it that no container holds "
                    "(restarting the engine frees it; `down` tries again)"
                )
                continue
            removed.append(f"volume {volume.name}")
        return removed

    def down(self, volumes: bool = False) -> tuple[str, ...]:
        removed: list[str] = []
        pods = {c.labels.get(L.POD, "") for c in self.owned()}
        for pod in sorted(pods):
            removed.extend(self.remove_pod(pod))
        left = self.client.volumes.list(filters=L.selector(self.env_name))
        for pod in sorted({(v.attrs.get("Labels") or {}).get(L.POD) or "" for v in left} - pods - {""}):
            removed.extend(self.remove_volumes(pod, held=set()))  # emptyDirs of a pod with no container left
        claims = [v for v in left if not (v.attrs.get("Labels") or {}).get(L.POD)]
        if volumes:
            for volume in claims:
                volume.remove(force=True)
                removed.append(f"volume {volume.name}")
        elif claims:
            self.say(f"kept {len(claims)} claim volume(s) with their data; `down --volumes` removes them too")
        shutil.rmtree(self.state_dir / "files", ignore_errors=True)
        return tuple(removed)


def same_file(path: Path, content: str) -> bool:
    """Whether `path` holds the base64 `content` already."""
    try:
        return path.read_bytes() == base64.b64decode(content)
    except OSError:
        return False


def readiness_label(container: PlannedContainer) -> str:
    """PORT/PATH of the readiness probe, kept on the container so health checks need no plan."""
    probe = container.readiness
    if probe is None:
        return ""
    return f"http:{probe.port}/{probe.path.lstrip('/')}" if probe.kind == "http" else f"tcp:{probe.port}"


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
