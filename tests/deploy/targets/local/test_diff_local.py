"""The local target's diff on the real Docker Engine: each pod against its running containers (image,
environment, ports, mounts, the files of its ConfigMaps and Secrets), a Secret's values never shown, and the
containers it names are exactly those the next apply replaces."""

from __future__ import annotations

import base64

import docker

from deploy.model.changes import HIDDEN
from deploy.targets.local.target import LocalTarget
from tests.deploy.targets.local.conftest import ENV
from tests.deploy.targets.local.objects import objects
from tests.infra import free_port_block

APP = {"label": [f"k8sdeploy.io/environment={ENV}", "k8sdeploy.io/role=app"]}


def ids(client: docker.DockerClient) -> dict[str, str]:
    return {c.labels["k8sdeploy.io/container"]: c.id for c in client.containers.list(all=True, filters=APP)}


def with_secret(found: list[dict], password: bytes) -> list[dict]:
    for obj in found:
        if obj["kind"] == "Secret":
            obj["data"]["PASSWORD"] = base64.b64encode(password).decode()
    return found


def with_greeting(found: list[dict], text: str) -> list[dict]:
    for obj in found:
        if obj["kind"] == "ConfigMap":
            obj["data"]["greeting.txt"] = text
    return found


def test_diff_reads_the_running_containers_and_names_what_apply_replaces(
    target: LocalTarget, busybox: str, docker_client: docker.DockerClient
) -> None:
    ports = [free_port_block(1), free_port_block(1)]
    target.apply(objects(busybox, ports))
    [same] = target.diff(objects(busybox, ports))
    assert (same.ref, same.action, same.fields, same.containers) == ("Pod/web", "unchanged", (), ())

    [change] = target.diff(objects(busybox, ports, env_value="two"))
    assert (change.ref, change.action, change.containers) == ("Pod/web", "replace", ("first", "second"))
    assert [(f.path, f.old, f.new) for f in change.fields] == [("containers[name=first].env[VALUE]", "one", "two")]

    [secret] = target.diff(with_secret(objects(busybox, ports), b"an0ther"))
    assert [(f.path, f.old, f.new) for f in secret.fields] == [("containers[name=first].env[PASSWORD]", HIDDEN, HIDDEN)]
    assert "s3cret" not in repr(secret) and "an0ther" not in repr(secret)

    [files] = target.diff(with_greeting(objects(busybox, ports), "hello again\n"))
    [greeting] = files.fields
    assert greeting.path == "volumes[name=conf].files[greeting.txt]" and greeting.old != greeting.new
    assert greeting.old.startswith("sha256:") and greeting.new.startswith("sha256:")

    [moved] = target.diff(objects(busybox, [ports[0], free_port_block(1)]))
    assert ("containers[name=second].ports", str(ports[1])) in [(f.path, f.old) for f in moved.fields]

    before = ids(docker_client)
    result = target.apply(objects(busybox, ports, env_value="two"))
    after = ids(docker_client)
    assert result.replaced == ("web",)
    assert tuple(sorted(name for name in before if after.get(name) != before[name])) == change.containers


def test_a_pod_no_longer_rendered_is_a_delete(target: LocalTarget, busybox: str) -> None:
    ports = [free_port_block(1), free_port_block(1)]
    target.apply(objects(busybox, ports))
    planned = {c.ref: c for c in target.diff(objects(busybox, ports, pod="other"))}
    assert planned["Pod/other"].action == "create"
    assert (planned["Pod/web"].action, planned["Pod/web"].containers) == ("delete", ("first", "second"))
