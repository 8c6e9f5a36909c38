"""The local target on the real Docker Engine, with a tiny image made from Debian's busybox-static.

The objects here are hand-written Kubernetes objects in the shapes our layouts use (objects.py); the suite's
own images and layouts are exercised end to end in tests/test_up_local.py.
"""

from __future__ import annotations

import base64
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import docker
import httpx
import pytest

from deploy.model.errors import ExitCode, NotReadyError
from deploy.targets.local import labels as L
from deploy.targets.local.pause import is_static_executable, pause_image
from deploy.targets.local.plan import LocalTargetError
from deploy.targets.local.target import LocalTarget, NotDeployed
from tests.deploy.targets.local.conftest import ENV
from tests.deploy.targets.local.objects import objects
from tests.infra import free_port_block


def run(container, command: str) -> str:  # noqa: ANN001
    code, output = container.exec_run(["sh", "-c", command])
    assert code == 0, output
    return output.decode().strip()


def test_a_pod_runs_with_its_config_and_volumes(target: LocalTarget, busybox: str) -> None:
    ports = [free_port_block(1), free_port_block(1)]
    result = target.apply(objects(busybox, ports))
    assert result.created == ("web",) and result.changed
    target.wait(timeout=30)
    assert httpx.get(f"http://127.0.0.1:{ports[0]}/greeting.txt").text == "hello from a ConfigMap\n"
    first = target.container("first")
    assert run(first, "echo $VALUE $MODE $PASSWORD") == "one test s3cret"
    assert run(first, "touch /tmp/x /data/y && echo writable") == "writable"
    code, _ = first.exec_run(["touch", "/not-writable"])
    assert code != 0  # read-only root filesystem
    assert run(first, "cat /etc/hosts").count("frontdoor") == 1  # Service names resolve locally
    second = target.container("second")
    assert (
        second.attrs["HostConfig"]["NetworkMode"] == first.attrs["HostConfig"]["NetworkMode"]
    )  # one pod, one namespace
    assert [s.ready for s in target.status()] == [True, True]


def test_second_apply_changes_nothing_and_a_change_replaces_the_pod(target: LocalTarget, busybox: str) -> None:
    ports = [free_port_block(1), free_port_block(1)]
    target.apply(objects(busybox, ports))
    before = {c.id for c in target.engine.owned()}
    again = target.apply(objects(busybox, ports))
    assert again.unchanged == ("web",) and not again.changed
    assert {c.id for c in target.engine.owned()} == before
    scratch = volume_names(target)
    changed = target.apply(objects(busybox, ports, env_value="two"))
    assert changed.replaced == ("web",)
    target.wait(timeout=30)
    assert run(target.container("first"), "echo $VALUE") == "two"
    assert len(volume_names(target)) == 1 and volume_names(target) != scratch  # the new pod's own emptyDir


def volume_names(target: LocalTarget) -> set[str]:
    """The names of the environment's emptyDir volumes."""
    owned = L.selector(ENV, **{L.VOLUME_KIND: "emptyDir"})
    return {v.name for v in target.engine.client.volumes.list(filters=owned)}


def test_an_empty_dir_left_behind_is_swept_by_the_next_start_and_by_down(
    target: LocalTarget, busybox: str, docker_client: docker.DockerClient
) -> None:
    """What a removal the engine refused leaves (a pod's emptyDir with no container): a later start of the pod
    removes it, and so does `down` when no container of the pod is left."""
    labels = {L.ENVIRONMENT: ENV, L.MANAGED_BY: "k8sdeploy", L.ROLE: "volume", L.VOLUME_KIND: "emptyDir", L.POD: "web"}
    docker_client.volumes.create(f"k8sdeploy-{ENV}-web-scratch-left", driver="local", labels=labels)
    target.apply(objects(busybox, [free_port_block(1), free_port_block(1)]))
    (scratch,) = volume_names(target)
    assert scratch.startswith(f"k8sdeploy-{ENV}-web-scratch-") and not scratch.endswith("-left")
    target.down()
    docker_client.volumes.create(f"k8sdeploy-{ENV}-web-scratch-left", driver="local", labels=labels)
    assert target.down() == (f"volume k8sdeploy-{ENV}-web-scratch-left",)
    assert volume_names(target) == set()


def test_switching_objects_prunes_the_old_pod_and_keeps_claims(
    target: LocalTarget, busybox: str, docker_client: docker.DockerClient
) -> None:
    ports = [free_port_block(1), free_port_block(1)]
    target.apply(objects(busybox, ports, pod="web"))
    run(target.container("first"), "echo kept > /data/file")
    switched = target.apply(objects(busybox, ports, pod="other"))
    assert switched.created == ("other",) and switched.removed == ("web",)
    assert {c.labels["k8sdeploy.io/pod"] for c in target.engine.owned()} == {"other"}
    target.wait(timeout=30)
    assert run(target.container("first"), "cat /data/file") == "kept"


def test_a_crashing_container_is_diagnosed(target: LocalTarget, busybox: str) -> None:
    ports = [free_port_block(1), free_port_block(1)]
    crashing = objects(busybox, ports)
    crashing[-1]["spec"]["containers"][1]["command"] = ["sh", "-c", "echo cannot open the database; exit 3"]
    target.apply(crashing)
    with pytest.raises(NotReadyError) as failure:
        target.wait(timeout=30)
    assert failure.value.exit_code == ExitCode.NOT_READY
    assert str(failure.value).startswith("second crashed")
    assert "exit code 3" in failure.value.details and "cannot open the database" in failure.value.details


def test_not_ready_in_time_names_the_failing_probe(target: LocalTarget, busybox: str) -> None:
    ports = [free_port_block(1), free_port_block(1)]
    slow = objects(busybox, ports)
    slow[-1]["spec"]["containers"][1]["readinessProbe"]["httpGet"]["path"] = "/missing"
    target.apply(slow)
    with pytest.raises(NotReadyError) as failure:
        target.wait(timeout=3)
    assert "second not ready after 3s" in str(failure.value)
    assert f"readiness probe http://127.0.0.1:{ports[1]}/missing: 404" in failure.value.details


@pytest.mark.parametrize(
    "change,message",
    [
        (
            lambda objs: objs.append(
                {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}}
            ),
            "does not run Ingress objects",
        ),
        (lambda objs: objs[-1]["spec"].update(hostNetwork=True), "does not run Pod web: spec.hostNetwork"),
        (lambda objs: objs[-1]["spec"]["containers"][0].update(stdin=True), "containers[first].stdin"),
        (lambda objs: objs[-1]["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "volumes[h]"),
    ],
)
def test_what_the_local_target_cannot_run_is_refused(
    target: LocalTarget, busybox: str, change: Callable[[list[dict]], None], message: str
) -> None:
    objs = objects(busybox, [free_port_block(1), free_port_block(1)])
    change(objs)
    with pytest.raises(LocalTargetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        target.apply(objs)
    assert target.engine.owned() == []


def test_a_taken_port_is_refused_before_anything_changes(target: LocalTarget, busybox: str) -> None:
    ports = [free_port_block(1), free_port_block(1)]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports[1]))
        squatter.listen()
        with pytest.raises(LocalTargetError, match=f"port {ports[1]} on 127.0.0.1, needed by web/second"):
            target.apply(objects(busybox, ports))
    assert target.engine.owned() == []


def test_down_removes_only_this_environment_and_is_idempotent(
    docker_client: docker.DockerClient, busybox: str, tmp_path: Path
) -> None:
    ours = LocalTarget(docker_client, ENV, state_dir=tmp_path / "ours")
    theirs = LocalTarget(docker_client, ENV + "-other", state_dir=tmp_path / "theirs")
    try:
        ours.apply(objects(busybox, [free_port_block(1), free_port_block(1)]))
        theirs.apply(objects(busybox, [free_port_block(1), free_port_block(1)], pod="theirs"))
        removed = ours.down()
        assert f"k8sdeploy-{ENV}-web-first" in removed
        assert [name for name in removed if name.startswith(f"volume k8sdeploy-{ENV}-web-scratch-")]
        assert docker_client.volumes.get(f"k8sdeploy-{ENV}-pvc-store")  # claims outlive a plain down
        assert ours.engine.owned() == [] and len(theirs.engine.owned()) == 3
        assert ours.down(volumes=True) == (f"volume k8sdeploy-{ENV}-pvc-store",)
        assert ours.down(volumes=True) == ()
    finally:
        theirs.down(volumes=True)


def test_logs_and_unknown_service(target: LocalTarget, busybox: str) -> None:
    with pytest.raises(NotDeployed, match="run `k8sdeploy up`"):
        target.logs("first")
    target.apply(objects(busybox, [free_port_block(1), free_port_block(1)]))
    with pytest.raises(NotDeployed, match="choose one of: first, second"):
        target.logs("third")
    assert isinstance(target.logs("first"), str)


def test_init_containers_run_to_completion_first(target: LocalTarget, busybox: str) -> None:
    ports = [free_port_block(1), free_port_block(1)]
    objs = objects(busybox, ports)
    pod = objs[-1]["spec"]
    pod["volumes"].append({"name": "www", "emptyDir": {}})
    pod["initContainers"] = [
        {
            "name": "prepare",
            "image": busybox,
            "command": ["sh", "-c", "echo prepared > /www/readyz && echo prepared > /www/state"],
            "volumeMounts": [{"name": "www", "mountPath": "/www"}],
            "securityContext": {"runAsUser": 10001, "runAsNonRoot": True},
        }
    ]
    pod["containers"][1]["volumeMounts"] = [{"name": "www", "mountPath": "/www"}]
    target.apply(objs)
    target.wait(timeout=30)
    assert httpx.get(f"http://127.0.0.1:{ports[1]}/state").text == "prepared\n"


def test_a_failing_init_container_stops_the_pod(target: LocalTarget, busybox: str) -> None:
    from deploy.model.errors import ApplyError

    objs = objects(busybox, [free_port_block(1), free_port_block(1)])
    objs[-1]["spec"]["initContainers"] = [
        {"name": "migrate", "image": busybox, "command": ["sh", "-c", "echo schema is locked; exit 9"]}
    ]
    with pytest.raises(ApplyError) as failure:
        target.apply(objs)
    assert str(failure.value).startswith("init container web/migrate exited with code 9")
    assert "schema is locked" in str(failure.value)
    assert not [c for c in target.engine.owned(**{"k8sdeploy.io/role": "app"})]


def test_pods_are_held_by_the_small_pause_image(
    target: LocalTarget, busybox: str, docker_client: docker.DockerClient
) -> None:
    ports = [free_port_block(1), free_port_block(1)]
    target.apply(objects(busybox, ports))  # a claim too: the pause image's chown gives it to the pod's user
    (infra,) = target.engine.owned(**{"k8sdeploy.io/role": "infra"})
    image = docker_client.images.get(infra.attrs["Image"])
    assert [tag.split(":")[0] for tag in image.tags] == ["k8sdeploy/pause"] and image.attrs["Size"] < 5_000_000
    target.wait(timeout=30)
    assert run(target.container("first"), "touch /data/mine && echo written") == "written"
    assert image.id == pause_image(docker_client)  # made once: the same image again, not a new one


def test_without_a_static_busybox_the_pods_first_image_holds_it(
    target: LocalTarget, busybox: str, tmp_path: Path
) -> None:
    said: list[str] = []
    target.engine.say, target.engine.busybox = said.append, Path(shutil.which("ls") or "/bin/ls")  # dynamic
    target.apply(objects(busybox, [free_port_block(1), free_port_block(1)]))
    (infra,) = target.engine.owned(**{"k8sdeploy.io/role": "infra"})
    assert infra.attrs["Image"] == busybox.partition("@")[2]
    assert any(line.startswith("note: no static busybox at /") for line in said)
    target.wait(timeout=30)


@pytest.mark.parametrize("path, static", [("busybox", True), ("ls", False), ("text", False), ("empty", False)])
def test_only_a_static_executable_may_hold_a_pod(tmp_path: Path, path: str, static: bool) -> None:
    files = {"text": b"#!/bin/sh\necho not an ELF file\n", "empty": b""}
    if path in files:
        (tmp_path / path).write_bytes(files[path])
        candidate = tmp_path / path
    else:
        candidate = Path(shutil.which(path) or f"/bin/{path}")
    assert is_static_executable(candidate) is static


def test_secret_files_get_their_mode_in_a_directory_only_their_user_enters(tmp_path: Path) -> None:
    """The files of a Secret volume, written for the container's user: 0700 directory, the key's own mode (the
    engine's client is not needed to write them)."""
    import os
    import stat
    from types import SimpleNamespace

    from deploy.targets.local.containers import LocalEngine
    from deploy.targets.local.plan import PlannedVolume

    engine = LocalEngine(None, ENV, state_dir=tmp_path)
    secret = PlannedVolume("creds", "files", files=(("password", base64.b64encode(b"s3cret").decode(), 0o400),))
    stale = tmp_path / "files" / "pod" / "creds" / "password"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    stale.chmod(0o644)  # left world-readable by an older k8sdeploy
    directory = engine.write_files(SimpleNamespace(name="pod"), secret, SimpleNamespace(user="10001:10001"))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "password").stat().st_mode) == 0o400
    assert (directory / "password").read_bytes() == b"s3cret"
    if os.geteuid() == 0:
        assert (directory.stat().st_uid, (directory / "password").stat().st_uid) == (10001, 10001)
